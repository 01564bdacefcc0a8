"""Pure builders of the Kubernetes objects a spawner creates, as API-JSON dicts.

``make_pod`` and ``make_pvc`` keep the signatures of ``kubespawner.objects`` (seed 003), and for
the same arguments return what KubeSpawner 7.1's builders serialise to (``ApiClient().
sanitize_for_serialization`` of its model objects): the unit tests compare both. The facts that
carry over from building model objects are reproduced deliberately:

- Items of ``volumes``, ``volume_mounts``, ``init_containers``, ``extra_containers``,
  ``tolerations``, affinity terms, ``lifecycle_hooks``, ``extra_container_config`` and
  ``extra_pod_config`` may use snake_case or camelCase keys at their top level: both become the
  API field name and ``None`` values there are dropped. Deeper levels are passed through as
  given (KubeSpawner does the same: only the outer model is built).
- Unknown top-level keys raise ``ValueError`` naming the key and the object kind.
- Environment variables are ordered so that a variable referring to another with ``$(NAME)``
  comes after it, otherwise by key.

Intentional differences (documented, not accidental):

- ``make_pod``'s defaults follow seed 003 (``image_pull_policy`` is positional,
  ``allow_privilege_escalation=True``); the spawner always passes every argument explicitly.
- ``make_pod`` does not mutate the ``env``, ``volumes`` and ``volume_mounts`` passed in
  (KubeSpawner appends the internal-SSL volume and variables to the caller's objects).
- ``make_secret`` takes the certificate *contents*, not file paths, so it stays pure; the
  spawner reads the files (``KubeSpawner.get_secret_manifest``).
- Required-field checks of the client models (e.g. a volume without ``name``) are left to the
  API server, whose 422 names the field.
"""

from __future__ import annotations

import base64
import copy
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kubernetes_asyncio.client import models

JSON = dict[str, Any]

_ENV_REFERENCE = re.compile(r"\$\(([^)]+)\)")
INTERNAL_CERTS_VOLUME = "jupyterhub-internal-certs"


def api_fields(model_name: str, obj: Mapping[str, Any]) -> JSON:
    """``obj``'s top-level keys as API field names of ``model_name``; None values dropped.

    The field table comes from the kubernetes client's model (``attribute_map``), which maps
    python attribute names (snake_case) to API names (camelCase, e.g. ``host_ipc`` ->
    ``hostIPC``); keys already in API form pass unchanged.
    """
    if not isinstance(obj, Mapping):
        raise ValueError(f"Expected a dict for a {model_name}, got {type(obj).__name__}: {obj!r}")
    field_map: dict[str, str] = getattr(models, model_name).attribute_map
    api_names = set(field_map.values())
    result: JSON = {}
    for key, value in obj.items():
        if key in field_map:
            name = field_map[key]
        elif key in api_names:
            name = key
        else:
            raise ValueError(f"'{model_name}' did not have an attribute matching '{key}'")
        if value is not None:
            result[name] = copy.deepcopy(value)
    return result


def _api_list(model_name: str, items: Iterable[Mapping[str, Any]]) -> list[JSON]:
    return [api_fields(model_name, item) for item in items]


def _apply_overrides(
    target: JSON,
    model_name: str,
    changes: Mapping[str, Any],
    *,
    what: str,
    changes_name: str,
    logger: logging.Logger | None,
) -> JSON:
    """Set every field of ``changes`` on ``target`` (None removes it), logging what it replaces."""
    field_map: dict[str, str] = getattr(models, model_name).attribute_map
    api_names = set(field_map.values())
    result = dict(target)
    for key, value in changes.items():
        if key in field_map:
            name = field_map[key]
        elif key in api_names:
            name = key
        else:
            raise ValueError(
                f"The attribute 'changes' (dict) contained '{key}' not modeled by '{model_name}'."
            )
        if logger is not None and result.get(name):
            logger.info(
                "'%s.%s' current value: '%s' is overridden with '%s', which is the value of "
                "'%s.%s'.",
                what,
                name,
                result[name],
                value,
                changes_name,
                name,
            )
        if value is None:
            result.pop(name, None)
        else:
            result[name] = copy.deepcopy(value)
    return result


