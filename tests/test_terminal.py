"""Untrusted text is made inert for terminals and JSON consumers."""

from __future__ import annotations

import json

import pytest

from kubecache.terminal import decoded, printable, safe_json


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("alice", "alice"),
        ("a b", "a b"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("bell\x07", "bell\\x07"),
        ("c1\x9b2J", "c1\\x9b2J"),
        ("rtl\u202eexe.txt", "rtl\\u202eexe.txt"),
        ("line\u2028sep", "line\\u2028sep"),
        ("tag\U000e0041", "tag\\U000e0041"),
        ("tab\tnl\n", "tab\\x09nl\\x0a"),
        ("grüße ✓ 日本", "grüße ✓ 日本"),
    ],
)
def test_printable_escapes_every_control_and_format_character(text: str, shown: str) -> None:
    assert printable(text) == shown


def test_bytes_that_are_not_utf8_are_shown_as_escapes() -> None:
    assert decoded(b"jhub/\xff\xfeok") == "jhub/\\xff\\xfeok"
    assert decoded("already text") == "already text"


def test_safe_json_leaves_nothing_raw_and_round_trips() -> None:
    data = {"m": "\x1b]0;t\x07 \x9b \u202e \u2028 \x7f \U000e0041 ok ✓"}
    text = safe_json(data, indent=True)
    for char in ("\x1b", "\x07", "\x9b", "\u202e", "\u2028", "\x7f", "\U000e0041"):
        assert char not in text
    assert json.loads(text) == data
