"""Records to and from their stored form (orjson, stream fields), checked on the way in.

The encoders here are the only writers of the stored form: the cacher and the
test doubles both call them. Every decoder raises
:class:`~kubecache.contract.errors.ContractError` naming what is malformed;
nothing malformed leaves this module as a record.

The cacher's write scripts (``cacher/lua_scripts.py``) read two things from the
stored bytes without decoding them, so the encoders guarantee both (a test
runs the scripts' own patterns against the encoders' output):

- a pod record starts with ``{"uid":"<uid>","rv":<rv>``
  (:data:`POD_RECORD_LEADING_KEYS`): the first ``"rv":`` is the record's own;
- an event entry starts with ``{"uid":"<uid>","rv":<rv>``
  (:data:`EVENT_RECORD_LEADING_KEYS`): the scripts match an event's
  earlier entries by that prefix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import orjson

from kubecache.contract.errors import ContractError
from kubecache.contract.keys import split_pod_key
from kubecache.contract.records import (
    ContainerSummary,
    EventRecord,
    FeedEntry,
    FeedKind,
    PodRecord,
)

#: The keys a stored pod record starts with, in this order.
POD_RECORD_LEADING_KEYS = ("uid", "rv")
#: The keys a stored event entry starts with, in this order.
EVENT_RECORD_LEADING_KEYS = ("uid", "rv")
#: Pod record keys never stored: the ``P pods`` field (``namespace/name``) holds them.
_IN_FIELD = frozenset({"namespace", "name"})
#: Pod record keys left out of the stored form when empty: the decoder restores them.
_DEFAULTED = frozenset({"containers", "labels", "annotations"})


def _leading(record: PodRecord | EventRecord, what: str) -> dict[str, Any]:
    """``uid`` (a string) then ``rv`` (an int), checked: the scripts rely on both."""
    uid, rv = record["uid"], record["rv"]
    if not isinstance(uid, str):
        raise TypeError(f"{what} uid must be a string, not {type(uid).__name__}")
    if type(rv) is not int:
        raise TypeError(f"{what} rv must be an int, not {type(rv).__name__}")
    return {"uid": uid, "rv": rv}


def encode_pod_record(record: PodRecord) -> bytes:
    """The bytes of ``record`` as stored in ``P pods`` (orjson, compact).

    Starts with ``uid`` then ``rv`` (see the module docstring): a quote
    inside a JSON string is always escaped (``\\"``), so no string value (a
    name, a label, a message) can contain ``"rv":`` followed by digits, and
    no key before ``rv`` is named ``rv``.

    Left out: ``namespace`` and ``name`` (the field holds them; readers pass
    it to ``decode_pod_record(raw, key=field)``), keys whose value is None,
    and, because :func:`decode_pod_record` restores them, empty
    ``containers``, ``labels`` and ``annotations`` and a container's
    ``restarts`` when 0. So ``decode_pod_record(encode_pod_record(r), key=k) == r``
    for every record :func:`~kubecache.contract.pod_record` makes.
    """
    out = _leading(record, "pod record")
    for key, value in record.items():
        if key in out or key in _IN_FIELD or value is None or (key in _DEFAULTED and not value):
            continue
        out[key] = value
    if "containers" in out:
        out["containers"] = [_stored_container(c) for c in record["containers"]]
    return orjson.dumps(out)


def _stored_container(summary: ContainerSummary) -> Mapping[str, Any]:
    if summary.get("restarts") == 0:
        return {k: v for k, v in summary.items() if k != "restarts"}
    return summary


def encode_event_record(entry: EventRecord) -> bytes:
    """The bytes of an event log entry (orjson): ``uid``, ``rv`` first, None values left out."""
    out = _leading(entry, "event record")
    for key, value in entry.items():
        if key not in out and value is not None:
            out[key] = value
    return orjson.dumps(out)


def _load_object(raw: bytes | str, what: str) -> dict[str, Any]:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise ContractError(f"malformed {what} in Redis (not JSON): {e}") from e
    if not isinstance(value, dict):
        raise ContractError(f"malformed {what} in Redis: expected an object")
    return value


def _require(value: dict[str, Any], what: str, fields: dict[str, type | tuple[type, ...]]) -> None:
    for field, kind in fields.items():
        if not isinstance(value.get(field), kind) or isinstance(value.get(field), bool) != (
            kind is bool
        ):
            raise ContractError(
                f"malformed {what} in Redis: field {field!r} missing or not "
                f"{getattr(kind, '__name__', kind)}"
            )


def _require_optional(value: dict[str, Any], what: str, fields: dict[str, type]) -> None:
    """Like :func:`_require` for fields that may be absent (or null).

    Exact types: orjson makes only str, int, bool, float, list and dict, and a
    bool is not an int here. (Hot path: the spawner decodes on every poll.)
    """
    for field, kind in fields.items():
        got = value.get(field)
        if got is not None and type(got) is not kind:
            raise ContractError(
                f"malformed {what} in Redis: field {field!r} is not {kind.__name__}"
            )


_POD_FIELDS: dict[str, type | tuple[type, ...]] = {
    "namespace": str,
    "name": str,
    "uid": str,
    "rv": int,
    "phase": str,
    "ready": bool,
}
_OPTIONAL_POD_FIELDS: dict[str, type] = {
    "created": int,
    "ip": str,
    "node": str,
    "started": int,
    "deleted": int,
    "grace": int,
    "reason": str,
    "message": str,
    "unschedulable": str,
}
_CONTAINER_FIELDS: dict[str, type] = {
    "name": str,
    "ready": bool,
    "state": str,
    "restarts": int,
}
_OPTIONAL_CONTAINER_FIELDS: dict[str, type] = {
    "reason": str,
    "message": str,
    "exit_code": int,
}
_CONTAINER_STATES = ("running", "waiting", "terminated")
_OPTIONAL_EVENT_FIELDS: dict[str, type] = {"first": str, "last": str}
_EVENT_FIELDS: dict[str, type | tuple[type, ...]] = {
    "uid": str,
    "rv": int,
    "pod_uid": str,
    "type": str,
    "reason": str,
    "message": str,
    "count": int,
}


#: Every typed field of a stored pod record (required or not) and its exact type.
_POD_FIELD_TYPES: dict[str, type] = {
    **{field: kind for field, kind in _POD_FIELDS.items() if isinstance(kind, type)},
    **_OPTIONAL_POD_FIELDS,
}
#: Fields that must be objects whose values are all strings (absent: empty).
_STRING_MAPS = ("labels", "annotations", "cut_sha256")


def decode_pod_record(raw: bytes | str, *, key: str | None = None) -> PodRecord:
    """Parse a pod record read from field ``key`` of ``P pods``.

    The stored form leaves out ``namespace`` and ``name``: the field
    (``namespace/name``) already holds them, so readers pass it as ``key``.
    Raises :class:`ContractError` when the record is malformed or names
    another pod than its field.

    Types are checked exactly (``type(v) is kind``): orjson makes only str, int,
    bool, float, list and dict, and a bool is not an int here. Every poll of a
    hub decodes one record, so the checks are one pass over the fields present
    (the same checks as field by field, in about half the time).
    """
    value = _load_object(raw, "pod record")
    if key is not None:
        namespace, name = split_pod_key(key)
        if value.setdefault("namespace", namespace) != namespace or (
            value.setdefault("name", name) != name
        ):
            raise ContractError(f"malformed pod record in Redis: field {key!r} holds another pod")
    for field in _POD_FIELDS:
        if field not in value:
            _require(value, "pod record", _POD_FIELDS)  # raises, naming the field
    types = _POD_FIELD_TYPES
    for field, got in value.items():
        kind = types.get(field)
        if kind is not None and type(got) is not kind and got is not None:
            if field in _POD_FIELDS:
                _require(value, "pod record", _POD_FIELDS)
            raise ContractError(
                f"malformed pod record in Redis: field {field!r} is not {kind.__name__}"
            )
    for field in _POD_FIELDS:
        if value[field] is None:
            _require(value, "pod record", _POD_FIELDS)
    containers = value.setdefault("containers", [])
    value.setdefault("labels", {})
    value.setdefault("annotations", {})
    if type(containers) is not list:
        raise ContractError("malformed pod record in Redis: field 'containers' is not a list")
    for index, container in enumerate(containers):
        what = f"pod record (container {index})"
        if type(container) is not dict:
            raise ContractError(f"malformed {what} in Redis: not an object")
        container.setdefault("restarts", 0)  # left out of the stored JSON when 0
        for field, kind in _CONTAINER_FIELDS.items():
            if type(container.get(field)) is not kind:
                raise ContractError(
                    f"malformed {what} in Redis: field {field!r} missing or not {kind.__name__}"
                )
        _require_optional(container, what, _OPTIONAL_CONTAINER_FIELDS)
        if container["state"] not in _CONTAINER_STATES:
            raise ContractError(f"malformed {what} in Redis: unknown state {container['state']!r}")
    for field in _STRING_MAPS:
        mapping = value.get(field, {})
        if type(mapping) is not dict:
            _bad_string_map(field)
        for item in mapping.values():
            if type(item) is not str:
                _bad_string_map(field)
    return cast(PodRecord, value)


def _bad_string_map(field: str) -> None:
    raise ContractError(
        f"malformed pod record in Redis: field {field!r} is not an object of strings"
    )


def decode_event_record(raw: bytes | str) -> EventRecord:
    """Parse an event log entry; raises :class:`ContractError` when malformed."""
    value = _load_object(raw, "event record")
    _require(value, "event record", _EVENT_FIELDS)
    _require_optional(value, "event record", _OPTIONAL_EVENT_FIELDS)
    return cast(EventRecord, value)


def decode_feed_entry(fields: Mapping[Any, Any]) -> FeedEntry:
    """Parse stream fields of a feed entry; raises :class:`ContractError`."""
    try:
        text = {as_text(k): as_text(v) for k, v in fields.items()}
    except UnicodeDecodeError as e:
        raise ContractError(f"malformed feed entry in Redis: {e}") from e
    kind = text.get("kind")
    if kind not in ("pod", "gone", "event", "health"):
        raise ContractError(f"malformed feed entry in Redis: unknown kind {kind!r}")
    try:
        return FeedEntry(
            kind=cast(FeedKind, kind),
            key=text.get("key", ""),
            rv=int(text.get("rv", "0")),
            epoch=int(text.get("epoch", "0")),
        )
    except ValueError as e:
        raise ContractError(f"malformed feed entry in Redis: {e}") from e


def as_text(value: bytes | str) -> str:
    """A key or value of a Redis reply as str (bytes are UTF-8)."""
    return value.decode() if isinstance(value, bytes) else value
