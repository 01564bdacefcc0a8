"""zero-to-jupyterhub's hub configuration gives the pods, PVCs and names KubeSpawner 7.1 gives.

z2jh 4.x's ``jupyterhub_config.py`` turns the chart's values into ``c.KubeSpawner`` settings
(and ``c.Spawner.cmd``/``default_url``). :func:`hub_config` below applies the same rules to a
values dict (written for this test from the chart's documented behaviour, not copied): common
labels, the iptables init container as a ``kubernetes_asyncio`` ``V1Container`` (the chart's
default ``singleuser.cloudMetadata.blockWithIptables: true``), user tolerations and
node-purpose affinity, the user scheduler and priority class names, dynamic / static / no
storage, ``extraFiles`` as a secret volume with one mount per file, ``extraVolumes``, image pull
secrets and ``profileList``. The same Config then configures KubeSpawner 7.1 and ours.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import pytest
from kubernetes_asyncio.client import models as k8s
from traitlets.config import Config

from tests.spawner.unit.golden import (
    FakeHub,
    FakeOrmSpawner,
    FakeUser,
    ReferenceSpawner,
    api_json,
    names,
)

pytestmark = pytest.mark.usefixtures("reference_kubespawner")

RELEASE = "jhub"

#: The chart's default values, as far as the hub config reads them for user servers.
CHART_DEFAULTS: dict[str, Any] = {
    "Chart": {"Name": "jupyterhub", "Version": "4.2.0"},
    "Release": {"Name": RELEASE},
    "imagePullSecret": {"create": False, "automaticReferenceInjection": True},
    "imagePullSecrets": [],
    "scheduling": {
        "userScheduler": {"enabled": True},
        "podPriority": {"enabled": False},
        "userPods": {
            "tolerations": [
                {
                    "key": "hub.jupyter.org/dedicated",
                    "operator": "Equal",
                    "value": "user",
                    "effect": "NoSchedule",
                },
                {
                    "key": "hub.jupyter.org_dedicated",
                    "operator": "Equal",
                    "value": "user",
                    "effect": "NoSchedule",
                },
            ],
            "nodeAffinity": {"matchNodePurpose": "prefer"},
        },
    },
    "singleuser": {
        "podNameTemplate": None,
        "extraTolerations": [],
        "nodeSelector": {},
        "extraNodeAffinity": {"required": [], "preferred": []},
        "extraPodAffinity": {"required": [], "preferred": []},
        "extraPodAntiAffinity": {"required": [], "preferred": []},
        "cloudMetadata": {"blockWithIptables": True, "ip": "169.254.169.254"},
        "networkTools": {
            "image": {"name": "quay.io/jupyterhub/k8s-network-tools", "tag": "4.2.0"},
            "resources": {},
        },
        "events": True,
        "extraAnnotations": {},
        "extraLabels": {"hub.jupyter.org/network-access-hub": "true"},
        "extraEnv": {},
        "lifecycleHooks": {},
        "initContainers": [],
        "extraContainers": [],
        "allowPrivilegeEscalation": False,
        "uid": 1000,
        "fsGid": 100,
        "serviceAccountName": None,
        "storage": {
            "type": "dynamic",
            "extraLabels": {},
            "extraVolumes": [],
            "extraVolumeMounts": [],
            "static": {"pvcName": None, "subPath": "{username}"},
            "capacity": "10Gi",
            "homeMountPath": "/home/jovyan",
            "dynamic": {
                "storageClass": None,
                "pvcNameTemplate": None,
                "volumeNameTemplate": "volume-{user_server}",
                "storageAccessModes": ["ReadWriteOnce"],
            },
        },
        "image": {
            "name": "quay.io/jupyterhub/k8s-singleuser-sample",
            "tag": "4.2.0",
            "pullPolicy": None,
            "pullSecrets": [],
        },
        "startTimeout": 300,
        "cpu": {"limit": None, "guarantee": None},
        "memory": {"limit": None, "guarantee": "1G"},
        "extraResource": {"limits": {}, "guarantees": {}},
        "cmd": "jupyterhub-singleuser",
        "defaultUrl": None,
        "extraPodConfig": {},
        "profileList": [],
        "extraFiles": {},
    },
}


def _get(values: Mapping[str, Any], dotted: str) -> Any:
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return copy.deepcopy(node)


#: (KubeSpawner trait, values key under singleuser.) set when the value is not None
_DIRECT = [
    ("pod_name_template", "podNameTemplate"),
    ("start_timeout", "startTimeout"),
    ("image_pull_policy", "image.pullPolicy"),
    ("events_enabled", "events"),
    ("extra_labels", "extraLabels"),
    ("extra_annotations", "extraAnnotations"),
    ("uid", "uid"),
    ("fs_gid", "fsGid"),
    ("service_account", "serviceAccountName"),
    ("storage_extra_labels", "storage.extraLabels"),
    ("node_selector", "nodeSelector"),
    ("node_affinity_required", "extraNodeAffinity.required"),
    ("node_affinity_preferred", "extraNodeAffinity.preferred"),
    ("pod_affinity_required", "extraPodAffinity.required"),
    ("pod_affinity_preferred", "extraPodAffinity.preferred"),
    ("pod_anti_affinity_required", "extraPodAntiAffinity.required"),
    ("pod_anti_affinity_preferred", "extraPodAntiAffinity.preferred"),
    ("lifecycle_hooks", "lifecycleHooks"),
    ("init_containers", "initContainers"),
    ("extra_containers", "extraContainers"),
    ("mem_limit", "memory.limit"),
    ("mem_guarantee", "memory.guarantee"),
    ("cpu_limit", "cpu.limit"),
    ("cpu_guarantee", "cpu.guarantee"),
    ("extra_resource_limits", "extraResource.limits"),
    ("extra_resource_guarantees", "extraResource.guarantees"),
    ("environment", "extraEnv"),
    ("profile_list", "profileList"),
    ("extra_pod_config", "extraPodConfig"),
]


def hub_config(values: Mapping[str, Any]) -> Config:
    """``c`` as z2jh 4.x's hub config leaves it for the spawner, for these chart values."""
    c = Config()
    ks = c.KubeSpawner
    # 4.x: the chart's recommended labels, each beside its legacy twin, managed by kubespawner
    app = _get(values, "nameOverride") or _get(values, "Chart.Name") or "jupyterhub"
    labels = {"app.kubernetes.io/name": app, "app": app}
    if _get(values, "Release.Name"):
        labels["app.kubernetes.io/instance"] = labels["release"] = _get(values, "Release.Name")
    name, version = _get(values, "Chart.Name"), _get(values, "Chart.Version")
    if name and version:
        labels["helm.sh/chart"] = labels["chart"] = f"{name}-{version.replace('+', '_')}"
    labels["app.kubernetes.io/managed-by"] = "kubespawner"
    ks.common_labels = labels
    ks.namespace = "jhub"  # $POD_NAMESPACE
    for trait, key in _DIRECT:
        value = _get(values, "singleuser." + key)
        if value is not None:
            setattr(ks, trait, value)
    image = _get(values, "singleuser.image.name")
    if image:
        tag = _get(values, "singleuser.image.tag")
        ks.image = f"{image}:{tag}" if tag else image
    ks.allow_privilege_escalation = _get(values, "singleuser.allowPrivilegeEscalation")

    pull_secrets: list[Any] = []
    if _get(values, "imagePullSecret.automaticReferenceInjection") and _get(
        values, "imagePullSecret.create"
    ):
        pull_secrets.append("image-pull-secret")
    pull_secrets += _get(values, "imagePullSecrets") or []
    pull_secrets += _get(values, "singleuser.image.pullSecrets") or []
    if pull_secrets:
        ks.image_pull_secrets = pull_secrets

    if _get(values, "scheduling.userScheduler.enabled"):
        ks.scheduler_name = f"{RELEASE}-user-scheduler"
    if _get(values, "scheduling.podPriority.enabled"):
        ks.priority_class_name = f"{RELEASE}-default-priority"
    purpose = _get(values, "scheduling.userPods.nodeAffinity.matchNodePurpose")
    term = {
        "matchExpressions": [
            {"key": "hub.jupyter.org/node-purpose", "operator": "In", "values": ["user"]}
        ]
    }
    if purpose == "prefer":
        ks.node_affinity_preferred = [
            *(ks.get("node_affinity_preferred") or []),
            {"weight": 100, "preference": term},
        ]
    elif purpose == "require":
        ks.node_affinity_required = [*(ks.get("node_affinity_required") or []), term]
    tolerations = (_get(values, "scheduling.userPods.tolerations") or []) + (
        _get(values, "singleuser.extraTolerations") or []
    )
    if tolerations:
        ks.tolerations = tolerations

    volumes: list[Any] = []
    mounts: list[Any] = []
    storage = _get(values, "singleuser.storage") or {}
    home = storage.get("homeMountPath")
    if storage.get("type") == "dynamic":
        dynamic = storage["dynamic"]
        if dynamic.get("pvcNameTemplate"):
            ks.pvc_name_template = dynamic["pvcNameTemplate"]
        ks.storage_pvc_ensure = True
        for trait, key in (
            ("storage_class", "storageClass"),
            ("storage_access_modes", "storageAccessModes"),
        ):
            if dynamic.get(key) is not None:
                setattr(ks, trait, dynamic[key])
        if storage.get("capacity") is not None:
            ks.storage_capacity = storage["capacity"]
        volume = dynamic["volumeNameTemplate"]
        volumes.append({"name": volume, "persistentVolumeClaim": {"claimName": "{pvc_name}"}})
        mounts.append({"mountPath": home, "name": volume})
    elif storage.get("type") == "static":
        static = storage["static"]
        volumes.append({"name": "home", "persistentVolumeClaim": {"claimName": static["pvcName"]}})
        mounts.append({"mountPath": home, "name": "home", "subPath": static["subPath"]})
    files = _get(values, "singleuser.extraFiles") or {}
    if files:
        items = []
        for key, details in files.items():
            item = {"key": key, "path": key}
            if "mode" in details:
                item["mode"] = details["mode"]
            items.append(item)
        volumes.append({"name": "files", "secret": {"secretName": "singleuser", "items": items}})
        mounts += [
            {"mountPath": details["mountPath"], "subPath": key, "name": "files"}
            for key, details in files.items()
        ]
    volumes += storage.get("extraVolumes") or []
    mounts += storage.get("extraVolumeMounts") or []
    ks.volumes = volumes
    ks.volume_mounts = mounts

    c.Spawner.cmd = _get(values, "singleuser.cmd")
    if _get(values, "singleuser.defaultUrl") is not None:
        c.Spawner.default_url = _get(values, "singleuser.defaultUrl")

    metadata = _get(values, "singleuser.cloudMetadata") or {}
    if metadata.get("blockWithIptables") is True:
        tools = _get(values, "singleuser.networkTools") or {}
        block = k8s.V1Container(
            name="block-cloud-metadata",
            image=f"{tools['image']['name']}:{tools['image']['tag']}",
            command=["iptables", "-A", "OUTPUT", "-d", metadata.get("ip"), "-j", "DROP"],
            security_context=k8s.V1SecurityContext(
                privileged=True,
                run_as_user=0,
                capabilities=k8s.V1Capabilities(add=["NET_ADMIN"]),
            ),
            resources=tools.get("resources"),
        )
        ks.init_containers = [*(ks.get("init_containers") or []), block]
    return c


