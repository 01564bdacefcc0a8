"""Splitting and parsing the raw watch stream; classifying failures."""

from __future__ import annotations

import orjson

from kubecache.cacher.watch_stream import (
    Failure,
    LineSplitter,
    classify_status,
    error_event_status,
    event_problem,
    parse_line,
    resource_version_problem,
)


def line(kind: str, obj: object) -> bytes:
    return orjson.dumps({"type": kind, "object": obj}) + b"\n"


def test_lines_split_across_chunks_are_joined() -> None:
    data = line("ADDED", {"metadata": {"resourceVersion": "5"}}) + line("MODIFIED", {})
    splitter = LineSplitter()
    got: list[bytes] = []
    for i in range(0, len(data), 7):
        got += splitter.feed(data[i : i + 7])
    assert [parse_line(g).type for g in got] == ["ADDED", "MODIFIED"]  # type: ignore[union-attr]
    assert splitter.pending == 0


def test_an_unfinished_line_waits_for_its_end() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b'{"type":"ADDED"') == []
    assert splitter.pending > 0
    assert splitter.feed(b',"object":{}}\n\n') == [b'{"type":"ADDED","object":{}}']


def test_events_carry_their_resource_version() -> None:
    event = parse_line(line("BOOKMARK", {"kind": "Pod", "metadata": {"resourceVersion": "42"}}))
    assert event is not None
    assert (event.type, event.resource_version) == ("BOOKMARK", "42")


def test_malformed_lines_are_none() -> None:
    assert parse_line(b"not json") is None
    assert parse_line(b"[1,2]") is None
    assert parse_line(b'{"type":"ADDED","object":"string"}') is None
    assert parse_line(b'{"type":"WHATEVER","object":{}}') is None


def test_error_events_give_code_and_message() -> None:
    status = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}
    assert error_event_status(status) == (410, "too old")
    assert error_event_status({"kind": "Status"})[0] == 500


def test_failures_are_classified_by_status() -> None:
    assert classify_status(410) is Failure.EXPIRED
    assert classify_status(429) is Failure.THROTTLED
    assert classify_status(503) is Failure.SERVER
    assert classify_status(500) is Failure.SERVER
    assert classify_status(0) is Failure.TRANSPORT
    assert classify_status(403) is Failure.DENIED
    assert classify_status(401) is Failure.DENIED
    assert classify_status(400) is Failure.CLIENT


def test_only_decimal_resource_versions_can_be_resume_points() -> None:
    assert resource_version_problem("12345") is None
    for bad in ("x", "", "-1", "1e3", "١٢", " 12", str(2**60), None, 12):
        assert resource_version_problem(bad) is not None, bad


def test_a_line_is_checked_before_its_resource_version_is_adopted() -> None:
    def problem(kind: str, obj: object) -> str | None:
        event = parse_line(line(kind, obj))
        assert event is not None
        found = event_problem(event)
        return None if found is None else found[0]

    pod = {"metadata": {"name": "a", "namespace": "jhub", "resourceVersion": "9"}}
    assert problem("ADDED", pod) is None
    assert problem("BOOKMARK", {"metadata": {"resourceVersion": "9"}}) is None
    assert problem("ADDED", {**pod, "metadata": {**pod["metadata"], "resourceVersion": "x"}}) == (
        "resource-version"
    )
    assert problem("MODIFIED", {"metadata": {"namespace": "jhub", "resourceVersion": "9"}}) == (
        "identity"
    )
    assert problem("DELETED", {"metadata": "nope"}) == "identity"
    assert problem("BOOKMARK", {"metadata": {}}) == "resource-version"
    assert problem("ERROR", {"code": 410}) is None
