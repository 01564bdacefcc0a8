"""A spawn's pod events read from the Kubernetes API, when the cache cannot serve them.

``progress()`` shows the cached event log while the cache is trusted. When it
is not (stale, leaderless, Redis paused or unreachable) the events come from
the API instead, bounded and coalesced, one :class:`EventReads` per hub
process (per :class:`~kubecache.spawner.kube_api.KubeApi`):

- a LIST of the namespace's Events with ``fieldSelector=involvedObject.kind=Pod,
  involvedObject.name=<pod>`` (the API server filters; only that pod's
  Events travel), at most ``MAX_PAGES`` pages of ``PAGE_SIZE``;
- concurrent progress pages of one pod share one LIST, and a LIST is
  remembered for ``RECENT_SECONDS``: each open progress page costs at most
  one request per that many seconds, and a namespace has at most
  ``LISTS_IN_FLIGHT`` such LISTs in flight;
- a hub without ``list`` on events (the least-privilege Role of
  docs/SECURITY.md) gets 403: that is remembered per namespace and logged
  once with the grant that would show the events; progress then shows none.

:func:`event_record` translates a raw Event into the contract's
:class:`~kubecache.contract.EventRecord` (what the cache holds), leniently:
an Event without identity is skipped, never raised on.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from kubecache.contract import EventRecord
from kubecache.spawner.hub_log import Logger, hub_logger
from kubecache.spawner.kube_api import KubeApi, KubeApiError, Timeouts

#: Events per LIST page, and pages read at most for one pod.
PAGE_SIZE = 500
MAX_PAGES = 2
#: How long one LIST answers the pod's progress pages without a new request.
RECENT_SECONDS = 1.0
#: Event LISTs in flight per namespace.
LISTS_IN_FLIGHT = 4


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def event_record(raw: Mapping[str, Any]) -> EventRecord | None:
    """The contract's record of a raw core/v1 Event about a pod; None when it has no uid."""
    meta = raw.get("metadata")
    involved = raw.get("involvedObject")
    meta = meta if isinstance(meta, Mapping) else {}
    involved = involved if isinstance(involved, Mapping) else {}
    uid = _text(meta.get("uid"))
    if not uid:
        return None
    rv_text = _text(meta.get("resourceVersion"))
    count = raw.get("count")
    if not isinstance(count, int):
        series = raw.get("series")
        count = series.get("count") if isinstance(series, Mapping) else None
    record: EventRecord = {
        "uid": uid,
        "rv": int(rv_text) if rv_text.isdigit() else 0,
        "pod_uid": _text(involved.get("uid")),
        "type": _text(raw.get("type")) or "Normal",
        "reason": _text(raw.get("reason")),
        "message": _text(raw.get("message")),
        "count": count if isinstance(count, int) and count > 0 else 1,
    }
    first = _text(raw.get("firstTimestamp"))
    last = _text(raw.get("lastTimestamp")) or _text(raw.get("eventTime")) or first
    if first:
        record["first"] = first
    if last:
        record["last"] = last
    return record


def _sort_key(record: EventRecord) -> tuple[str, int]:
    return (record.get("first") or record.get("last") or "", record["rv"])


@dataclass
class EventStats:
    lists: int = 0
    pages: int = 0
    shared: int = 0


@dataclass
class _Namespace:
    slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(LISTS_IN_FLIGHT))
    in_flight: dict[str, asyncio.Future[list[EventRecord]]] = field(default_factory=dict)
    recent: dict[str, tuple[float, list[EventRecord]]] = field(default_factory=dict)
    forbidden: bool = False


class EventReads:
    """Coalesced Event reads of one hub; :meth:`of` gives the one of a :class:`KubeApi`."""

    _by_api: ClassVar[weakref.WeakKeyDictionary[KubeApi, EventReads]] = weakref.WeakKeyDictionary()

    def __init__(self, api: KubeApi, *, log: Logger | None = None) -> None:
        self.api = api
        self.log = hub_logger(log, __name__)
        self.stats = EventStats()
        self._namespaces: dict[str, _Namespace] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def of(cls, api: KubeApi, *, log: Logger | None = None) -> EventReads:
        reads = cls._by_api.get(api)
        if reads is None:
            reads = cls._by_api[api] = cls(api, log=log)
        return reads

    async def events(
        self, namespace: str, pod_name: str, pod_uid: str, *, timeouts: Timeouts
    ) -> list[EventRecord]:
        """The pod's Events (of the pod with ``pod_uid``), oldest first; [] when the hub may
        not list events. Raises :class:`KubeApiError` when the API gave no answer in time."""
        state = self._namespaces.setdefault(namespace, _Namespace())
        if state.forbidden:
            return []
        recent = state.recent.get(pod_name)
        if recent is not None and time.monotonic() - recent[0] <= RECENT_SECONDS:
            self.stats.shared += 1
            return [e for e in recent[1] if e["pod_uid"] == pod_uid]
        future = state.in_flight.get(pod_name)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            state.in_flight[pod_name] = future
            task = asyncio.create_task(
                self._list(state, namespace, pod_name, future, timeouts),
                name=f"kubecache-list-events-{namespace}/{pod_name}",
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            self.stats.shared += 1
        try:
            async with asyncio.timeout(timeouts.retry):
                records = await asyncio.shield(future)
        except TimeoutError:
            raise KubeApiError(
                f"Could not list the events of pod {namespace}/{pod_name} within "
                f"{timeouts.retry:g} s"
            ) from None
        return [e for e in records if e["pod_uid"] == pod_uid]

    async def _list(
        self,
        state: _Namespace,
        namespace: str,
        pod_name: str,
        future: asyncio.Future[list[EventRecord]],
        timeouts: Timeouts,
    ) -> None:
        try:
            async with state.slots:
                started = time.monotonic()
                records = await self._list_pages(namespace, pod_name, timeouts)
        except KubeApiError as e:
            if e.status == 403 and not state.forbidden:
                state.forbidden = True
                self.log.warning(
                    "kubecache: the hub may not list events in %s (%s): while the cache cannot "
                    "serve a spawn's events, its progress page shows none. Grant 'list' on "
                    "events in the hub's Role to show them from the API.",
                    namespace,
                    e,
                )
                future.set_result([])
            else:
                future.set_exception(e)
                future.exception()  # retrieved: no noise when nobody waits any more
        except Exception as e:
            future.set_exception(KubeApiError(f"listing events in {namespace} failed: {e}"))
            future.exception()
        else:
            state.recent[pod_name] = (started, records)
            future.set_result(records)
        finally:
            state.in_flight.pop(pod_name, None)
            now = time.monotonic()
            for name, (when, _) in list(state.recent.items()):
                if now - when > RECENT_SECONDS:
                    del state.recent[name]

    async def _list_pages(
        self, namespace: str, pod_name: str, timeouts: Timeouts
    ) -> list[EventRecord]:
        self.stats.lists += 1
        selector = f"involvedObject.kind=Pod,involvedObject.name={pod_name}"
        records: list[EventRecord] = []
        token: str | None = None
        for _ in range(MAX_PAGES):
            self.stats.pages += 1
            page = await self.api.list_events_page(
                namespace,
                field_selector=selector,
                limit=PAGE_SIZE,
                continue_token=token,
                timeouts=timeouts,
            )
            for item in page.get("items") or []:
                record = event_record(item) if isinstance(item, Mapping) else None
                if record is not None:
                    records.append(record)
            token = (page.get("metadata") or {}).get("continue") or None
            if not token:
                break
        records.sort(key=_sort_key)
        return records


__all__ = ["EventReads", "EventStats", "event_record"]