def merged(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's merge of a user's values over the defaults (dicts merge, the rest replaces)."""
    result = copy.deepcopy(dict(base))
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


PROFILES = [
    {"display_name": "Default", "description": "1 CPU", "default": True},
    {
        "display_name": "GPU",
        "slug": "gpu",
        "kubespawner_override": {
            "image": "quay.io/jupyter/pytorch-notebook:cuda12-latest",
            "extra_resource_limits": {"nvidia.com/gpu": "1"},
            "node_selector": {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"},
            "tolerations": [
                {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
            ],
        },
    },
]

VARIANTS: dict[str, dict[str, Any]] = {
    "chart defaults": {},
    "legacy pvc template, require node purpose, priority, no iptables": {
        "scheduling": {
            "userScheduler": {"enabled": False},
            "podPriority": {"enabled": True},
            "userPods": {"nodeAffinity": {"matchNodePurpose": "require"}},
        },
        "singleuser": {
            "cloudMetadata": {"blockWithIptables": False},
            "storage": {
                "dynamic": {
                    "pvcNameTemplate": "claim-{username}{servername}",
                    "volumeNameTemplate": "volume-{username}{servername}",
                    "storageClass": "fast",
                }
            },
        },
    },
    "static storage, extra files and volumes, pull secrets": {
        "imagePullSecret": {"create": True},
        "imagePullSecrets": ["registry-a"],
        "singleuser": {
            "image": {"pullPolicy": "Always", "pullSecrets": [{"name": "registry-b"}]},
            "storage": {
                "type": "static",
                "static": {"pvcName": "shared-home", "subPath": "home/{username}"},
                "extraVolumes": [{"name": "shm", "emptyDir": {"medium": "Memory"}}],
                "extraVolumeMounts": [{"name": "shm", "mountPath": "/dev/shm"}],
            },
            "extraFiles": {
                "jupyter_server_config.json": {"mountPath": "/etc/jupyter/config.json"},
                "startup.sh": {"mountPath": "/usr/local/bin/startup.sh", "mode": 0o755},
            },
            "extraEnv": {"GREETING": "hello {username}"},
            "networkTools": {"resources": {"limits": {"cpu": "100m"}}},
        },
    },
    "no storage, resources, affinities, lifecycle, sidecar": {
        "singleuser": {
            "storage": {"type": "none"},
            "cpu": {"limit": 2, "guarantee": 0.5},
            "memory": {"limit": "4G"},
            "extraTolerations": [{"key": "spot", "operator": "Exists"}],
            "extraPodAntiAffinity": {
                "preferred": [
                    {"weight": 10, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname"}}
                ]
            },
            "lifecycleHooks": {"postStart": {"exec": {"command": ["sh", "-c", "true"]}}},
            "extraContainers": [{"name": "sidecar", "image": "busybox", "args": ["sleep", "1d"]}],
            "extraPodConfig": {"dnsPolicy": "ClusterFirst"},
            "serviceAccountName": "notebooks",
            "defaultUrl": "/lab",
        },
    },
    "profile list": {"singleuser": {"profileList": PROFILES}},
}

USERS = [("alice", ""), ("Jane.Doe@example.org", "gpu box")]


def spawners(config: Config, username: str, server: str, user_options: dict[str, Any]) -> Any:
    from kubecache.spawner.spawner import KubeCacheSpawner

    made = []
    for cls in (ReferenceSpawner, KubeCacheSpawner):
        kwargs: dict[str, Any] = {"_mock": True} if cls is ReferenceSpawner else {}
        spawner = cls(
            user=FakeUser(username),
            hub=FakeHub(),
            orm_spawner=FakeOrmSpawner(server),
            config=copy.deepcopy(config),
            **kwargs,
        )
        spawner.user_options = dict(user_options)
        made.append(spawner)
    return made


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize(("username", "server"), USERS)
async def test_z2jh_hub_config_gives_kubespawners_pods_pvcs_and_names(
    variant: str, username: str, server: str
) -> None:
    config = hub_config(merged(CHART_DEFAULTS, VARIANTS[variant]))
    options = [{}, {"profile": "gpu"}] if variant == "profile list" else [{}]
    for user_options in options:
        reference, ours = spawners(config, username, server, user_options)
        await reference.load_user_options()
        await ours.load_user_options()
        assert names(ours) == names(reference)
        reference_pod = await reference.get_pod_manifest()
        assert await ours.pod_request_body() == api_json(reference_pod)
        pod = await ours.get_pod_manifest()
        assert isinstance(pod, k8s.V1Pod)
        assert api_json(pod) == api_json(reference_pod)
        reference_pvc = reference.get_pvc_manifest()
        assert ours.pvc_request_body() == api_json(reference_pvc)
        assert api_json(ours.get_pvc_manifest()) == api_json(reference_pvc)
        assert ours.storage_pvc_ensure == reference.storage_pvc_ensure


async def test_the_chart_defaults_need_the_client_model_init_container_and_keep_it() -> None:
    config = hub_config(CHART_DEFAULTS)
    assert isinstance(config.KubeSpawner.init_containers[0], k8s.V1Container)
    _, ours = spawners(config, "alice", "", {})
    pod = await ours.pod_request_body()
    assert pod["spec"]["initContainers"][0]["name"] == "block-cloud-metadata"
    assert pod["spec"]["initContainers"][0]["securityContext"]["capabilities"] == {
        "add": ["NET_ADMIN"]
    }
    assert pod["spec"]["schedulerName"] == f"{RELEASE}-user-scheduler"
    assert pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == "claim-alice"
    assert pod["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kubespawner"
    assert pod["metadata"]["labels"]["release"] == RELEASE
