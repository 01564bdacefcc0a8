"""Untrusted text is made inert for terminals and JSON consumers."""

from __future__ import annotations

import json

import pytest

from kubecache.terminal import decoded, display_width, pad, printable, safe_json
from kubecache.views import table


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


@pytest.mark.parametrize(
    ("text", "columns"),
    [
        ("alice", 5),
        ("山田太郎", 8),  # CJK ideographs take two columns each
        ("ｱｲｳ", 3),  # halfwidth katakana take one
        ("\uff21\uff22", 4),  # fullwidth Latin take two
        ("e\u0301te\u0301", 3),  # combining accents take none
        ("김민준-gpu", 10),
    ],
)
def test_display_width_counts_terminal_columns(text: str, columns: int) -> None:
    assert display_width(text) == columns
    assert display_width(pad(text, 12)) == 12


def column_starts(line: str, cells: list[str]) -> list[int]:
    """The terminal column at which each cell of a table line starts."""
    starts, at = [], 0
    for cell in cells:
        index = line.index(cell, at)
        starts.append(display_width(line[:index]))
        at = index + len(cell)
    return starts


def test_tables_stay_aligned_with_wide_user_names() -> None:
    rows = [
        ["alice", "-", "jupyter-alice"],
        ["山田太郎", "gpu", "jupyter-2d5c71a0"],
        ["김민준", "ｱｲｳ", "jupyter-3ae47b1c"],
    ]
    lines = table(["USER", "SERVER", "POD"], rows).splitlines()
    starts = {
        tuple(column_starts(line, cells))
        for line, cells in zip(lines, [["USER", "SERVER", "POD"], *rows], strict=True)
    }
    assert len(starts) == 1, lines  # every row's columns start at the same terminal column
