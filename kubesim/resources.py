"""The resources kubesim serves: names, kinds, scope, verbs, and the defaults the API server fills.

Pure: a registry (``RESOURCES``) keyed by the plural lowercase name and the defaulting that
kube-apiserver's registry strategies and admission apply on create. No I/O.
"""

from __future__ import annotations

import copy
import secrets
from dataclasses import dataclass
from typing import Any

__all__ = [
    "RESOURCES",
    "ResourceInfo",
    "add_default_tolerations",
    "apply_create_defaults",
    "by_group_version",
    "prepare_update",
]

_ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceInfo:
    """One API resource as discovery describes it."""

    plural: str
    singular: str
    kind: str
    group: str = ""
    version: str = "v1"
    namespaced: bool = True
    has_status: bool = False  # a /status subresource; main-resource writes keep the old status
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = _ALL_VERBS

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


RESOURCES: dict[str, ResourceInfo] = {
    info.plural: info
    for info in (
        ResourceInfo("pods", "pod", "Pod", has_status=True, short_names=("po",)),
        ResourceInfo("events", "event", "Event", short_names=("ev",)),
        ResourceInfo(
            "persistentvolumeclaims",
            "persistentvolumeclaim",
            "PersistentVolumeClaim",
            has_status=True,
            short_names=("pvc",),
        ),
        ResourceInfo("services", "service", "Service", has_status=True, short_names=("svc",)),
        ResourceInfo("secrets", "secret", "Secret"),
        ResourceInfo("configmaps", "configmap", "ConfigMap", short_names=("cm",)),
        ResourceInfo("serviceaccounts", "serviceaccount", "ServiceAccount", short_names=("sa",)),
        ResourceInfo(
            "namespaces",
            "namespace",
            "Namespace",
            namespaced=False,
            has_status=True,
            short_names=("ns",),
            verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
        ),
        ResourceInfo(
            "nodes", "node", "Node", namespaced=False, has_status=True, short_names=("no",)
        ),
        ResourceInfo("leases", "lease", "Lease", group="coordination.k8s.io"),
    )
}


def by_group_version(group: str, version: str) -> list[ResourceInfo]:
    """The resources served under one group/version, in registry order."""
    return [r for r in RESOURCES.values() if r.group == group and r.version == version]


# --- defaulting --------------------------------------------------------------------------------

_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery's SimpleNameGenerator alphabet


def generated_name(prefix: str) -> str:
    """``generateName`` + 5 random characters, as the API server's name generator does."""
    return prefix + "".join(secrets.choice(_GENERATE_ALPHABET) for _ in range(5))


def _default_container(container: dict[str, Any]) -> None:
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("resources", {})
    image = str(container.get("image", ""))
    tag = image.rsplit("/", 1)[-1]
    latest = "@" not in tag and (":" not in tag or tag.endswith(":latest"))
    container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
    for port in container.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
    for env in container.get("env") or []:
        if isinstance(env, dict):
            _default_field_ref(env.get("valueFrom"))


DEFAULT_FILE_MODE = 0o644  # 420: defaultMode of secret, configMap, downwardAPI, projected volumes


def _default_field_ref(holder: Any) -> None:
    ref = holder.get("fieldRef") if isinstance(holder, dict) else None
    if isinstance(ref, dict):
        ref.setdefault("apiVersion", "v1")


def _default_downward_items(source: Any) -> None:
    if isinstance(source, dict):
        for item in source.get("items") or []:
            _default_field_ref(item)


def _default_volume(volume: dict[str, Any]) -> None:
    for kind in ("secret", "configMap", "downwardAPI", "projected"):
        source = volume.get(kind)
        if isinstance(source, dict):
            source.setdefault("defaultMode", DEFAULT_FILE_MODE)
    _default_downward_items(volume.get("downwardAPI"))
    host_path = volume.get("hostPath")
    if isinstance(host_path, dict):
        host_path.setdefault("type", "")
    projected = volume.get("projected")
    for source in (projected.get("sources") or []) if isinstance(projected, dict) else []:
        if not isinstance(source, dict):
            continue
        token = source.get("serviceAccountToken")
        if isinstance(token, dict):
            token.setdefault("expirationSeconds", 3600)
        _default_downward_items(source.get("downwardAPI"))


def _qos_class(spec: dict[str, Any]) -> str:
    containers = [c for c in spec.get("containers") or [] if isinstance(c, dict)]
    requests_any = False
    guaranteed = bool(containers)
    for container in containers:
        resources = container.get("resources") or {}
        limits = resources.get("limits") or {}
        requests = resources.get("requests") or limits
        if requests or limits:
            requests_any = True
        if not ("cpu" in limits and "memory" in limits and requests == limits):
            guaranteed = False
    if guaranteed:
        return "Guaranteed"
    return "Burstable" if requests_any else "BestEffort"


#: The DefaultTolerationSeconds admission plugin's tolerations, in the order it appends them
#: (plugin/pkg/admission/defaulttolerationseconds/admission.go; 300 s is the default of
#: --default-not-ready-toleration-seconds and --default-unreachable-toleration-seconds).
DEFAULT_TOLERATIONS = (
    {
        "key": "node.kubernetes.io/not-ready",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 300,
    },
    {
        "key": "node.kubernetes.io/unreachable",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 300,
    },
)


