"""Properties of the one translation and the stored form, and the write scripts' reliance on it.

- ``decode(encode(r)) == r`` for any record the ``PodRecord`` type allows (the
  strategy is derived from the TypedDict: a new field is covered once declared);
- Pod -> record -> encode -> decode equals Pod -> record, strict and lenient;
- strict and lenient agree on every pod strict accepts, and lenient never raises;
- the Lua in ``cacher/lua_scripts.py`` reads ``rv``, ``uid`` and an event's prefix
  where the encoders put them (run in a real redis-server).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Literal, get_args, get_origin, get_type_hints, is_typeddict

import pytest
import redis as syncredis
from hypothesis import given, settings
from hypothesis import strategies as st

from kubecache.cacher import lua_scripts as scripts
from kubecache.contract import (
    EVENT_RECORD_LEADING_KEYS,
    POD_RECORD_LEADING_KEYS,
    RECORD_LABELS,
    SERVERNAME_KEY,
    USERNAME_KEY,
    EventRecord,
    MalformedObject,
    PodRecord,
    decode_event_record,
    decode_pod_record,
    encode_event_record,
    encode_pod_record,
    lenient_pod_record,
    pod_key,
    pod_record,
)
from kubecache.contract import reduce as reduce_module
from tests.support.redis_server import RedisServer

#: Redis holds UTF-8 (orjson writes only that): never a lone surrogate.
characters = st.characters(exclude_categories=("Cs",))
text = st.text(characters, max_size=12)
#: Kubernetes names (DNS labels): what a ``namespace/name`` field is made of.
dns_label = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?\Z")
#: Etcd revisions: the scripts compare them as Lua numbers, exact up to 2^53.
revisions = st.integers(min_value=1, max_value=2**53)
int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


# --------------------------------------------------------------------------
# Records, derived from their TypedDicts


def _strategy(kind: Any) -> st.SearchStrategy[Any]:
    origin = get_origin(kind)
    if kind is str:
        return text
    if kind is bool:
        return st.booleans()
    if kind is int:
        return int64
    if origin is Literal:
        return st.sampled_from(get_args(kind))
    if origin is list:
        return st.lists(_strategy(get_args(kind)[0]), max_size=3)
    if origin is dict:
        return st.dictionaries(text, _strategy(get_args(kind)[1]), max_size=3)
    if is_typeddict(kind):
        return typed_dicts(kind)
    raise TypeError(f"no strategy for {kind!r}: teach tests/contract/test_stored_form.py")


def typed_dicts(kind: Any, **fixed: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Dicts of the TypedDict ``kind``: every required key, any optional one."""
    hints = get_type_hints(kind)
    required = {k: fixed.get(k, _strategy(hints[k])) for k in sorted(kind.__required_keys__)}
    optional = {k: fixed.get(k, _strategy(hints[k])) for k in sorted(kind.__optional_keys__)}
    return st.fixed_dictionaries(required, optional=optional)


pod_records: st.SearchStrategy[PodRecord] = typed_dicts(
    PodRecord, namespace=dns_label, name=dns_label, rv=revisions
)
#: Event uids are Kubernetes UIDs; the event script builds its prefix from the raw uid.
event_records: st.SearchStrategy[EventRecord] = typed_dicts(
    EventRecord, uid=st.uuids().map(str), rv=revisions
)


def _key(record: PodRecord) -> str:
    return pod_key(record["namespace"], record["name"])


@given(pod_records)
def test_any_pod_record_round_trips_through_the_stored_form(record: PodRecord) -> None:
    assert decode_pod_record(encode_pod_record(record), key=_key(record)) == record


@given(event_records)
def test_any_event_record_round_trips_through_the_stored_form(entry: EventRecord) -> None:
    assert decode_event_record(encode_event_record(entry)) == entry


# --------------------------------------------------------------------------
# Raw pods as the API serves them (and damaged ones)

times = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
).map(lambda t: t.strftime("%Y-%m-%dT%H:%M:%S") + ("Z" if t.microsecond % 2 else ".123456Z"))
#: Short text, or long enough to be cut (labels/annotations 256, messages 1024).
values = st.one_of(text, st.text(characters, min_size=250, max_size=1100))
CONTAINER_NAMES = ["notebook", "sidecar", "proxy"]


def _details(*required: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {k: st.integers(0, 255) for k in required}, optional={"reason": values, "message": values}
    )


container_states = st.one_of(
    st.just({}),
    st.fixed_dictionaries({"running": st.fixed_dictionaries({}, optional={"startedAt": times})}),
    st.fixed_dictionaries({"waiting": _details()}),
    st.fixed_dictionaries({"terminated": _details("exitCode")}),
)


@st.composite
def raw_pods(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(CONTAINER_NAMES), unique=True, max_size=3))
    statuses = [
        draw(
            st.fixed_dictionaries(
                {"name": st.just(name), "state": container_states},
                optional={
                    "ready": st.booleans(),
                    "restartCount": st.integers(0, 10**6),
                    "lastState": st.fixed_dictionaries({"terminated": _details("exitCode")}),
                },
            )
        )
        for name in names
        if draw(st.booleans())
    ]
    label_keys = st.sampled_from(sorted(RECORD_LABELS | {"app", "release"}))
    annotation_keys = st.sampled_from(
        [USERNAME_KEY, SERVERNAME_KEY, "hub.jupyter.org/other", "example.com/x"]
    )
    meta = draw(
        st.fixed_dictionaries(
            {
                "namespace": dns_label,
                "name": dns_label,
                "uid": st.uuids().map(str),
                "resourceVersion": revisions.map(str),
            },
            optional={
                "creationTimestamp": times,
                "deletionTimestamp": times,
                "deletionGracePeriodSeconds": st.integers(0, 3600),
                "labels": st.dictionaries(label_keys, values, max_size=4),
                "annotations": st.dictionaries(annotation_keys, values, max_size=4),
            },
        )
    )
    condition = st.fixed_dictionaries(
        {
            "type": st.sampled_from(["Ready", "PodScheduled", "Initialized"]),
            "status": st.sampled_from(["True", "False", "Unknown"]),
        },
        optional={"reason": st.sampled_from(["Unschedulable", "x"]), "message": values},
    )
    status = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "phase": st.sampled_from(["Pending", "Running", "Succeeded", "Failed", "Unknown"]),
                "podIP": st.ip_addresses(v=4).map(str),
                "startTime": times,
                "reason": values,
                "message": values,
                "conditions": st.lists(condition, max_size=3),
            },
        )
    )
    if statuses:
        status["containerStatuses"] = statuses
    spec: dict[str, Any] = {"containers": [{"name": n, "image": "x"} for n in names]}
    if draw(st.booleans()):
        spec["nodeName"] = draw(dns_label)
    return {"metadata": meta, "spec": spec, "status": status}


junk = st.recursive(
    st.one_of(st.none(), st.booleans(), int64, st.floats(allow_nan=False), text),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(text, inner, max_size=3)),
    max_leaves=6,
)


def _paths(value: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return
    for step, inner in items:
        yield (*at, step)
        yield from _paths(inner, (*at, step))


@st.composite
def damaged_pods(draw: st.DrawFn) -> dict[str, Any]:
    """A raw pod with up to three values (anywhere, identity included) replaced by anything."""
    pod = draw(raw_pods())
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(pod))))
        target: Any = pod
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = draw(junk)
    return pod


@given(raw_pods())
def test_a_pod_record_reads_back_from_the_stored_form_as_reduced(raw: dict[str, Any]) -> None:
    record = pod_record(raw)
    assert decode_pod_record(encode_pod_record(record), key=_key(record)) == record


