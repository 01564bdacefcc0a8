"""Pod volume sources as kube-apiserver validates them (the types kubesim's kubelet mounts).

Wording and field paths follow k8s.io/kubernetes/pkg/apis/core/validation: a volume needs
exactly one type (``spec.volumes[0]: Required value: must specify a volume type``), a secret
its ``secretName``, a configMap its ``name``, a claim its ``claimName``, file modes stay within
0-0777 and item paths are relative and never climb with ``..``. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from kubesim.field_errors import Causes, as_items, as_map

__all__ = ["FILE_MODE_MESSAGE", "relative_path_errors", "validate_volume_source"]

FILE_MODE_MESSAGE = "must be a number between 0 and 0777 (octal), both inclusive"
MAX_FILE_MODE = 0o777
# Every volume type of core/v1 Volume (a volume must name exactly one).
VOLUME_TYPES = (
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret",
    "nfs", "iscsi", "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder",
    "cephfs", "flocker", "downwardAPI", "fc", "azureFile", "configMap", "vsphereVolume",
    "quobyte", "azureDisk", "photonPersistentDisk", "projected", "portworxVolume", "scaleIO",
    "storageos", "csi", "ephemeral", "image",
)  # fmt: skip
_PROJECTIONS = ("secret", "configMap", "downwardAPI", "serviceAccountToken")
_DOWNWARD_FIELDS = (
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
)


def relative_path_errors(value: str) -> list[str]:
    """validateLocalDescendingPath: relative, and no '..' element."""
    problems = []
    if value.startswith("/"):
        problems.append("must be a relative path")
    if ".." in value.split("/"):
        problems.append("must not contain '..'")
    return problems


def _item_path(causes: Causes, path: str, value: Any) -> None:
    """validateLocalNonReservedPath."""
    if not value:
        causes.required(path)
        return
    text = str(value)
    causes.each_invalid(path, text, relative_path_errors(text))
    if text.startswith(".."):
        causes.invalid(path, text, "must not start with '..'")


def _mode(causes: Causes, path: str, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_FILE_MODE:
        causes.invalid(path, value, FILE_MODE_MESSAGE)


def _key_to_paths(causes: Causes, source: dict[str, Any], path: str) -> None:
    for i, item in enumerate(as_items(source.get("items"), "KeyToPath")):
        if not item.get("key"):
            causes.required(f"{path}.items[{i}].key")
        _item_path(causes, f"{path}.items[{i}].path", item.get("path"))
        _mode(causes, f"{path}.items[{i}].mode", item.get("mode"))


def _downward_items(causes: Causes, source: dict[str, Any], path: str) -> None:
    for i, item in enumerate(as_items(source.get("items"), "DownwardAPIVolumeFile")):
        item_path = f"{path}.items[{i}]"
        _item_path(causes, f"{item_path}.path", item.get("path"))
        _mode(causes, f"{item_path}.mode", item.get("mode"))
        field_ref = item.get("fieldRef")
        resource_ref = item.get("resourceFieldRef")
        if field_ref is not None and resource_ref is not None:
            causes.invalid(
                item_path,
                "resource",
                "fieldRef and resourceFieldRef can not be specified together",
            )
        elif field_ref is not None:
            field_path = as_map(field_ref, "ObjectFieldSelector").get("fieldPath") or ""
            base = field_path.split("[", 1)[0]
            if not field_path:
                causes.required(f"{item_path}.fieldRef.fieldPath")
            elif base not in _DOWNWARD_FIELDS:
                causes.not_supported(
                    f"{item_path}.fieldRef.fieldPath", field_path, _DOWNWARD_FIELDS
                )
        elif resource_ref is not None:
            if not as_map(resource_ref, "ResourceFieldSelector").get("resource"):
                causes.required(f"{item_path}.resourceFieldRef.resource")
        else:
            causes.required(item_path, "one of fieldRef and resourceFieldRef is required")


def _projected(causes: Causes, source: dict[str, Any], path: str) -> None:
    _mode(causes, f"{path}.defaultMode", source.get("defaultMode"))
    for i, projection in enumerate(as_items(source.get("sources"), "VolumeProjection")):
        src = f"{path}.sources[{i}]"
        kinds = [k for k in _PROJECTIONS if k in projection]
        if len(kinds) > 1:
            causes.forbidden(src, "may not specify more than 1 volume type per source")
        for kind in kinds:
            body = as_map(projection.get(kind), kind)
            if kind in ("secret", "configMap"):
                if not body.get("name"):
                    causes.required(f"{src}.{kind}.name")
                _key_to_paths(causes, body, f"{src}.{kind}")
            elif kind == "downwardAPI":
                _downward_items(causes, body, f"{src}.downwardAPI")
            else:
                token_path = f"{src}.serviceAccountToken"
                _item_path(causes, f"{token_path}.path", body.get("path"))
                seconds = body.get("expirationSeconds")
                if isinstance(seconds, int) and seconds < 600:
                    causes.invalid(
                        f"{token_path}.expirationSeconds",
                        seconds,
                        "may not specify a duration less than 10 minutes",
                    )
                elif isinstance(seconds, int) and seconds > 1 << 32:
                    causes.invalid(
                        f"{token_path}.expirationSeconds",
                        seconds,
                        "may not specify a duration larger than 2^32 seconds",
                    )


def validate_volume_source(causes: Causes, volume: dict[str, Any], path: str) -> None:
    """One entry of spec.volumes (``path`` is ``spec.volumes[i]``)."""
    kinds = [k for k in VOLUME_TYPES if k in volume]
    if not kinds:
        causes.required(path, "must specify a volume type")
        return
    for extra in kinds[1:]:
        causes.forbidden(f"{path}.{extra}", "may not specify more than 1 volume type")
    kind = kinds[0]
    source = as_map(volume.get(kind), kind)
    where = f"{path}.{kind}"
    if kind == "secret":
        if not source.get("secretName"):
            causes.required(f"{where}.secretName")
        _mode(causes, f"{where}.defaultMode", source.get("defaultMode"))
        _key_to_paths(causes, source, where)
    elif kind == "configMap":
        if not source.get("name"):
            causes.required(f"{where}.name")
        _mode(causes, f"{where}.defaultMode", source.get("defaultMode"))
        _key_to_paths(causes, source, where)
    elif kind == "persistentVolumeClaim":
        if not source.get("claimName"):
            causes.required(f"{where}.claimName")
    elif kind == "hostPath":
        if not source.get("path"):
            causes.required(f"{where}.path")
    elif kind == "downwardAPI":
        _mode(causes, f"{where}.defaultMode", source.get("defaultMode"))
        _downward_items(causes, source, where)
    elif kind == "projected":
        _projected(causes, source, where)
