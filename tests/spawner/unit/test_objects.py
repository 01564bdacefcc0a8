"""kubecache.spawner.objects and .manifests: KubeSpawner 7.1's objects for the same arguments."""

from __future__ import annotations

import copy
import inspect
import logging
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio.client import models as k8s
from kubespawner import objects as reference

from kubecache.spawner import manifests, objects
from kubecache.spawner.models import request_body
from tests.spawner.unit.golden import api_json, assert_same_object

BASE: dict[str, Any] = {
    "name": "jupyter-alice",
    "cmd": ["jupyterhub-singleuser"],
    "port": 8888,
    "image": "jupyter/base:1",
    "image_pull_policy": "IfNotPresent",
}

CASES: dict[str, dict[str, Any]] = {
    "minimal": {},
    "everything": {
        "image_pull_secrets": ["a", {"name": "b"}],
        "node_selector": {"k": "v"},
        "uid": "1000",
        "gid": 100,
        "fs_gid": "100",
        "supplemental_gids": ["1", 2],
        "privileged": True,
        "allow_privilege_escalation": False,
        "container_security_context": {"capabilities": {"drop": ["ALL"]}},
        "pod_security_context": {"runAsNonRoot": True},
        "env": {
            "B": "$(A)/x",
            "A": "a",
            "C": "$(B)$(MISSING)",
            "D": None,
            "F": {"valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        },
        "working_dir": "/w",
        "volumes": [{"name": "v", "config_map": {"name": "cm"}}],
        "volume_mounts": [{"name": "v", "mount_path": "/v", "read_only": True}],
        "labels": {"l": "1"},
        "annotations": {"a": "1"},
        "cpu_limit": 1.5,
        "cpu_guarantee": 0.1,
        "mem_limit": "2G",
        "mem_guarantee": 1024,
        "extra_resource_limits": {"x/y": "1"},
        "extra_resource_guarantees": {"x/y": "1"},
        "lifecycle_hooks": {"preStop": {"exec": {"command": ["stop"]}}},
        "init_containers": [{"name": "i", "image": "busybox", "image_pull_policy": "Never"}],
        "service_account": "sa",
        "automount_service_account_token": False,
        "extra_container_config": {"tty": True, "image": "override:1", "working_dir": None},
        "extra_pod_config": {"hostname": "h", "restart_policy": "Never", "volumes": None},
        "extra_containers": [{"name": "e", "image": "nginx"}],
        "scheduler_name": "s",
        "tolerations": [{"key": "k", "toleration_seconds": 5}],
        "node_affinity_preferred": [{"weight": 1, "preference": {}}],
        "pod_anti_affinity_required": [{"topologyKey": "t"}],
        "priority_class_name": "p",
        "ssl_secret_name": "secret",
        "ssl_secret_mount_path": "/etc/ssl/",
    },
    "cyclic env references": {"env": {"X": "$(Y)", "Y": "$(X)", "Z": "z"}},
    "empty pull secret list and no lifecycle": {"image_pull_secrets": [], "lifecycle_hooks": {}},
    "service account without automount choice": {"service_account": "sa"},
    "no command": {"cmd": None},
}


@pytest.mark.parametrize("case", list(CASES))
def test_make_pod_equals_kubespawners(case: str) -> None:
    kwargs = {**BASE, **CASES[case]}
    theirs = reference.make_pod(**copy.deepcopy(kwargs))
    assert manifests.pod_json(**copy.deepcopy(kwargs)) == api_json(theirs)
    assert_same_object(objects.make_pod(**copy.deepcopy(kwargs)), theirs)


def _models_case() -> dict[str, Any]:
    """Client models alone and mixed with dicts of either key style, at several depths."""
    return {
        "init_containers": [
            k8s.V1Container(
                name="block-cloud-metadata",
                image="tools:1",
                command=["iptables", "-A", "OUTPUT", "-d", "169.254.169.254", "-j", "DROP"],
                security_context=k8s.V1SecurityContext(
                    privileged=True,
                    run_as_user=0,
                    capabilities=k8s.V1Capabilities(add=["NET_ADMIN"]),
                ),
                resources={"limits": {"cpu": "100m"}},
            ),
            {"name": "dict-init", "image": "busybox", "security_context": {"runAsUser": 0}},
        ],
        "extra_containers": [
            {"name": "side", "image": "x", "env": [k8s.V1EnvVar(name="A", value="1")]},
            k8s.V1Container(name="model-side", image="y", ports=[{"containerPort": 80}]),
        ],
        "volumes": [
            k8s.V1Volume(name="m", config_map=k8s.V1ConfigMapVolumeSource(name="cm")),
            {"name": "d", "secret": {"secretName": "s"}},
            {"name": "e", "empty_dir": k8s.V1EmptyDirVolumeSource(medium="Memory")},
        ],
        "volume_mounts": [
            k8s.V1VolumeMount(name="m", mount_path="/m", read_only=True),
            {"name": "d", "mountPath": "/d"},
        ],
        "tolerations": [
            k8s.V1Toleration(key="gpu", operator="Exists", effect="NoSchedule"),
            {"key": "a", "toleration_seconds": 3},
        ],
        "node_affinity_required": [
            k8s.V1NodeSelectorTerm(
                match_expressions=[
                    k8s.V1NodeSelectorRequirement(key="k", operator="In", values=["v"])
                ]
            )
        ],
        "node_affinity_preferred": [
            k8s.V1PreferredSchedulingTerm(weight=1, preference=k8s.V1NodeSelectorTerm()),
            {"weight": 2, "preference": {"matchFields": []}},
        ],
        "pod_affinity_required": [k8s.V1PodAffinityTerm(topology_key="zone")],
        "pod_anti_affinity_preferred": [
            k8s.V1WeightedPodAffinityTerm(
                weight=3, pod_affinity_term=k8s.V1PodAffinityTerm(topology_key="host")
            )
        ],
        "image_pull_secrets": ["a", {"name": "b"}, k8s.V1LocalObjectReference(name="c")],
        "lifecycle_hooks": {
            "postStart": k8s.V1LifecycleHandler(
                _exec=k8s.V1ExecAction(command=["sh", "-c", "true"])
            ),
            "pre_stop": {"exec": {"command": ["stop"]}},
        },
        "env": {
            "FROM_FIELD": {
                "valueFrom": k8s.V1EnvVarSource(
                    field_ref=k8s.V1ObjectFieldSelector(field_path="status.podIP")
                )
            },
        },
        "container_security_context": {"capabilities": k8s.V1Capabilities(drop=["ALL"])},
        "pod_security_context": {"seLinuxOptions": k8s.V1SELinuxOptions(level="s0")},
        "extra_container_config": {
            "env_from": [k8s.V1EnvFromSource(config_map_ref=k8s.V1ConfigMapEnvSource(name="c"))],
            "securityContext": k8s.V1SecurityContext(read_only_root_filesystem=True),
        },
        "extra_pod_config": {
            "host_aliases": [k8s.V1HostAlias(ip="10.0.0.1", hostnames=["h"])],
            "dnsConfig": {"options": [k8s.V1PodDNSConfigOption(name="ndots", value="2")]},
        },
    }


def test_client_models_alone_and_mixed_give_kubespawners_pod() -> None:
    theirs = reference.make_pod(**BASE, **_models_case())
    assert manifests.pod_json(**BASE, **_models_case()) == api_json(theirs)
    assert api_json(objects.make_pod(**BASE, **_models_case())) == api_json(theirs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"volumes": [k8s.V1Container(name="c")]}, "Expected a dict or a V1Volume, got a"),
        ({"tolerations": ["gpu"]}, "Expected a dict or a V1Toleration, got str"),
    ],
)
def test_models_of_the_wrong_kind_are_refused_with_a_clear_error(
    kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        manifests.pod_json(**BASE, **kwargs)


def test_make_pod_does_not_mutate_its_arguments() -> None:
    for kwargs in ({**BASE, **CASES["everything"]}, {**BASE, **_models_case()}):
        before = api_json(copy.deepcopy(kwargs))
        manifests.pod_json(**kwargs)
        objects.make_pod(**kwargs)
        assert api_json(kwargs) == before


@pytest.mark.parametrize(
    "name",
    [
        "make_pod",
        "make_pvc",
        "make_ingress",
        "make_owner_reference",
        "make_namespace",
        "make_secret",
        "make_service",
    ],
)
def test_signatures_and_defaults_are_kubespawners(name: str) -> None:
    ours = inspect.signature(getattr(objects, name)).parameters
    theirs = inspect.signature(getattr(reference, name)).parameters
    assert [(p.name, p.kind, p.default) for p in ours.values()] == [
        (p.name, p.kind, p.default) for p in theirs.values()
    ]
    assert name in objects.__all__


def test_overrides_are_logged_with_what_they_replace(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test")
    with caplog.at_level(logging.INFO):
        manifests.pod_json(**BASE, extra_container_config={"image": "x"}, logger=log)
    assert "'notebook_container.image' current value: 'jupyter/base:1'" in caplog.text


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"volumes": [{"name": "v", "bogus": 1}]},
            "'V1Volume' did not have an attribute matching 'bogus'",
        ),
        ({"extra_pod_config": {"nope": 1}}, "contained 'nope' not modeled by 'V1PodSpec'"),
        ({"pod_security_context": {"run_as_user": 1}}, "camelCase"),
        ({"container_security_context": {"run_as_user": 1}}, "camelCase"),
    ],
)
def test_bad_fragments_raise_clear_errors(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        manifests.pod_json(**BASE, **kwargs)


@pytest.mark.parametrize(
    "args",
    [
        ("claim-alice", None, ["ReadWriteOnce"], None, "10Gi"),
        ("claim-alice", "standard", ["ReadWriteOnce"], {"matchLabels": {"a": "b"}}, "1Gi"),
        ("claim-alice", "", None, {}, None),
    ],
)
def test_make_pvc_equals_kubespawners(args: tuple[Any, ...]) -> None:
    labels, annotations = {"l": "1"}, {"a": "1"}
    theirs = reference.make_pvc(*args, labels=labels, annotations=annotations)
    assert manifests.pvc_json(*args, labels=labels, annotations=annotations) == api_json(theirs)
    assert_same_object(objects.make_pvc(*args, labels=labels, annotations=annotations), theirs)


def test_owner_reference_and_service_equal_kubespawners() -> None:
    owner = objects.make_owner_reference("jupyter-alice", "uid-1")
    their_owner = reference.make_owner_reference("jupyter-alice", "uid-1")
    assert_same_object(owner, their_owner)
    args = ("jupyter-alice", 8888, {"s": "1"})
    theirs = reference.make_service(*args, [their_owner], {"l": "1"}, {"a": "1"})
    assert_same_object(objects.make_service(*args, [owner], {"l": "1"}, {"a": "1"}), theirs)
    assert manifests.service_json(*args, [api_json(owner)], {"l": "1"}, {"a": "1"}) == api_json(
        theirs
    )


def test_namespace_equals_kubespawners() -> None:
    theirs = reference.make_namespace("user-alice", {"l": "1"}, None)
    assert manifests.namespace_json("user-alice", {"l": "1"}, None) == api_json(theirs)
    assert_same_object(objects.make_namespace("user-alice", {"l": "1"}, None), theirs)


def test_secret_reads_the_certificates_like_kubespawners(tmp_path: Path) -> None:
    paths = {}
    for key, text in {"keyfile": "K", "certfile": "C", "cafile": "NB\n\n", "hub": "HUB\n"}.items():
        (tmp_path / key).write_text(text)
        paths[key] = str(tmp_path / key)
    cert_paths = {k: paths[k] for k in ("keyfile", "certfile", "cafile")}
    owner = reference.make_owner_reference("jupyter-alice", "uid-1")
    theirs = reference.make_secret("s", "alice", cert_paths, paths["hub"], [owner], {"l": "1"})
    ours = objects.make_secret("s", "alice", cert_paths, paths["hub"], [owner], {"l": "1"})
    assert_same_object(ours, theirs)
    assert ours.data == {
        "ssl.key": "Sw==",
        "ssl.crt": "Qw==",
        "notebooks-ca_trust.crt": "TkIKSFVCCg==",
    }


INGRESS_CASES: dict[str, dict[str, Any]] = {
    "pod IP target": {"routespec": "/user/alice/", "target": "http://10.0.0.7:8888"},
    "IPv6 target": {"routespec": "/user/alice/", "target": "http://[fd00::7]:8888"},
    "service in this namespace, reused": {
        "routespec": "/user/alice/",
        "target": "http://jupyter-alice.jhub.svc.cluster.local:8888",
        "reuse_existing_services": True,
    },
    "bare service name, reused": {
        "routespec": "/user/alice/",
        "target": "http://hub:8081",
        "reuse_existing_services": True,
    },
    "service in another namespace": {
        "routespec": "/user/alice/",
        "target": "http://jupyter-alice.other:8888",
        "reuse_existing_services": True,
    },
    "external host, not reused": {"routespec": "/", "target": "http://example.org:9000"},
    "host routes with specifications and TLS": {
        "routespec": "alice.users.example.org/",
        "target": "http://10.0.0.7:8888",
        "ingress_specifications": [
            {"host": "*.users.example.org", "tlsSecret": "wildcard-tls"},
            {"host": "other.example.org"},
        ],
        "ingress_class_name": "nginx",
        "ingress_extra_labels": {"x": "1"},
        "ingress_extra_annotations": {"y": "2"},
    },
    "path route with specifications": {
        "routespec": "/services/svc/",
        "target": "http://10.0.0.9:9000",
        "ingress_specifications": [{"host": "a.example.org"}, {"host": "a.example.org"}],
    },
}


@pytest.mark.parametrize("case", list(INGRESS_CASES))
def test_make_ingress_equals_kubespawners(case: str) -> None:
    kwargs = {
        "name": "jupyter-alice",
        "data": {"user": "alice"},
        "namespace": "jhub",
        "common_labels": {"app": "jupyterhub"},
        **INGRESS_CASES[case],
    }
    ours, theirs = objects.make_ingress(**kwargs), reference.make_ingress(**kwargs)
    assert len(ours) == 3
    for our_object, their_object in zip(ours, theirs, strict=True):
        if their_object is None:
            assert our_object is None
        else:
            assert_same_object(our_object, their_object)


@pytest.mark.parametrize("returned", [None, "pod", ["a"], {"spec": {}}])
def test_what_a_hook_returns_must_be_an_object_with_metadata(returned: Any) -> None:
    with pytest.raises(ValueError, match="modify_pod_hook must return a Kubernetes object"):
        request_body(returned, "modify_pod_hook")


def test_a_hook_may_return_the_v1pod_or_its_dict() -> None:
    pod = objects.make_pod(**BASE)
    assert request_body(pod, "modify_pod_hook") == api_json(pod)
    assert request_body(api_json(pod), "modify_pod_hook") == api_json(pod)
