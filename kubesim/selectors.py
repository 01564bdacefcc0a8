"""Label and field selectors as the API server parses and evaluates them.

Label selectors follow k8s.io/apimachinery/pkg/labels: equality (``=``, ``==``, ``!=``),
set-based (``in (a,b)``, ``notin (a,b)``, ``key``, ``!key``) and the numeric ``>``/``<``;
a comma means AND; whitespace between tokens is ignored. Field selectors follow
k8s.io/apimachinery/pkg/fields: ``=``, ``==``, ``!=`` joined by commas, values compared as
strings, a missing field reads as ``""``, and only the fields a resource registers are
accepted. Pure: no I/O. Syntax errors raise :class:`~kubesim.errors.ApiError` 400.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubesim import errors
from kubesim.names import go_quote, label_key_errors, label_value_errors

__all__ = [
    "SUPPORTED_FIELDS",
    "FieldRequirement",
    "FieldSelector",
    "LabelRequirement",
    "LabelSelector",
]

# --- label selectors -------------------------------------------------------------------------

_SPECIAL = set("!=(),<>")
_EXPECTED_OPERATOR = "in, notin, =, ==, !=, gt, lt"


@dataclass(frozen=True)
class LabelRequirement:
    """One term: ``key`` ``operator`` ``values``.

    operator is one of ``in``, ``notin``, ``exists``, ``!``, ``=``, ``==``, ``!=``, ``gt``,
    ``lt`` (the names labels.Selector.String() and matchExpressions use).
    """

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        present = self.key in labels
        if op in ("in", "=", "=="):
            return present and labels[self.key] in self.values
        if op in ("notin", "!="):
            return not present or labels[self.key] not in self.values
        if op == "exists":
            return present
        if op == "!":
            return not present
        if op in ("gt", "lt"):
            if not present:
                return False
            try:
                have = int(labels[self.key])
            except ValueError:
                return False
            limit = int(self.values[0])
            return have > limit if op == "gt" else have < limit
        raise AssertionError(f"unknown label selector operator {op!r}")


def _tokenize(text: str) -> list[str]:
    """Identifiers and operators; whitespace separates and is dropped."""
    tokens: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char.isspace():
            i += 1
        elif char in _SPECIAL:
            two = text[i : i + 2]
            if two in ("==", "!="):
                tokens.append(two)
                i += 2
            else:
                tokens.append(char)
                i += 1
        else:
            start = i
            while i < len(text) and not text[i].isspace() and text[i] not in _SPECIAL:
                i += 1
            tokens.append(text[start:i])
    return tokens


def _is_identifier(token: str | None) -> bool:
    return token is not None and token not in _SPECIAL and token not in ("==", "!=")


class _LabelParser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str | None:
        token = self.peek()
        self.pos += 1
        return token

    @staticmethod
    def fail(found: str | None, expected: str) -> errors.ApiError:
        shown = "end of string" if found is None else found
        return errors.bad_request(
            f"unable to parse requirement: found '{shown}', expected: {expected}"
        )

    def parse(self) -> list[LabelRequirement]:
        requirements: list[LabelRequirement] = []
        while True:
            requirements.append(self.requirement())
            token = self.take()
            if token is None:
                return requirements
            if token != ",":
                raise self.fail(token, "',' or 'end of string'")

    def requirement(self) -> LabelRequirement:
        token = self.take()
        if token == "!":
            key = self.take()
            if not _is_identifier(key):
                raise self.fail(key, "identifier")
            assert key is not None
            return _requirement(key, "!", ())
        if not _is_identifier(token):
            raise self.fail(token, "!, identifier, or 'end of string'")
        assert token is not None
        key = token
        op = self.peek()
        if op in (None, ","):
            return _requirement(key, "exists", ())
        self.take()
        if op in ("=", "==", "!="):
            value = self.peek()
            if value in (None, ","):
                return _requirement(key, op, ("",))
            if not _is_identifier(value):
                raise self.fail(value, "identifier")
            self.take()
            assert value is not None
            return _requirement(key, op, (value,))
        if op in (">", "<"):
            value = self.take()
            if not _is_identifier(value):
                raise self.fail(value, "identifier")
            assert value is not None
            return _requirement(key, "gt" if op == ">" else "lt", (value,))
        if op in ("in", "notin"):
            opening = self.take()
            if opening != "(":
                raise self.fail(opening, "'('")
            return _requirement(key, op, tuple(self.value_set()))
        raise self.fail(op, _EXPECTED_OPERATOR)

    def value_set(self) -> list[str]:
        values: list[str] = []
        expect_value = True
        while True:
            token = self.take()
            if token == ")":
                if expect_value:
                    values.append("")  # "()" and "(a,)" hold the empty value, as upstream
                return values
            if token == ",":
                if expect_value:
                    values.append("")
                expect_value = True
                continue
            if expect_value and _is_identifier(token):
                assert token is not None
                values.append(token)
                expect_value = False
                continue
            raise self.fail(token, "',', ')' or identifier")


def _requirement(key: str, op: str, values: tuple[str, ...]) -> LabelRequirement:
    problems = [f"key: Invalid value: {go_quote(key)}: {m}" for m in label_key_errors(key)]
    if op in ("in", "notin") and not values:
        problems.append(
            "values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty"
        )
    if op in ("gt", "lt"):
        if len(values) != 1:
            problems.append(
                "values: Invalid value: []: for 'Gt', 'Lt' operators, exactly one value is required"
            )
        elif not re.fullmatch(r"[+-]?[0-9]+", values[0]):
            problems.append(
                f"values[0]: Invalid value: {go_quote(values[0])}: "
                "for 'Gt', 'Lt' operators, the value must be an integer"
            )
    else:
        for i, value in enumerate(values):
            problems.extend(
                f"values[{i}][{key}]: Invalid value: {go_quote(value)}: {m}"
                for m in label_value_errors(value)
            )
    if problems:
        raise errors.bad_request("unable to parse requirement: " + "; ".join(problems))
    return LabelRequirement(key, op, values)


_MATCH_EXPRESSION_OPERATORS = {
    "In": "in",
    "NotIn": "notin",
    "Exists": "exists",
    "DoesNotExist": "!",
    "Gt": "gt",
    "Lt": "lt",
}


class LabelSelector:
    """A parsed label selector; the empty selector matches everything."""

    def __init__(self, requirements: Sequence[LabelRequirement] = ()) -> None:
        self.requirements = tuple(requirements)

    @classmethod
    def parse(cls, text: str | None) -> LabelSelector:
        """Parse ``labelSelector`` query text; raises ApiError 400 on syntax errors."""
        if text is None or not text.strip():
            return cls()
        return cls(_LabelParser(text).parse())

    @classmethod
    def from_match(
        cls,
        match_labels: Mapping[str, str] | None = None,
        match_expressions: Iterable[Mapping[str, Any]] | None = None,
    ) -> LabelSelector:
        """From a metav1.LabelSelector (``matchLabels`` + ``matchExpressions``) or a node
        selector term's ``matchExpressions`` (operators In, NotIn, Exists, DoesNotExist,
        Gt, Lt)."""
        requirements = [
            _requirement(key, "=", (value,)) for key, value in (match_labels or {}).items()
        ]
        for expression in match_expressions or ():
            operator = expression.get("operator", "")
            op = _MATCH_EXPRESSION_OPERATORS.get(operator)
            if op is None:
                raise errors.bad_request(f'"{operator}" is not a valid label selector operator')
            values = tuple(str(v) for v in expression.get("values") or ())
            requirements.append(_requirement(str(expression.get("key", "")), op, values))
        return cls(requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        have = labels or {}
        return all(requirement.matches(have) for requirement in self.requirements)

    def __str__(self) -> str:
        parts = []
        for r in self.requirements:
            if r.operator == "exists":
                parts.append(r.key)
            elif r.operator == "!":
                parts.append(f"!{r.key}")
            elif r.operator in ("in", "notin"):
                parts.append(f"{r.key} {r.operator} ({','.join(sorted(r.values))})")
            elif r.operator in ("gt", "lt"):
                parts.append(f"{r.key}{'>' if r.operator == 'gt' else '<'}{r.values[0]}")
            else:
                parts.append(f"{r.key}{r.operator}{r.values[0]}")
        return ",".join(parts)


# --- field selectors -------------------------------------------------------------------------

_COMMON_FIELDS = frozenset({"metadata.name", "metadata.namespace"})

SUPPORTED_FIELDS: dict[str, frozenset[str]] = {
    "pods": _COMMON_FIELDS
    | {
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    },
    "events": _COMMON_FIELDS
    | {
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    },
    "secrets": _COMMON_FIELDS | {"type"},
    "namespaces": _COMMON_FIELDS | {"status.phase"},
    "nodes": _COMMON_FIELDS | {"spec.unschedulable"},
    "persistentvolumeclaims": _COMMON_FIELDS,
    "services": _COMMON_FIELDS,
    "configmaps": _COMMON_FIELDS,
    "serviceaccounts": _COMMON_FIELDS,
    "leases": _COMMON_FIELDS,
}


# Kinds with their own field label conversion; the rest use apimachinery's default one.
_CUSTOM_CONVERSION = frozenset({"pods", "events", "secrets", "namespaces", "nodes"})


def _unsupported_field_message(resource: str, field: str) -> str:
    if resource in _CUSTOM_CONVERSION:
        return f"field label not supported: {field}"
    return f'"{field}" is not a known field selector: only "metadata.name", "metadata.namespace"'


def _path(*keys: str) -> Callable[[Mapping[str, Any]], Any]:
    def get(obj: Mapping[str, Any]) -> Any:
        value: Any = obj
        for key in keys:
            if not isinstance(value, Mapping):
                return None
            value = value.get(key)
        return value

    return get


# Fields whose value does not live at the dotted path of the same name.
_GETTERS: dict[tuple[str, str], Callable[[Mapping[str, Any]], Any]] = {
    ("events", "source"): _path("source", "component"),
    ("events", "reportingComponent"): _path("reportingComponent"),
}


def _as_field_string(value: Any) -> str:
    """What the API's field set holds: strings as is, booleans as true/false, missing as ""."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    operator: str  # "=" (also for "==") or "!="
    value: str


