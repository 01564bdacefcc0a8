"""Pod create/update rules of kube-apiserver (the subset kubesim's clients exercise).

Pure: no I/O. Problems are collected into a :class:`~kubesim.field_errors.Causes`.
"""

from __future__ import annotations

from typing import Any

from kubesim.field_errors import (
    PROTOCOLS,
    Causes,
    as_items,
    as_list,
    as_map,
    canonical_quantity,
    expect_string,
    port_range,
    quantities,
    validate_labels,
)
from kubesim.names import dns1123_label_errors
from kubesim.volume_validation import relative_path_errors, validate_volume_source

__all__ = ["POD_UPDATE_MESSAGE", "validate_pod", "validate_pod_update"]

# --- pods --------------------------------------------------------------------------------------

_RESTART_POLICIES = ("Always", "OnFailure", "Never")


def _is_native(resource_name: str) -> bool:
    if resource_name.startswith("hugepages-"):
        return False
    return "/" not in resource_name or resource_name.split("/", 1)[0].endswith("kubernetes.io")


def _validate_resources(causes: Causes, resources: dict[str, Any], path: str) -> None:
    requests = quantities(resources, "requests", path)
    limits = quantities(resources, "limits", path)
    for key, values in (("limits", limits), ("requests", requests)):
        for name, (raw, value) in values.items():
            if value < 0:
                causes.invalid(
                    f"{path}.{key}[{name}]",
                    canonical_quantity(raw, value),
                    "must be greater than or equal to 0",
                )
            elif not _is_native(name) and value != value.to_integral_value():
                causes.invalid(
                    f"{path}.{key}[{name}]", canonical_quantity(raw, value), "must be an integer"
                )
    for name, (raw, value) in requests.items():
        if name in limits:
            limit_raw, limit = limits[name]
            if (not _is_native(name) and value != limit) or value > limit:
                shown = canonical_quantity(raw, value)
                limit_shown = canonical_quantity(limit_raw, limit)
                relation = "equal to" if not _is_native(name) else "less than or equal to"
                causes.invalid(
                    f"{path}.requests", shown, f"must be {relation} {name} limit of {limit_shown}"
                )
        elif not _is_native(name):
            causes.required(f"{path}.limits", "Limit must be set for non overcommitable resources")


def _relative_path(causes: Causes, path: str, value: str) -> None:
    causes.each_invalid(path, value, relative_path_errors(value))


def _validate_container(
    causes: Causes, container: dict[str, Any], path: str, volumes: set[str]
) -> None:
    name = container.get("name") or ""
    if not name:
        causes.required(f"{path}.name")
    else:
        causes.each_invalid(f"{path}.name", name, dns1123_label_errors(name))
    if not container.get("image"):
        causes.required(f"{path}.image")
    port_names: set[str] = set()
    for j, port in enumerate(as_items(container.get("ports"), "ContainerPort")):
        port_path = f"{path}.ports[{j}]"
        port_range(causes, f"{port_path}.containerPort", port.get("containerPort"))
        port_range(causes, f"{port_path}.hostPort", port.get("hostPort"), required=False)
        protocol = port.get("protocol", "TCP")
        if protocol not in PROTOCOLS:
            causes.not_supported(f"{port_path}.protocol", protocol, PROTOCOLS)
        port_name = port.get("name")
        if port_name:
            if port_name in port_names:
                causes.duplicate(f"{port_path}.name", port_name)
            port_names.add(port_name)
    kind = path.split(".")[1].split("[", maxsplit=1)[0]  # containers | initContainers
    for key in ("command", "args"):
        for word in as_list(container.get(key), f"Container.{key}"):
            expect_string(word, f"Container.spec.{kind}.{key}")
    for j, env in enumerate(as_list(container.get("env"), "Container.env")):
        expect_string(as_map(env, "EnvVar").get("value"), f"EnvVar.spec.{kind}.env.value")
        env_name = as_map(env, "EnvVar").get("name") or ""
        if not env_name:
            causes.required(f"{path}.env[{j}].name")
        elif "=" in env_name:
            causes.invalid(
                f"{path}.env[{j}].name",
                env_name,
                "a valid environment variable name must consist only of printable ASCII "
                "characters other than '='",
            )
    mount_paths: set[str] = set()
    for j, mount in enumerate(as_items(container.get("volumeMounts"), "VolumeMount")):
        mount_name = mount.get("name") or ""
        if not mount_name:
            causes.required(f"{path}.volumeMounts[{j}].name")
        elif mount_name not in volumes:
            causes.not_found(f"{path}.volumeMounts[{j}].name", mount_name)
        sub_path = mount.get("subPath") or ""
        if sub_path:
            _relative_path(causes, f"{path}.volumeMounts[{j}].subPath", sub_path)
        sub_path_expr = mount.get("subPathExpr") or ""
        if sub_path_expr:
            if sub_path:
                causes.invalid(
                    f"{path}.volumeMounts[{j}].subPathExpr",
                    sub_path_expr,
                    "subPathExpr and subPath are mutually exclusive",
                )
            _relative_path(causes, f"{path}.volumeMounts[{j}].subPathExpr", sub_path_expr)
        mount_path = mount.get("mountPath") or ""
        if not mount_path:
            causes.required(f"{path}.volumeMounts[{j}].mountPath")
        elif mount_path in mount_paths:
            causes.invalid(f"{path}.volumeMounts[{j}].mountPath", mount_path, "must be unique")
        mount_paths.add(mount_path)
    _validate_resources(
        causes, as_map(container.get("resources"), "ResourceRequirements"), f"{path}.resources"
    )


