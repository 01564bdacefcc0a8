"""Events read from the API become the contract's records; odd Events are skipped, not raised."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from kubecache.spawner.api_events import EventReads, event_record
from kubecache.spawner.kube_api import KubeApi, KubeApiError, Timeouts

TIMEOUTS = Timeouts(request=2, retry=2)


def raw_event(uid: str, pod_uid: str = "pod-1", **fields: Any) -> dict[str, Any]:
    return {
        "metadata": {"uid": uid, "resourceVersion": "42"},
        "involvedObject": {"kind": "Pod", "name": "jupyter-alice", "uid": pod_uid},
        "type": "Normal",
        "reason": "Scheduled",
        "message": "Successfully assigned jhub/jupyter-alice to node-1",
        "firstTimestamp": "2026-12-06T12:00:00Z",
        **fields,
    }


def test_an_event_becomes_the_record_the_cache_would_hold() -> None:
    record = event_record(raw_event("e1", count=3, lastTimestamp="2026-12-06T12:00:05Z"))
    assert record == {
        "uid": "e1",
        "rv": 42,
        "pod_uid": "pod-1",
        "type": "Normal",
        "reason": "Scheduled",
        "message": "Successfully assigned jhub/jupyter-alice to node-1",
        "count": 3,
        "first": "2026-12-06T12:00:00Z",
        "last": "2026-12-06T12:00:05Z",
    }


def test_odd_events_are_skipped_or_read_leniently() -> None:
    assert event_record({"metadata": {}}) is None
    assert event_record({"metadata": "x", "involvedObject": 3}) is None
    record = event_record({"metadata": {"uid": "e2", "resourceVersion": "abc"}, "count": "7"})
    assert record is not None
    assert (record["rv"], record["count"], record["type"]) == (0, 1, "Normal")


class FakeEventsApi:
    def __init__(self) -> None:
        self.selectors: list[str] = []
        self.gate = asyncio.Event()
        self.forbidden = False

    async def list_events_page(self, namespace: str, **kwargs: Any) -> Any:
        self.selectors.append(kwargs["field_selector"])
        await self.gate.wait()
        if self.forbidden:
            raise KubeApiError("list events: forbidden", status=403)
        return {
            "items": [raw_event("e1"), raw_event("old", pod_uid="earlier-pod")],
            "metadata": {},
        }


async def test_concurrent_progress_pages_of_one_pod_share_one_field_selected_list() -> None:
    api = FakeEventsApi()
    reads = EventReads(cast(KubeApi, api))
    pages = [
        asyncio.ensure_future(reads.events("jhub", "jupyter-alice", "pod-1", timeouts=TIMEOUTS))
        for _ in range(5)
    ]
    await asyncio.sleep(0)
    api.gate.set()
    results = await asyncio.gather(*pages)
    assert api.selectors == ["involvedObject.kind=Pod,involvedObject.name=jupyter-alice"]
    assert all([e["uid"] for e in r] == ["e1"] for r in results)  # this pod's uid only
    # remembered for a moment: the next page read costs no request
    await reads.events("jhub", "jupyter-alice", "pod-1", timeouts=TIMEOUTS)
    assert len(api.selectors) == 1


async def test_a_hub_without_list_on_events_gets_none_and_asks_once() -> None:
    api = FakeEventsApi()
    api.forbidden = True
    api.gate.set()
    reads = EventReads(cast(KubeApi, api))
    assert await reads.events("jhub", "jupyter-alice", "pod-1", timeouts=TIMEOUTS) == []
    assert await reads.events("jhub", "jupyter-bob", "pod-2", timeouts=TIMEOUTS) == []
    assert len(api.selectors) == 1