@given(raw_pods())
def test_the_spawner_and_the_cacher_read_a_well_formed_pod_alike(raw: dict[str, Any]) -> None:
    assert lenient_pod_record(copy.deepcopy(raw)) == pod_record(raw)


@given(damaged_pods())
def test_a_damaged_pod_is_refused_or_read_alike_and_the_lenient_read_never_raises(
    raw: dict[str, Any],
) -> None:
    lenient = lenient_pod_record(copy.deepcopy(raw))
    try:
        strict = pod_record(copy.deepcopy(raw))
    except MalformedObject:
        pass
    else:
        assert strict == lenient
    if lenient["namespace"] and lenient["name"]:
        stored = encode_pod_record(lenient)
        assert decode_pod_record(stored, key=_key(lenient)) == lenient
    meta = raw.get("metadata")
    if isinstance(meta, dict) and meta.get("deletionTimestamp"):
        assert "deleted" in lenient, "a pod the API says is terminating must read as deleted"


def _general(raw: dict[str, Any]) -> PodRecord | MalformedObject:
    try:
        return reduce_module._pod_record(copy.deepcopy(raw), strict=True)
    except MalformedObject as e:
        return e


def _same_record_and_bytes(got: PodRecord, want: PodRecord) -> None:
    assert got == want
    assert list(got) == list(want)  # key order: the stored bytes follow it
    for mine, theirs in zip(got["containers"], want["containers"], strict=True):
        assert list(mine) == list(theirs)
    assert encode_pod_record(got) == encode_pod_record(want)


@given(raw_pods())
def test_the_cachers_fast_path_takes_every_well_formed_pod_and_reduces_it_alike(
    raw: dict[str, Any],
) -> None:
    want = _general(raw)
    assert not isinstance(want, MalformedObject)
    fast = reduce_module._fast_pod_record(copy.deepcopy(raw))
    assert fast is not None, "a well-formed pod left the fast path"
    _same_record_and_bytes(fast, want)
    _same_record_and_bytes(pod_record(raw), want)


@given(damaged_pods())
def test_the_cachers_fast_path_refuses_what_the_general_translation_refuses(
    raw: dict[str, Any],
) -> None:
    want = _general(raw)
    fast = reduce_module._fast_pod_record(copy.deepcopy(raw))
    if isinstance(want, MalformedObject):
        assert fast is None
        with pytest.raises(MalformedObject) as raised:
            pod_record(copy.deepcopy(raw))
        assert str(raised.value) == str(want)  # the general translation's message
    else:
        if fast is not None:
            _same_record_and_bytes(fast, want)
        _same_record_and_bytes(pod_record(copy.deepcopy(raw)), want)


@given(damaged_pods())
def test_the_lenient_read_takes_the_fast_path_only_where_it_reads_alike(
    raw: dict[str, Any],
) -> None:
    """lenient_pod_record reduces a well-formed pod by the fast path (the hub reduces every
    pod of a LIST so): the same record, key order included, as the general lenient
    translation, for any pod."""
    want = reduce_module._pod_record(copy.deepcopy(raw), strict=False)
    _same_record_and_bytes(lenient_pod_record(copy.deepcopy(raw)), want)


@given(raw_pods())
def test_the_lenient_read_of_a_well_formed_pod_is_the_general_one(raw: dict[str, Any]) -> None:
    want = reduce_module._pod_record(copy.deepcopy(raw), strict=False)
    _same_record_and_bytes(lenient_pod_record(copy.deepcopy(raw)), want)


def test_a_lenient_read_of_an_unreadable_deletion_time_still_marks_the_pod_deleted() -> None:
    from tests.cacher.unit import pods

    raw = pods.ready()
    raw["metadata"]["deletionTimestamp"] = "soon"
    with pytest.raises(MalformedObject, match="deletionTimestamp"):
        pod_record(raw)
    assert lenient_pod_record(raw)["deleted"] == 0


