"""Kubernetes-safe names ("slugs") for users and servers, exactly as KubeSpawner 7.1 makes them.

Two schemes exist, selected by ``KubeSpawner.slug_scheme``:

``"safe"`` (KubeSpawner >= 7, default)
    A name that is already a valid DNS-1123/1035 label (lowercase letters, digits and ``-``,
    starting with a letter, ending with a letter or digit, at most 63 characters, and no
    ``--`` in it) is used unchanged. Anything else becomes a cleaned prefix (lowercased, runs of
    other characters replaced by one ``-``, prefixed ``x-`` when it would not start with a
    letter) followed by ``---`` and the first 8 hex digits of the SHA-256 of the raw name.
    ``{user_server}`` joins user and server as ``{user}--{server}``; when that would pass the
    48-character field limit both parts are shortened and share one hash of
    ``user + b"\\xff" + server``.

``"escape"`` (KubeSpawner < 7)
    ``escapism`` escaping with ``-`` as escape character, then lowercased; e.g. ``mock@name`` ->
    ``mock-40name``. It does not guarantee valid names; it exists so that pods and PVCs made by
    KubeSpawner 6 are found again after a migration.

These strings name users' storage (PVC names): a changed byte here loses data, which is why the
unit tests compare them with the installed KubeSpawner's for many odd names.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Callable, Sequence

import escapism

HASH_LENGTH = 8
#: The per-field limit KubeSpawner applies to {username}, {servername} and {user_server}.
FIELD_MAX_LENGTH = 48

_LOWER = frozenset(string.ascii_lowercase)
_LOWER_DIGITS = frozenset(string.ascii_lowercase + string.digits)
_ALNUM = frozenset(string.ascii_letters + string.digits)
_OBJECT_CHARS = re.compile(r"[a-z0-9-]+")
_LABEL_CHARS = re.compile(r"[a-zA-Z0-9._-]+")
_NOT_LOWER_ALNUM = re.compile(r"[^a-z0-9]+")


def escape_slug(name: str) -> str:
    """The legacy ("escape") slug: escapism with ``-`` as escape char, lowercased."""
    escaped: str = escapism.escape(name, safe=_LOWER_DIGITS, escape_char="-")
    return escaped.lower()


def is_valid_object_name(text: str) -> bool:
    """True for a valid DNS label under both RFC 1035 and RFC 1123 (the strictest object rule)."""
    return (
        0 < len(text) <= 63
        and text[0] in _LOWER
        and text[-1] in _LOWER_DIGITS
        and _OBJECT_CHARS.fullmatch(text) is not None
    )


def is_valid_label(text: str) -> bool:
    """True for a valid label value (the empty string is one)."""
    if not text:
        return True
    return (
        len(text) <= 63
        and text[0] in _ALNUM
        and text[-1] in _ALNUM
        and _LABEL_CHARS.fullmatch(text) is not None
    )


def is_valid_default(text: str) -> bool:
    """The check used for object names and template fields."""
    return is_valid_object_name(text)


def _clean_prefix(name: str, max_length: int) -> str:
    """Lowercase, squeeze non-alphanumerics to one '-', trim, lead with a letter, never empty."""
    cleaned = _NOT_LOWER_ALNUM.sub("-", name.lower())
    cleaned = cleaned.lstrip("-")[:max_length].rstrip("-")
    if cleaned and cleaned[0] not in _LOWER:
        cleaned = "x-" + cleaned[: max_length - 2]
    return cleaned or "x"


def _short_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:HASH_LENGTH]


def strip_and_hash(name: str, max_length: int = 32) -> str:
    """``{cleaned prefix}---{8 hex of sha256(name)}``, at most ``max_length`` characters."""
    prefix_length = max_length - HASH_LENGTH - 3
    if prefix_length < 1:
        raise ValueError(f"Cannot make safe names shorter than {HASH_LENGTH + 4}")
    return f"{_clean_prefix(name, prefix_length)}---{_short_hash(name.encode('utf8'))}"


def safe_slug(
    name: str,
    is_valid: Callable[[str], bool] = is_valid_default,
    max_length: int | None = None,
) -> str:
    """The "safe" slug: ``name`` itself when valid (and short enough), else strip_and_hash.

    Names containing ``--`` are always hashed, so no raw name can look like a hashed one or like
    a ``{user}--{server}`` join.
    """
    fits = max_length is None or len(name) <= max_length
    if "--" not in name and fits and is_valid(name):
        return name
    return strip_and_hash(name, max_length=max_length or 32)


def multi_slug(names: Sequence[str], max_length: int = FIELD_MAX_LENGTH) -> str:
    """Several names joined with ``--`` sharing one trailing ``---{hash}``.

    The hash covers all raw names separated by byte 0xFF (never a UTF-8 start byte), so
    ("ab", "c") and ("a", "bc") do not collide.
    """
    digest = _short_hash(b"\xff".join(n.encode("utf8") for n in names))
    per_name = (max_length - HASH_LENGTH - 1) // len(names) - 2
    if per_name < 2:
        raise ValueError(f"Not enough characters for {len(names)} names: {max_length}")
    return "--".join(_clean_prefix(n, per_name) for n in names) + f"---{digest}"


def safe_user_server(
    safe_username: str, safe_servername: str, raw_user: str, raw_server: str
) -> str:
    """The safe ``{user_server}`` field: ``{user}--{server}``, or a multi_slug when too long."""
    if len(safe_username) + len(safe_servername) + 2 > FIELD_MAX_LENGTH:
        return multi_slug([raw_user, raw_server], max_length=FIELD_MAX_LENGTH)
    if raw_server:
        return f"{safe_username}--{safe_servername}"
    return safe_username


def template_fields(username: str, servername: str, scheme: str) -> dict[str, str]:
    """The name-derived template fields of one server under ``scheme`` ("safe" or "escape").

    Returns ``username``/``servername``/``user_server`` (scheme-dependent) plus the
    ``safe_*``, ``escaped_*`` and ``unescaped_*`` variants KubeSpawner 7.1 also offers.
    """
    safe_user = safe_slug(username, max_length=FIELD_MAX_LENGTH)
    safe_server = safe_slug(servername, max_length=FIELD_MAX_LENGTH) if servername else ""
    safe_joined = safe_user_server(safe_user, safe_server, username, servername)
    escaped_user = escape_slug(username)
    escaped_server = escape_slug(servername)
    if scheme == "safe":
        chosen = (safe_user, safe_server, safe_joined)
    elif scheme == "escape":
        joined = f"{escaped_user}--{escaped_server}" if escaped_server else escaped_user
        chosen = (escaped_user, escaped_server, joined)
    else:
        raise ValueError(f"slug scheme must be 'safe' or 'escape', not '{scheme}'")
    return {
        "unescaped_username": username,
        "unescaped_servername": servername,
        "username": chosen[0],
        "servername": chosen[1],
        "user_server": chosen[2],
        "safe_username": safe_user,
        "safe_servername": safe_server,
        "safe_user_server": safe_joined,
        "escaped_username": escaped_user,
        "escaped_servername": escaped_server,
        "escaped_user_server": f"{escaped_user}--{escaped_server}",
    }


def label_slug(value: str) -> str:
    """A label value for a raw user or server name (``hub.jupyter.org/username`` etc.)."""
    return safe_slug(value, is_valid=is_valid_label)
