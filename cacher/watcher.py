"""List+watch of one resource (pods or events) over one or more namespaces.

One :class:`ResourceSync` owns one resource: a paginated LIST of every target
(one target per configured namespace, or one cluster-wide), then one WATCH per
target from the list's resourceVersion with bookmarks. It hands pages and
batches of changes to a :class:`WatchSink` (the orchestration, which writes
Redis) and reports its state ("ok", "retrying <why>", "failed <why>").

Rules (see the cacher issue): resume a closed or stalled watch from the last
resourceVersion seen, bookmarks included; on 410 relist every target and let
the sink reconcile (never retry a stale resourceVersion); 429 waits at least
Retry-After; 5xx and transport errors back off with full jitter; 401/403/404
keep retrying slowly but report ``failed`` after a few attempts, so the cache
health says the watch cannot recover. There is no periodic relist.

The loop body (:meth:`ResourceSync.watch_once`, :meth:`ResourceSync.list_pages`)
is testable alone; :meth:`ResourceSync.run` is a thin shell with an optional
iteration limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import aiohttp

from kubecache.backoff import Backoff, jittered
from kubecache.cacher.kube_api import ApiStatusError, KubeHttp
from kubecache.cacher.metrics import CacherMetrics
from kubecache.cacher.watch_stream import (
    Failure,
    LineSplitter,
    classify_status,
    error_event_status,
    event_problem,
    parse_line,
    resource_version_problem,
)

log = logging.getLogger(__name__)

Resource = Literal["pods", "events"]
PAGE_SIZE = 500
#: Consecutive denied/client errors before the state becomes "failed".
FAIL_AFTER = 3
#: Changes parsed and waiting for the write in flight before the reader waits too.
MAX_BUFFERED = 2000


@dataclass(frozen=True)
class WatchTarget:
    """One list+watch endpoint: a resource in a namespace (None: all)."""

    resource: Resource
    namespace: str | None = None
    label_selector: str = ""
    field_selector: str = ""

    @property
    def path(self) -> str:
        if self.namespace:
            return f"/api/v1/namespaces/{self.namespace}/{self.resource}"
        return f"/api/v1/{self.resource}"

    def params(self) -> dict[str, str]:
        params: dict[str, str] = {}
        if self.label_selector:
            params["labelSelector"] = self.label_selector
        if self.field_selector:
            params["fieldSelector"] = self.field_selector
        return params

    def __str__(self) -> str:
        return f"{self.resource} in {self.namespace or 'all namespaces'}"


def targets_for(
    resource: Resource, namespaces: tuple[str, ...], *, label_selector: str = ""
) -> list[WatchTarget]:
    """One target per namespace, or one cluster-wide target for all."""
    field_selector = "involvedObject.kind=Pod" if resource == "events" else ""
    label = label_selector if resource == "pods" else ""
    return [
        WatchTarget(resource, namespace, label, field_selector)
        for namespace in (namespaces or (None,))
    ]


class WatchSink(Protocol):
    """Where a :class:`ResourceSync` delivers (implemented by the app)."""

    async def listed(self, resource: Resource, pages: Listing, reason: str) -> None:
        """A full (re)list: consume every page; ``reason`` is initial, expired..."""

    async def changed(
        self, resource: Resource, changes: list[tuple[str, dict[str, Any]]], received: float
    ) -> None:
        """ADDED/MODIFIED/DELETED objects received at monotonic ``received``."""

    async def state(self, resource: Resource, state: str) -> None:
        """The watch state changed: "ok", "retrying <why>" or "failed <why>"."""


class Listing:
    """The pages of a full list, in turn for every target.

    After the last page, :attr:`resource_version` is the list's
    resourceVersion (the lowest of the targets', so nothing newer than it is
    missing from the list).
    """

    def __init__(self, sync: ResourceSync) -> None:
        self.sync = sync
        self._pages = self._iterate()

    async def _iterate(self) -> AsyncIterator[list[dict[str, Any]]]:
        for state in self.sync.states:
            async for page in self.sync.list_target(state):
                yield page

    def __aiter__(self) -> Listing:
        return self

    async def __anext__(self) -> list[dict[str, Any]]:
        return await self._pages.__anext__()

    @property
    def resource_version(self) -> str:
        versions = [int(s.resource_version or 0) for s in self.sync.states]
        return str(min(versions, default=0))


class RelistNeeded(Exception):
    """A target's resourceVersion expired (410): every target is relisted."""


@dataclass
class WatchOutcome:
    """How one watch connection ended."""

    reason: str  # closed | stalled | expired | throttled | server-error | connection | denied ...
    events: int = 0
    failure: Failure | None = None
    message: str = ""
    retry_after: float | None = None


