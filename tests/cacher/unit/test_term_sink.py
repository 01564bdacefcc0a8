"""TermSink: one term's list/watch output delivered to its writer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

from kubecache.cacher.metrics import CacherMetrics
from kubecache.cacher.term_sink import TermSink
from kubecache.cacher.writer import CacheWriter


class OrderWriter:
    """Records the order in which writes start."""

    def __init__(self) -> None:
        self.started: list[str] = []

    async def apply_pods(self, changes: Sequence[tuple[str, dict[str, Any]]]) -> None:
        self.started.append("pods")

    async def apply_events(self, changes: Sequence[tuple[str, dict[str, Any]]]) -> None:
        self.started.append("events")


def change(name: str) -> tuple[str, dict[str, Any]]:
    return ("MODIFIED", {"metadata": {"namespace": "jhub", "name": name, "resourceVersion": "7"}})


async def test_a_pod_write_due_alongside_an_events_write_is_sent_first() -> None:
    # At readiness the Started event arrives just before the Ready change: the hub's
    # blocked XREAD returns at the first entry, so the pod's must be written first.
    writer = OrderWriter()
    sink = TermSink(cast(CacheWriter, writer), CacherMetrics(), per_namespace=False)
    events = asyncio.create_task(sink.changed("events", [change("jupyter-a.1")], 0.0))
    pods = asyncio.create_task(sink.changed("pods", [change("jupyter-a")], 0.0))
    await asyncio.gather(events, pods)
    assert writer.started == ["pods", "events"]