def test_a_terminated_container_without_an_exit_code_has_none_on_both_paths() -> None:
    from tests.cacher.unit import pods

    raw = pods.failed()
    del raw["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"]
    for record in (pod_record(raw), lenient_pod_record(raw)):
        assert record["containers"][0]["state"] == "terminated"
        assert "exit_code" not in record["containers"][0]


# --------------------------------------------------------------------------
# What the write scripts read from the stored bytes

#: A JSON string's bytes (escapes included), as orjson writes it.
_JSON_STRING = rb'"(?:[^"\\]|\\.)*"'


def _leading_pattern(keys: tuple[str, ...]) -> re.Pattern[bytes]:
    first, second = keys
    return re.compile(
        rb'\A\{"'
        + first.encode()
        + rb'":'
        + _JSON_STRING
        + rb',"'
        + second.encode()
        + rb'":(\d+)[,}]'
    )


@given(pod_records)
def test_a_stored_pod_record_starts_with_its_uid_then_its_rv(record: PodRecord) -> None:
    """cacher/lua_scripts.py reads the first '"rv":(%d+)' as the record's: uid, then rv, first."""
    assert POD_RECORD_LEADING_KEYS == ("uid", "rv")
    found = _leading_pattern(POD_RECORD_LEADING_KEYS).match(encode_pod_record(record))
    assert found is not None and int(found.group(1)) == record["rv"]


@given(event_records)
def test_a_stored_event_entry_starts_with_its_uid_then_its_rv(entry: EventRecord) -> None:
    """cacher/lua_scripts.py matches an event's earlier entries by '{"uid":"<uid>","rv":'."""
    assert EVENT_RECORD_LEADING_KEYS == ("uid", "rv")
    stored = encode_event_record(entry)
    assert stored.startswith(b'{"uid":"' + entry["uid"].encode() + b'","rv":')
    found = _leading_pattern(EVENT_RECORD_LEADING_KEYS).match(stored)
    assert found is not None and int(found.group(1)) == entry["rv"]


def _lua_function(script: str, name: str) -> str:
    found = re.search(rf"^local function {name}\(.*?^end$", script, re.S | re.M)
    assert found, f"cacher/lua_scripts.py no longer defines {name}: update this test"
    return found.group(0)


def _event_rv_pattern() -> str:
    found = re.search(r"string\.match\(item, '(\^\{\"uid\".*?)'\)", scripts.WRITE_EVENTS)
    assert found, (
        "cacher/lua_scripts.py no longer matches event entries by prefix: update this test"
    )
    return found.group(1)


@pytest.fixture(scope="module")
def lua(redis_server: RedisServer) -> Iterator[syncredis.Redis]:
    client = syncredis.Redis.from_url(redis_server.url)
    yield client
    client.close()


@settings(deadline=None, max_examples=50)
@given(record=pod_records)
def test_the_write_scripts_read_a_stored_records_rv_and_uid(
    lua: syncredis.Redis, record: PodRecord
) -> None:
    stored = encode_pod_record(record)
    read = _lua_function(scripts.WRITE_PODS, "previous_uid")
    script = (
        scripts._RECORD_RV
        + read
        + "\nreturn {string.format('%.0f', record_rv(ARGV[1])), previous_uid(ARGV[1], KEYS[1])}"
    )
    rv, uid = lua.eval(script, 1, "kubecache-test:no-log", stored)  # type: ignore[no-untyped-call]
    assert int(rv) == record["rv"]
    assert uid.decode() == record["uid"]


@settings(deadline=None, max_examples=50)
@given(entry=event_records)
def test_the_event_script_reads_a_stored_entrys_rv_by_its_prefix(
    lua: syncredis.Redis, entry: EventRecord
) -> None:
    script = "return string.format('%.0f', tonumber(string.match(ARGV[1], ARGV[2])))"
    rv = lua.eval(script, 0, encode_event_record(entry), _event_rv_pattern())  # type: ignore[no-untyped-call]
    assert int(rv) == entry["rv"]
