"""Golden rule: for the same configuration our manifests equal KubeSpawner 7.1's API JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.spawner.unit.golden import (
    api_json,
    assert_same_object,
    make_pair,
    names,
    owner_references,
)

pytestmark = [
    pytest.mark.usefixtures("reference_kubespawner"),
    pytest.mark.filterwarnings("ignore:Passing KubeSpawner.image_pull_secrets:DeprecationWarning"),
]


async def _uid(spawner: Any) -> int:
    return 1000 + len(spawner.user.name)


CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "storage": {
        "storage_pvc_ensure": True,
        "storage_capacity": "10Gi",
        "storage_class": "fast-ssd",
        "storage_access_modes": ["ReadWriteMany"],
        "storage_extra_labels": {"team": "{username}"},
        "storage_extra_annotations": {"owner": "{unescaped_username}"},
        "storage_selector": {"matchLabels": {"user": "{username}"}},
        "volumes": [
            {"name": "home", "persistentVolumeClaim": {"claimName": "{pvc_name}"}},
            {"name": "shm", "empty_dir": {"medium": "Memory"}},
        ],
        "volume_mounts": [
            {"name": "home", "mountPath": "/home/jovyan", "sub_path": "{username}"},
            {"name": "shm", "mount_path": "/dev/shm"},
        ],
    },
    "volumes as dicts in key order": {
        "volumes": {"b": {"name": "b", "emptyDir": {}}, "a": {"name": "a", "emptyDir": {}}},
        "volume_mounts": {
            "2": {"name": "b", "mountPath": "/b"},
            "1": {"name": "a", "mountPath": "/a"},
        },
    },
    "resources": {
        "cpu_limit": 2.5,
        "cpu_guarantee": 0.5,
        "mem_limit": "4G",
        "mem_guarantee": "1G",
        "extra_resource_limits": {"nvidia.com/gpu": "1"},
        "extra_resource_guarantees": {"nvidia.com/gpu": "1", "ephemeral-storage": "1Gi"},
    },
    "security contexts": {
        "uid": 1000,
        "gid": 100,
        "fs_gid": 100,
        "supplemental_gids": [100, 200],
        "privileged": True,
        "allow_privilege_escalation": None,
        "container_security_context": {"readOnlyRootFilesystem": True, "runAsUser": 1001},
        "pod_security_context": {"seccompProfile": {"type": "RuntimeDefault"}},
    },
    "security contexts from callables": {
        "uid": _uid,
        "gid": lambda spawner: 100,
        "fs_gid": lambda spawner: 101,
        "supplemental_gids": lambda spawner: [5, 6],
        "container_security_context": lambda spawner: {"runAsNonRoot": True},
        "pod_security_context": lambda spawner: {"fsGroupChangePolicy": "OnRootMismatch"},
    },
    "environment incl. callables and references": {
        "environment": {
            "GREETING": "hello {username}",
            "COMPOSED": "$(GREETING) and $(BASE)",
            "BASE": "/srv/{servername}",
            "FROM_CALLABLE": lambda spawner: f"for {spawner.user.name}",
            "SECRET": {"valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            "SNAKE": {"value_from": {"fieldRef": {"fieldPath": "status.podIP"}}},
            "JSONISH": '{{"keep": "braces"}}',
        },
    },
    "init and extra containers": {
        "init_containers": [
            {
                "name": "init-{username}",
                "image": "busybox",
                "command": ["sh", "-c", "true"],
                "security_context": {"runAsUser": 0},
            },
        ],
        "extra_containers": [
            {"name": "sidecar", "image": "nginx:{username}", "ports": [{"containerPort": 80}]},
        ],
        "extra_container_config": {
            "stdin": True,
            "terminationMessagePolicy": "FallbackToLogsOnError",
            "resources": {"limits": {"cpu": "9"}},
        },
        "extra_pod_config": {
            "dnsPolicy": "None",
            "host_ipc": False,
            "dns_config": {"nameservers": ["1.1.1.1"]},
        },
    },
    "scheduling": {
        "node_selector": {"disktype": "ssd"},
        "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "node_affinity_required": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}
        ],
        "node_affinity_preferred": [
            {
                "weight": 1,
                "preference": {
                    "matchExpressions": [{"key": "t", "operator": "In", "values": ["x"]}]
                },
            }
        ],
        "pod_affinity_required": [
            {"labelSelector": {"matchLabels": {"a": "b"}}, "topologyKey": "kubernetes.io/hostname"}
        ],
        "pod_affinity_preferred": [{"weight": 5, "podAffinityTerm": {"topologyKey": "zone"}}],
        "pod_anti_affinity_required": [{"topology_key": "kubernetes.io/hostname"}],
        "pod_anti_affinity_preferred": [{"weight": 2, "pod_affinity_term": {"topologyKey": "z"}}],
        "scheduler_name": "my-scheduler",
        "priority_class_name": "users",
    },
    "tolerations as dict": {
        "tolerations": {
            "z": {"key": "z", "operator": "Exists"},
            "a": {"key": "a", "operator": "Exists"},
        },
    },
    "lifecycle hooks": {
        "lifecycle_hooks": {
            "postStart": {"exec": {"command": ["sh", "-c", "echo hi"]}},
            "pre_stop": {"exec": {"command": ["sh", "-c", "sleep 1"]}},
        },
    },
    "image pull secrets as list": {
        "image_pull_secrets": ["regcred", {"name": "other"}],
        "image": "registry.example.org/nb:1.2",
        "image_pull_policy": "Always",
    },
    "image pull secret as string": {"image_pull_secrets": "legacy-regcred"},
    "command, args, working dir, service account": {
        "cmd": ["jupyterhub-singleuser"],
        "args": ["--debug"],
        "working_dir": "/home/{username}",
        "service_account": "sa-{username}",
        "automount_service_account_token": True,
        "port": 9999,
    },
    "labels and annotations": {
        "extra_labels": {"user": "{username}", "raw": "{unescaped_username}"},
        "extra_annotations": {"note": "{userid} {servername}"},
        "common_labels": {"app": "custom", "heritage": "me"},
        "component_label": "notebook",
    },
    "escape slug scheme": {"slug_scheme": "escape"},
    "custom name templates": {
        "pod_name_template": "nb-{username}-{servername}",
        "pvc_name_template": "home-{username}",
        "dns_name_template": "{name}.{namespace}",
        "secret_name_template": "certs-{pod_name}",
        "namespace": "hub-ns",
    },
    "user namespaces": {
        "enable_user_namespaces": True,
        "user_namespace_template": "{hubnamespace}-{username}",
        "user_namespace_labels": {"owner": "{username}"},
        "user_namespace_annotations": {"raw": "{unescaped_username}"},
    },
    "services enabled": {"services_enabled": True, "extra_labels": {"x": "y"}},
}

USERS = ["mock@name", "alice", "User.Name+1", "very-long-" + "n" * 70, "0digit"]


@pytest.mark.parametrize("case", list(CONFIGURATIONS))
@pytest.mark.parametrize("server_name", ["", "My Server"])
async def test_pod_and_pvc_manifests_equal_kubespawner(case: str, server_name: str) -> None:
    pair = make_pair(CONFIGURATIONS[case], server_name=server_name)
    assert names(pair.ours) == names(pair.reference)
    reference_pod = await pair.reference.get_pod_manifest()
    assert await pair.ours.pod_request_body() == api_json(reference_pod)
    assert_same_object(await pair.ours.get_pod_manifest(), reference_pod)
    reference_pvc = pair.reference.get_pvc_manifest()
    assert pair.ours.pvc_request_body() == api_json(reference_pvc)
    assert_same_object(pair.ours.get_pvc_manifest(), reference_pvc)


@pytest.mark.parametrize("username", USERS)
@pytest.mark.parametrize("scheme", ["safe", "escape"])
@pytest.mark.parametrize("server_name", ["", "gpu", "Odd Name!", "s" * 60])
async def test_names_equal_kubespawner_for_odd_users(
    username: str, scheme: str, server_name: str
) -> None:
    pair = make_pair({"slug_scheme": scheme}, username=username, server_name=server_name)
    assert names(pair.ours) == names(pair.reference)
    ours, reference = await pair.ours.pod_request_body(), await pair.reference.get_pod_manifest()
    assert ours["metadata"] == api_json(reference)["metadata"]


@pytest.mark.parametrize("case", ["defaults", "services enabled", "labels and annotations"])
async def test_service_manifest_equals_kubespawner(case: str) -> None:
    pair = make_pair(CONFIGURATIONS[case], server_name="srv")
    reference_owner, owner = owner_references()
    reference = pair.reference.get_service_manifest(reference_owner, 8888)
    assert pair.ours.service_request_body(owner, 8888) == api_json(reference)
    assert_same_object(pair.ours.get_service_manifest(reference_owner, 8888), reference)
    assert api_json(pair.ours.get_service_manifest(owner)) == api_json(reference)


async def test_user_namespace_manifest_equals_kubespawner() -> None:
    from kubespawner.objects import make_namespace

    pair = make_pair(CONFIGURATIONS["user namespaces"])
    reference = make_namespace(
        pair.reference.namespace,
        labels=pair.reference._expand_all(pair.reference.user_namespace_labels),
        annotations=pair.reference._expand_all(pair.reference.user_namespace_annotations),
    )
    assert pair.ours.get_namespace_manifest() == api_json(reference)
    assert pair.ours.namespace == "user-mock-name---6241db84"


async def test_internal_ssl_secret_pod_and_names_equal_kubespawner(tmp_path: Path) -> None:
    files = {}
    for key, text in {
        "keyfile": "KEY\n",
        "certfile": "CERT\n",
        "cafile": "NB-CA\n\n",
        "hub": "HUB-CA\n",
    }.items():
        path = tmp_path / key
        path.write_text(text)
        files[key] = str(path)
    cert_paths = {k: files[k] for k in ("keyfile", "certfile", "cafile")}
    pair = make_pair(
        {"extra_labels": {"l": "{username}"}},
        server_name="tls",
        internal_ssl=True,
        cert_paths=cert_paths,
        internal_trust_bundles={"hub-ca": files["hub"]},
    )
    reference_owner, owner = owner_references()
    reference_secret = pair.reference.get_secret_manifest(reference_owner)
    assert pair.ours.secret_request_body(owner) == api_json(reference_secret)
    assert_same_object(pair.ours.get_secret_manifest(reference_owner), reference_secret)
    for odd_owner in (None, "not-a-reference", owner):
        assert api_json(pair.ours.get_secret_manifest(odd_owner)) == api_json(
            pair.reference.get_secret_manifest(odd_owner)
        )
    assert await pair.ours.pod_request_body() == api_json(await pair.reference.get_pod_manifest())
    assert pair.ours.ssl_alt_names == pair.reference.ssl_alt_names


@pytest.mark.parametrize(
    "user_options",
    [
        {},
        {"profile": "gpu"},
        {"profile": "gpu", "image": "new"},
        {"profile": "gpu", "image--unlisted-choice": "jupyter/scipy:2024"},
    ],
)
async def test_profile_overrides_give_kubespawners_manifest(user_options: dict[str, Any]) -> None:
    profile_list = [
        {"display_name": "Small", "kubespawner_override": {"cpu_limit": 1}},
        {
            "display_name": "GPU",
            "slug": "gpu",
            "kubespawner_override": {
                "extra_resource_limits": {"nvidia.com/gpu": "1"},
                "environment": {"FROM_PROFILE": "1", "DROPPED": None},
                "mem_limit": lambda spawner: "8G",
            },
            "profile_options": {
                "image": {
                    "display_name": "Image",
                    "choices": {
                        "old": {"display_name": "Old", "kubespawner_override": {"image": "old:1"}},
                        "new": {"display_name": "New", "kubespawner_override": {"image": "new:2"}},
                    },
                    "unlisted_choice": {
                        "enabled": True,
                        "validation_regex": "^jupyter/.+:.+$",
                        "kubespawner_override": {
                            "image": "{value}",
                            "extra_labels": {"tag": "{value}x"},
                        },
                    },
                }
            },
        },
    ]
    config = {"profile_list": profile_list, "environment": {"DROPPED": "x", "KEPT": "y"}}
    pair = make_pair(config, user_options=user_options)
    await pair.reference.load_user_options()
    await pair.ours.load_user_options()
    reference = await pair.reference.get_pod_manifest()
    assert await pair.ours.pod_request_body() == api_json(reference)
    assert_same_object(await pair.ours.get_pod_manifest(), reference)
