"""``kubernetes_asyncio`` client models and Kubernetes API JSON, both ways, as in KubeSpawner 7.1.

KubeSpawner's options may hold client models, its public methods return them, and the spawner
itself sends plain API JSON. This module is where the two meet.

**Configuration fragments -> API JSON** (:func:`to_api_json`, :func:`api_fields`,
:func:`apply_overrides`, :func:`request_body`). KubeSpawner's options may hold dicts with
snake_case or camelCase keys, ``kubernetes_asyncio`` client model objects (``V1Container``,
``V1Volume``, ``V1Toleration``, ...), or any mixture at any depth (a dict whose value is a
model, a model holding a dict). KubeSpawner builds the outer model of each item and lets the
client serialise the rest when it sends the request; the rules that result, reproduced here
without building models:

- a model anywhere serialises to its API fields (``attribute_map``), ``None`` fields left out;
- a dict item's *top-level* keys may be attribute or API names and become API names, ``None``
  values there are dropped, an unknown key raises ``ValueError`` naming the key and the model;
- deeper dict levels are passed through as given (after models inside them are serialised);
- a model given where another model is expected raises ``ValueError`` (KubeSpawner: the same).

Everything returned is a fresh structure: callers' options are never shared or mutated.

**API JSON -> client models** (:func:`pod`, :func:`pvc`, :func:`service`, ...). The spawner builds
and sends plain API JSON (:mod:`kubecache.spawner.manifests`); only the public surface that
KubeSpawner users program against (``get_pod_manifest()``, ``modify_pod_hook``,
:mod:`kubecache.spawner.objects`) hands out model objects, converted here on demand. The client's
model package is imported on first use.

KubeSpawner does not build models all the way down: it models the objects it assembles itself
(the pod, its spec and metadata, the notebook container with its ports, env vars, resources,
mounts and lifecycle, the outer object of each configured volume, container, toleration and
affinity term) and keeps what it was given as plain data below that (security contexts, a
volume's ``persistentVolumeClaim``, a container's ``securityContext``, fields set through
``extra_pod_config``/``extra_container_config``). Code written against KubeSpawner reads
``pod.spec.containers[0].env[0].name`` and ``pod.spec.volumes[0].persistent_volume_claim
["claimName"]`` alike, so the same shape is rebuilt here from a table (:data:`POD_SHAPE`).
Nothing is lost: serialising the result gives back exactly the JSON it was made from.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

JSON = dict[str, Any]


def is_model(value: Any) -> bool:
    """A ``kubernetes_asyncio`` (OpenAPI generated) model instance."""
    cls = type(value)
    return isinstance(getattr(cls, "openapi_types", None), dict) and isinstance(
        getattr(cls, "attribute_map", None), dict
    )


def to_api_json(value: Any) -> Any:
    """``value`` in API JSON form: models serialised at every depth, containers copied."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {key: to_api_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_api_json(item) for item in value]
    if is_model(value):
        fields: JSON = {}
        for attribute, api_name in type(value).attribute_map.items():
            item = getattr(value, attribute, None)
            if item is not None:
                fields[api_name] = to_api_json(item)
        return fields
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    return value


@cache
def field_names(model_name: str) -> tuple[dict[str, str], frozenset[str]]:
    """(attribute name -> API name, the API names) of a client model, e.g. ``V1Container``."""
    from kubernetes_asyncio.client import models  # loaded on first use

    field_map: dict[str, str] = getattr(models, model_name).attribute_map
    return field_map, frozenset(field_map.values())


def api_name(model_name: str, key: str) -> str | None:
    """The API field name of ``key`` (either spelling) in ``model_name``; None if unknown."""
    field_map, api_names = field_names(model_name)
    if key in field_map:
        return field_map[key]
    return key if key in api_names else None


def api_fields(model_name: str, obj: Any) -> JSON:
    """One item of an option (dict in either key style, or a ``model_name`` model) as API JSON."""
    if is_model(obj):
        if type(obj).__name__ != model_name:
            raise ValueError(
                f"Expected a dict or a {model_name}, got a {type(obj).__name__}: {obj!r}"
            )
        result: JSON = to_api_json(obj)
        return result
    if not isinstance(obj, Mapping):
        raise ValueError(f"Expected a dict or a {model_name}, got {type(obj).__name__}: {obj!r}")
    fields: JSON = {}
    for key, value in obj.items():
        name = api_name(model_name, key)
        if name is None:
            raise ValueError(f"'{model_name}' did not have an attribute matching '{key}'")
        if value is not None:
            fields[name] = to_api_json(value)
    return fields


def api_list(model_name: str, items: Iterable[Any]) -> list[JSON]:
    return [api_fields(model_name, item) for item in items]


