"""Field errors in the apimachinery wording, and the decoding guards validation shares.

A :class:`Causes` collects metav1 StatusCauses (``{"reason", "message", "field"}``) whose
messages read like k8s.io/apimachinery/pkg/util/validation/field errors. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from kubesim.names import go_quote, label_key_errors, label_value_errors
from kubesim.quantity import format_quantity, parse_quantity, quantity_is_binary

__all__ = [
    "PROTOCOLS",
    "Causes",
    "DecodeError",
    "as_items",
    "as_list",
    "as_map",
    "canonical_quantity",
    "expect_string",
    "port_range",
    "quantities",
    "validate_labels",
]

PROTOCOLS = ("SCTP", "TCP", "UDP")


class DecodeError(Exception):
    """The body does not decode as the kind: the server answers 400, not 422."""


@dataclass
class Causes:
    """Collects field errors as metav1 StatusCauses in the apimachinery wording."""

    items: list[dict[str, Any]] = field(default_factory=list)

    def add(self, reason: str, path: str, body: str) -> None:
        self.items.append({"reason": reason, "message": body, "field": path})

    def required(self, path: str, detail: str = "") -> None:
        self.add("FieldValueRequired", path, "Required value" + (f": {detail}" if detail else ""))

    def invalid(self, path: str, value: Any, detail: str) -> None:
        self.add("FieldValueInvalid", path, f"Invalid value: {go_quote(value)}: {detail}")

    def duplicate(self, path: str, value: Any) -> None:
        self.add("FieldValueDuplicate", path, f"Duplicate value: {go_quote(value)}")

    def not_found(self, path: str, value: Any) -> None:
        self.add("FieldValueNotFound", path, f"Not found: {go_quote(value)}")

    def not_supported(self, path: str, value: Any, supported: tuple[str, ...]) -> None:
        listed = ", ".join(go_quote(s) for s in supported)
        self.add(
            "FieldValueNotSupported",
            path,
            f"Unsupported value: {go_quote(value)}: supported values: {listed}",
        )

    def forbidden(self, path: str, detail: str) -> None:
        self.add("FieldValueForbidden", path, f"Forbidden: {detail}")

    def too_long(self, path: str, limit: int) -> None:
        self.add("FieldValueTooLong", path, f"Too long: may not be more than {limit} bytes")

    def each_invalid(self, path: str, value: Any, problems: list[str]) -> None:
        for problem in problems:
            self.invalid(path, value, problem)


def as_map(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise DecodeError(f"json: cannot unmarshal {type(value).__name__} into {what}")
    return value


def as_list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise DecodeError(f"json: cannot unmarshal {type(value).__name__} into {what}")
    return value


def as_items(value: Any, what: str) -> list[dict[str, Any]]:
    return [as_map(item, what) for item in as_list(value, f"[]{what}")]


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, dict):
        return "object"
    return "array" if isinstance(value, list) else "string"


def expect_string(value: Any, go_field: str) -> None:
    """A string field (null allowed) as encoding/json decodes it; 400 for other JSON kinds.

    ``go_field`` names it as the decoder does: ``EnvVar.spec.containers.env.value``.
    """
    if value is not None and not isinstance(value, str):
        raise DecodeError(
            f"json: cannot unmarshal {_json_kind(value)} into Go struct field {go_field} "
            "of type string"
        )


def validate_labels(causes: Causes, labels: dict[str, Any], path: str) -> None:
    for key, value in labels.items():
        if not isinstance(value, str):
            raise DecodeError(f"json: cannot unmarshal {type(value).__name__} into {path}")
        causes.each_invalid(path, key, label_key_errors(key))
        causes.each_invalid(path, value, label_value_errors(value))


def port_range(causes: Causes, path: str, value: Any, *, required: bool = True) -> None:
    if value in (None, 0):
        if required:
            causes.required(path)
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise DecodeError(f"json: cannot unmarshal {type(value).__name__} into {path} int32")
    if not 1 <= value <= 65535:
        causes.invalid(path, value, "must be between 1 and 65535, inclusive")


def quantities(resources: dict[str, Any], key: str, path: str) -> dict[str, tuple[Any, Decimal]]:
    parsed = {}
    for name, raw in as_map(resources.get(key), f"{path}.{key}").items():
        parsed[name] = (raw, parse_quantity(raw))
    return parsed


def canonical_quantity(raw: Any, value: Decimal) -> str:
    return format_quantity(value, binary=isinstance(raw, str) and quantity_is_binary(raw))
