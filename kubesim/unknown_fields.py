"""``fieldValidation``: the fields of a request body that its kind does not have.

The API server decodes a body into its Go type with a strict JSON decoder when the request's
``fieldValidation`` is ``Strict`` or ``Warn`` (the default since v1.23; ``fieldValidation("")``
in apiserver endpoints/handlers/rest.go): ``Strict`` answers 400 with
``strict decoding error: unknown field "spec.foo"``, ``Warn`` succeeds with one
``Warning: 299 - "unknown field \\"spec.foo\\""`` header per field, ``Ignore`` says nothing.
Either way an unknown field is dropped: it is not in the type, so it is not stored.

The field names per type are in ``api_fields.json`` (from the client's generated models, see
scripts/kubesim_fields.py). Free-form values (``object`` fields such as managedFields'
``fieldsV1``) are not looked into. Pure: no I/O beyond reading that file once.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from kubesim import errors

__all__ = ["DIRECTIVES", "check_fields", "field_validation", "prune_unknown"]

DIRECTIVES = ("Ignore", "Strict", "Warn")


@cache
def _schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((Path(__file__).parent / "api_fields.json").read_text())
    return data


def field_validation(value: str | None, *, options_kind: str) -> str:
    """The request's directive: "" is Warn; anything else not in DIRECTIVES is the 422 the
    options validation gives (``CreateOptions.meta.k8s.io "" is invalid: fieldValidation:
    Unsupported value: "x": supported values: "Ignore", "Strict", "Warn"``)."""
    if not value:
        return "Warn"
    if value not in DIRECTIVES:
        supported = ", ".join(f'"{d}"' for d in DIRECTIVES)
        raise errors.invalid(
            options_kind,
            "",
            [
                {
                    "reason": "FieldValueNotSupported",
                    "message": f'Unsupported value: "{value}": supported values: {supported}',
                    "field": "fieldValidation",
                }
            ],
            group="meta.k8s.io",
        )
    return value


def _walk(value: Any, ref: str, path: str, found: list[str], prune: bool) -> None:
    types = _schema()["types"]
    if not ref:
        return
    if ref.startswith("[") and isinstance(value, list):
        for i, item in enumerate(value):
            _walk(item, ref[1:-1], f"{path}[{i}]", found, prune)
        return
    if ref.startswith("{") and isinstance(value, dict):
        for key, item in value.items():
            _walk(item, ref[1:-1], f"{path}[{key}]", found, prune)
        return
    fields = types.get(ref)
    if fields is None or not isinstance(value, dict):
        return  # a type mismatch is the decoder's error, not an unknown field
    for key in list(value):
        where = f"{path}.{key}" if path else key
        if key not in fields:
            found.append(where)
            if prune:
                del value[key]
            continue
        _walk(value[key], fields[key], where, found, prune)


def unknown_fields(resource: str, obj: Any, *, prune: bool = False) -> list[str]:
    """The paths of the fields ``obj`` has that its kind does not (``spec.foo``,
    ``spec.containers[0].bar``); ``prune`` also removes them from ``obj``."""
    root = _schema()["roots"].get(resource)
    found: list[str] = []
    if root is not None:
        _walk(obj, root, "", found, prune)
    return found


def prune_unknown(resource: str, obj: Any) -> None:
    unknown_fields(resource, obj, prune=True)


def check_fields(resource: str, obj: Any, directive: str) -> list[str]:
    """Apply ``directive`` to ``obj`` (in place: unknown fields are dropped).

    Returns the warnings to send (Warn); raises the strict decoding error (Strict) as
    :class:`StrictDecodingError`.
    """
    found = unknown_fields(resource, obj, prune=True)
    messages = [f'unknown field "{path}"' for path in found]
    if directive == "Strict" and messages:
        raise StrictDecodingError(messages)
    return messages if directive == "Warn" else []


class StrictDecodingError(Exception):
    """``runtime.NewStrictDecodingError``: ``strict decoding error: <e1>, <e2>``."""

    def __init__(self, messages: list[str]) -> None:
        self.messages = messages
        super().__init__("strict decoding error: " + ", ".join(messages))
