"""Create/update validation with every cause reported, as the API server does.

``validate_create``/``validate_update`` raise :func:`kubesim.errors.invalid` (422) carrying one
StatusCause per problem, worded like k8s.io/apimachinery/pkg/util/validation/field
(``metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain ...``), or a 400
when the body cannot even be decoded as the kind (a malformed quantity, a label that is not a
string). The rules are the ones kube-apiserver applies to the fields kubesim's clients use;
callers validate the object after filling server-side fields (name from generateName, uid).
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kubesim import errors
from kubesim.field_errors import (
    PROTOCOLS,
    Causes,
    DecodeError,
    as_items,
    as_list,
    as_map,
    canonical_quantity,
    port_range,
    quantities,
    validate_labels,
)
from kubesim.names import (
    dns1035_label_errors,
    dns1123_label_errors,
    dns1123_subdomain_errors,
    label_key_errors,
)
from kubesim.normalize import normalize
from kubesim.pod_validation import validate_pod, validate_pod_update
from kubesim.quantity import QuantityError

__all__ = ["KINDS", "Causes", "decode", "validate_create", "validate_update"]

# resource -> (kind, group, namespaced)
KINDS: dict[str, tuple[str, str, bool]] = {
    "pods": ("Pod", "", True),
    "events": ("Event", "", True),
    "persistentvolumeclaims": ("PersistentVolumeClaim", "", True),
    "services": ("Service", "", True),
    "secrets": ("Secret", "", True),
    "configmaps": ("ConfigMap", "", True),
    "serviceaccounts": ("ServiceAccount", "", True),
    "namespaces": ("Namespace", "", False),
    "nodes": ("Node", "", False),
    "leases": ("Lease", "coordination.k8s.io", True),
}

TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
MAX_SECRET_SIZE = 1024 * 1024
CONFIG_KEY_MESSAGE = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
    "(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
    "'[-._a-zA-Z0-9]+')"
)


def _kind_of(resource: str) -> tuple[str, str, bool]:
    return KINDS.get(resource, (resource.rstrip("s").capitalize(), "", True))


def _raise(resource: str, obj: Mapping[str, Any], causes: Causes) -> None:
    if causes.items:
        kind, group, _ = _kind_of(resource)
        name = str(as_map(obj.get("metadata"), "ObjectMeta").get("name") or "")
        raise errors.invalid(kind, name, causes.items, group=group)


def _decode_failure(resource: str, err: Exception) -> errors.ApiError:
    kind, group, _ = _kind_of(resource)
    version = f"{group}/v1" if group else "v1"
    return errors.bad_request(f'{kind} in version "{version}" cannot be handled as a {kind}: {err}')


# --- metadata --------------------------------------------------------------------------------

_NAME_RULES: dict[str, Callable[[str], list[str]]] = {
    "namespaces": dns1123_label_errors,
    "services": dns1035_label_errors,
}


def _name_errors(resource: str, name: str) -> list[str]:
    return _NAME_RULES.get(resource, dns1123_subdomain_errors)(name)


def _validate_metadata(resource: str, meta: dict[str, Any], causes: Causes) -> None:
    name = meta.get("name") or ""
    generate_name = meta.get("generateName") or ""
    if not name and not generate_name:
        causes.required("metadata.name", "name or generateName is required")
    if generate_name:
        # Upstream masks one trailing dash before checking a generateName prefix.
        prefix = generate_name[:-1] if generate_name.endswith("-") else generate_name
        causes.each_invalid("metadata.generateName", generate_name, _name_errors(resource, prefix))
    if name:
        causes.each_invalid("metadata.name", name, _name_errors(resource, name))
    namespace = meta.get("namespace") or ""
    if namespace:
        if not _kind_of(resource)[2]:
            causes.forbidden("metadata.namespace", "not allowed on this type")
        else:
            causes.each_invalid("metadata.namespace", namespace, dns1123_label_errors(namespace))
    validate_labels(causes, as_map(meta.get("labels"), "ObjectMeta.labels"), "metadata.labels")
    annotations = as_map(meta.get("annotations"), "ObjectMeta.annotations")
    total = 0
    for key, value in annotations.items():
        if not isinstance(value, str):
            raise DecodeError("json: cannot unmarshal into ObjectMeta.annotations of type string")
        causes.each_invalid("metadata.annotations", key, label_key_errors(key.lower()))
        total += len(key) + len(value.encode())
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        causes.too_long("metadata.annotations", TOTAL_ANNOTATION_SIZE_LIMIT)
    for i, finalizer in enumerate(as_list(meta.get("finalizers"), "ObjectMeta.finalizers")):
        causes.each_invalid(f"metadata.finalizers[{i}]", finalizer, label_key_errors(finalizer))
    for ref in as_items(meta.get("ownerReferences"), "OwnerReference"):
        for key, what in (
            ("apiVersion", "version"),
            ("kind", "kind"),
            ("name", "name"),
            ("uid", "uid"),
        ):
            if not ref.get(key):
                causes.invalid(f"metadata.ownerReferences.{key}", "", f"{what} must not be empty")


def _validate_metadata_update(old: dict[str, Any], new: dict[str, Any], causes: Causes) -> None:
    for key in ("name", "namespace", "uid"):
        if new.get(key) and old.get(key) and new[key] != old[key]:
            causes.invalid(f"metadata.{key}", new[key], "field is immutable")


# --- other kinds ---------------------------------------------------------------------------

_ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")


def _validate_pvc(obj: dict[str, Any], causes: Causes) -> None:
    spec = as_map(obj.get("spec"), "PersistentVolumeClaimSpec")
    modes = as_list(spec.get("accessModes"), "PersistentVolumeClaimSpec.accessModes")
    if not modes:
        causes.required("spec.accessModes", "at least 1 access mode is required")
    for mode in modes:
        if mode not in _ACCESS_MODES:
            causes.not_supported("spec.accessModes", mode, _ACCESS_MODES)
    resources = as_map(spec.get("resources"), "VolumeResourceRequirements")
    requests = quantities(resources, "requests", "spec.resources")
    if "storage" not in requests:
        causes.required("spec.resources[storage]")
    else:
        raw, value = requests["storage"]
        if value <= 0:
            causes.invalid(
                "spec.resources[storage]",
                canonical_quantity(raw, value),
                "must be greater than zero",
            )


PVC_UPDATE_MESSAGE = (
    "spec is immutable after creation except resources.requests and "
    "volumeAttributesClassName for bound claims"
)


def _validate_pvc_update(old: dict[str, Any], new: dict[str, Any], causes: Causes) -> None:
    old_spec = as_map(old.get("spec"), "PersistentVolumeClaimSpec")
    new_spec = as_map(new.get("spec"), "PersistentVolumeClaimSpec")
    masked = dict(new_spec)
    # The binder may fill volumeName once; requests may grow (volume expansion).
    if not old_spec.get("volumeName"):
        masked.pop("volumeName", None)
        if "volumeName" in old_spec:
            masked["volumeName"] = old_spec["volumeName"]
    old_resources = as_map(old_spec.get("resources"), "VolumeResourceRequirements")
    new_resources = as_map(new_spec.get("resources"), "VolumeResourceRequirements")
    masked["resources"] = {**new_resources, "requests": old_resources.get("requests")}
    if "requests" not in old_resources:
        masked["resources"].pop("requests")
    if "resources" not in old_spec and not masked["resources"]:
        masked.pop("resources")
    if masked != old_spec:
        causes.forbidden("spec", PVC_UPDATE_MESSAGE)
    old_storage = quantities(old_resources, "requests", "spec.resources").get("storage")
    new_storage = quantities(new_resources, "requests", "spec.resources").get("storage")
    if old_storage and new_storage and new_storage[1] < old_storage[1]:
        causes.forbidden(
            "spec.resources.requests.storage", "field can not be less than previous value"
        )


_SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")


def _validate_service(obj: dict[str, Any], causes: Causes) -> None:
    spec = as_map(obj.get("spec"), "ServiceSpec")
    service_type = spec.get("type") or "ClusterIP"
    if service_type not in _SERVICE_TYPES:
        causes.not_supported("spec.type", service_type, _SERVICE_TYPES)
    ports = as_list(spec.get("ports"), "ServiceSpec.ports")
    headless = spec.get("clusterIP") == "None"
    if not ports and not headless and service_type != "ExternalName":
        causes.required("spec.ports")
    names: set[str] = set()
    keys: set[tuple[Any, Any]] = set()
    for i, port in enumerate(as_items(ports, "ServicePort")):
        path = f"spec.ports[{i}]"
        name = port.get("name") or ""
        if len(ports) > 1 and not name:
            causes.required(f"{path}.name")
        if name:
            causes.each_invalid(f"{path}.name", name, dns1123_label_errors(name))
            if name in names:
                causes.duplicate(f"{path}.name", name)
            names.add(name)
        port_range(causes, f"{path}.port", port.get("port"))
        protocol = port.get("protocol", "TCP")
        if protocol not in PROTOCOLS:
            causes.not_supported(f"{path}.protocol", protocol, PROTOCOLS)
        target = port.get("targetPort")
        if isinstance(target, int) and not isinstance(target, bool):
            port_range(causes, f"{path}.targetPort", target, required=False)
        key = (port.get("port"), protocol)
        if key in keys:
            causes.duplicate(path, f"{key[0]}/{key[1]}")
        keys.add(key)
    validate_labels(causes, as_map(spec.get("selector"), "ServiceSpec.selector"), "spec.selector")


def _validate_service_update(old: dict[str, Any], new: dict[str, Any], causes: Causes) -> None:
    old_ip = as_map(old.get("spec"), "ServiceSpec").get("clusterIP")
    new_ip = as_map(new.get("spec"), "ServiceSpec").get("clusterIP")
    # An empty clusterIP on replace means "keep the allocated one".
    if old_ip and new_ip and new_ip != old_ip:
        causes.invalid("spec.clusterIP", new_ip, "field is immutable")


def _validate_data(
    resource: str, obj: dict[str, Any], causes: Causes, keys: tuple[str, ...]
) -> None:
    total = 0
    seen: dict[str, str] = {}
    for section in keys:
        for key, value in as_map(obj.get(section), f"{section}").items():
            causes.each_invalid(
                f"{section}[{key}]", key, [] if _is_config_key(key) else [CONFIG_KEY_MESSAGE]
            )
            if (
                key in seen
                and seen[key] != section
                and {section, seen[key]}
                != {
                    "data",
                    "stringData",
                }
            ):
                causes.invalid(f"{section}[{key}]", key, f"duplicate of key present in {seen[key]}")
            seen.setdefault(key, section)
            total += len(value) if isinstance(value, str) else 0
    if resource == "secrets" and total > MAX_SECRET_SIZE:
        causes.too_long("data", MAX_SECRET_SIZE)
    if resource == "configmaps" and total > MAX_SECRET_SIZE:
        causes.too_long("[]", MAX_SECRET_SIZE)


def _is_config_key(key: str) -> bool:
    allowed = set("-._abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    return bool(key) and set(key) <= allowed and key not in (".", "..") and not key.startswith("..")


IMMUTABLE_DATA_MESSAGE = "field is immutable when `immutable` is set"


def _validate_data_update(
    resource: str, old: dict[str, Any], new: dict[str, Any], causes: Causes
) -> None:
    if resource == "secrets" and old.get("type") and new.get("type", old["type"]) != old["type"]:
        causes.invalid("type", new.get("type"), "field is immutable")
    if not old.get("immutable"):
        return
    if not new.get("immutable"):
        causes.forbidden("immutable", IMMUTABLE_DATA_MESSAGE)
    sections = ("data",) if resource == "secrets" else ("data", "binaryData")
    for section in sections:
        if (old.get(section) or {}) != (new.get(section) or {}):
            causes.forbidden(section, IMMUTABLE_DATA_MESSAGE)


def _validate_lease(obj: dict[str, Any], causes: Causes) -> None:
    spec = as_map(obj.get("spec"), "LeaseSpec")
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and duration <= 0:
        causes.invalid("spec.leaseDurationSeconds", duration, "must be greater than 0")
    transitions = spec.get("leaseTransitions")
    if transitions is not None and transitions < 0:
        causes.invalid("spec.leaseTransitions", transitions, "must be greater than or equal to 0")


def _validate_event(obj: dict[str, Any], causes: Causes) -> None:
    namespace = as_map(obj.get("metadata"), "ObjectMeta").get("namespace") or ""
    involved = as_map(obj.get("involvedObject"), "ObjectReference").get("namespace") or ""
    if involved and namespace and involved != namespace:
        causes.invalid("involvedObject.namespace", involved, "does not match event.namespace")


_CREATE_RULES: dict[str, Callable[[dict[str, Any], Causes], None]] = {
    "pods": validate_pod,
    "persistentvolumeclaims": _validate_pvc,
    "services": _validate_service,
    "secrets": lambda obj, causes: _validate_data("secrets", obj, causes, ("data", "stringData")),
    "configmaps": lambda obj, causes: _validate_data(
        "configmaps", obj, causes, ("data", "binaryData")
    ),
    "leases": _validate_lease,
    "events": _validate_event,
}

_UPDATE_RULES: dict[str, Callable[[dict[str, Any], dict[str, Any], Causes], None]] = {
    "pods": validate_pod_update,
    "persistentvolumeclaims": _validate_pvc_update,
    "services": _validate_service_update,
    "secrets": lambda old, new, causes: _validate_data_update("secrets", old, new, causes),
    "configmaps": lambda old, new, causes: _validate_data_update("configmaps", old, new, causes),
}


def _check(resource: str, obj: dict[str, Any], causes: Causes) -> None:
    _validate_metadata(resource, as_map(obj.get("metadata"), "ObjectMeta"), causes)
    rule = _CREATE_RULES.get(resource)
    if rule is not None:
        rule(obj, causes)


def decode(resource: str, obj: dict[str, Any]) -> None:
    """Normalise ``obj`` in place as decoding into the API types does (kubesim.normalize);
    raise ApiError 400 when a value cannot be decoded (a malformed quantity)."""
    try:
        normalize(resource, obj)
    except (DecodeError, QuantityError) as err:
        raise _decode_failure(resource, err) from err


def validate_create(resource: str, obj: dict[str, Any]) -> None:
    """Raise ApiError 422 Invalid listing every problem of a new object (400 if undecodable)."""
    causes = Causes()
    try:
        _check(resource, obj, causes)
    except (DecodeError, QuantityError) as err:
        raise _decode_failure(resource, err) from err
    _raise(resource, obj, causes)


def validate_update(
    resource: str, old: dict[str, Any], new: dict[str, Any], *, subresource: str = ""
) -> None:
    """Raise ApiError 422 Invalid for an invalid replacement of ``old`` by ``new``.

    With ``subresource="status"`` only metadata rules apply: the server keeps the stored spec
    on a status write, as kube-apiserver does.
    """
    causes = Causes()
    try:
        old_meta = as_map(old.get("metadata"), "ObjectMeta")
        new_meta = as_map(new.get("metadata"), "ObjectMeta")
        _validate_metadata_update(old_meta, new_meta, causes)
        if subresource:
            _validate_metadata(resource, new_meta, causes)
        else:
            _check(resource, new, causes)
            rule = _UPDATE_RULES.get(resource)
            if rule is not None:
                rule(old, new, causes)
    except (DecodeError, QuantityError) as err:
        raise _decode_failure(resource, err) from err
    _raise(resource, new, causes)
