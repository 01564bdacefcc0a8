"""Slugs must equal KubeSpawner 7.1's byte for byte: they name users' pods and storage."""

import pytest
from kubespawner import slugs as reference

from kubecache.spawner import slugs

ODD_NAMES = [
    "",
    "a",
    "alice",
    "mock@name",
    "User.Name+1",
    "0leading-digit",
    "-leading-dash",
    "trailing-dash-",
    "double--dash",
    "UPPER",
    "ünïcødé",
    "日本語",
    "a" * 47,
    "a" * 48,
    "a" * 63,
    "a" * 64,
    "x" * 200,
    "name.with.dots",
    "under_score",
    "---",
    "@@@",
    "9",
    "user@example.com",
]


@pytest.mark.parametrize("name", ODD_NAMES)
def test_safe_slug_equals_kubespawner_for_odd_names(name: str) -> None:
    assert slugs.safe_slug(name) == reference.safe_slug(name)
    assert slugs.safe_slug(name, max_length=48) == reference.safe_slug(name, max_length=48)


@pytest.mark.parametrize("name", ODD_NAMES)
def test_label_slug_equals_kubespawner_for_odd_names(name: str) -> None:
    expected = reference.safe_slug(name, is_valid=reference.is_valid_label)
    assert slugs.label_slug(name) == expected


@pytest.mark.parametrize("name", ODD_NAMES)
def test_escape_slug_equals_kubespawner_legacy_scheme(name: str) -> None:
    assert slugs.escape_slug(name) == reference.escape_slug(name)


@pytest.mark.parametrize("first", ["alice", "mock@name", "a" * 60, ""])
@pytest.mark.parametrize("second", ["srv", "Server Name", "b" * 60])
def test_multi_slug_equals_kubespawner(first: str, second: str) -> None:
    assert slugs.multi_slug([first, second]) == reference.multi_slug([first, second])


def test_mock_user_gets_kubespawner_published_pod_name_field() -> None:
    fields = slugs.template_fields("mock@name", "", "safe")
    assert f"jupyter-{fields['user_server']}" == "jupyter-mock-name---6241db84"


def test_valid_names_are_used_unchanged() -> None:
    assert slugs.safe_slug("alice-2") == "alice-2"


def test_names_with_double_dash_are_always_hashed() -> None:
    assert slugs.safe_slug("a--b").startswith("a-b---")


def test_too_short_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="shorter than"):
        slugs.strip_and_hash("whatever", max_length=11)


def test_unknown_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="slug scheme"):
        slugs.template_fields("a", "", "fancy")
