"""Kubernetes label selectors: parsed once, matched locally.

The cacher validates its ``--pod-selector`` with this before connecting; the
spawner matches its own pods' labels against the selector the cacher
publishes in the cache health record, so it never trusts "pod absent" from a
cacher that does not watch pods like its own.

Grammar (as the API server's): requirements separated by commas, each one of
``key=value``, ``key==value``, ``key!=value``, ``key in (a,b)``,
``key notin (a,b)``, ``key`` or ``!key``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Operator = Literal["=", "!=", "in", "notin", "exists", "!exists"]

_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_LABEL_NAME = re.compile(rf"^{_NAME}$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_SET_REQUIREMENT = re.compile(r"^(\S+)\s+(in|notin)\s+\((.*)\)$")
_EQUALITY = re.compile(r"^([^!=\s]+)\s*(==|=|!=)\s*(\S*)$")


class SelectorError(ValueError):
    """The text is not a label selector; the message says which part and why."""


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: Operator
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator == "exists":
            return present
        if self.operator == "!exists":
            return not present
        if self.operator in ("=", "in"):
            return present and value in self.values
        return not present or value not in self.values  # != and notin


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()

    @classmethod
    def parse(cls, text: str) -> LabelSelector:
        """Parse ``text``; raises :class:`SelectorError`. Empty text selects everything."""
        if not text.strip():
            return cls()
        return cls(tuple(_requirement(part.strip()) for part in _split(text)))

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)


@functools.lru_cache(maxsize=64)
def parsed_selector(text: str) -> LabelSelector:
    """:meth:`LabelSelector.parse`, remembered (a hub checks one selector on every poll).

    Raises :class:`SelectorError` like ``parse``; errors are not remembered.
    """
    return LabelSelector.parse(text)


def selector_problem(text: str) -> str | None:
    """Why ``text`` is not a label selector, or None."""
    try:
        LabelSelector.parse(text)
    except SelectorError as e:
        return str(e)
    return None


def _split(text: str) -> list[str]:
    # Commas inside "in (a,b)" do not separate requirements.
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def _requirement(text: str) -> Requirement:
    if not text:
        raise SelectorError("empty requirement (stray comma)")
    set_match = _SET_REQUIREMENT.match(text)
    if set_match:
        key, operator, raw_values = set_match.groups()
        _check_key(key)
        values = [v.strip() for v in raw_values.split(",")]
        if not any(values):
            raise SelectorError(f"{text!r}: a set needs at least one value")
        for value in values:
            _check_value(value)
        return Requirement(key, "in" if operator == "in" else "notin", frozenset(values))
    equality = _EQUALITY.match(text)
    if equality:
        key, operator, value = equality.groups()
        _check_key(key)
        _check_value(value)
        return Requirement(key, "!=" if operator == "!=" else "=", frozenset({value}))
    negated = text.startswith("!")
    key = text[1:].strip() if negated else text
    try:
        _check_key(key)
    except SelectorError as e:
        raise SelectorError(f"{text!r}: {e}") from None
    return Requirement(key, "!exists" if negated else "exists")


def _check_key(key: str) -> None:
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        raise SelectorError(f"label key prefix {prefix!r} is not a DNS subdomain")
    if not _LABEL_NAME.match(name or ""):
        raise SelectorError(
            f"label key name {name!r} must be 1-63 characters, alphanumeric, '-', '_' or '.', "
            "starting and ending alphanumeric"
        )


def _check_value(value: str) -> None:
    if value and not _LABEL_NAME.match(value):
        raise SelectorError(
            f"label value {value!r} must be at most 63 characters, alphanumeric, '-', '_' or '.'"
        )


__all__ = ["LabelSelector", "Requirement", "SelectorError", "parsed_selector", "selector_problem"]