def apply_overrides(
    target: JSON,
    model_name: str,
    changes: Any,
    *,
    what: str,
    changes_name: str,
    logger: logging.Logger | None,
) -> JSON:
    """Set every field of ``changes`` on ``target`` (None removes it), logging what it replaces.

    ``changes`` is a dict (either key style) or a ``model_name`` model, whose unset (falsy)
    fields change nothing, as in KubeSpawner's ``update_k8s_model``.
    """
    if is_model(changes):
        changes = {key: value for key, value in api_fields(model_name, changes).items() if value}
    elif not isinstance(changes, Mapping):
        raise ValueError(
            f"{changes_name} must be a dict or a {model_name}, got {type(changes).__name__}"
        )
    result = dict(target)
    for key, value in changes.items():
        name = api_name(model_name, key)
        if name is None:
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
            result[name] = to_api_json(value)
    return result


def override_fields(model_name: str, changes: Any) -> frozenset[str]:
    """The API names of the fields an override (extra_pod_config, ...) sets."""
    if is_model(changes):
        return frozenset(api_fields(model_name, changes))
    if not isinstance(changes, Mapping):
        return frozenset()
    return frozenset(name for key in changes if (name := api_name(model_name, key)))


def request_body(manifest: Any, source: str) -> JSON:
    """What a hook or overridden manifest method returned (model or dict), as a request body."""
    body = to_api_json(manifest)
    if not isinstance(body, dict) or not isinstance(body.get("metadata"), dict):
        raise ValueError(
            f"{source} must return a Kubernetes object (client model or dict) with metadata, "
            f"got {type(manifest).__name__}"
        )
    return body


# ------------------------------------------------------------------ API JSON -> models

#: (model name, {API field: shape of its value}); a one-item list applies its shape to every
#: item of a list value; fields not listed keep their JSON as it is.
Shape = tuple[str, dict[str, Any]]


def _leaf(model_name: str) -> Shape:
    return (model_name, {})


NOTEBOOK_CONTAINER: Shape = (
    "V1Container",
    {
        "ports": [_leaf("V1ContainerPort")],
        "env": [_leaf("V1EnvVar")],
        "resources": _leaf("V1ResourceRequirements"),
        "volumeMounts": [_leaf("V1VolumeMount")],
        "lifecycle": _leaf("V1Lifecycle"),
    },
)
# KubeSpawner builds pod anti-affinity with V1PodAffinity too (same fields)
_POD_AFFINITY: Shape = (
    "V1PodAffinity",
    {
        "preferredDuringSchedulingIgnoredDuringExecution": [_leaf("V1WeightedPodAffinityTerm")],
        "requiredDuringSchedulingIgnoredDuringExecution": [_leaf("V1PodAffinityTerm")],
    },
)
AFFINITY: Shape = (
    "V1Affinity",
    {
        "nodeAffinity": (
            "V1NodeAffinity",
            {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    _leaf("V1PreferredSchedulingTerm")
                ],
                "requiredDuringSchedulingIgnoredDuringExecution": (
                    "V1NodeSelector",
                    {"nodeSelectorTerms": [_leaf("V1NodeSelectorTerm")]},
                ),
            },
        ),
        "podAffinity": _POD_AFFINITY,
        "podAntiAffinity": _POD_AFFINITY,
    },
)
POD_SPEC: Shape = (
    "V1PodSpec",
    {
        # containers: the notebook's shape for the first, _leaf("V1Container") for the rest
        "imagePullSecrets": [_leaf("V1LocalObjectReference")],
        "tolerations": [_leaf("V1Toleration")],
        "initContainers": [_leaf("V1Container")],
        "volumes": [_leaf("V1Volume")],
        "affinity": AFFINITY,
    },
)
OBJECT_META = _leaf("V1ObjectMeta")


@cache
def _configuration() -> Any:
    """Models built here are data, like the JSON they come from: no client-side validation
    (the API server validates, as it does for the JSON the spawner sends)."""
    from kubernetes_asyncio.client import Configuration  # loaded on first use

    configuration = Configuration()
    configuration.client_side_validation = False
    return configuration


@cache
def _model_class(model_name: str) -> tuple[type, dict[str, str]]:
    """The model class and its API name -> attribute name table."""
    from kubernetes_asyncio.client import models  # loaded on first use

    cls = getattr(models, model_name)
    return cls, {api: attribute for attribute, api in cls.attribute_map.items()}


def build(shape: Shape, data: Any, *, raw: Iterable[str] = ()) -> Any:
    """``data`` (API JSON) as the model of ``shape``; fields in ``raw`` stay JSON.

    Data that is not a dict (a model already, or a value a hook put there) is returned as is.
    """
    if not isinstance(data, Mapping):
        return data
    model_name, fields = shape
    cls, attributes = _model_class(model_name)
    keep_raw = frozenset(raw)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        attribute = attributes.get(key)
        if attribute is None:
            raise ValueError(f"'{model_name}' has no field '{key}'")
        sub_shape = None if key in keep_raw else fields.get(key)
        kwargs[attribute] = _convert(sub_shape, value)
    return cls(local_vars_configuration=_configuration(), **kwargs)