def validate_pod(obj: dict[str, Any], causes: Causes) -> None:
    spec = as_map(obj.get("spec"), "PodSpec")
    volumes: set[str] = set()
    for i, volume in enumerate(as_list(spec.get("volumes"), "PodSpec.volumes")):
        validate_volume_source(causes, as_map(volume, "Volume"), f"spec.volumes[{i}]")
        volume_name = as_map(volume, "Volume").get("name") or ""
        path = f"spec.volumes[{i}].name"
        if not volume_name:
            causes.required(path)
            continue
        causes.each_invalid(path, volume_name, dns1123_label_errors(volume_name))
        if volume_name in volumes:
            causes.duplicate(path, volume_name)
        volumes.add(volume_name)
    containers = as_list(spec.get("containers"), "PodSpec.containers")
    if not containers:
        causes.required("spec.containers")
    seen: set[str] = set()
    for key in ("initContainers", "containers"):
        for i, container in enumerate(as_items(spec.get(key), "Container")):
            path = f"spec.{key}[{i}]"
            _validate_container(causes, container, path, volumes)
            name = container.get("name")
            if name:
                if name in seen:
                    causes.duplicate(f"{path}.name", name)
                seen.add(name)
    restart_policy = spec.get("restartPolicy")
    if restart_policy is not None and restart_policy not in _RESTART_POLICIES:
        causes.not_supported("spec.restartPolicy", restart_policy, _RESTART_POLICIES)
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and not 1 <= deadline <= 2**31 - 1:
        causes.invalid(
            "spec.activeDeadlineSeconds", deadline, "must be between 1 and 2147483647, inclusive"
        )
    validate_labels(
        causes, as_map(spec.get("nodeSelector"), "PodSpec.nodeSelector"), "spec.nodeSelector"
    )
    for i, toleration in enumerate(as_items(spec.get("tolerations"), "Toleration")):
        operator = toleration.get("operator") or "Equal"
        if operator not in ("Equal", "Exists"):
            causes.not_supported(f"spec.tolerations[{i}].operator", operator, ("Equal", "Exists"))
        if operator == "Exists" and toleration.get("value"):
            causes.invalid(
                f"spec.tolerations[{i}].operator",
                toleration["value"],
                "value must be empty when `operator` is 'Exists'",
            )
        effect = toleration.get("effect") or ""
        if effect and effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            causes.not_supported(
                f"spec.tolerations[{i}].effect",
                effect,
                ("NoExecute", "NoSchedule", "PreferNoSchedule"),
            )


POD_UPDATE_MESSAGE = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
    "(allow it to be set to 1 if it was previously negative)"
)


def _pruned(value: Any) -> Any:
    """Drop null and empty values, which JSON omitempty makes equal to absent ones."""
    if isinstance(value, dict):
        pruned = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in (None, [], {})}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def validate_pod_update(old: dict[str, Any], new: dict[str, Any], causes: Causes) -> None:
    old_spec = as_map(old.get("spec"), "PodSpec")
    new_spec = as_map(new.get("spec"), "PodSpec")
    # Mask the mutable fields with their old values; everything else must be unchanged.
    masked = dict(new_spec)
    for key in ("containers", "initContainers"):
        old_list = as_list(old_spec.get(key), f"PodSpec.{key}")
        new_list = as_list(new_spec.get(key), f"PodSpec.{key}")
        if len(old_list) == len(new_list):
            masked_list = []
            for before, after in zip(old_list, new_list, strict=True):
                item = dict(as_map(after, "Container"))
                item.pop("image", None)
                if "image" in as_map(before, "Container"):
                    item["image"] = before["image"]
                masked_list.append(item)
            masked[key] = masked_list
    for key in ("activeDeadlineSeconds", "terminationGracePeriodSeconds"):
        masked.pop(key, None)
        if key in old_spec:
            masked[key] = old_spec[key]
    old_tolerations = as_list(old_spec.get("tolerations"), "PodSpec.tolerations")
    new_tolerations = as_list(new_spec.get("tolerations"), "PodSpec.tolerations")
    if all(t in new_tolerations for t in old_tolerations):
        masked.pop("tolerations", None)
        if "tolerations" in old_spec:
            masked["tolerations"] = old_spec["tolerations"]
    if _pruned(masked) != _pruned(old_spec):
        causes.forbidden("spec", POD_UPDATE_MESSAGE)
    new_deadline = new_spec.get("activeDeadlineSeconds")
    old_deadline = old_spec.get("activeDeadlineSeconds")
    if new_deadline is None and old_deadline is not None:
        causes.invalid(
            "spec.activeDeadlineSeconds",
            None,
            "must not update from a positive integer to nil value",
        )
    elif new_deadline is not None and old_deadline is not None and new_deadline > old_deadline:
        causes.invalid(
            "spec.activeDeadlineSeconds",
            new_deadline,
            "must be less than or equal to previous value",
        )
