"""Raw Kubernetes JSON into the compact records: the one translation both sides use.

``pod_record`` turns a raw Pod (a dict as orjson parses it from a list or
watch response) into a :class:`~kubecache.contract.PodRecord`; the cacher's
watch uses it and stores what it returns. ``lenient_pod_record`` is the same
translation for the spawner's direct API reads (when the cache cannot answer
or a verdict is being confirmed): it never raises, it leaves out what it
cannot read. ``event_entry`` turns a raw core/v1 Event into the pod key it is
about and an :class:`~kubecache.contract.EventRecord`. No I/O and no state.

Strict and lenient differ only in what a field of the wrong type does: strict
raises :class:`MalformedObject` naming the object and the field (never a
``KeyError`` or ``TypeError``; the cacher logs it and skips the object),
lenient treats the field as absent. Both produce the same record for a
well-formed pod (a property test holds them to it).

Choices where the cacher's and the spawner's translations used to differ,
decided by what a verdict may conclude from the record (a record must never
make a running server look stopped, and a deleted pod must never look running):

- A terminated container's ``exit_code`` is the API's ``exitCode``, left out
  when the API gives none (it always does: ``exitCode`` has no ``omitempty``
  in core/v1 ``ContainerStateTerminated``). The record does not invent a code;
  a container is stopped because its ``state`` is ``terminated``, never
  because of its code, and readers that need a number take 1 (failed).
- ``deleted`` is always the deletion time in Unix seconds: a reader tests its
  presence (terminating), a person reads the time. A lenient read of a
  ``deletionTimestamp`` it cannot parse still marks the pod deleted (value 0):
  a pod the API says is terminating is never read as running.
- Values are cut the same way on both paths (messages to
  :data:`~kubecache.contract.MAX_MESSAGE`, labels, annotations and reasons to
  :data:`~kubecache.contract.MAX_META_VALUE`, with ``cut_sha256`` for cut
  annotations), so a verdict or a name match reads the same record whichever
  path it came from. Only an unparseable identity differs: strict refuses the
  object, lenient gives empty strings and ``rv`` 0 (the read itself named the pod).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from kubecache.contract.keys import pod_key
from kubecache.contract.records import (
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
)


class MalformedObject(ValueError):
    """A raw API object that cannot be reduced; the message names it and the field."""


# --------------------------------------------------------------------------
# Typed accessors: absent -> empty; wrong type -> MalformedObject when strict,
# else absent.


def _bad(strict: bool, message: str) -> None:
    if strict:
        raise MalformedObject(message)


def _mapping(obj: Mapping[str, Any], field: str, where: str, strict: bool) -> Mapping[str, Any]:
    value = obj.get(field)
    if value is None:
        return {}
    if not isinstance(value, dict):
        _bad(strict, f"{where}: {field} is {type(value).__name__}, expected an object")
        return {}
    return value


def _list(obj: Mapping[str, Any], field: str, where: str, strict: bool) -> list[Any]:
    value = obj.get(field)
    if value is None:
        return []
    if not isinstance(value, list):
        _bad(strict, f"{where}: {field} is {type(value).__name__}, expected a list")
        return []
    return value


def _str(obj: Mapping[str, Any], field: str, where: str, strict: bool = True) -> str | None:
    value = obj.get(field)
    if value is None or isinstance(value, str):
        return value
    _bad(strict, f"{where}: {field} is {type(value).__name__}, expected a string")
    return None


def _int(obj: Mapping[str, Any], field: str, where: str, strict: bool = True) -> int | None:
    value = obj.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        _bad(strict, f"{where}: {field} is {type(value).__name__}, expected an integer")
        return None
    return value


def _required_str(obj: Mapping[str, Any], field: str, where: str, strict: bool = True) -> str:
    value = _str(obj, field, where, strict)
    if not value:
        _bad(strict, f"{where}: metadata.{field} is missing")
        return ""
    return value


def _resource_version(text: str, where: str, strict: bool = True) -> int:
    try:
        return int(text)
    except ValueError:
        _bad(strict, f"{where}: metadata.resourceVersion {text[:40]!r} is not an integer")
        return 0


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit]


#: Times already converted (a pod's creation and start times come back with every
#: change of it); bounded, cleared when full. Only successful conversions are kept.
_SECONDS: dict[str, int] = {}
_SECONDS_CAP = 8192


def unix_seconds(text: str, where: str = "object") -> int:
    """Unix seconds of an RFC 3339 time (``2024-05-01T12:00:00Z``, fractions allowed)."""
    seconds = _SECONDS.get(text) if type(text) is str else None
    if seconds is not None:
        return seconds
    try:
        seconds = int(datetime.fromisoformat(text).timestamp())
    except (ValueError, TypeError, OverflowError, OSError):  # OverflowError: year 1 or 9999
        raise MalformedObject(f"{where}: {str(text)[:40]!r} is not an RFC 3339 time") from None
    if len(_SECONDS) >= _SECONDS_CAP:
        _SECONDS.clear()
    _SECONDS[text] = seconds
    return seconds


def _time(obj: Mapping[str, Any], field: str, where: str, strict: bool) -> int | None:
    text = _str(obj, field, where, strict)
    if not text:
        return None
    try:
        return unix_seconds(text, f"{where}: {field}")
    except MalformedObject:
        if strict:
            raise
        return None


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
    """The compact record of a raw Pod from the cacher's list or watch.

    Raises :class:`MalformedObject` for a pod without identity or with a
    field of the wrong type.

    The cacher's hot path: a well-formed pod is reduced by :func:`_fast_pod_record`
    (the same record, key order included, in a third of the time); anything it does
    not expect sends the pod through the general translation, which raises the error
    naming the field (a property test holds the two to the same output).
    """
    record = _fast_pod_record(raw)
    return record if record is not None else _pod_record(raw, strict=True)


def lenient_pod_record(raw: Mapping[str, Any]) -> PodRecord:
    """The same record from a Pod the spawner read from the API; never raises.

    Fields of the wrong type are left out; a pod without identity gets empty
    names and ``rv`` 0.

    A well-formed pod is reduced by :func:`_fast_pod_record`, as in :func:`pod_record`
    (the hub reduces every pod of a LIST this way when the cache cannot answer): where
    the strict translation accepts a pod, the lenient one gives the same record, and
    the fast path takes only pods the strict one accepts (property tests hold all
    three alike). Anything else goes through the general translation, leniently.
    """
    if not isinstance(raw, dict):
        raw = {}
    record = _fast_pod_record(raw)
    return record if record is not None else _pod_record(raw, strict=False)


class _Unexpected(Exception):
    """The fast path met something it leaves to the general translation."""


def _fast_str(obj: Mapping[str, Any], field: str) -> str | None:
    value = obj.get(field)
    if value is None or type(value) is str:
        return value
    raise _Unexpected


def _fast_seconds(obj: Mapping[str, Any], field: str) -> int | None:
    text = obj.get(field)
    if text is None or text == "":
        return None
    if type(text) is not str:
        raise _Unexpected
    seconds = _SECONDS.get(text)
    if seconds is None:
        try:
            seconds = unix_seconds(text)
        except MalformedObject:
            raise _Unexpected from None
    return seconds


def _fast_mapping(obj: Mapping[str, Any], field: str) -> Mapping[str, Any]:
    value = obj.get(field)
    if value is None:
        return _EMPTY
    if type(value) is not dict:
        raise _Unexpected
    return value


def _fast_list(obj: Mapping[str, Any], field: str) -> list[Any]:
    value = obj.get(field)
    if value is None:
        return []
    if type(value) is not list:
        raise _Unexpected
    return value


def _fast_int(obj: Mapping[str, Any], field: str) -> int | None:
    value = obj.get(field)
    if value is None or type(value) is int:
        return value
    raise _Unexpected


_EMPTY: Mapping[str, Any] = {}
_SORTED_RECORD_LABELS = tuple(sorted(RECORD_LABELS))
#: The optional record fields in the order the general translation adds them.
_OPTIONAL_ORDER = (
    "created", "ip", "node", "started", "deleted", "grace", "reason", "message", "unschedulable",
)  # fmt: skip


def _fast_pod_record(raw: Mapping[str, Any]) -> PodRecord | None:
    """:func:`_pod_record` (strict) of a well-formed pod, or None for anything unexpected.

    Same checks without building error messages; every case the general
    translation would refuse or treat specially returns None (it then decides).
    """
    try:
        if type(raw) is not dict:
            return None
        meta = _fast_mapping(raw, "metadata")
        spec = _fast_mapping(raw, "spec")
        status = _fast_mapping(raw, "status")
        namespace = meta.get("namespace")
        name = meta.get("name")
        uid = meta.get("uid")
        rv_text = meta.get("resourceVersion")
        if not (
            type(namespace) is str
            and namespace
            and type(name) is str
            and name
            and type(uid) is str
            and uid
            and type(rv_text) is str
            and rv_text
        ):
            return None
        try:
            rv = int(rv_text)
        except ValueError:
            return None
        ready = False
        unschedulable: str | None = None
        for condition in _fast_list(status, "conditions"):
            if type(condition) is not dict:
                return None
            kind = condition.get("type")
            if kind == "Ready":
                ready = condition.get("status") == "True"
            elif (
                kind == "PodScheduled"
                and condition.get("status") == "False"
                and condition.get("reason") == "Unschedulable"
            ):
                unschedulable = _fast_str(condition, "message") or "Unschedulable"
        record: dict[str, Any] = {
            "namespace": namespace,
            "name": name,
            "uid": uid,
            "rv": rv,
            "phase": _fast_str(status, "phase") or "Pending",
            "ready": ready,
        }
        values = (
            _fast_seconds(meta, "creationTimestamp"),
            _fast_str(status, "podIP"),
            _fast_str(spec, "nodeName"),
            _fast_seconds(status, "startTime"),
            _fast_seconds(meta, "deletionTimestamp"),
            _fast_int(meta, "deletionGracePeriodSeconds"),
            _fast_str(status, "reason"),
            _fast_str(status, "message"),
            unschedulable,
        )
        for field, value in zip(_OPTIONAL_ORDER, values, strict=True):
            if value is None or value == "":
                continue
            record[field] = (
                value[:MAX_MESSAGE] if type(value) is str and len(value) > MAX_MESSAGE else value
            )
        statuses: dict[str, Mapping[str, Any]] = {}
        for item in _fast_list(status, "containerStatuses"):
            if type(item) is not dict or type(item.get("name")) is not str:
                return None
            statuses[item["name"]] = item
        summaries: list[ContainerSummary] = []
        for container in _fast_list(spec, "containers"):
            if type(container) is not dict or type(container.get("name")) is not str:
                return None
            summaries.append(_fast_container(container["name"], statuses.get(container["name"])))
        record["containers"] = summaries
        raw_annotations = _fast_mapping(meta, "annotations")
        annotations: dict[str, str] = {}
        for key, value in raw_annotations.items():
            if type(key) is str and key.startswith(RECORD_ANNOTATION_PREFIX):
                if type(value) is not str:
                    return None
                annotations[key] = value[:MAX_META_VALUE] if len(value) > MAX_META_VALUE else value
        raw_labels = _fast_mapping(meta, "labels")
        labels: dict[str, str] = {}
        for key in _SORTED_RECORD_LABELS:  # sorted, as the general translation sorts them
            if key not in raw_labels or (key in _NAME_KEYS and key in annotations):
                continue
            value = raw_labels[key]
            if type(value) is not str:
                return None
            labels[key] = value[:MAX_META_VALUE] if len(value) > MAX_META_VALUE else value
        record["labels"] = labels
        record["annotations"] = annotations
        cut = {
            key: full_value_sha256(raw_annotations[key])
            for key, value in annotations.items()
            if len(raw_annotations[key]) > len(value)
        }
        if cut:
            record["cut_sha256"] = cut
        return record  # type: ignore[return-value]
    except _Unexpected:
        return None


def _fast_container(name: str, status: Mapping[str, Any] | None) -> ContainerSummary:
    """:func:`_container` (strict) of a well-formed container; raises :class:`_Unexpected`."""
    if status is None:
        return {"name": name, "ready": False, "state": "waiting", "restarts": 0}
    summary: ContainerSummary = {
        "name": name,
        "ready": status.get("ready") is True,
        "state": "waiting",
        "restarts": _fast_int(status, "restartCount") or 0,
    }
    state = _fast_mapping(status, "state")
    detail: Mapping[str, Any] = _EMPTY
    if "running" in state:
        summary["state"] = "running"
    elif "terminated" in state:
        summary["state"] = "terminated"
        detail = _fast_mapping(state, "terminated")
        code = _fast_int(detail, "exitCode")
        if code is not None:
            summary["exit_code"] = code
    else:
        detail = _fast_mapping(state, "waiting")
        last = _fast_mapping(_fast_mapping(status, "lastState"), "terminated")
        code = _fast_int(last, "exitCode")
        if code is not None:
            summary["exit_code"] = code
    if detail:
        reason = _fast_str(detail, "reason")
        if reason:
            summary["reason"] = reason[:MAX_META_VALUE]
        message = _fast_str(detail, "message")
        if message:
            summary["message"] = message[:MAX_MESSAGE]
    return summary


def _pod_record(raw: Mapping[str, Any], *, strict: bool) -> PodRecord:
    if not isinstance(raw, dict):
        raise MalformedObject(f"pod is {type(raw).__name__}, expected an object")
    where = f"pod {describe(raw)}"
    meta = _mapping(raw, "metadata", where, strict)
    spec = _mapping(raw, "spec", where, strict)
    status = _mapping(raw, "status", where, strict)

    record: dict[str, Any] = {
        "namespace": _required_str(meta, "namespace", where, strict),
        "name": _required_str(meta, "name", where, strict),
        "uid": _required_str(meta, "uid", where, strict),
        "rv": _resource_version(
            _required_str(meta, "resourceVersion", where, strict) or "0", where, strict
        ),
        "phase": _str(status, "phase", where, strict) or "Pending",
        "ready": False,
    }
    optional: dict[str, Any] = {
        "created": _time(meta, "creationTimestamp", where, strict),
        "ip": _str(status, "podIP", where, strict),
        "node": _str(spec, "nodeName", where, strict),
        "started": _time(status, "startTime", where, strict),
        "deleted": _time(meta, "deletionTimestamp", where, strict),
        "grace": _int(meta, "deletionGracePeriodSeconds", where, strict),
        "reason": _str(status, "reason", where, strict),
        "message": _str(status, "message", where, strict),
    }
    if optional["deleted"] is None and meta.get("deletionTimestamp"):
        optional["deleted"] = 0  # lenient: unreadable, but the pod is terminating
    for condition in _list(status, "conditions", where, strict):
        if not isinstance(condition, dict):
            _bad(strict, f"{where}: status.conditions holds a non-object")
            continue
        kind, state = condition.get("type"), condition.get("status")
        if kind == "Ready":
            record["ready"] = state == "True"
        elif (
            kind == "PodScheduled"
            and state == "False"
            and condition.get("reason") == ("Unschedulable")
        ):
            optional["unschedulable"] = _str(condition, "message", where, strict) or "Unschedulable"
    for field, value in optional.items():
        if value is None or value == "":
            continue
        record[field] = _cut(value, MAX_MESSAGE) if isinstance(value, str) else value
    record["containers"] = _containers(spec, status, where, strict)
    raw_annotations = _mapping(meta, "annotations", where, strict)
    annotations = _annotations(raw_annotations, where, strict)
    record["labels"] = _labels(_mapping(meta, "labels", where, strict), annotations, where, strict)
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
    spec: Mapping[str, Any], status: Mapping[str, Any], where: str, strict: bool
) -> list[ContainerSummary]:
    statuses: dict[str, Mapping[str, Any]] = {}
    for item in _list(status, "containerStatuses", where, strict):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            _bad(strict, f"{where}: status.containerStatuses holds an unnamed entry")
            continue
        statuses[item["name"]] = item
    summaries: list[ContainerSummary] = []
    for container in _list(spec, "containers", where, strict):
        if not isinstance(container, dict) or not isinstance(container.get("name"), str):
            _bad(strict, f"{where}: spec.containers holds an unnamed entry")
            continue
        name = container["name"]
        summaries.append(_container(name, statuses.get(name), f"{where} container {name}", strict))
    return summaries


def _container(
    name: str, status: Mapping[str, Any] | None, where: str, strict: bool
) -> ContainerSummary:
    """One container; without a status yet it is waiting with no reason."""
    if status is None:
        return {"name": name, "ready": False, "state": "waiting", "restarts": 0}
    summary: ContainerSummary = {
        "name": name,
        "ready": status.get("ready") is True,
        "state": "waiting",
        "restarts": _int(status, "restartCount", where, strict) or 0,
    }
    state = _mapping(status, "state", where, strict)
    detail: Mapping[str, Any] = {}
    if "running" in state:
        summary["state"] = "running"
    elif "terminated" in state:
        summary["state"] = "terminated"
        detail = _mapping(state, "terminated", where, strict)
        code = _int(detail, "exitCode", where, strict)
        if code is not None:
            summary["exit_code"] = code
    else:
        detail = _mapping(state, "waiting", where, strict)
        # A crash-looping container waits; its last termination says why.
        last_state = _mapping(status, "lastState", where, strict)
        code = _int(_mapping(last_state, "terminated", where, strict), "exitCode", where, strict)
        if code is not None:
            summary["exit_code"] = code
    reason = _str(detail, "reason", where, strict)
    if reason:
        summary["reason"] = _cut(reason, MAX_META_VALUE)
    message = _str(detail, "message", where, strict)
    if message:
        summary["message"] = _cut(message, MAX_MESSAGE)
    return summary


#: Name labels that the raw-name annotation of the same key makes redundant.
_NAME_KEYS = frozenset({USERNAME_KEY, SERVERNAME_KEY})


def _labels(
    labels: Mapping[str, Any], annotations: Mapping[str, str], where: str, strict: bool
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
            _bad(strict, f"{where}: label {key} is not a string")
            continue
        kept[key] = _cut(value, MAX_META_VALUE)
    return dict(sorted(kept.items()))


def _annotations(annotations: Mapping[str, Any], where: str, strict: bool) -> dict[str, str]:
    kept: dict[str, str] = {}
    for key, value in annotations.items():
        if isinstance(key, str) and key.startswith(RECORD_ANNOTATION_PREFIX):
            if not isinstance(value, str):
                _bad(strict, f"{where}: annotation {key} is not a string")
                continue
            kept[key] = _cut(value, MAX_META_VALUE)
    return kept


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
    meta = _mapping(raw, "metadata", where, True)
    involved = _mapping(raw, "involvedObject", where, True)
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
        count = _int(_mapping(raw, "series", where, True), "count", where)
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
    "event_entry",
    "lenient_pod_record",
    "object_key",
    "pod_record",
    "unix_seconds",
]
