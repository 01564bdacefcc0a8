"""Kubernetes resource quantities ("500m", "1.5", "2Gi", "1G", "1e3") as exact Decimals.

Follows k8s.io/apimachinery/pkg/api/resource: a signed decimal number followed by a binary
suffix (Ki Mi Gi Ti Pi Ei), a decimal SI suffix (n u m "" k M G T P E) or a decimal exponent
(e3, E-2). Values are returned in base units (cores, bytes, devices) as exact Decimals, so
comparisons and sums never round. Pure: no I/O.
"""

from __future__ import annotations

import functools
import re
from decimal import ROUND_CEILING, Decimal, InvalidOperation, localcontext

__all__ = [
    "QUANTITY_MESSAGE",
    "QuantityError",
    "canonical_text",
    "format_quantity",
    "milli_value",
    "parse_quantity",
    "quantity_is_binary",
    "value_ceil",
]

# The API server's own message when a quantity does not parse.
QUANTITY_MESSAGE = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)

_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_SUFFIX = {exponent: suffix for suffix, exponent in _DECIMAL.items()}
_QUANTITY_RE = re.compile(
    r"(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?"
)


class QuantityError(ValueError):
    """The text is not a Kubernetes quantity; ``str()`` is the API server's message."""

    def __init__(self, text: str) -> None:
        super().__init__(QUANTITY_MESSAGE)
        self.text = text


def parse_quantity(text: str | int | float) -> Decimal:
    """Exact value in base units: ``"500m"`` → 0.5, ``"2Gi"`` → 2147483648, ``"1e3"`` → 1000.

    Numbers (as JSON may carry them: ``cpu: 2``) are accepted as their decimal text.
    Raises :class:`QuantityError` for anything else.
    """
    if isinstance(text, bool):
        raise QuantityError(str(text))
    if isinstance(text, int | float):
        text = repr(text) if isinstance(text, float) else str(text)
    match = _QUANTITY_RE.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise QuantityError(str(text))
    number = Decimal(match["number"])
    suffix = match["suffix"] or ""
    with localcontext() as ctx:
        ctx.prec = 100  # exact for every value the API can express
        try:
            if suffix in _BINARY:
                return number * (Decimal(1024) ** _BINARY[suffix])
            if suffix in _DECIMAL:
                return number.scaleb(_DECIMAL[suffix])
            return number.scaleb(int(suffix[1:]))
        except (InvalidOperation, ValueError, OverflowError) as err:
            raise QuantityError(text) from err


def quantity_is_binary(text: str) -> bool:
    """Whether the quantity was written with a binary suffix (keeps that format on output)."""
    match = _QUANTITY_RE.fullmatch(text.strip())
    return bool(match and (match["suffix"] or "") in _BINARY)


def milli_value(value: Decimal) -> int:
    """The value in thousandths, rounded up like Quantity.MilliValue (``0.1m`` → 1)."""
    return int((value * 1000).to_integral_value(rounding=ROUND_CEILING))


def value_ceil(value: Decimal) -> int:
    """The value rounded up to an integer like Quantity.Value (``500m`` → 1)."""
    return int(value.to_integral_value(rounding=ROUND_CEILING))


def format_quantity(value: Decimal | int, *, binary: bool = False, exponent: bool = False) -> str:
    """Canonical text: ``0.5`` → ``"500m"``, ``1000`` → ``"1k"``; with ``binary`` an integer
    multiple of 1024 becomes ``"1536Mi"``-style; with ``exponent`` the suffix is a decimal
    exponent (``"1e3"``, ``"12e-3"``). Values below 1n round up to ``"1n"``."""
    value = Decimal(value)
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    magnitude = abs(value)
    if binary and magnitude == magnitude.to_integral_value() and magnitude >= 1024:
        integer = int(magnitude)
        power = 0
        while power < 6 and integer % 1024 == 0:
            integer //= 1024
            power += 1
        suffix = next(s for s, p in _BINARY.items() if p == power) if power else ""
        return f"{sign}{integer}{suffix}"
    # Largest exponent (multiple of 3, from n to E) that keeps the mantissa an integer.
    with localcontext() as ctx:
        ctx.prec = 100
        nanos = (magnitude.scaleb(9)).to_integral_value(rounding=ROUND_CEILING)
        power = -9
        while power < 18 and nanos % 1000 == 0:
            nanos /= 1000
            power += 3
        if exponent:
            return f"{sign}{int(nanos)}{f'e{power}' if power else ''}"
        return f"{sign}{int(nanos)}{_DECIMAL_SUFFIX[power]}"


def canonical_text(raw: str | int | float | None) -> str:
    """The text the API server stores for a quantity sent as ``raw`` (see _canonical_text)."""
    if raw is None:
        return "0"
    # Cached per (type, value): pods repeat a few quantities, and True == 1 must not share.
    return _cached_canonical_text(type(raw).__name__, raw)


@functools.lru_cache(maxsize=4096)
def _cached_canonical_text(kind: str, raw: str | int | float) -> str:
    return _canonical_text(raw)


def _canonical_text(raw: str | int | float | None) -> str:
    """The text the API server stores for a quantity sent as ``raw`` (Quantity round trip).

    The format follows the input: a binary suffix stays binary (``"1024Mi"`` → ``"1Gi"``,
    but below 1Ki or fractional it is decimal), an exponent stays an exponent (``"1000e0"``
    → ``"1e3"``), anything else is decimal SI (``1.0`` → ``"1"``, ``0.5`` → ``"500m"``).
    JSON ``null`` is the zero quantity, ``"0"``. Raises :class:`QuantityError`.
    """
    if raw is None:
        return "0"
    value = parse_quantity(raw)
    text = raw.strip() if isinstance(raw, str) else (repr(raw) if isinstance(raw, float) else "")
    match = _QUANTITY_RE.fullmatch(text) if text else None
    suffix = (match["suffix"] or "") if match else ""
    if suffix[:1] in ("e", "E") and suffix not in _DECIMAL:
        return format_quantity(value, exponent=True)
    return format_quantity(value, binary=suffix in _BINARY)
