"""Untrusted text made safe for an operator's terminal and for JSON consumers.

Everything the CLI prints comes from Redis, which any holder of a write grant
(or a pod's author, through event messages and annotations) can fill with
escape sequences: ESC (``\\x1b``) sequences repaint or retitle the terminal,
C1 controls (``\\x9b`` is a one-byte CSI in many terminals), bidirectional
overrides (U+202E) reorder what the operator reads. Every character that is
not printable is shown as its Python escape (``\\x1b``, ``\\u202e``) instead.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import orjson


def printable(text: str) -> str:
    """``text`` with every non-printable character (controls, format and
    separator characters other than space, surrogates) escaped."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes: East Asian wide and fullwidth characters (CJK, most
    emoji) take two, combining marks none, everything else one. ``text`` is printable
    (:func:`printable`), so no control characters remain to measure."""
    width = 0
    for char in text:
        if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me"):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def pad(text: str, width: int) -> str:
    """``text`` followed by spaces up to ``width`` terminal columns (ljust by display width)."""
    return text + " " * max(0, width - display_width(text))


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def decoded(value: bytes | str) -> str:
    """Bytes from Redis as text; bytes that are not UTF-8 become ``\\xNN`` escapes."""
    if isinstance(value, str):
        return value
    return value.decode("utf-8", "backslashreplace")


# Characters orjson leaves raw inside JSON strings although a terminal (or a
# JSON consumer that prints values) may act on them: DEL and C1 controls, and
# the format/separator characters that reorder or hide text.
_JSON_UNSAFE = re.compile(
    "[\x7f-\x9f\u00ad\u061c\u115f\u1160\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f"
    "\u3164\ufeff\ufff9-\ufffb\U000e0000-\U000e007f]"
)


def _json_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    high, low = divmod(code - 0x10000, 0x400)
    return f"\\u{0xD800 + high:04x}\\u{0xDC00 + low:04x}"


def safe_json(data: Any, *, indent: bool = False) -> str:
    """JSON text of ``data`` with nothing a terminal would act on left raw.

    orjson escapes C0 controls already; the rest of the unsafe characters are
    escaped here (they only ever occur inside JSON strings, where ``\\uXXXX``
    means the same character), so ``json.loads`` gives back the same data.
    """
    option = orjson.OPT_INDENT_2 if indent else 0
    return _JSON_UNSAFE.sub(_json_escape, orjson.dumps(data, option=option).decode())
