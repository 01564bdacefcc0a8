"""Configuration fragments -> Kubernetes API JSON, whatever form KubeSpawner 7.1 accepts them in.

KubeSpawner's options may hold dicts with snake_case or camelCase keys, ``kubernetes_asyncio``
client model objects (``V1Container``, ``V1Volume``, ``V1Toleration``, ...), or any mixture at
any depth (a dict whose value is a model, a model holding a dict). KubeSpawner builds the outer
model of each item and lets the client serialise the rest when it sends the request; the rules
that result, reproduced here without building models:

- a model anywhere serialises to its API fields (``attribute_map``), ``None`` fields left out;
- a dict item's *top-level* keys may be attribute or API names and become API names, ``None``
  values there are dropped, an unknown key raises ``ValueError`` naming the key and the model;
- deeper dict levels are passed through as given (after models inside them are serialised);
- a model given where another model is expected raises ``ValueError`` (KubeSpawner: the same).

Everything returned is a fresh structure: callers' options are never shared or mutated.
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


__all__ = [
    "JSON",
    "api_fields",
    "api_list",
    "api_name",
    "apply_overrides",
    "field_names",
    "is_model",
    "override_fields",
    "request_body",
    "to_api_json",
]
