"""API JSON -> ``kubernetes_asyncio`` client models, shaped like KubeSpawner 7.1's objects.

The spawner builds and sends plain API JSON (:mod:`spawner.builders`); only the public surface
that KubeSpawner users program against (``get_pod_manifest()``, ``modify_pod_hook``,
:mod:`spawner.objects`) hands out model objects, converted here on demand. The client's model
package is imported on first use.

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

from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from spawner.api_json import JSON

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


__all__ = [
    "AFFINITY",
    "ENDPOINTS",
    "INGRESS",
    "NOTEBOOK_CONTAINER",
    "POD_SPEC",
    "ROUTE_SERVICE",
    "build",
    "namespace",
    "owner_reference",
    "pod",
    "pvc",
    "secret",
    "service",
]