def _env_list(env: Mapping[str, Any]) -> list[JSON]:
    """Env vars as EnvVar dicts, dependencies (``$(NAME)``) first, then by key."""
    pending: dict[str, tuple[str, JSON, set[str]]] = {}
    for key, value in env.items():
        if isinstance(value, dict):
            entry = api_fields("V1EnvVar", {"name": key, **value})
        else:
            entry = {"name": key} if value is None else {"name": key, "value": value}
        text = entry.get("value")
        refs = set(_ENV_REFERENCE.findall(text)) if isinstance(text, str) and text else set()
        pending[entry["name"]] = (key, entry, refs - {entry["name"]})
    ordered: list[JSON] = []
    resolved: set[str] = set()
    while pending:
        ready = [name for name, (_, _, refs) in pending.items() if refs <= resolved]
        if not ready:
            # a cycle or a reference to an unknown variable: keep the rest in key order
            ready = list(pending)
        batch = sorted((pending.pop(name) for name in ready), key=lambda item: item[0])
        ordered.extend(entry for _, entry, _ in batch)
        resolved.update(entry["name"] for _, entry, _ in batch)
    return ordered


def _camel_case_only(context: Mapping[str, Any], what: str) -> None:
    for key in context:
        if "_" in key:
            raise ValueError(f"{what}'s keys should have k8s camelCase names, got '{key}'")


def _affinity(
    preferred: Sequence[Any] | None,
    required: Sequence[Any] | None,
    preferred_model: str,
    required_model: str,
) -> JSON | None:
    if not (preferred or required):
        return None
    result: JSON = {}
    if preferred:
        result["preferredDuringSchedulingIgnoredDuringExecution"] = _api_list(
            preferred_model, preferred
        )
    if required:
        result["requiredDuringSchedulingIgnoredDuringExecution"] = _api_list(
            required_model, required
        )
    return result


