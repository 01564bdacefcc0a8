"""The Kubernetes objects a spawner creates, as API JSON dicts (the hot path), from values.

Builders (``pod_json``, ``pvc_json``, ``service_json``, ``secret_json``, ``namespace_json``): the
arguments are ``kubespawner.objects`` 7.1's (seed 003); for the same arguments each returns what
KubeSpawner 7.1's builder serialises to (``ApiClient().sanitize_for_serialization`` of its model
objects): the unit tests compare both. :mod:`kubecache.spawner.objects` wraps these into
KubeSpawner's public API, returning client model objects (:mod:`kubecache.spawner.models`). Which
option goes into which argument is the spawner's ``get_*_manifest`` methods' business
(:mod:`kubecache.spawner.kubespawner_methods`), as in KubeSpawner: they call ``_expand_all`` and
``_build_*_labels`` through ``self`` so a subclass's override takes effect. Everything here takes
values. Facts carried over from KubeSpawner:

- Items of ``volumes``, ``volume_mounts``, ``init_containers``, ``extra_containers``,
  ``tolerations``, affinity terms, ``image_pull_secrets``, ``lifecycle_hooks``,
  ``extra_container_config`` and ``extra_pod_config`` may be client models, or dicts with
  snake_case or camelCase keys at their top level, with models at any depth
  (:mod:`kubecache.spawner.models`).
- Unknown top-level keys raise ``ValueError`` naming the key and the object kind.
- Environment variables are ordered so that a variable referring to another with ``$(NAME)``
  comes after it, otherwise by key.
- Security contexts take camelCase keys only (models inside them are serialised).

Intentional differences (documented, not accidental):

- ``pod_json`` does not mutate the ``env``, ``volumes`` and ``volume_mounts`` passed in
  (KubeSpawner appends the internal-SSL volume and variables to the caller's objects).
- ``secret_json`` takes the certificate *contents*, not file paths, so it stays pure
  (:func:`kubecache.spawner.objects.make_secret` reads the files, as KubeSpawner's does).
- Required-field checks of the client models (e.g. a volume without ``name``) are left to the
  API server, whose 422 names the field.

Labels and annotations (``common_labels``, ``pod_labels``, ``pvc_labels``,
``common_annotations``) are KubeSpawner 7.1's, so selectors, dashboards and the cacher see our
objects exactly like KubeSpawner's:

- every object: ``hub.jupyter.org/username`` (label-safe slug), ``extra_labels`` (expanded), then
  ``common_labels`` (``app``, ``heritage``, ``app.kubernetes.io/name``/``managed-by``);
- pods (and service selectors) add ``component``/``app.kubernetes.io/component`` =
  ``component_label`` and ``hub.jupyter.org/servername``;
- PVCs use ``storage_extra_labels`` and ``component: singleuser-storage``;
- annotations carry the raw user and server names and the KubeSpawner/JupyterHub versions.

The ``hub.jupyter.org/kubespawner-version`` annotation and the state's ``kubespawner_version``
say ``7.1.0``: the naming scheme and object shapes we reproduce, which lets a hub switch back
to KubeSpawner 7.1 without its legacy-name upgrade path kicking in.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import jupyterhub

from kubecache.spawner import slugs
from kubecache.spawner.models import JSON, api_fields, api_list, apply_overrides, to_api_json
from kubecache.spawner.naming import KUBESPAWNER_COMPAT_VERSION

_ENV_REFERENCE = re.compile(r"\$\(([^)]+)\)")
INTERNAL_CERTS_VOLUME = "jupyterhub-internal-certs"


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


def _security_context(context: Any, what: str) -> JSON:
    """A security context option: camelCase keys only (KubeSpawner's rule); a model is
    serialised first."""
    fields = to_api_json(context)
    if not isinstance(fields, dict):
        raise ValueError(f"{what} must be a dict, got {type(context).__name__}")
    for key in fields:
        if "_" in key:
            raise ValueError(f"{what}'s keys should have k8s camelCase names, got '{key}'")
    return fields


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
        result["preferredDuringSchedulingIgnoredDuringExecution"] = api_list(
            preferred_model, preferred
        )
    if required:
        result["requiredDuringSchedulingIgnoredDuringExecution"] = api_list(
            required_model, required
        )
    return result


def pod_json(  # noqa: PLR0917 - one argument per KubeSpawner option, as in seed 003
    name: str,
    cmd: list[str] | None,
    port: int,
    image: str,
    image_pull_policy: str | None = None,
    image_pull_secrets: Sequence[Any] | None = None,
    node_selector: Mapping[str, str] | None = None,
    uid: int | None = None,
    gid: int | None = None,
    fs_gid: int | None = None,
    supplemental_gids: Sequence[int] | None = None,
    privileged: bool = False,
    allow_privilege_escalation: bool | None = False,
    container_security_context: Any = None,
    pod_security_context: Any = None,
    env: Mapping[str, Any] | None = None,
    working_dir: str | None = None,
    volumes: Sequence[Any] | None = None,
    volume_mounts: Sequence[Any] | None = None,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    cpu_limit: float | None = None,
    cpu_guarantee: float | None = None,
    mem_limit: str | int | None = None,
    mem_guarantee: str | int | None = None,
    extra_resource_limits: Mapping[str, Any] | None = None,
    extra_resource_guarantees: Mapping[str, Any] | None = None,
    lifecycle_hooks: Any = None,
    init_containers: Sequence[Any] | None = None,
    service_account: str | None = None,
    automount_service_account_token: bool | None = None,
    extra_container_config: Any = None,
    extra_pod_config: Any = None,
    extra_containers: Sequence[Any] | None = None,
    scheduler_name: str | None = None,
    tolerations: Sequence[Any] | None = None,
    node_affinity_preferred: Sequence[Any] | None = None,
    node_affinity_required: Sequence[Any] | None = None,
    pod_affinity_preferred: Sequence[Any] | None = None,
    pod_affinity_required: Sequence[Any] | None = None,
    pod_anti_affinity_preferred: Sequence[Any] | None = None,
    pod_anti_affinity_required: Sequence[Any] | None = None,
    priority_class_name: str | None = None,
    ssl_secret_name: str | None = None,
    ssl_secret_mount_path: str | None = None,
    logger: logging.Logger | None = None,
) -> JSON:
    """A Pod running one user's server: container ``notebook`` listening on ``port``.

    Parameters mean what they mean in ``kubespawner.objects.make_pod`` 7.1; the result
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
        pod_context.update(_security_context(pod_security_context, "pod_security_context"))

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
        container_context.update(
            _security_context(container_security_context, "container_security_context")
        )

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
        "volumeMounts": api_list("V1VolumeMount", mounts),
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
        notebook = apply_overrides(
            notebook,
            "V1Container",
            extra_container_config,
            what="notebook_container",
            changes_name="extra_container_config",
            logger=logger,
        )

    spec: JSON = {
        "containers": [notebook, *api_list("V1Container", extra_containers or [])],
        "restartPolicy": "OnFailure",
        "volumes": api_list("V1Volume", all_volumes),
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
        spec["tolerations"] = api_list("V1Toleration", tolerations)
    if init_containers:
        spec["initContainers"] = api_list("V1Container", init_containers)
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
        spec = apply_overrides(
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
        result["preferredDuringSchedulingIgnoredDuringExecution"] = api_list(
            "V1PreferredSchedulingTerm", preferred
        )
    if required:
        result["requiredDuringSchedulingIgnoredDuringExecution"] = {
            "nodeSelectorTerms": api_list("V1NodeSelectorTerm", required)
        }
    return result


def pvc_json(  # noqa: PLR0917 - KubeSpawner's positional signature
    name: str,
    storage_class: str | None,
    access_modes: Sequence[str] | None,
    selector: Mapping[str, Any] | None,
    storage: str | None,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> JSON:
    """A PersistentVolumeClaim for one user's storage (``kubespawner.objects.make_pvc``)."""
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
        spec["selector"] = to_api_json(selector)
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": metadata, "spec": spec}


def owner_reference_json(name: str, uid: str) -> JSON:
    """An ownerReference to the user's pod: the object is garbage-collected with the pod."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": name,
        "uid": uid,
        "blockOwnerDeletion": True,
        "controller": False,
    }


def service_json(  # noqa: PLR0917 - KubeSpawner's positional signature
    name: str,
    port: int,
    selector: Mapping[str, str],
    owner_references: Sequence[Any],
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
            "ownerReferences": to_api_json(list(owner_references)),
        },
        "spec": {
            "type": "ClusterIP",
            "ports": [{"name": "http", "port": port, "targetPort": port}],
            "selector": dict(selector),
        },
    }


def secret_json(  # noqa: PLR0917 - KubeSpawner's positional signature
    name: str,
    username: str,
    key: str,
    cert: str,
    ca_bundle: str,
    owner_references: Sequence[Any],
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
            "ownerReferences": to_api_json(list(owner_references)),
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


def namespace_json(
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


# ------------------------------------------------------------------ labels, annotations, command


def common_labels(
    *, user_name: str, extra_labels: Mapping[str, str], common_labels: Mapping[str, str]
) -> dict[str, str]:
    """Every object's labels: the user's slug, ``extra_labels``, then ``common_labels``."""
    labels = {"hub.jupyter.org/username": slugs.label_slug(user_name)}
    labels.update(extra_labels)
    labels.update(common_labels)
    return labels


def pod_labels(
    common: Mapping[str, str], *, server_name: str, component_label: str
) -> dict[str, str]:
    """A pod's labels (and its service's selector): the common ones plus component and
    server name."""
    labels = dict(common)
    labels["app.kubernetes.io/component"] = component_label
    labels["component"] = component_label
    labels["hub.jupyter.org/servername"] = slugs.label_slug(server_name)
    return labels


def pvc_labels(common: Mapping[str, str], *, component_label: str) -> dict[str, str]:
    labels = dict(common)
    # KubeSpawner's historical quirk, kept for selector compatibility: component says
    # "singleuser-storage" while app.kubernetes.io/component says the server's component
    labels["app.kubernetes.io/component"] = component_label
    labels["component"] = "singleuser-storage"
    return labels


def common_annotations(
    *, user_name: str, server_name: str, extra: Mapping[str, str]
) -> dict[str, str]:
    annotations = {"hub.jupyter.org/username": user_name}
    if server_name:
        annotations["hub.jupyter.org/servername"] = server_name
    annotations["hub.jupyter.org/kubespawner-version"] = KUBESPAWNER_COMPAT_VERSION
    annotations["hub.jupyter.org/jupyterhub-version"] = jupyterhub.__version__
    annotations.update(extra)
    return annotations


def command(
    cmd: Sequence[str] | None, args: Sequence[str], *, pod_name: str, log: logging.Logger
) -> list[str] | None:
    """The container's command: ``cmd`` plus the server's arguments; None for the image's."""
    if cmd:
        return list(cmd) + list(args)
    if args:
        log.warning(
            "Ignoring arguments for %s when using implicit command from image: %s."
            " Set KubeSpawner.cmd explicitly to support passing cli arguments.",
            pod_name,
            args,
        )
    return None


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def secret_from_files(
    *,
    name: str,
    user_name: str,
    cert_paths: Mapping[str, str],
    hub_ca_path: str,
    owner_reference: Any,
    labels: dict[str, str],
    annotations: dict[str, str],
) -> dict[str, Any]:
    """The internal_ssl Secret: the server's key and certificate read from ``cert_paths``."""
    return secret_json(
        name=name,
        username=user_name,
        key=_read(cert_paths["keyfile"]),
        cert=_read(cert_paths["certfile"]),
        ca_bundle=join_ca_bundle(_read(cert_paths["cafile"]), _read(hub_ca_path)),
        owner_references=[owner_reference],
        labels=labels,
        annotations=annotations,
    )