def add_default_tolerations(spec: dict[str, Any]) -> None:
    """The DefaultTolerationSeconds admission plugin (on by default), in place.

    Appends the not-ready and unreachable NoExecute tolerations unless the pod already
    tolerates that taint: a toleration whose key is the taint's or empty, and whose effect
    is NoExecute or empty, counts (as in the plugin's Admit; the operator is not looked at).
    """
    tolerations = spec.get("tolerations")
    if tolerations is not None and not isinstance(tolerations, list):
        return  # not decodable: validation answers it
    present = [t for t in tolerations or [] if isinstance(t, dict)]
    added = []
    for default in DEFAULT_TOLERATIONS:
        if not any(
            (t.get("key") or "") in ("", default["key"])
            and (t.get("effect") or "") in ("", "NoExecute")
            for t in present
        ):
            added.append(dict(default))
    if added:
        spec["tolerations"] = [*(tolerations or []), *added]


def _default_pod(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    spec.setdefault("priority", 0)
    # The ServiceAccount admission plugin.
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    add_default_tolerations(spec)
    for key in ("containers", "initContainers"):
        for container in spec.get(key) or []:
            if isinstance(container, dict):
                _default_container(container)
    for volume in spec.get("volumes") or []:
        if isinstance(volume, dict):
            _default_volume(volume)
    # Users cannot set the status of a new pod.
    obj["status"] = {"phase": "Pending", "qosClass": _qos_class(spec)}


def _cluster_ip() -> str:
    return f"10.96.{secrets.randbelow(254) + 1}.{secrets.randbelow(254) + 1}"


def _default_service(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec.get("clusterIP") != "None":
        spec.setdefault("clusterIP", _cluster_ip())
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    spec.setdefault("internalTrafficPolicy", "Cluster")
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
    obj["status"] = {"loadBalancer": {}}


def _default_secret(obj: dict[str, Any]) -> None:
    import base64

    obj.setdefault("type", "Opaque")
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict):
        data = obj.setdefault("data", {}) or {}
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        obj["data"] = data


def _default_pvc(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("volumeMode", "Filesystem")
    obj["status"] = {"phase": "Pending"}


def _default_namespace(obj: dict[str, Any]) -> None:
    name = obj["metadata"]["name"]
    obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    obj["status"] = {"phase": "Active"}


_DEFAULTERS = {
    "pods": _default_pod,
    "services": _default_service,
    "secrets": _default_secret,
    "persistentvolumeclaims": _default_pvc,
    "namespaces": _default_namespace,
}


def _set_type_meta(obj: dict[str, Any], info: ResourceInfo) -> None:
    """kind and apiVersion, first, in place: the order the Go types encode them in, which
    also lets a LIST drop them from the stored bytes by slicing (listing.list_item)."""
    rest = {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}
    obj.clear()
    obj["kind"] = info.kind
    obj["apiVersion"] = info.api_version
    obj.update(rest)


def apply_create_defaults(resource: str, obj: dict[str, Any]) -> None:
    """Fill in place what the server defaults on create (kind/apiVersion, spec/status defaults)."""
    info = RESOURCES[resource]
    _set_type_meta(obj, info)
    defaulter = _DEFAULTERS.get(resource)
    if defaulter is not None:
        defaulter(obj)


# --- updates -----------------------------------------------------------------------------------

# Metadata the server owns: an update cannot change it.
_SERVER_METADATA = (
    "uid",
    "creationTimestamp",
    "namespace",
    "name",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
)


def prepare_update(
    resource: str, old: dict[str, Any], new: dict[str, Any], *, subresource: str | None = None
) -> dict[str, Any]:
    """The object an update stores (registry strategy PrepareForUpdate); ``new`` is not changed.

    /status writes change only status; main-resource writes keep status for resources with a
    status subresource; server-owned metadata stays; generation counts spec changes.
    """
    info = RESOURCES[resource]
    if subresource == "status":
        updated = copy.deepcopy(old)
        updated["status"] = copy.deepcopy(new.get("status") or {})
        return updated
    updated = copy.deepcopy(new)
    meta = old.get("metadata") or {}
    updated_meta = updated.get("metadata")
    if not isinstance(updated_meta, dict):
        updated_meta = updated["metadata"] = {}
    updated_meta.pop("deletionTimestamp", None)
    updated_meta.pop("deletionGracePeriodSeconds", None)
    updated_meta.update({k: meta[k] for k in _SERVER_METADATA if k in meta})
    if info.has_status:
        if "status" in old:
            updated["status"] = copy.deepcopy(old["status"])
        else:
            updated.pop("status", None)
    _set_type_meta(updated, info)
    if resource == "pods" and isinstance(updated.get("spec"), dict):
        # Admission runs on updates too (the plugin handles Create and Update).
        add_default_tolerations(updated["spec"])
    if "generation" in meta and updated.get("spec") != old.get("spec"):
        updated_meta["generation"] = int(meta["generation"]) + 1
    return updated
