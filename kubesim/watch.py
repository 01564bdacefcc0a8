"""Watch streams: fan-out of committed changes to every open watch, as the watch cache does.

Each change is serialised once (``{"type":...,"object":<stored bytes>}\\n``) and the same bytes
go to every watcher without selectors; watchers with selectors see the transitions the real
cacheWatcher produces (an object that stops matching arrives as DELETED, one that starts
matching as ADDED). Every watcher has a bounded buffer; a watcher that falls further behind
is closed, like kube-apiserver closes unresponsive watchers, and the client re-watches.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from kubesim import errors, tables
from kubesim.faults import Faults
from kubesim.resources import RESOURCES
from kubesim.selectors import FieldSelector, LabelSelector
from kubesim.stats import Stats
from kubesim.store import Change, ObjectStore

__all__ = ["WatchHub", "Watcher", "event_line", "next_bookmark_time"]

log = logging.getLogger(__name__)

INITIAL_EVENTS_END = "k8s.io/initial-events-end"
#: Like kube-apiserver's watch cache, a watch with bookmarks is due one this long
#: before its timeout, so a client resumes from a recent revision.
PRE_TIMEOUT_BOOKMARK = 2.0
#: etcd's default ``--experimental-watch-progress-notify-interval``: how often etcd sends a
#: progress notification on an idle watch (kube-apiserver's watches ask for them).
ETCD_PROGRESS_NOTIFY_INTERVAL = 600.0


def next_bookmark_time(now: float, interval: float | None, end: float) -> float:
    """When the next bookmark is due: the interval, or just before the timeout if sooner.

    ``math.inf`` when bookmarks are off or the pre-timeout one is already past.
    """
    if interval is None:
        return math.inf
    due = min(now + interval, end - PRE_TIMEOUT_BOOKMARK)
    return due if due > now else math.inf


def event_line(event_type: str, raw: bytes) -> bytes:
    return b'{"type":"' + event_type.encode() + b'","object":' + raw + b"}\n"


def bookmark_line(resource: str, rv: int, *, initial_events_end: bool = False) -> bytes:
    info = RESOURCES[resource]
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    if initial_events_end:
        meta["annotations"] = {INITIAL_EVENTS_END: "true"}
    obj = {"kind": info.kind, "apiVersion": info.api_version, "metadata": meta}
    return event_line("BOOKMARK", orjson.dumps(obj))


def _with_rv(raw: bytes, rv: int) -> bytes:
    obj = orjson.loads(raw)
    obj["metadata"]["resourceVersion"] = str(rv)
    return orjson.dumps(obj)


def _flag(query: dict[str, str], name: str) -> bool | None:
    value = query.get(name)
    return None if value in (None, "") else value.lower() in ("true", "1")


def _watch_options(query: dict[str, str]) -> tuple[bool | None, bool]:
    """(sendInitialEvents, allowWatchBookmarks), validated as the API server validates them.

    apimachinery's ``validateWatchOptions`` (meta/internalversion/validation): sendInitialEvents
    needs resourceVersionMatch=NotOlderThan; resourceVersionMatch needs sendInitialEvents and
    can only be NotOlderThan. allowWatchBookmarks is not required: without it the initial
    events come without their end bookmark (the cacher's ``isListWatchRequest``).
    """
    send_initial = _flag(query, "sendInitialEvents")
    bookmarks = bool(_flag(query, "allowWatchBookmarks"))
    match = query.get("resourceVersionMatch", "")
    causes: list[dict[str, str]] = []

    def forbid(field: str, message: str) -> None:
        causes.append(
            {"reason": "FieldValueForbidden", "message": f"Forbidden: {message}", "field": field}
        )

    if send_initial is not None and match != "NotOlderThan":
        forbid(
            "resourceVersionMatch",
            "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
        )
    if match:
        if send_initial is None:
            forbid(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
            )
        if match != "NotOlderThan":
            causes.append(
                {
                    "reason": "FieldValueNotSupported",
                    "message": f'Unsupported value: "{match}": supported values: "NotOlderThan"',
                    "field": "resourceVersionMatch",
                }
            )
        if query.get("continue"):
            forbid(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden when continue is provided",
            )
    if causes:
        raise errors.invalid("ListOptions", "", causes, group="meta.k8s.io")
    return send_initial, bookmarks


class Watcher:
    """One open watch: its filter and its buffer of lines not yet written."""

    def __init__(
        self,
        resource: str,
        namespace: str | None,
        label: LabelSelector,
        field: FieldSelector,
        *,
        limit: int,
    ) -> None:
        self.resource = resource
        self.namespace = namespace or None
        self.label = label
        self.field = field
        self.filtered = not (label.empty and field.empty)
        self.buffer: deque[bytes] = deque()
        self.limit = limit
        self.wake = asyncio.Event()
        self.closed = False
        self.close_reason = ""
        #: The resourceVersion the watch started from (at least the watch cache's at the
        #: start, and the newest initial event): the real cacheWatcher.process() sends a
        #: bookmark only when its resourceVersion is newer than this.
        self.start_rv = 0

    def matches(self, obj: dict[str, Any] | None) -> bool:
        if obj is None:
            return False
        return self.label.matches(obj.get("metadata", {}).get("labels")) and self.field.matches(obj)

    def translate(self, change: Change, shared: bytes | None = None) -> bytes | None:
        """The line this watcher gets for ``change`` (None: nothing)."""
        if self.namespace is not None and change.key[0] != self.namespace:
            return None
        if not self.filtered:
            return shared if shared is not None else event_line(change.type, change.raw)
        now = self.matches(change.obj)
        if change.type == "ADDED":
            return event_line("ADDED", change.raw) if now else None
        if change.type == "DELETED":
            return event_line("DELETED", change.raw) if now else None
        before = self.matches(change.prev)
        if now and before:
            return shared if shared is not None else event_line("MODIFIED", change.raw)
        if now:
            return event_line("ADDED", change.raw)
        if before and change.prev_raw is not None:
            return event_line("DELETED", _with_rv(change.prev_raw, change.rv))
        return None

    def offer(self, line: bytes) -> bool:
        """Queue a line; False (and closed) when the watcher is too far behind."""
        if self.closed:
            return True
        if len(self.buffer) >= self.limit:
            self.close("too slow")
            return False
        self.buffer.append(line)
        if not self.wake.is_set():
            self.wake.set()
        return True

    def close(self, reason: str) -> None:
        if not self.closed:
            self.closed = True
            self.close_reason = reason
            self.wake.set()


class WatchHub:
    """Every open watch; registered as the store's change listener."""

    def __init__(
        self,
        store: ObjectStore,
        stats: Stats,
        faults: Faults,
        *,
        bookmark_interval: float = 60.0,
        event_bookmark_interval: float | None = None,
        max_queue: int = 10_000,
        consistent_list_from_cache: bool = True,
        progress_notify_interval: float | None = ETCD_PROGRESS_NOTIFY_INTERVAL,
        unconditional_bookmarks: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.stats = stats
        self.faults = faults
        self.bookmark_interval = bookmark_interval
        self.event_bookmark_interval = event_bookmark_interval
        self.max_queue = max_queue
        #: A LIST without resourceVersion (a consistent read) makes the resource's watch
        #: cache ask etcd for a progress notification (ConsistentListFromCache, Kubernetes
        #: >= 1.31 with etcd >= 3.5.13); False: such a LIST goes to etcd and leaves the
        #: watch cache alone (older clusters).
        self.consistent_list_from_cache = consistent_list_from_cache
        #: etcd's periodic progress notification of an idle watch (None: never).
        self.progress_notify_interval = progress_notify_interval
        #: The old kubesim behaviour: a bookmark at every due time, at the store's revision,
        #: whether or not the watch cache moved. Not what a real server does.
        self.unconditional_bookmarks = unconditional_bookmarks
        self._clock = clock
        #: Each resource's watch cache revision (lastProcessedResourceVersion in the real
        #: cacher): the last change of that resource, or the revision of the last etcd
        #: progress notification. Only this is ever sent in a bookmark.
        self._cache_rv: dict[str, int] = dict.fromkeys(RESOURCES, store.resource_version)
        self._next_notify: dict[str, float] = dict.fromkeys(
            RESOURCES, clock() + (progress_notify_interval or math.inf)
        )
        self.progress_notifications = 0
        self._watchers: dict[str, set[Watcher]] = {r: set() for r in RESOURCES}
        self._unstalled = asyncio.Event()
        self._unstalled.set()
        store.add_change_listener(self._on_change)

    # --- fan-out ---------------------------------------------------------------------------

    def cache_rv(self, resource: str) -> int:
        """The resource's watch cache revision now (after any periodic etcd progress
        notification that fell due)."""
        interval = self.progress_notify_interval
        now = self._clock()
        if interval and now >= self._next_notify[resource]:
            self._cache_rv[resource] = self.store.resource_version
            self._next_notify[resource] = now + interval
        return self._cache_rv[resource]

    def progress_notify(self, resource: str) -> None:
        """An etcd progress notification reached ``resource``'s watch cache: its revision
        becomes etcd's current one (the global revision, which writes of any resource
        advance). A consistent LIST triggers one (the progress requester of KEP-2340)."""
        self._cache_rv[resource] = self.store.resource_version
        self.progress_notifications += 1

    def consistent_read(self, resource: str) -> None:
        """A LIST without resourceVersion was served (see :attr:`consistent_list_from_cache`)."""
        if self.consistent_list_from_cache:
            self.progress_notify(resource)

    def _on_change(self, change: Change) -> None:
        self._cache_rv[change.resource] = change.rv
        watchers = self._watchers[change.resource]
        if not watchers:
            return
        shared = event_line(change.type, change.raw)
        for watcher in list(watchers):
            line = watcher.translate(change, shared)
            if line is not None and not watcher.offer(line):
                self.stats.watches_closed_slow += 1
                log.warning(
                    "closing a %s watch that fell %d events behind",
                    change.resource,
                    watcher.limit,
                )

    def inject(self, resource: str, line: bytes) -> int:
        """Send a raw ``line`` to every open watch of ``resource`` (the inject_watch_line
        fault: what a buggy server or proxy could send); returns how many got it."""
        sent = 0
        for watcher in list(self._watchers[resource]):
            if watcher.offer(line):
                sent += 1
        return sent

    def drop_all(self) -> int:
        """Close every open watch (the drop_watches fault, shutdown)."""
        count = 0
        for watchers in self._watchers.values():
            for watcher in list(watchers):
                watcher.close("dropped")
                count += 1
        return count

    def stall(self) -> None:
        self._unstalled.clear()

    def unstall(self) -> None:
        self._unstalled.set()
        for watchers in self._watchers.values():
            for watcher in watchers:
                watcher.wake.set()

    @property
    def open_watches(self) -> int:
        return sum(len(w) for w in self._watchers.values())

    # --- one stream ------------------------------------------------------------------------

    def _interval(self, resource: str) -> float | None:
        return self.event_bookmark_interval if resource == "events" else self.bookmark_interval

    async def serve(
        self,
        request: web.Request,
        resource: str,
        namespace: str | None,
        query: dict[str, str],
        *,
        as_table: bool = False,
    ) -> web.StreamResponse:
        """Answer a ``?watch=true`` request: validate, send initial events, then follow.

        ``as_table``: pod events carry one-row Tables (kubectl get -w), see tables.py."""
        label = LabelSelector.parse(query.get("labelSelector"))
        field = FieldSelector.parse(query.get("fieldSelector"), resource=resource)
        rv_text = query.get("resourceVersion", "")
        send_initial, bookmarks = _watch_options(query)
        try:
            timeout = (
                float(query["timeoutSeconds"])
                if query.get("timeoutSeconds")
                else random.uniform(1800, 3600)  # the server's --min-request-timeout jitter
            )
        except ValueError as err:
            raise errors.bad_request(f"invalid timeoutSeconds: {err}") from err

        rv = errors.parse_resource_version(rv_text, watch=True)
        watcher = Watcher(resource, namespace, label, field, limit=self.max_queue)
        # From the watch cache's current state (its revision), or from the client's
        # resourceVersion and what was replayed since (cache_watcher.go processInterval).
        watcher.start_rv = self.cache_rv(resource)
        initial: list[bytes] = []
        error: bytes | None = None
        if send_initial is False and rv_text in ("", "0"):
            pass  # from the current revision, without initial events
        elif send_initial or rv_text in ("", "0"):
            for _, obj, raw in self.store.items(resource, namespace):
                if not watcher.filtered or watcher.matches(obj):
                    initial.append(event_line("ADDED", raw))
            if send_initial and bookmarks:
                initial.append(
                    bookmark_line(resource, self.store.resource_version, initial_events_end=True)
                )
        else:
            watcher.start_rv = rv
            try:
                changes = self.store.changes_since(resource, rv)
            except errors.ApiError as err:
                error = event_line("ERROR", orjson.dumps(err.status()))
            else:
                for change in changes:
                    watcher.start_rv = max(watcher.start_rv, change.rv)
                    line = watcher.translate(change)
                    if line is not None:
                        initial.append(line)
        # Synchronous since the snapshot above: no change can fall between it and registration.
        watcher.buffer.extend(initial)
        watcher.limit += len(initial)
        if error is None:
            self._watchers[resource].add(watcher)
        self.stats.watches_started += 1
        self.stats.open_watches += 1
        try:
            response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            if error is not None:
                await self._write(response, [error])
            else:
                interval = self._interval(resource) if bookmarks else None
                await self._pump(watcher, response, timeout, interval, as_table=as_table)
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            log.debug("%s watch client went away", resource)
            raise
        finally:
            self._watchers[resource].discard(watcher)
            self.stats.open_watches -= 1
        return response

    def _due_bookmark(self, watcher: Watcher) -> bytes | None:
        """The bookmark line a watch gets when one falls due, or None (nothing new).

        cacher.go's dispatchEvents offers every due watcher a bookmark at the watch cache's
        revision (lastProcessedResourceVersion); cacheWatcher.process() drops it unless it
        is newer than the revision the watch started from. So an idle watch gets none until
        a change of the resource or an etcd progress notification moves the cache.
        """
        if self.unconditional_bookmarks:
            self.stats.bookmarks_sent += 1
            return bookmark_line(watcher.resource, self.store.resource_version)
        rv = self.cache_rv(watcher.resource)
        if rv <= watcher.start_rv:
            self.stats.bookmarks_withheld += 1
            return None
        self.stats.bookmarks_sent += 1
        return bookmark_line(watcher.resource, rv)

    async def _write(self, response: web.StreamResponse, lines: list[bytes]) -> None:
        chunk = b"".join(lines)
        await response.write(chunk)
        self.stats.watch_events_sent += len(lines)
        self.stats.bytes_sent += len(chunk)

    async def _pump(
        self,
        watcher: Watcher,
        response: web.StreamResponse,
        timeout: float,
        interval: float | None,
        *,
        as_table: bool = False,
    ) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        next_bookmark = next_bookmark_time(loop.time(), interval, end)
        while not watcher.closed:
            if not self._unstalled.is_set():
                # Stalled: a frozen connection (a stuck proxy, a half-open TCP connection).
                # The stream stays open and silent until cleared or dropped; not even the
                # watch's timeout ends it, so only a client-side read timeout notices.
                watcher.wake.clear()
                await watcher.wake.wait()
                continue
            if watcher.buffer:
                lines = list(watcher.buffer)
                watcher.buffer.clear()
                await self._write(response, tables.table_event_lines(lines) if as_table else lines)
                continue
            now = loop.time()
            if now >= end:
                return
            if now >= next_bookmark:
                # Due (every interval, and 2 s before the timeout), as the real cacher
                # schedules it; sent only when the watch cache moved past where the watch
                # started. Every change up to that revision was queued synchronously and the
                # buffer is empty, so it is safe to resume from.
                next_bookmark = next_bookmark_time(now, interval, end)
                line = self._due_bookmark(watcher)
                if line is not None:
                    await self._write(response, [line])
                continue
            watcher.wake.clear()
            try:
                async with asyncio.timeout_at(min(end, next_bookmark)):
                    await watcher.wake.wait()
            except TimeoutError:
                pass
