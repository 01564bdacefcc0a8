"""``kubespawner.objects`` 7.1's public API: same functions, signatures, defaults, return types.

Code written for KubeSpawner (``hub.extraConfig`` snippets, subclasses, ``KubeIngressProxy`` style
helpers) imports these and gets ``kubernetes_asyncio`` client models (``V1Pod``,
``V1PersistentVolumeClaim``, ``V1Service``, ``V1Secret``, ``V1Namespace``, ``V1OwnerReference``,
``V1Ingress``, ...) shaped like KubeSpawner's. Each builds the API JSON with the pure builders the
spawner itself uses (:mod:`kubecache.spawner.manifests`, :mod:`kubecache.spawner.ingress`) and
converts it (:mod:`kubecache.spawner.models`); serialising the result gives KubeSpawner 7.1's JSON
for the same arguments. The spawner's own hot path never goes through here: it sends the JSON.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from kubecache.spawner import ingress, manifests, models
from kubecache.spawner.models import override_fields


def make_pod(*args: Any, **kwargs: Any) -> Any:
    """A ``V1Pod`` for one user's server (arguments of ``kubespawner.objects.make_pod``)."""
    bound = _POD_SIGNATURE.bind(*args, **kwargs)
    bound.apply_defaults()
    arguments = bound.arguments
    pod = manifests.pod_json(**arguments)
    return models.pod(
        pod,
        spec_overrides=override_fields("V1PodSpec", arguments["extra_pod_config"] or {}),
        container_overrides=override_fields(
            "V1Container", arguments["extra_container_config"] or {}
        ),
    )


_POD_SIGNATURE = inspect.signature(manifests.pod_json)
make_pod.__signature__ = _POD_SIGNATURE.replace(return_annotation=Any)  # type: ignore[attr-defined]


def make_pvc(  # noqa: PLR0917 - KubeSpawner's positional signature
    name: str,
    storage_class: str | None,
    access_modes: Sequence[str] | None,
    selector: Mapping[str, Any] | None,
    storage: str | None,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> Any:
    """A ``V1PersistentVolumeClaim`` for one user's storage."""
    return models.pvc(
        manifests.pvc_json(
            name, storage_class, access_modes, selector, storage, labels, annotations
        )
    )


def make_ingress(  # noqa: PLR0917 - KubeSpawner's positional signature
    name: str,
    routespec: str,
    target: str,
    data: dict[str, Any],
    namespace: str,
    common_labels: Mapping[str, str] | None = None,
    ingress_extra_labels: Mapping[str, str] | None = None,
    ingress_extra_annotations: Mapping[str, str] | None = None,
    ingress_class_name: str | None = None,
    ingress_specifications: Sequence[Mapping[str, Any]] | None = None,
    reuse_existing_services: bool = False,
) -> tuple[Any, Any, Any]:
    """(``V1Endpoints`` or None, ``V1Service`` or None, ``V1Ingress``) for one proxy route."""
    endpoints, service, route = ingress.ingress_json(
        name,
        routespec,
        target,
        data,
        namespace,
        common_labels,
        ingress_extra_labels,
        ingress_extra_annotations,
        ingress_class_name,
        ingress_specifications,
        reuse_existing_services,
    )
    return (
        None if endpoints is None else models.build(models.ENDPOINTS, endpoints),
        None if service is None else models.build(models.ROUTE_SERVICE, service),
        models.build(models.INGRESS, route),
    )


def make_owner_reference(name: str, uid: str) -> Any:
    """A ``V1OwnerReference`` to the user's pod (objects garbage-collected with it)."""
    return models.owner_reference(manifests.owner_reference_json(name, uid))


def make_secret(  # noqa: PLR0917 - KubeSpawner's positional signature
    name: str,
    username: str,
    cert_paths: Mapping[str, str],
    hub_ca: str,
    owner_references: Sequence[Any],
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> Any:
    """A ``V1Secret`` with the internal-SSL files (``keyfile``, ``certfile``, ``cafile`` of
    ``cert_paths``, then the hub CA at path ``hub_ca``), read now."""

    def read(path: str) -> str:
        with open(path, encoding="utf-8") as f:
            return f.read()

    secret = manifests.secret_json(
        name,
        username,
        read(cert_paths["keyfile"]),
        read(cert_paths["certfile"]),
        manifests.join_ca_bundle(read(cert_paths["cafile"]), read(hub_ca)),
        owner_references,
        labels,
        annotations,
    )
    result = models.secret(secret)
    # KubeSpawner keeps the references exactly as passed (models stay models)
    result.metadata.owner_references = list(owner_references)
    return result


def make_service(  # noqa: PLR0917 - KubeSpawner's positional signature
    name: str,
    port: int,
    selector: Mapping[str, str],
    owner_references: Sequence[Any],
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> Any:
    """A ``V1Service`` (ClusterIP, port ``http``) named like the pod it selects."""
    result = models.service(
        manifests.service_json(name, port, selector, owner_references, labels, annotations)
    )
    result.metadata.owner_references = list(owner_references)
    return result


def make_namespace(
    name: str,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> Any:
    """A ``V1Namespace`` for one user (``enable_user_namespaces``)."""
    return models.namespace(manifests.namespace_json(name, labels, annotations))


__all__ = [
    "make_ingress",
    "make_namespace",
    "make_owner_reference",
    "make_pod",
    "make_pvc",
    "make_secret",
    "make_service",
]
