"""Pure parts of a watch: splitting the byte stream into events, classifying
failures. No I/O here; :mod:`kubecache.cacher.watcher` drives it.
"""

from __future__ import annotations

import enum
from typing import Any, NamedTuple

import orjson


class LineSplitter:
    """Turns arbitrary byte chunks into complete newline-terminated lines."""

    def __init__(self) -> None:
        self._partial = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        data = self._partial + chunk if self._partial else chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()
        return [line for line in lines if line.strip()]

    @property
    def pending(self) -> int:
        """Bytes of an unfinished line kept for the next chunk."""
        return len(self._partial)


class WatchEvent(NamedTuple):
    """One parsed line: ``type`` ADDED/MODIFIED/DELETED/BOOKMARK/ERROR.

    A named tuple: made for every watch line, it costs a third of a frozen dataclass.
    """

    type: str
    object: dict[str, Any]

    @property
    def resource_version(self) -> str | None:
        metadata = self.object.get("metadata")
        if isinstance(metadata, dict):
            rv = metadata.get("resourceVersion")
            if isinstance(rv, str) and rv:
                return rv
        return None


_TYPES = frozenset({"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"})


def parse_line(line: bytes) -> WatchEvent | None:
    """A watch event from one JSON line; None when the line is malformed."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict):
        return None
    kind = value.get("type")
    obj = value.get("object")
    if kind not in _TYPES or not isinstance(obj, dict):
        return None
    return WatchEvent(kind, obj)


#: Largest resourceVersion adopted: Lua (the fenced scripts) compares them as
#: doubles, exact up to 2^53.
MAX_RESOURCE_VERSION = 2**53


def resource_version_problem(rv: object) -> str | None:
    """Why ``rv`` cannot be a resume point, or None when it can.

    resourceVersions are opaque to clients in general, but the cacher (and the
    contract) compare them as integers (etcd revisions): anything else would
    make every later watch fail with 400 and must never be adopted.
    """
    if not isinstance(rv, str) or not rv:
        return "resourceVersion missing"
    if not rv.isascii() or not rv.isdigit():
        return f"resourceVersion {rv[:40]!r} is not a decimal integer"
    if int(rv) > MAX_RESOURCE_VERSION:
        return f"resourceVersion {rv[:40]!r} is out of range"
    return None


def event_problem(event: WatchEvent) -> tuple[str, str] | None:
    """Why a parsed watch line must be skipped (its rv not adopted), or None.

    Returns (kind, message): kind ``resource-version`` or ``identity`` (a
    metric label). Every non-ERROR line needs a valid
    ``metadata.resourceVersion``; a change (ADDED/MODIFIED/DELETED) also
    needs the object's name and namespace (pods and events are namespaced).
    """
    if event.type == "ERROR":
        return None
    metadata = event.object.get("metadata")
    if not isinstance(metadata, dict):
        return "identity", "object without metadata"
    problem = resource_version_problem(metadata.get("resourceVersion"))
    if problem:
        return "resource-version", problem
    if event.type != "BOOKMARK":
        for field in ("name", "namespace"):
            value = metadata.get(field)
            if not isinstance(value, str) or not value:
                return "identity", f"metadata.{field} missing"
    return None


class Failure(enum.Enum):
    """What a failed request or an ERROR event means for the loop."""

    EXPIRED = "expired"  # 410: our resourceVersion is too old → relist
    THROTTLED = "throttled"  # 429: wait Retry-After
    SERVER = "server-error"  # 5xx: back off and retry
    TRANSPORT = "connection"  # no response (refused, reset, timeout)
    DENIED = "denied"  # 401/403/404: configuration or RBAC; retry slowly, report failed
    CLIENT = "client-error"  # other 4xx: our request is wrong; report failed


def classify_status(status: int) -> Failure:
    if status == 410:
        return Failure.EXPIRED
    if status == 429:
        return Failure.THROTTLED
    if status == 0:
        return Failure.TRANSPORT
    if status >= 500:
        return Failure.SERVER
    if status in (401, 403, 404):
        return Failure.DENIED
    return Failure.CLIENT


def error_event_status(obj: dict[str, Any]) -> tuple[int, str]:
    """(code, message) of a watch ERROR event's Status object."""
    code = obj.get("code")
    message = obj.get("message") or obj.get("reason") or "watch error"
    return (code if isinstance(code, int) else 500), str(message)


__all__ = [
    "MAX_RESOURCE_VERSION",
    "Failure",
    "LineSplitter",
    "WatchEvent",
    "classify_status",
    "error_event_status",
    "event_problem",
    "parse_line",
    "resource_version_problem",
]