def _split_unescaped(text: str, separator: str) -> list[str]:
    """Split on ``separator`` not preceded by a backslash escape (fields.ParseSelector)."""
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    parts.append("".join(current))
    return parts


def _unescape_value(value: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(value):
        char = value[i]
        if char == "\\":
            if i + 1 >= len(value) or value[i + 1] not in "\\,=":
                raise errors.bad_request(
                    f"invalid field selector: invalid escape sequence in {go_quote(value)}"
                )
            out.append(value[i + 1])
            i += 2
            continue
        if char in ",=":
            raise errors.bad_request(
                f"invalid field selector: unescaped '{char}' in value {go_quote(value)}"
            )
        out.append(char)
        i += 1
    return "".join(out)


def _field_term(term: str) -> FieldRequirement:
    for token, op in (("!=", "!="), ("==", "="), ("=", "=")):
        index = _find_unescaped(term, token)
        if index >= 0:
            field = term[:index].strip()
            value = _unescape_value(term[index + len(token) :].strip())
            return FieldRequirement(field, op, value)
    raise errors.bad_request(f"invalid selector: '{term}'; can't understand '{term}'")


def _find_unescaped(text: str, token: str) -> int:
    i = 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text.startswith(token, i):
            return i
        i += 1
    return -1


class FieldSelector:
    """A parsed field selector for one resource; the empty selector matches everything."""

    def __init__(self, resource: str, requirements: Sequence[FieldRequirement] = ()) -> None:
        self.resource = resource
        self.requirements = tuple(requirements)

    @classmethod
    def parse(cls, text: str | None, *, resource: str) -> FieldSelector:
        """Parse ``fieldSelector`` query text; ApiError 400 for syntax errors and fields the
        resource does not support (``field label not supported: spec.foo``)."""
        if text is None or not text.strip():
            return cls(resource)
        supported = SUPPORTED_FIELDS.get(resource, _COMMON_FIELDS)
        requirements = []
        for term in _split_unescaped(text, ","):
            if not term.strip():
                continue
            requirement = _field_term(term)
            if requirement.field not in supported:
                raise errors.bad_request(_unsupported_field_message(resource, requirement.field))
            requirements.append(requirement)
        return cls(resource, requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements

    def value_of(self, obj: Mapping[str, Any], field: str) -> str:
        getter = _GETTERS.get((self.resource, field)) or _path(*field.split("."))
        return _as_field_string(getter(obj))

    def matches(self, obj: Mapping[str, Any]) -> bool:
        for requirement in self.requirements:
            equal = self.value_of(obj, requirement.field) == requirement.value
            if equal != (requirement.operator == "="):
                return False
        return True

    def exact(self, field: str) -> str | None:
        """The value a ``field=value`` term pins, if any (lets a store narrow a scan)."""
        for requirement in self.requirements:
            if requirement.field == field and requirement.operator == "=":
                return requirement.value
        return None
