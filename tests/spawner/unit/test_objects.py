"""spawner.objects alone: same API JSON as kubespawner.objects for the same arguments."""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest
from kubespawner import objects as reference

from spawner import objects
from tests.spawner.unit.golden import api_json

BASE: dict[str, Any] = {
    "name": "jupyter-alice",
    "cmd": ["jupyterhub-singleuser"],
    "port": 8888,
    "image": "jupyter/base:1",
    "image_pull_policy": "IfNotPresent",
    # seed 003's default (True) differs from KubeSpawner 7.1's (False): always pass it
    "allow_privilege_escalation": False,
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
    ours = objects.make_pod(**copy.deepcopy(kwargs))
    assert ours == api_json(reference.make_pod(**copy.deepcopy(kwargs)))


def test_make_pod_does_not_mutate_its_arguments() -> None:
    kwargs = {**BASE, **CASES["everything"]}
    before = copy.deepcopy(kwargs)
    objects.make_pod(**kwargs)
    assert kwargs == before


def test_overrides_are_logged_with_what_they_replace(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test")
    with caplog.at_level(logging.INFO):
        objects.make_pod(**BASE, extra_container_config={"image": "x"}, logger=log)
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
        objects.make_pod(**BASE, **kwargs)


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
    assert objects.make_pvc(*args, labels=labels, annotations=annotations) == api_json(
        reference.make_pvc(*args, labels=labels, annotations=annotations)
    )


def test_owner_reference_and_service_equal_kubespawners() -> None:
    owner = objects.make_owner_reference("jupyter-alice", "uid-1")
    assert owner == api_json(reference.make_owner_reference("jupyter-alice", "uid-1"))
    ours = objects.make_service("jupyter-alice", 8888, {"s": "1"}, [owner], {"l": "1"}, {"a": "1"})
    theirs = reference.make_service(
        "jupyter-alice",
        8888,
        {"s": "1"},
        [reference.make_owner_reference("jupyter-alice", "uid-1")],
        {"l": "1"},
        {"a": "1"},
    )
    assert ours == api_json(theirs)


def test_namespace_equals_kubespawners() -> None:
    assert objects.make_namespace("user-alice", {"l": "1"}, None) == api_json(
        reference.make_namespace("user-alice", {"l": "1"}, None)
    )


def test_secret_holds_base64_certificates_and_the_joined_ca_bundle() -> None:
    secret = objects.make_secret(
        "s", "alice", "K", "C", objects.join_ca_bundle("NB\n\n", "HUB\n"), [], {"l": "1"}
    )
    assert secret["data"] == {
        "ssl.key": "Sw==",
        "ssl.crt": "Qw==",
        "notebooks-ca_trust.crt": "TkIKSFVCCg==",
    }
    assert secret["metadata"]["ownerReferences"] == []
