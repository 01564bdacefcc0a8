"""The labels, annotations and small parts of KubeSpawner 7.1's manifests, from values.

Labels and annotations are KubeSpawner 7.1's, so selectors, dashboards and the cacher see our
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

Which option goes into which argument of :mod:`spawner.builders` is the spawner's
``get_*_manifest`` methods' business (:mod:`spawner.kubespawner_methods`), as in KubeSpawner:
they call ``_expand_all`` and ``_build_*_labels`` through ``self`` so a subclass's override
takes effect. Everything here takes values.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import jupyterhub

from spawner import builders, models, slugs
from spawner.api_json import override_fields
from spawner.naming import KUBESPAWNER_COMPAT_VERSION

__all__ = [
    "KUBESPAWNER_COMPAT_VERSION",
    "command",
    "common_annotations",
    "common_labels",
    "pod_labels",
    "pod_model",
    "pvc_labels",
    "secret_json",
]


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


def secret_json(
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
    return builders.secret_json(
        name=name,
        username=user_name,
        key=_read(cert_paths["keyfile"]),
        cert=_read(cert_paths["certfile"]),
        ca_bundle=builders.join_ca_bundle(_read(cert_paths["cafile"]), _read(hub_ca_path)),
        owner_references=[owner_reference],
        labels=labels,
        annotations=annotations,
    )


def pod_model(
    pod: dict[str, Any], *, extra_pod_config: Mapping[str, Any], extra_container_config: Any
) -> Any:
    """Pod JSON as the ``V1Pod`` KubeSpawner hands out (get_pod_manifest, modify_pod_hook):
    fields set through extra_pod_config/extra_container_config stay as configured."""
    return models.pod(
        pod,
        spec_overrides=override_fields("V1PodSpec", extra_pod_config),
        container_overrides=override_fields("V1Container", extra_container_config),
    )
