"""Property: whatever bytes sit in Redis, decoding either refuses them with a
ContractError or yields a record every CLI view handles, with printable output."""

from __future__ import annotations

import contextlib

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubecache import views
from kubecache.contract import (
    CacheHealth,
    ContractError,
    decode_event_record,
    decode_pod_record,
    names_match,
)

#: Any character that can reach us: Redis holds UTF-8 (orjson writes and reads only that), so
#: never a lone surrogate (category Cs), which orjson.dumps refuses before the code under test.
characters = st.characters(exclude_categories=("Cs",))


def text(max_size: int | None = None) -> st.SearchStrategy[str]:
    return st.text(characters, max_size=max_size)


UNPRINTABLE = [chr(c) for c in (*range(0x20), 0x7F, *range(0x80, 0xA0), 0x202E, 0x2028)]
#: Text rich in what a terminal acts on.
hostile_text = st.text(st.one_of(st.sampled_from(UNPRINTABLE), characters), max_size=12)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    text(max_size=20),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
#: Records near the real shape, with any field possibly replaced by anything.
near_records = st.fixed_dictionaries(
    {
        "uid": st.one_of(text(max_size=5), json_values),
        "rv": st.one_of(st.integers(min_value=0, max_value=10**6), json_values),
        "phase": st.one_of(st.sampled_from(["Running", "Pending"]), hostile_text, json_values),
        "ready": st.one_of(st.booleans(), json_values),
    },
    optional={
        "created": json_values,
        "node": st.one_of(hostile_text, json_values),
        "reason": json_values,
        "containers": st.one_of(
            st.lists(
                st.dictionaries(
                    st.sampled_from(["name", "ready", "state", "restarts", "reason", "exit_code"]),
                    json_values,
                ),
                max_size=3,
            ),
            json_values,
        ),
        "labels": st.one_of(st.dictionaries(text(max_size=30), text()), json_values),
        "annotations": st.one_of(
            st.dictionaries(
                st.sampled_from(["hub.jupyter.org/username", "hub.jupyter.org/servername"]),
                hostile_text,
            ),
            json_values,
        ),
        "cut_sha256": json_values,
    },
)


def _assert_printable(text: str) -> None:
    """Nothing unprintable apart from the newlines between table rows."""
    assert not any(c in text for c in UNPRINTABLE if c != "\n"), repr(text)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(near_records, json_values), text(max_size=8), text(max_size=8))
def test_a_decoded_record_never_breaks_a_view(raw: object, user: str, server: str) -> None:
    try:
        record = decode_pod_record(orjson.dumps(raw), key="jhub/p")
    except ContractError:
        return
    row = views.server_row(record, now_s=1_700_000_000)
    _assert_printable(views.servers_table([row]))
    names_match(record, user=user, server=server)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_are_refused_or_decoded_never_crash(raw: bytes) -> None:
    for decode in (lambda b: decode_pod_record(b, key="ns/p"), decode_event_record):
        with contextlib.suppress(ContractError):
            decode(raw)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["schema", "epoch", "leader", "synced", "lag_ms"]),
                       st.binary(max_size=12)))  # fmt: skip
def test_health_fields_of_any_bytes_are_refused_or_read(fields: dict[str, bytes]) -> None:
    try:
        health = CacheHealth.from_redis(fields)
    except ContractError:
        return
    if health is not None:
        _assert_printable(views.status_text({"leader": health.leader, "prefix": "p:"}))


@settings(max_examples=300, deadline=None)
@given(json_values, text())
def test_event_lines_are_printable(raw: object, hostile: str) -> None:
    event = {
        "uid": "e", "rv": 1, "pod_uid": "p", "type": "Warning", "count": 2,
        "reason": hostile, "message": hostile + "\x1b[2J", "last": hostile,
    }  # fmt: skip
    _assert_printable(views.event_line(decode_event_record(orjson.dumps(event))))
    with contextlib.suppress(ContractError):
        decode_event_record(orjson.dumps(raw))
