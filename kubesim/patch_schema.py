"""The strategic-merge-patch metadata of the Go types kubesim serves.

Each list field that is not atomic carries ``patchStrategy`` (``merge``, ``merge,retainKeys``)
and, for lists of objects, ``patchMergeKey`` — copied from the struct tags of
k8s.io/api/core/v1, coordination/v1 and apimachinery's ObjectMeta. Lists absent here are
atomic (the patch replaces them), e.g. ``tolerations``, ``containerStatuses``, ``args``.
Maps always merge key by key. Pure data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Field", "Schema", "schema_for"]


@dataclass(frozen=True)
class Field:
    strategy: str = ""  # "", "merge", "merge,retainKeys", "retainKeys"
    merge_key: str = ""
    schema: Schema = field(default_factory=dict)  # of the value (objects) or of list items

    @property
    def merges(self) -> bool:
        return "merge" in self.strategy.split(",")


Schema = dict[str, Field]


def _object(**fields: Field) -> Field:
    return Field(schema=dict(fields))


def _merge_by(key: str, schema: Schema | None = None, *, retain: bool = False) -> Field:
    return Field("merge,retainKeys" if retain else "merge", key, schema or {})


_SET = Field("merge")  # a list of scalars merged as a set

OBJECT_META: Schema = {
    "finalizers": _SET,
    "ownerReferences": _merge_by("uid"),
}

_CONTAINER: Schema = {
    "ports": _merge_by("containerPort"),
    "env": _merge_by("name"),
    "volumeMounts": _merge_by("mountPath"),
    "volumeDevices": _merge_by("devicePath"),
}

POD_SPEC: Schema = {
    "volumes": _merge_by("name", retain=True),
    "initContainers": _merge_by("name", _CONTAINER),
    "containers": _merge_by("name", _CONTAINER),
    "ephemeralContainers": _merge_by("name", _CONTAINER),
    "imagePullSecrets": _merge_by("name"),
    "hostAliases": _merge_by("ip"),
    "topologySpreadConstraints": _merge_by("topologyKey"),
    "schedulingGates": _merge_by("name"),
    "resourceClaims": _merge_by("name", retain=True),
}

POD_STATUS: Schema = {
    "conditions": _merge_by("type"),
    "podIPs": _merge_by("ip"),
    "hostIPs": _merge_by("ip"),
    "resourceClaimStatuses": _merge_by("name", retain=True),
}

_CONDITIONS: Schema = {"conditions": _merge_by("type")}

_SCHEMAS: dict[str, Schema] = {
    "pods": {"spec": Field(schema=POD_SPEC), "status": Field(schema=POD_STATUS)},
    "services": {
        "spec": _object(ports=_merge_by("port")),
        "status": Field(schema=_CONDITIONS),
    },
    "persistentvolumeclaims": {"status": Field(schema=_CONDITIONS)},
    "namespaces": {"status": Field(schema=_CONDITIONS)},
    "nodes": {
        "spec": _object(podCIDRs=_SET),
        "status": _object(conditions=_merge_by("type"), addresses=_merge_by("type")),
    },
    "serviceaccounts": {"secrets": _merge_by("name")},
}


def schema_for(resource: str) -> Schema:
    """Top-level schema of a resource (plural API name); unknown resources merge maps only."""
    return {"metadata": Field(schema=OBJECT_META), **_SCHEMAS.get(resource, {})}
