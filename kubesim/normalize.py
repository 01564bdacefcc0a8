"""Values as the API server stores them: what decoding a request into the Go types and encoding
the stored object back does to the fields kubesim's clients send.

- Quantities are canonicalised (resource.Quantity round trip): ``cpu: 1.0`` → ``"1"``,
  ``0.5`` → ``"500m"``, ``2`` → ``"2"``, ``"1024Mi"`` → ``"1Gi"``, ``null`` → ``"0"``
  (Quantity.UnmarshalJSON reads null as the zero quantity). A value that is no quantity
  raises :class:`~kubesim.quantity.QuantityError` (the server answers 400).
- ``null`` in a string map (labels, annotations, nodeSelector, a Service selector) is the
  empty string, as encoding/json leaves a string map value at its zero value.
- A resourceFieldRef's divisor, a non-pointer Quantity, always serialises: absent → ``"0"``.

Pure: changes the object in place, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from kubesim.quantity import canonical_text

__all__ = ["normalize"]

_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


def _dicts(value: Any) -> Iterator[dict[str, Any]]:
    """The dict items of a list (anything else is validation's business)."""
    if isinstance(value, list):
        yield from (item for item in value if isinstance(item, dict))


def _child(parent: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(parent, dict):
            return None
        parent = parent.get(key)
    return parent


def _quantity_map(parent: Any, key: str) -> None:
    values = _child(parent, key)
    if isinstance(values, dict):
        for name, raw in values.items():
            values[name] = canonical_text(raw)


def _requirements(resources: Any) -> None:
    for key in ("limits", "requests"):
        _quantity_map(resources, key)


def _string_map(parent: Any, key: str) -> None:
    values = _child(parent, key)
    if isinstance(values, dict):
        for name, value in values.items():
            if value is None:
                values[name] = ""


def _divisor(source: Any) -> None:
    ref = _child(source, "resourceFieldRef")
    if isinstance(ref, dict):
        ref["divisor"] = canonical_text(ref.get("divisor"))


def _downward_items(source: Any) -> None:
    for item in _dicts(_child(source, "items")):
        _divisor(item)


def _pod(obj: dict[str, Any]) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    for key in _CONTAINER_LISTS:
        for container in _dicts(spec.get(key)):
            _requirements(container.get("resources"))
            for env in _dicts(container.get("env")):
                _divisor(env.get("valueFrom"))
    _quantity_map(spec, "overhead")
    _requirements(spec.get("resources"))
    _string_map(spec, "nodeSelector")
    for volume in _dicts(spec.get("volumes")):
        empty_dir = volume.get("emptyDir")
        if isinstance(empty_dir, dict) and "sizeLimit" in empty_dir:
            empty_dir["sizeLimit"] = canonical_text(empty_dir["sizeLimit"])
        _downward_items(volume.get("downwardAPI"))
        for source in _dicts(_child(volume, "projected", "sources")):
            _downward_items(source.get("downwardAPI"))
        claim = _child(volume, "ephemeral", "volumeClaimTemplate", "spec")
        _requirements(_child(claim, "resources"))


def _pvc(obj: dict[str, Any]) -> None:
    _requirements(_child(obj, "spec", "resources"))
    _quantity_map(obj.get("status"), "capacity")
    _quantity_map(obj.get("status"), "allocatedResources")


def _node(obj: dict[str, Any]) -> None:
    _quantity_map(obj.get("status"), "capacity")
    _quantity_map(obj.get("status"), "allocatable")


def _service(obj: dict[str, Any]) -> None:
    _string_map(obj.get("spec"), "selector")


_KINDS: dict[str, Callable[[dict[str, Any]], None]] = {
    "pods": _pod,
    "persistentvolumeclaims": _pvc,
    "nodes": _node,
    "services": _service,
}


def normalize(resource: str, obj: dict[str, Any]) -> None:
    """Rewrite ``obj`` in place into the form the API server stores and returns."""
    metadata = obj.get("metadata")
    _string_map(metadata, "labels")
    _string_map(metadata, "annotations")
    kind = _KINDS.get(resource)
    if kind is not None:
        kind(obj)
