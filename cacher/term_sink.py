"""One term's list/watch output, delivered to its writer (a WatchSink).

Pods are reconciled page by page after a full LIST, then each watch burst is
reduced to each object's last change; events of a relist after 410 are
filtered to those newer than the term has seen.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from kubecache.cacher.metrics import CacherMetrics
from kubecache.cacher.watcher import Listing, Resource
from kubecache.cacher.writer import CacheWriter

# its lines predate the split: operators grep for them
log = logging.getLogger("kubecache.cacher.app")


def _rv(obj: dict[str, Any]) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except (TypeError, ValueError, AttributeError):
        return 0


def last_change_per_object(
    changes: list[tuple[str, dict[str, Any]]],
) -> list[tuple[str, dict[str, Any]]]:
    """Keep each object's last change of a burst (before any reduction work)."""
    if len(changes) < 2:
        return changes
    last: dict[tuple[Any, Any], tuple[str, dict[str, Any]]] = {}
    for change in changes:
        metadata = change[1].get("metadata")
        if isinstance(metadata, dict):
            key = (metadata.get("namespace"), metadata.get("name"))
            last.pop(key, None)  # re-insert: the order of last changes is kept
            last[key] = change
        else:
            last[(id(change), None)] = change  # malformed: the writer counts it
    return list(last.values())


class TermSink:
    """Delivers one term's list/watch output to its writer (a WatchSink)."""

    def __init__(self, writer: CacheWriter, metrics: CacherMetrics, *, per_namespace: bool) -> None:
        self.writer = writer
        self.metrics = metrics
        self.per_namespace = per_namespace
        self.watch_states: dict[str, str] = {"pods": "starting", "events": "starting"}
        self.pods_synced = asyncio.Event()
        # Highest event rv delivered, per namespace when watched per namespace:
        # a relist after 410 only re-sends events newer than that.
        self.event_rv: dict[str, int] = {}

    def _event_scope(self, event: dict[str, Any]) -> str:
        if not self.per_namespace:
            return ""
        return str((event.get("metadata") or {}).get("namespace") or "")

    def _note_events(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            scope = self._event_scope(event)
            self.event_rv[scope] = max(self.event_rv.get(scope, 0), _rv(event))

    async def listed(self, resource: Resource, pages: Listing, reason: str) -> None:
        if resource == "pods":
            # Pages are written as they arrive: the raw list is never held whole.
            await self.writer.reconcile_pods(pages, list_rv=lambda: pages.resource_version)
            self.metrics.records.set(self.writer.records)
            await self.writer.mark_synced("pods", pages.resource_version)
            self.metrics.synced.set(1)
            self.metrics.full_sync_done("pods")
            self.pods_synced.set()
            log.info("pods listed (%s): %d tracked pods in Redis", reason, self.writer.records)
            return
        relist = reason != "initial"
        total = 0
        async for page in pages:
            fresh = [
                e for e in page if not relist or _rv(e) > self.event_rv.get(self._event_scope(e), 0)
            ]
            if fresh:
                await self.writer.apply_events([("ADDED", e) for e in fresh])
                self._note_events(fresh)
                total += len(fresh)
        await self.writer.mark_synced("events", pages.resource_version)
        self.metrics.full_sync_done("events")
        log.info("pod events listed (%s): %d new events", reason, total)

    async def changed(
        self, resource: Resource, changes: list[tuple[str, dict[str, Any]]], received: float
    ) -> None:
        if resource == "pods":
            await self.writer.apply_pods(last_change_per_object(changes))
        else:
            # Pod changes go first: a pod write already due in this loop iteration (its
            # writer woken alongside this one) is sent before these events. Redis runs
            # the scripts in the order sent and a hub's blocked XREAD returns at the first
            # entry: after an event entry it must read again for the pod's (at readiness
            # the pod's Started event arrives just before its Ready change).
            await asyncio.sleep(0)
            await self.writer.apply_events(changes)
            self._note_events([obj for _, obj in changes])
        self.metrics.observe_lag(resource, received)

    async def state(self, resource: Resource, state: str) -> None:
        self.watch_states[resource] = state
        self.metrics.watch_state(resource, state)
        await self.writer.set_watch_state(resource, state)


__all__ = ["TermSink", "last_change_per_object"]
