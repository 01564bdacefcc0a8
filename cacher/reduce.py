"""Pure reduction of raw Kubernetes JSON into the compact records of the contract.

``pod_record`` turns a raw Pod (a dict as parsed by orjson from a list or watch
response) into a :class:`~kubecache.contract.PodRecord`; ``event_entry`` turns a
raw core/v1 Event into the pod key it is about and an
:class:`~kubecache.contract.EventRecord`. No I/O and no state: the writer
decides what reaches Redis.

Raw objects are plain dicts (as orjson parses them). Objects that cannot be
reduced (identity missing, fields of the wrong type,
unparseable times) raise :class:`MalformedObject` with a message naming the
object and the field; never a ``KeyError`` or ``TypeError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from kubecache.contract import (
    MAX_MESSAGE,
    MAX_META_VALUE,
    RECORD_ANNOTATION_PREFIX,
    RECORD_LABELS,
    SERVERNAME_KEY,
    USERNAME_KEY,
    ContainerSummary,
    EventRecord,
    PodRecord,
    full_value_sha256,
    pod_key,
)


class MalformedObject(ValueError):
    """A raw API object that cannot be reduced; the message names it and the field."""


# --------------------------------------------------------------------------
# Small typed accessors: absent -> default, wrong type -> MalformedObject


def _mapping(obj: Mapping[str, Any], field: str, where: str) -> Mapping[str, Any]:
    value = obj.get(field)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedObject(f"{where}: {field} is {type(value).__name__}, expected an object")
    return value


def _list(obj: Mapping[str, Any], field: str, where: str) -> list[Any]:
    value = obj.get(field)
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedObject(f"{where}: {field} is {type(value).__name__}, expected a list")
    return value


def _str(obj: Mapping[str, Any], field: str, where: str) -> str | None:
    value = obj.get(field)
    if value is None or isinstance(value, str):
        return value
    raise MalformedObject(f"{where}: {field} is {type(value).__name__}, expected a string")


def _int(obj: Mapping[str, Any], field: str, where: str) -> int | None:
    value = obj.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedObject(f"{where}: {field} is {type(value).__name__}, expected an integer")
    return value


def _required_str(obj: Mapping[str, Any], field: str, where: str) -> str:
    value = _str(obj, field, where)
    if not value:
        raise MalformedObject(f"{where}: metadata.{field} is missing")
    return value


def _resource_version(text: str, where: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise MalformedObject(
            f"{where}: metadata.resourceVersion {text[:40]!r} is not an integer"
        ) from None


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit]


def unix_seconds(text: str, where: str = "object") -> int:
    """Unix seconds of an RFC 3339 time (``2024-05-01T12:00:00Z``, fractions allowed)."""
    try:
        return int(datetime.fromisoformat(text).timestamp())
    except (ValueError, TypeError):
        raise MalformedObject(f"{where}: {str(text)[:40]!r} is not an RFC 3339 time") from None


def _time(obj: Mapping[str, Any], field: str, where: str) -> int | None:
    text = _str(obj, field, where)
    return unix_seconds(text, f"{where}: {field}") if text else None


def describe(raw: object) -> str:
    """``namespace/name`` of a raw object for log messages, as far as it has one."""
    if not isinstance(raw, dict):
        return f"<{type(raw).__name__}>"
    meta = raw.get("metadata")
    if not isinstance(meta, dict):
        return "<no metadata>"
    return f"{meta.get('namespace') or '?'}/{meta.get('name') or '?'}"


def object_key(raw: object) -> str | None:
    """``namespace/name`` of a raw object, or None when it has no usable identity.

    Lenient on purpose: reconciliation must not delete the record of a listed
    pod just because the listed object failed to reduce.
    """
    if not isinstance(raw, dict):
        return None
    meta = raw.get("metadata")
    if not isinstance(meta, dict):
        return None
    namespace, name = meta.get("namespace"), meta.get("name")
    if isinstance(namespace, str) and isinstance(name, str) and namespace and name:
        return pod_key(namespace, name)
    return None


# --------------------------------------------------------------------------
# Pods


def pod_record(raw: Mapping[str, Any]) -> PodRecord:
    """The compact record of a raw Pod; raises :class:`MalformedObject`."""
    if not isinstance(raw, dict):
        raise MalformedObject(f"pod is {type(raw).__name__}, expected an object")
    where = f"pod {describe(raw)}"
    meta = _mapping(raw, "metadata", where)
    spec = _mapping(raw, "spec", where)
    status = _mapping(raw, "status", where)

    record: dict[str, Any] = {
        "namespace": _required_str(meta, "namespace", where),
        "name": _required_str(meta, "name", where),
        "uid": _required_str(meta, "uid", where),
        "rv": _resource_version(_required_str(meta, "resourceVersion", where), where),
        "phase": _str(status, "phase", where) or "Pending",
        "ready": False,
    }
    optional: dict[str, Any] = {
        "created": _time(meta, "creationTimestamp", where),
        "ip": _str(status, "podIP", where),
        "node": _str(spec, "nodeName", where),
        "started": _time(status, "startTime", where),
        "deleted": _time(meta, "deletionTimestamp", where),
        "grace": _int(meta, "deletionGracePeriodSeconds", where),
        "reason": _str(status, "reason", where),
        "message": _str(status, "message", where),
    }
    for condition in _list(status, "conditions", where):
        if not isinstance(condition, dict):
            raise MalformedObject(f"{where}: status.conditions holds a non-object")
        kind, state = condition.get("type"), condition.get("status")
        if kind == "Ready":
            record["ready"] = state == "True"
        elif (
            kind == "PodScheduled"
            and state == "False"
            and condition.get("reason") == ("Unschedulable")
        ):
            optional["unschedulable"] = _str(condition, "message", where) or "Unschedulable"
    for field, value in optional.items():
        if value is None or value == "":
            continue
        record[field] = _cut(value, MAX_MESSAGE) if isinstance(value, str) else value
    record["containers"] = _containers(spec, status, where)
    raw_annotations = _mapping(meta, "annotations", where)
    annotations = _annotations(raw_annotations, where)
    record["labels"] = _labels(_mapping(meta, "labels", where), annotations, where)
    record["annotations"] = annotations
    cut = {
        key: full_value_sha256(raw_annotations[key])
        for key, value in annotations.items()
        if len(raw_annotations[key]) > len(value)
    }
    if cut:  # readers match long user/server names exactly by digest
        record["cut_sha256"] = cut
    return record  # type: ignore[return-value]


def _containers(
    spec: Mapping[str, Any], status: Mapping[str, Any], where: str
) -> list[ContainerSummary]:
    statuses: dict[str, Mapping[str, Any]] = {}
    for item in _list(status, "containerStatuses", where):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise MalformedObject(f"{where}: status.containerStatuses holds an unnamed entry")
        statuses[item["name"]] = item
    summaries: list[ContainerSummary] = []
    for container in _list(spec, "containers", where):
        if not isinstance(container, dict) or not isinstance(container.get("name"), str):
            raise MalformedObject(f"{where}: spec.containers holds an unnamed entry")
        name = container["name"]
        summaries.append(_container(name, statuses.get(name), f"{where} container {name}"))
    return summaries


def _container(name: str, status: Mapping[str, Any] | None, where: str) -> ContainerSummary:
    """One container; without a status yet it is waiting with no reason."""
    if status is None:
        return {"name": name, "ready": False, "state": "waiting", "restarts": 0}
    summary: ContainerSummary = {
        "name": name,
        "ready": status.get("ready") is True,
        "state": "waiting",
        "restarts": _int(status, "restartCount", where) or 0,
    }
    state = _mapping(status, "state", where)
    detail: Mapping[str, Any] = {}
    if "running" in state:
        summary["state"] = "running"
    elif "terminated" in state:
        summary["state"] = "terminated"
        detail = _mapping(state, "terminated", where)
        code = _int(detail, "exitCode", where)
        if code is not None:
            summary["exit_code"] = code
    else:
        detail = _mapping(state, "waiting", where)
        # A crash-looping container waits; its last termination says why.
        last = _mapping(_mapping(status, "lastState", where), "terminated", where)
        code = _int(last, "exitCode", where)
        if code is not None:
            summary["exit_code"] = code
    reason = _str(detail, "reason", where)
    if reason:
        summary["reason"] = _cut(reason, MAX_META_VALUE)
    message = _str(detail, "message", where)
    if message:
        summary["message"] = _cut(message, MAX_MESSAGE)
    return summary


#: Name labels that the raw-name annotation of the same key makes redundant.
_NAME_KEYS = frozenset({USERNAME_KEY, SERVERNAME_KEY})


def _labels(
    labels: Mapping[str, Any], annotations: Mapping[str, str], where: str
) -> dict[str, str]:
    """The :data:`RECORD_LABELS` of the pod, minus name labels an annotation replaces.

    KubeSpawner >= 7 writes the raw user and server names as annotations and
    escaped copies as labels; readers take the annotation first
    (:func:`kubecache.contract.user_and_server`), so the label is kept only
    for older pods without the annotation.
    """
    kept: dict[str, str] = {}
    for key in RECORD_LABELS.intersection(labels):
        if key in _NAME_KEYS and key in annotations:
            continue
        value = labels[key]
        if not isinstance(value, str):
            raise MalformedObject(f"{where}: label {key} is not a string")
        kept[key] = _cut(value, MAX_META_VALUE)
    return dict(sorted(kept.items()))


def _annotations(annotations: Mapping[str, Any], where: str) -> dict[str, str]:
    kept: dict[str, str] = {}
    for key, value in annotations.items():
        if isinstance(key, str) and key.startswith(RECORD_ANNOTATION_PREFIX):
            if not isinstance(value, str):
                raise MalformedObject(f"{where}: annotation {key} is not a string")
            kept[key] = _cut(value, MAX_META_VALUE)
    return kept


# --------------------------------------------------------------------------
# Stored form

#: Keys written before ``rv``, in this order; all of them hold strings.
_BEFORE_RV = ("uid",)
#: Keys never stored: the ``P pods`` field (``namespace/name``) holds them.
_IN_FIELD = frozenset({"namespace", "name"})
#: Keys left out of the stored form when empty: decode_pod_record restores them.
_DEFAULTED = frozenset({"containers", "labels", "annotations"})


def encode_pod_record(record: PodRecord) -> bytes:
    """The bytes of ``record`` as stored in ``P pods`` (orjson, compact).

    Guarantee the write scripts rely on (:mod:`cacher.scripts` reads a stored
    record's resourceVersion with ``string.match(stored, '"rv":(%d+)')``,
    without decoding it): the object starts with the string key ``uid`` and
    then ``rv``, an integer. So the first
    ``"rv":`` in the bytes is the record's own: a quote inside a JSON string
    is always escaped (``\\"``), so no string value (a name, a label, a
    message) can contain ``"rv":`` followed by digits, and no key before
    ``rv`` is named ``rv``.

    Left out: ``namespace`` and ``name`` (the field holds them; readers pass
    it to ``decode_pod_record(raw, key=field)``), keys whose value is None
    (:func:`pod_record` makes none), and, because
    :func:`~kubecache.contract.decode_pod_record` restores them, empty
    ``containers``, ``labels`` and ``annotations`` and a container's
    ``restarts`` when 0. So ``decode_pod_record(encode_pod_record(r), key=k) == r``
    for every record :func:`pod_record` makes.
    """
    rv = record["rv"]
    if type(rv) is not int:
        raise TypeError(f"pod record rv must be an int, not {type(rv).__name__}")
    out: dict[str, Any] = {}
    for key in _BEFORE_RV:
        value = record[key]  # type: ignore[literal-required]
        if not isinstance(value, str):
            raise TypeError(f"pod record {key} must be a string, not {type(value).__name__}")
        out[key] = value
    out["rv"] = rv
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


# --------------------------------------------------------------------------
# Events


def event_entry(raw: Mapping[str, Any]) -> tuple[str, EventRecord] | None:
    """``(pod key, entry)`` of a raw core/v1 Event; None when it is not about a Pod.

    Raises :class:`MalformedObject` for an event without identity or with
    fields of the wrong type.
    """
    if not isinstance(raw, dict):
        raise MalformedObject(f"event is {type(raw).__name__}, expected an object")
    where = f"event {describe(raw)}"
    meta = _mapping(raw, "metadata", where)
    involved = _mapping(raw, "involvedObject", where)
    if involved.get("kind") != "Pod":
        return None
    namespace = _str(involved, "namespace", where) or _str(meta, "namespace", where)
    name = _str(involved, "name", where)
    if not namespace or not name:
        raise MalformedObject(f"{where}: involvedObject names no pod")
    uid = _required_str(meta, "uid", where)
    rv = _resource_version(_required_str(meta, "resourceVersion", where), where)
    count = _int(raw, "count", where)
    if count is None:
        count = _int(_mapping(raw, "series", where), "count", where)
    entry: EventRecord = {
        "uid": uid,
        "rv": rv,
        "pod_uid": _str(involved, "uid", where) or "",
        "type": _str(raw, "type", where) or "Normal",
        "reason": _cut(_str(raw, "reason", where) or "", MAX_META_VALUE),
        "message": _cut(_str(raw, "message", where) or "", MAX_MESSAGE),
        "count": count or 1,
    }
    first = _str(raw, "firstTimestamp", where)
    last = _str(raw, "lastTimestamp", where) or _str(raw, "eventTime", where) or first
    if first:
        entry["first"] = first
    if last:
        entry["last"] = last
    return pod_key(namespace, name), entry


__all__ = [
    "MalformedObject",
    "describe",
    "encode_pod_record",
    "event_entry",
    "object_key",
    "pod_record",
    "unix_seconds",
]