def _convert(shape: Any, value: Any) -> Any:
    if shape is None or value is None or (isinstance(value, Mapping) and not value):
        # KubeSpawner passes an empty option ({}) through as it is
        return value
    if isinstance(shape, list):
        return [build(shape[0], item) for item in value] if isinstance(value, list) else value
    return build(shape, value)


def pod(
    data: JSON,
    *,
    spec_overrides: Iterable[str] = (),
    container_overrides: Iterable[str] = (),
) -> Any:
    """A ``V1Pod`` of pod JSON. ``spec_overrides``/``container_overrides``: API names of the
    fields ``extra_pod_config``/``extra_container_config`` set, which KubeSpawner leaves as
    they were given."""
    result = build(("V1Pod", {}), {k: v for k, v in data.items() if k not in ("metadata", "spec")})
    if "metadata" in data:
        result.metadata = build(OBJECT_META, data["metadata"])
    spec = data.get("spec")
    if isinstance(spec, Mapping):
        spec_raw = frozenset(spec_overrides)
        result.spec = build(POD_SPEC, spec, raw=spec_raw)
        containers = spec.get("containers")
        if "containers" not in spec_raw and isinstance(containers, list) and containers:
            result.spec.containers = [
                build(NOTEBOOK_CONTAINER, containers[0], raw=container_overrides),
                *(build(_leaf("V1Container"), item) for item in containers[1:]),
            ]
    return result


def pvc(data: JSON) -> Any:
    """A ``V1PersistentVolumeClaim`` (KubeSpawner models the spec and its resources)."""
    spec_shape = ("V1PersistentVolumeClaimSpec", {"resources": _leaf("V1ResourceRequirements")})
    return build(("V1PersistentVolumeClaim", {"metadata": OBJECT_META, "spec": spec_shape}), data)


def owner_reference(data: JSON) -> Any:
    return build(_leaf("V1OwnerReference"), data)


_OWNED_META = ("V1ObjectMeta", {"ownerReferences": [_leaf("V1OwnerReference")]})


def service(data: JSON) -> Any:
    """A ``V1Service`` with modelled spec and ports."""
    spec_shape = ("V1ServiceSpec", {"ports": [_leaf("V1ServicePort")]})
    return build(("V1Service", {"metadata": _OWNED_META, "spec": spec_shape}), data)


def secret(data: JSON) -> Any:
    return build(("V1Secret", {"metadata": _OWNED_META}), data)


def namespace(data: JSON) -> Any:
    return build(("V1Namespace", {"metadata": OBJECT_META}), data)


_INGRESS_BACKEND = (
    "V1IngressBackend",
    {
        "service": (
            "V1IngressServiceBackend",
            {"port": _leaf("V1ServiceBackendPort")},
        )
    },
)
INGRESS: Shape = (
    "V1Ingress",
    {
        "metadata": OBJECT_META,
        "spec": (
            "V1IngressSpec",
            {
                "rules": [
                    (
                        "V1IngressRule",
                        {
                            "http": (
                                "V1HTTPIngressRuleValue",
                                {"paths": [("V1HTTPIngressPath", {"backend": _INGRESS_BACKEND})]},
                            )
                        },
                    )
                ],
                "tls": [_leaf("V1IngressTLS")],
            },
        ),
    },
)
ENDPOINTS: Shape = (
    "V1Endpoints",
    {
        "metadata": OBJECT_META,
        "subsets": [
            (
                "V1EndpointSubset",
                {
                    "addresses": [_leaf("V1EndpointAddress")],
                    "ports": [_leaf("CoreV1EndpointPort")],
                },
            )
        ],
    },
)
ROUTE_SERVICE: Shape = (
    "V1Service",
    {"metadata": OBJECT_META, "spec": ("V1ServiceSpec", {"ports": [_leaf("V1ServicePort")]})},
)


def pod_model(
    data: JSON, *, extra_pod_config: Mapping[str, Any], extra_container_config: Any
) -> Any:
    """Pod JSON as the ``V1Pod`` KubeSpawner hands out (get_pod_manifest, modify_pod_hook):
    fields set through extra_pod_config/extra_container_config stay as configured."""
    return pod(
        data,
        spec_overrides=override_fields("V1PodSpec", extra_pod_config),
        container_overrides=override_fields("V1Container", extra_container_config),
    )


__all__ = [
    "AFFINITY",
    "ENDPOINTS",
    "INGRESS",
    "JSON",
    "NOTEBOOK_CONTAINER",
    "POD_SPEC",
    "ROUTE_SERVICE",
    "api_fields",
    "api_list",
    "api_name",
    "apply_overrides",
    "build",
    "field_names",
    "is_model",
    "namespace",
    "override_fields",
    "owner_reference",
    "pod",
    "pod_model",
    "pvc",
    "request_body",
    "secret",
    "service",
    "to_api_json",
]