def make_pod(  # noqa: PLR0917 - one argument per KubeSpawner option, as in seed 003
    name: str,
    cmd: list[str] | None,
    port: int,
    image: str,
    image_pull_policy: str | None,
    image_pull_secrets: Sequence[str | Mapping[str, Any]] | None = None,
    node_selector: Mapping[str, str] | None = None,
    uid: int | None = None,
    gid: int | None = None,
    fs_gid: int | None = None,
    supplemental_gids: Sequence[int] | None = None,
    privileged: bool = False,
    allow_privilege_escalation: bool | None = True,
    container_security_context: Mapping[str, Any] | None = None,
    pod_security_context: Mapping[str, Any] | None = None,
    env: Mapping[str, Any] | None = None,
    working_dir: str | None = None,
    volumes: Sequence[Mapping[str, Any]] | None = None,
    volume_mounts: Sequence[Mapping[str, Any]] | None = None,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    cpu_limit: float | None = None,
    cpu_guarantee: float | None = None,
    mem_limit: str | int | None = None,
    mem_guarantee: str | int | None = None,
    extra_resource_limits: Mapping[str, Any] | None = None,
    extra_resource_guarantees: Mapping[str, Any] | None = None,
    lifecycle_hooks: Mapping[str, Any] | None = None,
    init_containers: Sequence[Mapping[str, Any]] | None = None,
    service_account: str | None = None,
    automount_service_account_token: bool | None = None,
    extra_container_config: Mapping[str, Any] | None = None,
    extra_pod_config: Mapping[str, Any] | None = None,
    extra_containers: Sequence[Mapping[str, Any]] | None = None,
    scheduler_name: str | None = None,
    tolerations: Sequence[Mapping[str, Any]] | None = None,
    node_affinity_preferred: Sequence[Mapping[str, Any]] | None = None,
    node_affinity_required: Sequence[Mapping[str, Any]] | None = None,
    pod_affinity_preferred: Sequence[Mapping[str, Any]] | None = None,
    pod_affinity_required: Sequence[Mapping[str, Any]] | None = None,
    pod_anti_affinity_preferred: Sequence[Mapping[str, Any]] | None = None,
    pod_anti_affinity_required: Sequence[Mapping[str, Any]] | None = None,
    priority_class_name: str | None = None,
    ssl_secret_name: str | None = None,
    ssl_secret_mount_path: str | None = None,
    logger: logging.Logger | None = None,
) -> JSON:
    """A Pod running one user's server: container ``notebook`` listening on ``port``.

    Parameters mean what they mean in ``kubespawner.objects.make_pod`` (seed 003); the result
    is the Pod in API JSON form.
    """
    env_vars = dict(env or {})
    all_volumes = list(volumes or [])
    mounts = list(volume_mounts or [])
    if ssl_secret_name and ssl_secret_mount_path:
        all_volumes.append(
            {
                "name": INTERNAL_CERTS_VOLUME,
                "secret": {"secretName": ssl_secret_name, "defaultMode": 511},
            }
        )
        env_vars["JUPYTERHUB_SSL_KEYFILE"] = ssl_secret_mount_path + "ssl.key"
        env_vars["JUPYTERHUB_SSL_CERTFILE"] = ssl_secret_mount_path + "ssl.crt"
        env_vars["JUPYTERHUB_SSL_CLIENT_CA"] = ssl_secret_mount_path + "notebooks-ca_trust.crt"
        mounts.append({"name": INTERNAL_CERTS_VOLUME, "mountPath": ssl_secret_mount_path})

    pod_context: JSON = {}
    if fs_gid is not None:
        pod_context["fsGroup"] = int(fs_gid)
    if supplemental_gids:
        pod_context["supplementalGroups"] = [int(g) for g in supplemental_gids]
    if pod_security_context:
        _camel_case_only(pod_security_context, "pod_security_context")
        pod_context.update(copy.deepcopy(dict(pod_security_context)))

    container_context: JSON = {}
    if uid is not None:
        container_context["runAsUser"] = int(uid)
    if gid is not None:
        container_context["runAsGroup"] = int(gid)
    if privileged:
        container_context["privileged"] = True
    if allow_privilege_escalation is not None:
        container_context["allowPrivilegeEscalation"] = allow_privilege_escalation
    if container_security_context:
        _camel_case_only(container_security_context, "container_security_context")
        container_context.update(copy.deepcopy(dict(container_security_context)))

    requests: JSON = {}
    if cpu_guarantee:
        requests["cpu"] = cpu_guarantee
    if mem_guarantee:
        requests["memory"] = mem_guarantee
    requests.update(extra_resource_guarantees or {})
    limits: JSON = {}
    if cpu_limit:
        limits["cpu"] = cpu_limit
    if mem_limit:
        limits["memory"] = mem_limit
    limits.update(extra_resource_limits or {})

    notebook: JSON = {
        "name": "notebook",
        "image": image,
        "ports": [{"name": "notebook-port", "containerPort": port}],
        "env": _env_list(env_vars),
        "resources": {"requests": requests, "limits": limits},
        "volumeMounts": _api_list("V1VolumeMount", mounts),
    }
    optional_container_fields = {
        "workingDir": working_dir,
        "args": list(cmd) if cmd is not None else None,
        "imagePullPolicy": image_pull_policy,
        # an empty dict is sent as {} (as KubeSpawner does), None leaves the field out
        "lifecycle": api_fields("V1Lifecycle", lifecycle_hooks)
        if lifecycle_hooks
        else lifecycle_hooks,
        "securityContext": container_context or None,
    }
    notebook.update({k: v for k, v in optional_container_fields.items() if v is not None})
    if extra_container_config:
        notebook = _apply_overrides(
            notebook,
            "V1Container",
            extra_container_config,
            what="notebook_container",
            changes_name="extra_container_config",
            logger=logger,
        )

    spec: JSON = {
        "containers": [notebook, *_api_list("V1Container", extra_containers or [])],
        "restartPolicy": "OnFailure",
        "volumes": _api_list("V1Volume", all_volumes),
    }
    if image_pull_secrets is not None:
        spec["imagePullSecrets"] = [
            {"name": ref} if isinstance(ref, str) else api_fields("V1LocalObjectReference", ref)
            for ref in image_pull_secrets
        ]
    if node_selector:
        spec["nodeSelector"] = dict(node_selector)
    if pod_context:
        spec["securityContext"] = pod_context
    if service_account is not None:
        spec["serviceAccountName"] = service_account
    if automount_service_account_token is not None:
        spec["automountServiceAccountToken"] = automount_service_account_token
    elif service_account is None:
        # no explicit service account: do not hand the pod the namespace default's token
        spec["automountServiceAccountToken"] = False
    if tolerations:
        spec["tolerations"] = _api_list("V1Toleration", tolerations)
    if init_containers:
        spec["initContainers"] = _api_list("V1Container", init_containers)
    if scheduler_name:
        spec["schedulerName"] = scheduler_name
    affinity = {
        "nodeAffinity": _node_affinity(node_affinity_preferred, node_affinity_required),
        "podAffinity": _affinity(
            pod_affinity_preferred,
            pod_affinity_required,
            "V1WeightedPodAffinityTerm",
            "V1PodAffinityTerm",
        ),
        "podAntiAffinity": _affinity(
            pod_anti_affinity_preferred,
            pod_anti_affinity_required,
            "V1WeightedPodAffinityTerm",
            "V1PodAffinityTerm",
        ),
    }
    if any(affinity.values()):
        spec["affinity"] = {k: v for k, v in affinity.items() if v}
    if priority_class_name:
        spec["priorityClassName"] = priority_class_name
    if extra_pod_config:
        spec = _apply_overrides(
            spec,
            "V1PodSpec",
            extra_pod_config,
            what="pod.spec",
            changes_name="extra_pod_config",
            logger=logger,
        )

    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": dict(labels or {}),
            "annotations": dict(annotations or {}),
        },
        "spec": spec,
    }


