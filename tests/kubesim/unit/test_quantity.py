"""Resource quantities parse exactly and print canonically."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kubesim.quantity import (
    QUANTITY_MESSAGE,
    QuantityError,
    format_quantity,
    milli_value,
    parse_quantity,
    quantity_is_binary,
    value_ceil,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", "0"),
        ("1", "1"),
        ("1.5", "1.5"),
        ("500m", "0.5"),
        ("100m", "0.1"),
        ("1m", "0.001"),
        ("250u", "0.00025"),
        ("3n", "0.000000003"),
        ("2k", "2000"),
        ("1M", "1000000"),
        ("1G", "1000000000"),
        ("100M", "100000000"),
        ("1T", "1000000000000"),
        ("1P", "1000000000000000"),
        ("1E", "1000000000000000000"),
        ("1Ki", "1024"),
        ("2Gi", "2147483648"),
        ("1.5Gi", "1610612736"),
        ("1Mi", "1048576"),
        ("1Ti", str(1024**4)),
        ("1Pi", str(1024**5)),
        ("1Ei", str(1024**6)),
        ("1e3", "1000"),
        ("1E3", "1000"),
        ("1.5e-3", "0.0015"),
        ("2e+2", "200"),
        ("+1", "1"),
        ("-1", "-1"),
        (".5", "0.5"),
        ("1.", "1"),
        (" 2 ", "2"),
    ],
)
def test_parse_quantity_is_exact(text: str, value: str) -> None:
    assert parse_quantity(text) == Decimal(value)


def test_numbers_from_json_are_quantities_too() -> None:
    assert parse_quantity(2) == 2
    assert parse_quantity(0.5) == Decimal("0.5")


@pytest.mark.parametrize(
    "text", ["", "abc", "1K", "1kk", "1 Gi", "Gi", "1.2.3", "--1", "1e", "1ki", ".", "1Gib"]
)
def test_invalid_quantities_raise_with_the_api_servers_message(text: str) -> None:
    with pytest.raises(QuantityError) as caught:
        parse_quantity(text)
    assert str(caught.value) == QUANTITY_MESSAGE
    assert isinstance(caught.value, ValueError)


def test_booleans_are_not_quantities() -> None:
    with pytest.raises(QuantityError):
        parse_quantity(True)


@pytest.mark.parametrize(
    ("value", "binary", "text"),
    [
        ("0", False, "0"),
        ("0.5", False, "500m"),
        ("0.1", False, "100m"),
        ("1.5", False, "1500m"),
        ("1000", False, "1k"),
        ("1500", False, "1500"),
        ("2", False, "2"),
        ("0.000000003", False, "3n"),
        ("0.0000000001", False, "1n"),
        ("1000000000", False, "1G"),
        ("-0.5", False, "-500m"),
        ("1610612736", True, "1536Mi"),
        ("2147483648", True, "2Gi"),
        ("1000", True, "1k"),
        ("1025", True, "1025"),
    ],
)
def test_format_quantity_is_canonical(value: str, binary: bool, text: str) -> None:
    assert format_quantity(Decimal(value), binary=binary) == text


@pytest.mark.parametrize("text", ["500m", "1", "2Gi", "1.5", "100M", "7n", "3E"])
def test_format_then_parse_round_trips(text: str) -> None:
    value = parse_quantity(text)
    assert parse_quantity(format_quantity(value, binary=quantity_is_binary(text))) == value


def test_milli_and_integer_values_round_up_like_the_api() -> None:
    assert milli_value(parse_quantity("1.5")) == 1500
    assert milli_value(parse_quantity("100u")) == 1
    assert value_ceil(parse_quantity("500m")) == 1
    assert value_ceil(parse_quantity("2Gi")) == 2147483648