@dataclass
class TargetState:
    target: WatchTarget
    resource_version: str | None = None
    backoff: Backoff = field(default_factory=Backoff)
    failures: int = 0
    #: Monotonic time of the target's last sign of progress (a valid watch
    #: line or bookmark, a completed list, a watch the server ended cleanly at
    #: its timeout); None before the first.
    progress: float | None = None


class _ChangeBuffer:
    """Changes parsed and not yet taken by the writer task, in the order received.

    Bounded: :meth:`put` waits while ``limit`` changes are waiting (unless the
    writer task ends meanwhile: its error is raised).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._changes: list[tuple[str, dict[str, Any]]] = []
        self._received = 0.0  # when the oldest waiting change was received
        self._closed = False
        self._ready = asyncio.Event()  # changes waiting, or closed
        self._space = asyncio.Event()

    async def put(
        self,
        changes: list[tuple[str, dict[str, Any]]],
        received: float,
        writer: asyncio.Task[None],
    ) -> None:
        while len(self._changes) >= self.limit:
            self._space.clear()
            space = asyncio.create_task(self._space.wait())
            try:
                await asyncio.wait((writer, space), return_when=asyncio.FIRST_COMPLETED)
            finally:
                space.cancel()
            if writer.done():
                await writer  # its error; a writer never ends before close()
                raise RuntimeError("the watch's writer task ended before the watch")
        if not self._changes:
            self._received = received
        self._changes.extend(changes)
        self._ready.set()

    def close(self) -> None:
        """No more changes: :meth:`take` returns None once the waiting ones are taken."""
        self._closed = True
        self._ready.set()

    async def take(self) -> tuple[list[tuple[str, dict[str, Any]]], float] | None:
        """Every change waiting and when the oldest was received; None once closed."""
        while not self._changes:
            if self._closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        changes, self._changes = self._changes, []
        self._space.set()
        return changes, self._received


class ResourceSync:
    def __init__(
        self,
        http: KubeHttp,
        targets: list[WatchTarget],
        sink: WatchSink,
        *,
        metrics: CacherMetrics | None = None,
        watch_timeout: float = 300.0,
        stall_timeout: float = 120.0,
        page_size: int = PAGE_SIZE,
        max_buffered: int = MAX_BUFFERED,
        backoff_factory: Callable[[], Backoff] = Backoff,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        if not targets or len({t.resource for t in targets}) != 1:
            raise ValueError("a ResourceSync needs targets of exactly one resource")
        self.http = http
        self.resource: Resource = targets[0].resource
        self.states = [TargetState(t, backoff=backoff_factory()) for t in targets]
        self.sink = sink
        self.metrics = metrics or CacherMetrics()
        self.watch_timeout = watch_timeout
        self.stall_timeout = stall_timeout
        self.page_size = page_size
        self.max_buffered = max_buffered
        self.sleep = sleep
        self.list_backoff = backoff_factory()
        self.reported_state = ""
        self.synced = asyncio.Event()

    # ------------------------------------------------------------------
    # State reporting

    async def report(self, state: str) -> None:
        if state != self.reported_state:
            self.reported_state = state
            if state == "ok":
                log.info("watch of %s is healthy", self.resource)
            else:
                log.warning("watch of %s: %s", self.resource, state)
            await self.sink.state(self.resource, state)

    # ------------------------------------------------------------------
    # LIST

    async def list_target(self, state: TargetState) -> AsyncIterator[list[dict[str, Any]]]:
        """Pages of one target (limit + continue); sets its resourceVersion."""
        target = state.target
        continue_token = ""
        while True:
            params = {**target.params(), "limit": str(self.page_size)}
            if continue_token:
                params["continue"] = continue_token
            page = await self.http.request("GET", target.path, params=params)
            metadata = page.get("metadata") or {}
            items = page.get("items") or []
            if not continue_token:
                rv = str(metadata.get("resourceVersion") or "")
                problem = resource_version_problem(rv)
                if problem:
                    # Never a resume point: the list is retried instead.
                    raise ApiStatusError(500, "BadListResponse", f"list of {target}: {problem}")
                state.resource_version = rv
            yield [item for item in items if isinstance(item, dict)]
            continue_token = str(metadata.get("continue") or "")
            if not continue_token:
                return

    def list_pages(self) -> Listing:
        """Pages of every target in turn (see :class:`Listing`)."""
        return Listing(self)

    async def relist(self, reason: str) -> None:
        """LIST every target into the sink, retrying with back-off until it works."""
        while True:
            self.metrics.relists.labels(self.resource, reason).inc()
            log.info("listing %s (%s)", self.resource, reason)
            try:
                await self.sink.listed(self.resource, self.list_pages(), reason)
            except ApiStatusError as e:
                failure = classify_status(e.status)
                self.metrics.api_errors.labels(self.resource, str(e.status)).inc()
                if failure is Failure.EXPIRED:
                    reason = "expired"  # the continue token expired: start over
                    continue
                attempts = self.list_backoff.attempts + 1
                verdict = "failed" if self._hopeless(failure, attempts) else "retrying"
                await self.report(f"{verdict} list: {e}")
                await self.sleep(self.list_backoff.next_delay(e.retry_after))
                continue
            self.list_backoff.reset()
            now = time.monotonic()
            for state in self.states:
                state.progress = now
            return

    def progress_age(self, now: float | None = None) -> float | None:
        """Seconds since the least recent target last progressed; None before a list."""
        times = [s.progress for s in self.states]
        if any(t is None for t in times):
            return None
        now = time.monotonic() if now is None else now
        return max(0.0, now - min(t for t in times if t is not None))

    @staticmethod
    def _hopeless(failure: Failure, attempts: int) -> bool:
        return failure in (Failure.DENIED, Failure.CLIENT) and attempts >= FAIL_AFTER

    # ------------------------------------------------------------------
    # WATCH

    def watch_params(self, state: TargetState) -> dict[str, str]:
        params = {
            **state.target.params(),
            "watch": "1",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(int(jittered(self.watch_timeout))),
        }
        if state.resource_version:
            params["resourceVersion"] = state.resource_version
        return params

    async def watch_once(self, state: TargetState) -> WatchOutcome:
        """One watch connection until it ends; changes go to the sink.

        A watch the server itself ends cleanly (end of stream, no ERROR) after keeping it
        open for at least half the ``timeoutSeconds`` asked is progress too: the server
        accepted the resume point and delivered (or, on the resume that follows, replays)
        every change since; nothing else shows progress on an idle cluster, where a real
        kube-apiserver sends no bookmark (see docs/cache-freshness.md).
        """
        target = state.target
        params = self.watch_params(state)
        asked = float(params["timeoutSeconds"])
        try:
            async with self.http.stream(target.path, params=params) as body:
                opened = time.monotonic()
                state.backoff.reset()
                state.failures = 0
                await self.report("ok")
                outcome = await self._consume(state, body)
                ended = time.monotonic()
                if outcome.reason == "closed" and ended - opened >= asked / 2:
                    state.progress = ended
                    self.metrics.watch_completions.labels(self.resource).inc()
                return outcome
        except ApiStatusError as e:
            self.metrics.api_errors.labels(self.resource, str(e.status)).inc()
            return WatchOutcome(
                classify_status(e.status).value,
                failure=classify_status(e.status),
                message=str(e),
                retry_after=e.retry_after,
            )
        except (aiohttp.ClientError, ConnectionError) as e:
            return WatchOutcome(
                Failure.TRANSPORT.value, failure=Failure.TRANSPORT, message=str(e) or repr(e)
            )

    async def _consume(self, state: TargetState, body: aiohttp.StreamReader) -> WatchOutcome:
        """Read and parse the stream while the changes already parsed are written.

        One writer task delivers the changes to the sink, one batch at a time in the
        order received (a pod's changes and the feed stay in commit order); every
        change parsed while a batch is being written joins the next batch, which
        starts as soon as the previous one is acknowledged. At most
        :attr:`max_buffered` changes wait: the reader then waits for the writer
        (the API server's stream waits in the socket meanwhile). A failed write
        ends the watch with its error at the next chunk or the stream's end.
        """
        splitter = LineSplitter()
        count = 0
        buffer = _ChangeBuffer(self.max_buffered)
        writer = asyncio.create_task(self._deliver(buffer), name=f"write {state.target}")
        try:
            while True:
                try:
                    async with asyncio.timeout(self.stall_timeout):
                        chunk = await body.readany()
                except TimeoutError:
                    outcome = WatchOutcome(
                        "stalled", count, message=f"no data for {self.stall_timeout} s"
                    )
                    break
                if not chunk:
                    outcome = WatchOutcome("closed", count)
                    break
                received = time.monotonic()
                changes, ended = self._parse_chunk(state, splitter.feed(chunk), received)
                count += len(changes)
                if writer.done():
                    await writer  # raises the write's error
                if changes:
                    await buffer.put(changes, received, writer)
                if ended is not None:
                    ended.events = count
                    outcome = ended
                    break
            buffer.close()
            await writer
            return outcome
        finally:
            await cancel_and_wait(writer)

    async def _deliver(self, buffer: _ChangeBuffer) -> None:
        """The writer task of :meth:`_consume`: every batch to the sink, in order."""
        while True:
            taken = await buffer.take()
            if taken is None:
                return
            changes, received = taken
            await self.sink.changed(self.resource, changes, received)

    def _parse_chunk(
        self, state: TargetState, lines: list[bytes], received: float
    ) -> tuple[list[tuple[str, dict[str, Any]]], WatchOutcome | None]:
        """Changes of one chunk, and the outcome when an ERROR event ends the watch.

        A line's resourceVersion is adopted as the resume point only once the
        line is validated; a malformed line is skipped and counted.
        """
        changes: list[tuple[str, dict[str, Any]]] = []
        counts: dict[str, int] = {}
        ended: WatchOutcome | None = None
        for line in lines:
            event = parse_line(line)
            if event is None:
                self.metrics.malformed_object(self.resource)
                self.metrics.rejected_lines.labels(self.resource, "unparsable").inc()
                log.warning("skipping a malformed %s watch line: %.200r", self.resource, line)
                continue
            if event.type == "ERROR":
                code, message = error_event_status(event.object)
                failure = classify_status(code)
                ended = WatchOutcome(failure.value, 0, failure, message)
                break
            problem = event_problem(event)
            if problem is not None:
                self.metrics.rejected_lines.labels(self.resource, problem[0]).inc()
                log.warning(
                    "skipping a %s watch line (%s): %.200r", self.resource, problem[1], line
                )
                continue
            state.resource_version = event.resource_version
            state.progress = received
            if event.type == "BOOKMARK":
                continue
            counts[event.type] = counts.get(event.type, 0) + 1
            changes.append((event.type, event.object))
        for kind, n in counts.items():
            self.metrics.events.labels(self.resource, kind).inc(n)
        return changes, ended

    async def after_watch(self, state: TargetState, outcome: WatchOutcome) -> None:
        """Count the restart, report state, wait as the failure asks.

        Raises :class:`RelistNeeded` on 410.
        """
        self.metrics.watch_restarts.labels(self.resource, outcome.reason).inc()
        if outcome.failure is Failure.EXPIRED:
            log.info("watch of %s expired (%s): relisting", state.target, outcome.message)
            raise RelistNeeded(outcome.message)
        if outcome.failure is None:
            log.debug(
                "watch of %s ended (%s) after %d events",
                state.target,
                outcome.reason,
                outcome.events,
            )
            return  # normal end or stall: reconnect at once from the last rv
        state.failures += 1
        verdict = "failed" if self._hopeless(outcome.failure, state.failures) else "retrying"
        await self.report(f"{verdict} {outcome.reason}: {outcome.message}"[:300])
        delay = state.backoff.next_delay(outcome.retry_after)
        log.warning("watch of %s: %s; retrying in %.1f s", state.target, outcome.message, delay)
        await self.sleep(delay)

    async def watch_target(self, state: TargetState, iterations: int | None) -> None:
        done = 0
        while iterations is None or done < iterations:
            outcome = await self.watch_once(state)
            done += 1
            await self.after_watch(state, outcome)

    # ------------------------------------------------------------------
    # The shell

    async def run(self, *, iterations: int | None = None) -> None:
        """List, then watch every target; relist on 410. ``iterations`` bounds
        the watch connections per target and per listing (tests)."""
        reason = "initial"
        while True:
            await self.relist(reason)
            self.synced.set()
            await self.report("ok")
            try:
                await run_together(
                    {
                        f"watch {state.target}": self.watch_target(state, iterations)
                        for state in self.states
                    }
                )
            except RelistNeeded:
                pass
            else:
                return
            reason = "expired"
            if iterations is not None:
                iterations -= 1
                if iterations <= 0:
                    return


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel ``tasks`` and wait until every one has ended (their exceptions are dropped).

    Being cancelled meanwhile does not cut the wait short (the tasks would be left
    running, and asyncio would log their failures as "never retrieved"): the
    caller's cancellation is raised once they have all ended.
    """
    pending = [t for t in tasks if t is not None]
    cancelled = False
    while any(not t.done() for t in pending):
        for task in pending:
            task.cancel()  # again for a task that swallowed it
        try:
            await asyncio.wait([t for t in pending if not t.done()], timeout=1.0)
        except asyncio.CancelledError:
            cancelled = True
    for task in pending:
        if not task.cancelled():
            with contextlib.suppress(BaseException):
                task.result()  # retrieve it so asyncio does not log "never retrieved"
    if cancelled:
        raise asyncio.CancelledError


async def run_together(coros: dict[str, Coroutine[Any, Any, Any]]) -> None:
    """Run coroutines as named tasks until all end or the first one fails.

    The others are then cancelled and awaited; the first failure is raised
    as is (not wrapped in an exception group). Cancelling the caller cancels
    them all and waits for them.
    """
    tasks = [asyncio.create_task(coro, name=name) for name, coro in coros.items()]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in tasks:
            if task in done and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        await cancel_and_wait(*tasks)


__all__ = [
    "ResourceSync",
    "WatchOutcome",
    "WatchSink",
    "WatchTarget",
    "cancel_and_wait",
    "run_together",
    "targets_for",
]