def _node_affinity(preferred: Sequence[Any] | None, required: Sequence[Any] | None) -> JSON | None:
    if not (preferred or required):
        return None
    result: JSON = {}
    if preferred:
        result["preferredDuringSchedulingIgnoredDuringExecution"] = _api_list(
            "V1PreferredSchedulingTerm", preferred
        )
    if required:
        result["requiredDuringSchedulingIgnoredDuringExecution"] = {
            "nodeSelectorTerms": _api_list("V1NodeSelectorTerm", required)
        }
    return result


def make_pvc(  # noqa: PLR0917 - KubeSpawner's positional signature
    name: str,
    storage_class: str | None,
    access_modes: Sequence[str] | None,
    selector: Mapping[str, Any] | None,
    storage: str | None,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> JSON:
    """A PersistentVolumeClaim for one user's storage (seed 003's ``make_pvc``)."""
    metadata: JSON = {
        "name": name,
        "labels": dict(labels or {}),
        "annotations": dict(annotations or {}),
    }
    spec: JSON = {"resources": {"requests": {"storage": storage}}}
    if access_modes is not None:
        spec["accessModes"] = list(access_modes)
    if storage_class is not None:
        # the beta annotation is still honoured by older provisioners
        metadata["annotations"]["volume.beta.kubernetes.io/storage-class"] = storage_class
        spec["storageClassName"] = storage_class
    if selector:
        spec["selector"] = copy.deepcopy(dict(selector))
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": metadata, "spec": spec}


def make_owner_reference(name: str, uid: str) -> JSON:
    """An ownerReference to the user's pod: the object is garbage-collected with the pod."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": name,
        "uid": uid,
        "blockOwnerDeletion": True,
        "controller": False,
    }


def make_service(  # noqa: PLR0917 - KubeSpawner's positional signature
    name: str,
    port: int,
    selector: Mapping[str, str],
    owner_references: Sequence[Mapping[str, Any]],
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> JSON:
    """A ClusterIP Service named like the pod, port ``http`` -> the server's port."""
    return {
        "kind": "Service",
        "metadata": {
            "name": name,
            "labels": dict(labels or {}),
            "annotations": dict(annotations or {}),
            "ownerReferences": [dict(ref) for ref in owner_references],
        },
        "spec": {
            "type": "ClusterIP",
            "ports": [{"name": "http", "port": port, "targetPort": port}],
            "selector": dict(selector),
        },
    }


def make_secret(  # noqa: PLR0917 - KubeSpawner's positional signature
    name: str,
    username: str,
    key: str,
    cert: str,
    ca_bundle: str,
    owner_references: Sequence[Mapping[str, Any]],
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> JSON:
    """The internal-SSL Secret mounted into the pod (``ssl.key``, ``ssl.crt``, CA bundle).

    ``ca_bundle`` is the notebooks CA followed by the hub CA, as the server must trust both.
    ``username`` is accepted for signature parity with KubeSpawner and is not stored.
    """
    del username

    def encode(text: str) -> str:
        return base64.b64encode(text.encode("utf-8")).decode("utf-8")

    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "labels": dict(labels or {}),
            "annotations": dict(annotations or {}),
            "ownerReferences": [dict(ref) for ref in owner_references],
        },
        "data": {
            "ssl.key": encode(key),
            "ssl.crt": encode(cert),
            "notebooks-ca_trust.crt": encode(ca_bundle),
        },
    }


def join_ca_bundle(notebooks_ca: str, hub_ca: str) -> str:
    """The CA bundle KubeSpawner writes: notebooks CA without trailing newlines, then hub CA."""
    return notebooks_ca.strip("\n") + "\n" + hub_ca


def make_namespace(
    name: str,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> JSON:
    """A Namespace for one user (``enable_user_namespaces``)."""
    return {
        "metadata": {
            "name": name,
            "labels": dict(labels or {}),
            "annotations": dict(annotations or {}),
        }
    }
