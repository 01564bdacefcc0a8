"""Name and label syntax rules with the API server's wording."""

from __future__ import annotations

import pytest

from kubesim import names


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("a", True),
        ("jupyter-alice", True),
        ("1abc", True),
        ("a" * 63, True),
        ("a" * 64, False),
        ("Abc", False),
        ("a.b", False),
        ("-a", False),
        ("a-", False),
        ("", False),
        ("a_b", False),
    ],
)
def test_dns1123_label(value: str, valid: bool) -> None:
    assert (not names.dns1123_label_errors(value)) is valid


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("example.com", True),
        ("a.b-c.d", True),
        ("a" * 253, True),
        ("a" * 254, False),
        ("a..b", False),
        (".a", False),
        ("a.", False),
        ("Bad_Name", False),
        ("", False),
    ],
)
def test_dns1123_subdomain(value: str, valid: bool) -> None:
    assert (not names.dns1123_subdomain_errors(value)) is valid


@pytest.mark.parametrize(
    ("value", "valid"),
    [("my-svc", True), ("1svc", False), ("svc.a", False), ("a" * 64, False), ("a", True)],
)
def test_dns1035_label(value: str, valid: bool) -> None:
    assert (not names.dns1035_label_errors(value)) is valid


def test_subdomain_message_is_word_for_word_the_api_servers() -> None:
    assert names.dns1123_subdomain_errors("Bad_Name") == [
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
        "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
        "regex used for validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    ]


def test_label_message_keeps_the_upstream_double_spaces() -> None:
    (message,) = names.dns1123_label_errors("A")
    assert "(e.g. 'my-name',  or '123-abc', regex used" in message


def test_too_long_names_report_the_limit_and_the_pattern() -> None:
    problems = names.dns1123_label_errors("A" * 64)
    assert problems[0] == "must be no more than 63 characters"
    assert len(problems) == 2


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("app", None),
        ("hub.jupyter.org/username", None),
        ("A_b.C-9", None),
        ("a/b/c", "a qualified name must consist of"),
        ("/a", "prefix part must be non-empty"),
        ("a/", "name part must be non-empty"),
        ("", "name part must be non-empty"),
        ("x" * 64, "name part must be no more than 63 characters"),
        ("Bad/a", "prefix part a lowercase RFC 1123 subdomain"),
        ("_a", "name part must consist of alphanumeric characters"),
    ],
)
def test_label_keys(key: str, fragment: str | None) -> None:
    problems = names.label_key_errors(key)
    if fragment is None:
        assert problems == []
    else:
        assert any(fragment in p for p in problems), problems


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("", True),
        ("a", True),
        ("A.b_c-1", True),
        ("x" * 63, True),
        ("x" * 64, False),
        ("-a", False),
        ("a b", False),
    ],
)
def test_label_values(value: str, valid: bool) -> None:
    assert (not names.label_value_errors(value)) is valid


def test_go_quote_renders_like_go_percent_q() -> None:
    assert names.go_quote('a"b') == '"a\\"b"'
    assert names.go_quote(80) == "80"
    assert names.go_quote(True) == "true"
