"""The hub's direct pod reads, coalesced: one LIST answers many questions.

When the cache cannot answer (stale, Redis down) or a destructive verdict
must be confirmed, a spawner asks the Kubernetes API about its pod. One
:class:`PodReads` per hub process (per :class:`~kubecache.spawner.kube_api.KubeApi`)
answers all those questions:

- a lone question, with no other read of that namespace in flight, is one
  GET of the pod;
- questions that arrive while another read of the namespace is in flight
  (thousands of polls after Redis went down, a stale cache, a deleted
  hash) share ONE paginated LIST of the hub's pods in that namespace
  (``limit``/``continue``, label selector ``component=<component_label>``
  as KubeSpawner's pod reflector), with one LIST in flight per namespace:
  questions that come while it runs and cannot use it wait for the next
  one, which starts when it ends and answers them all;
- a LIST is remembered for ``recent_seconds``: a question that accepts an
  answer that old (``max_age``) is answered without a request.

Freshness: every answer carries the monotonic time its request was sent
(``started``; a LIST's snapshot is its first page). A question accepts a
read started at most ``max_age`` seconds before it was asked. An answer that
would destroy a server must come from a read started after the question
(``max_age=0``): a LIST sent before may miss a pod created since (the
server restarted) or show its predecessor of the same name.

A pod absent from a LIST is confirmed by a read without label selector
(a GET of it alone, or one LIST of every pod in the namespace for many at
once) before the answer is "absent": a ``modify_pod_hook`` may have changed
its labels so the selector misses it, and absence is what stops a server.
An empty selector lists every pod of the namespace.

A question that must be answered (a waiting start or stop, its last read
before the deadline: ``must_answer``) is answered by whichever read can
answer it in time. Each namespace remembers how long its last LIST took; when
the LIST that would answer the question (the one in flight, or the next one)
cannot be expected to end within the question's time (``timeouts.retry``),
the question is one GET of its pod instead, and a question that joined a
LIST which has not answered by the time a GET still fits (twice the GETs'
recent duration before the end, at least 0.3 s) sends that GET too. At
5,000 pods and 400 ms per request a LIST takes over 4 s; a GET 0.4 s. Such
GETs are bounded per namespace (``GETS_WITHOUT_LIST`` in flight). A poll is
not such a question: it keeps a server running when no read answers in time.

The least-privilege hub Role (docs/SECURITY.md) has no ``list`` on pods. A
LIST refused with 403 is remembered for the namespace (logged once, with the
grant that would make it one request), and its questions are answered by
GETs instead, at most ``GETS_WITHOUT_LIST`` in flight per namespace.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import heapq
import time
import weakref
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson

from kubecache.contract import RECORD_LABELS, SERVERNAME_KEY, USERNAME_KEY, PodRecord
from kubecache.contract import lenient_pod_record as _lenient_pod_record
from kubecache.selector import SelectorError, parsed_selector
from kubecache.spawner.hub_log import Logger, hub_logger
from kubecache.spawner.kube_api import KubeApi, KubeApiError, Timeouts

#: Pods per LIST page.
PAGE_SIZE = 500
#: How old an answer poll() accepts for "running" (a stopped verdict is always read anew):
#: a server that died is noticed at most this much later, and a hub whose cache cannot
#: answer sends about one LIST per this many seconds, not one per poll.
POLL_MAX_AGE = 5.0
#: How old an answer a waiting start or stop accepts (it waits for a change to show).
WAIT_MAX_AGE = 1.0
#: How long a finished LIST is kept to answer questions that accept an answer that old.
RECENT_SECONDS = max(POLL_MAX_AGE, WAIT_MAX_AGE)
#: Full restarts of one LIST whose continue token expired (410) before it gives up.
LIST_RESTARTS = 3
#: GETs in flight per namespace when the hub may not LIST pods there, or when a LIST cannot
#: answer a start's or stop's question in time.
GETS_WITHOUT_LIST = 16
#: What a GET is assumed to take before one was measured (seconds).
DEFAULT_GET_SECONDS = 0.5
#: The least time kept for a GET when a question waits on a LIST that may be late.
MIN_GET_RESERVE = 0.3

#: A LIST's pods by name, each reduced to its record once, as its page is parsed.
Records = dict[str, PodRecord]


@dataclass(frozen=True)
class PodRead:
    """A pod as the API had it, reduced to its record (None: absent), and when that read
    was sent (monotonic).

    The record is :func:`kubecache.contract.lenient_pod_record`'s (never raises on bad
    data). A LIST's records are built once, when its page is parsed, and shared by every
    question it answers: readers must not change them.
    """

    record: PodRecord | None
    started: float
    via: str  # "get", "list" or "recent" (a remembered LIST)
    #: the selector of a LIST that missed this pod although it exists and its labels do not
    #: match it (a modify_pod_hook changed them?); None otherwise
    unmatched_selector: str | None = None


@dataclass
class ReadStats:
    """What the reads cost; tests and benchmarks read it."""

    questions: int = 0
    gets: int = 0
    lists: int = 0
    pages: int = 0
    from_recent: int = 0
    absent_confirmations: int = 0
    #: questions answered by a GET because the shared LIST could not answer them in time
    gets_instead_of_list: int = 0


@dataclass
class _Listing:
    """One LIST of a namespace: not sent yet (``started`` None), in flight, or done."""

    future: asyncio.Future[Records]
    timeouts: Timeouts
    started: float | None = None
    #: one future per question waiting on this LIST, by the time (monotonic) the question
    #: gives up (a heap): a question gives up alone, by cancelling its own; no shield
    #: and its callbacks per question
    waiters: list[tuple[float, int, asyncio.Future[Records]]] = field(default_factory=list)
    #: the one timer that fails the waiters whose time is up (the earliest's)
    timer: asyncio.TimerHandle | None = None
    _timer_at: float = 0.0
    _joined: int = 0

    def wait(self, give_up: float) -> asyncio.Future[Records]:
        """A future of this LIST's pods for one question (done at once when it is), failed
        with TimeoutError at ``give_up`` (monotonic) if the LIST has not ended by then.

        One timer for all the questions waiting on the LIST, not a timeout context and
        its timer per question: thousands of polls wait on one LIST when the cache cannot
        answer, and each object a waiting poll holds outlives the young collections.
        """
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Records] = loop.create_future()
        if self.future.done():
            _copy_outcome(self.future, waiter)
            return waiter
        self._joined += 1
        heapq.heappush(self.waiters, (give_up, self._joined, waiter))
        if self.timer is None or give_up < self._timer_at:
            self._arm(loop, give_up)
        return waiter

    def _arm(self, loop: asyncio.AbstractEventLoop, at: float) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self._timer_at = at
        self.timer = loop.call_later(max(at - time.monotonic(), 0.0), self._expire)

    def _expire(self) -> None:
        """Fail the questions whose time is up; wake again for the next one's."""
        self.timer = None
        now = time.monotonic()
        waiters = self.waiters
        while waiters and waiters[0][0] <= now:
            waiter = heapq.heappop(waiters)[2]
            if not waiter.done():
                waiter.set_exception(TimeoutError())
        if waiters:
            self._arm(asyncio.get_running_loop(), waiters[0][0])

    def settle(self) -> None:
        """Give every waiting question this LIST's outcome (``future`` is done)."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        waiters, self.waiters = self.waiters, []
        for _, _, waiter in waiters:
            if not waiter.done():
                _copy_outcome(self.future, waiter)


def _copy_outcome(done: asyncio.Future[Records], waiter: asyncio.Future[Records]) -> None:
    error = done.exception()
    if error is not None:
        waiter.set_exception(error)
    else:
        waiter.set_result(done.result())


@dataclass
class _Namespace:
    in_flight: _Listing | None = None
    queued: _Listing | None = None
    recent: tuple[float, Records] | None = None
    #: how long the last complete LIST took (None: none finished yet)
    list_seconds: float | None = None
    gets_in_flight: int = 0
    list_forbidden: bool = False
    get_slots: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(GETS_WITHOUT_LIST)
    )
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class PodReads:
    """Coalesced pod reads of one hub; :meth:`of` gives the one of a :class:`KubeApi`."""

    _by_api: ClassVar[weakref.WeakKeyDictionary[KubeApi, PodReads]] = weakref.WeakKeyDictionary()

    def __init__(
        self,
        api: KubeApi,
        *,
        page_size: int = PAGE_SIZE,
        recent_seconds: float = RECENT_SECONDS,
        log: Logger | None = None,
    ) -> None:
        self.api = api
        self.page_size = page_size
        self.recent_seconds = recent_seconds
        self.stats = ReadStats()
        #: the hub's logger (the first spawner's ``self.log``)
        self.log = hub_logger(log, __name__)
        #: how long a GET of a pod took lately (None: none measured yet)
        self.get_seconds: float | None = None
        self._namespaces: dict[tuple[str, str], _Namespace] = {}

    @classmethod
    def of(cls, api: KubeApi, *, log: Logger | None = None) -> PodReads:
        """The reads of this API client (one per hub process and API configuration)."""
        reads = cls._by_api.get(api)
        if reads is None:
            reads = cls._by_api[api] = cls(api, log=log)
        return reads

    def read(
        self,
        namespace: str,
        name: str,
        *,
        label_selector: str,
        timeouts: Timeouts,
        max_age: float,
        must_answer: bool = False,
    ) -> Coroutine[Any, Any, PodRead]:
        """The pod from a read started at most ``max_age`` s before now (await it).

        Waits at most ``timeouts.retry`` seconds; raises :class:`KubeApiError`
        when the API gave no answer by then. ``must_answer``: a start or stop
        waits on the answer, so a GET is sent when the shared LIST cannot
        answer in time. (Not a coroutine itself: the question is asked now, and a
        poll waiting on a LIST holds one coroutine less.)
        """
        asked = time.monotonic()
        return self._read(
            namespace,
            name,
            label_selector=label_selector,
            timeouts=timeouts,
            asked=asked,
            not_before=asked - max(max_age, 0.0),
            until=asked + timeouts.retry,
            must_answer=must_answer,
        )

    async def _read(
        self,
        namespace: str,
        name: str,
        *,
        label_selector: str,
        timeouts: Timeouts,
        asked: float,
        not_before: float,
        until: float,
        must_answer: bool,
    ) -> PodRead:
        self.stats.questions += 1
        state = self._namespaces.get((namespace, label_selector))
        if state is None:  # not setdefault: a _Namespace (and its semaphore) per question
            state = self._namespaces[(namespace, label_selector)] = _Namespace()
        if state.recent is not None:
            started, pods = state.recent
            if started >= not_before:
                self.stats.from_recent += 1
                record = pods.get(name)
                if record is not None:
                    return PodRead(record, started, "recent")
                return await self._answer(
                    PodRead(record, started, "recent"),
                    namespace,
                    name,
                    label_selector,
                    timeouts,
                    until=until,
                    must_answer=must_answer,
                )
            if started < asked - self.recent_seconds:
                state.recent = None  # too old for anyone: let it go
        if state.list_forbidden:
            return await self._bounded_get(state, namespace, name, timeouts, until=until)
        reserve = self._get_reserve(until - asked)
        if must_answer and not self._list_in_time(state, not_before, until - reserve):
            self.stats.gets_instead_of_list += 1
            return await self._bounded_get(state, namespace, name, timeouts, until=until)
        listing = self._listing_for(state, namespace, label_selector, timeouts, not_before)
        if listing is None:
            return await self._get(state, namespace, name, _within(timeouts, until))
        try:
            pods = await listing.wait(until - reserve if must_answer else until)
        except TimeoutError:
            if must_answer:
                # the LIST is late: a GET still fits in the time left
                self.stats.gets_instead_of_list += 1
                return await self._bounded_get(state, namespace, name, timeouts, until=until)
            raise KubeApiError(
                f"Could not list pods in {namespace} within {timeouts.retry:.3g} s "
                "(k8s_api_request_retry_timeout)"
            ) from None
        except KubeApiError as e:
            if e.status != 403:
                if must_answer and until - time.monotonic() >= MIN_GET_RESERVE:
                    # the LIST failed (e.g. 503s until its retry time ran out): one GET
                    self.stats.gets_instead_of_list += 1
                    return await self._bounded_get(state, namespace, name, timeouts, until=until)
                raise
            if not state.list_forbidden:
                state.list_forbidden = True
                self.log.warning(
                    "kubecache: the hub may not list pods in %s (%s); each pod is read alone "
                    "when the cache cannot answer (at most %d at once). Grant 'list' on pods "
                    "in the hub's Role to make a burst of such reads one request.",
                    namespace,
                    e,
                    GETS_WITHOUT_LIST,
                )
            return await self._bounded_get(state, namespace, name, timeouts, until=until)
        assert listing.started is not None
        record = pods.get(name)
        if record is not None:  # found: nothing to confirm (no _answer coroutine per question)
            return PodRead(record, listing.started, "list")
        return await self._answer(
            PodRead(record, listing.started, "list"),
            namespace,
            name,
            label_selector,
            timeouts,
            until=until,
            must_answer=must_answer,
        )

    def _get_reserve(self, budget: float) -> float:
        """The time kept for a GET at the end of a question's ``budget``."""
        get_seconds = self.get_seconds if self.get_seconds is not None else DEFAULT_GET_SECONDS
        return min(max(2 * get_seconds, MIN_GET_RESERVE), budget / 2)

    @staticmethod
    def _list_in_time(state: _Namespace, not_before: float, by: float) -> bool:
        """Whether the LIST that would answer a question can be expected to end by ``by``
        (True while no LIST of the namespace has finished: the wait on it is bounded)."""
        took = state.list_seconds
        if took is None:
            return True
        now = time.monotonic()
        current = state.in_flight
        if current is None or current.started is None:
            ends = now + took
        else:
            current_ends = max(current.started + took, now)
            # a question too new for the LIST in flight waits for the next one
            ends = current_ends if current.started >= not_before else current_ends + took
        return ends <= by

    def _listing_for(
        self,
        state: _Namespace,
        namespace: str,
        label_selector: str,
        timeouts: Timeouts,
        not_before: float,
    ) -> _Listing | None:
        """The LIST that will answer this question, or None when a lone GET should."""
        current = state.in_flight
        if current is not None:
            if current.started is None or current.started >= not_before:
                return current
            # in flight but sent too early for this question: the next one answers it
            if state.queued is None:
                state.queued = _Listing(asyncio.get_running_loop().create_future(), timeouts)
            return state.queued
        if state.gets_in_flight == 0:
            return None
        listing = _Listing(asyncio.get_running_loop().create_future(), timeouts)
        self._launch(state, namespace, label_selector, listing)
        return listing

    def _launch(
        self, state: _Namespace, namespace: str, label_selector: str, listing: _Listing
    ) -> None:
        state.in_flight = listing
        task = asyncio.create_task(
            self._run_listing(state, namespace, label_selector, listing),
            name=f"kubecache-list-pods-{namespace}",
        )
        state.tasks.add(task)
        task.add_done_callback(state.tasks.discard)

    async def _run_listing(
        self, state: _Namespace, namespace: str, label_selector: str, listing: _Listing
    ) -> None:
        try:
            # sent from here on: questions asked until now are answered by this snapshot
            listing.started = time.monotonic()
            pods = await self._list_all(namespace, label_selector, listing.timeouts)
        except Exception as e:
            self._fail(listing, e)
        else:
            state.list_seconds = time.monotonic() - listing.started
            state.recent = (listing.started, pods)
            if not listing.future.done():
                listing.future.set_result(pods)
        finally:
            self._fail(listing, KubeApiError(f"the list of pods in {namespace} was cancelled"))
            listing.settle()
            state.in_flight = None
            queued, state.queued = state.queued, None
            if queued is not None:
                self._launch(state, namespace, label_selector, queued)

    @staticmethod
    def _fail(listing: _Listing, error: Exception) -> None:
        if not listing.future.done():
            listing.future.set_exception(error)
            listing.future.exception()  # retrieved: no "never retrieved" noise when none waits

    async def _list_all(self, namespace: str, label_selector: str, timeouts: Timeouts) -> Records:
        """Every page of the LIST (one snapshot): each pod's record, by pod name."""
        self.stats.lists += 1
        for _ in range(LIST_RESTARTS):
            pods: Records = {}
            token: str | None = None
            while True:
                self.stats.pages += 1
                page = await self.api.list_pods_page(
                    namespace,
                    label_selector=label_selector,
                    limit=self.page_size,
                    continue_token=token,
                    timeouts=timeouts,
                    parse=parse_pod_page,
                )
                if isinstance(page, KubeApiError):  # 410: the continue token expired
                    self.log.info("kubecache: listing pods in %s again: %s", namespace, page)
                    break
                page_pods, token = page
                pods.update(page_pods)
                if not token:
                    return pods
        raise KubeApiError(
            f"Could not list pods in {namespace}: the list expired {LIST_RESTARTS} times "
            "while being paged through"
        )

    async def _bounded_get(
        self, state: _Namespace, namespace: str, name: str, timeouts: Timeouts, *, until: float
    ) -> PodRead:
        """One GET among at most ``GETS_WITHOUT_LIST`` of the namespace, done by ``until``."""
        try:
            async with asyncio.timeout(max(until - time.monotonic(), 0.0)):
                await state.get_slots.acquire()
        except TimeoutError:
            raise KubeApiError(
                f"Could not read pod {namespace}/{name} within {timeouts.retry:.3g} s: "
                f"{GETS_WITHOUT_LIST} other reads of the namespace were in flight"
            ) from None
        try:
            return await self._get(state, namespace, name, _within(timeouts, until))
        finally:
            state.get_slots.release()

    async def _get(
        self, state: _Namespace, namespace: str, name: str, timeouts: Timeouts
    ) -> PodRead:
        state.gets_in_flight += 1
        self.stats.gets += 1
        try:
            started = time.monotonic()
            pod = await self.api.read_pod(namespace, name, timeouts)
            took = time.monotonic() - started
            # the recent GETs' duration, smoothed: what a GET at the end of a question needs
            self.get_seconds = (
                took if self.get_seconds is None else (0.7 * self.get_seconds + 0.3 * took)
            )
            return PodRead(None if pod is None else _lenient_pod_record(pod), started, "get")
        finally:
            state.gets_in_flight -= 1

    async def _answer(
        self,
        read: PodRead,
        namespace: str,
        name: str,
        label_selector: str,
        timeouts: Timeouts,
        *,
        until: float,
        must_answer: bool,
    ) -> PodRead:
        """``read``, with a pod absent from a selective LIST confirmed by a read of every pod
        of the namespace (one GET alone, one LIST without selector for many at once)."""
        if read.record is not None or read.via == "get" or not label_selector:
            return read
        self.stats.absent_confirmations += 1
        asked = time.monotonic()
        confirmed = await self._read(
            namespace,
            name,
            label_selector="",
            timeouts=timeouts,
            asked=asked,
            not_before=asked,
            until=until,
            must_answer=must_answer,
        )
        if confirmed.record is not None and not _matches(confirmed.record, label_selector):
            # not a LIST that predates the pod: its labels really are outside the selector
            return dataclasses.replace(confirmed, unmatched_selector=label_selector)
        return confirmed


def parse_pod_page(data: bytes) -> tuple[Records, str | None]:
    """A LIST page's body: its pods' records by pod name, and its continue token (None on
    the last page). ValueError when the body is not a pod list.

    Each pod is reduced to its record here, once
    (:func:`kubecache.contract.lenient_pod_record`: the record a read of the pod gives,
    whatever the pod holds; it never raises), not kept whole or slimmed and reduced again
    for every question the LIST answers: a stale cache's round of 3,000 polls asked 3,000
    reductions of the same pods, and again every round the remembered LIST answered. A
    record is also a few objects where a pod is dozens: what a LIST keeps for
    ``recent_seconds`` is what the garbage collector walks.

    The page is parsed and reduced with the cyclic garbage collector paused (it is
    enabled again before this returns; nothing else runs in between: no await). A page
    of 500 pods is some 37,000 objects; parsed with the collector on, each young
    collection during the parse found the page's objects alive and promoted them, and
    enough promotions trigger a full collection, which walks the hub's whole heap
    (about 0.2 s with 3,000 spawners). Only the records outlive the page.

    An item that is not an object or has no string ``metadata.name`` is skipped: it
    cannot be the pod of any question (a question names its pod).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        body = orjson.loads(data)
        if type(body) is not dict:
            raise ValueError("not an object")
        items = body.get("items")
        if items is None:
            items = []
        elif type(items) is not list:
            raise ValueError("items is not a list")
        metadata = body.get("metadata")
        token = metadata.get("continue") if type(metadata) is dict else None
        records: Records = {}
        name = None
        try:
            for item in items:
                if type(item) is dict:
                    meta = item.get("metadata")
                    name = meta.get("name") if type(meta) is dict else None
                    if type(name) is str:
                        records[name] = _lenient_pod_record(item)
        except Exception as e:  # the lenient read never raises; were it to, a malformed answer
            raise ValueError(f"pod {name!r} could not be read: {e!r}") from e
        del body, items, metadata
        return records, (token if type(token) is str and token else None)
    finally:
        if enabled:
            gc.enable()


def _within(timeouts: Timeouts, until: float) -> Timeouts:
    """``timeouts`` cut to end by ``until`` (monotonic): one attempt, no retry after it."""
    left = max(until - time.monotonic(), 0.001)
    return Timeouts(request=min(timeouts.request, left), retry=left)


#: The label keys a record keeps as the pod has them (the name labels are dropped when an
#: annotation of the same key exists): a selector on other keys cannot be checked on a record.
_CHECKABLE_LABELS = RECORD_LABELS - {USERNAME_KEY, SERVERNAME_KEY}


def _matches(record: PodRecord, label_selector: str) -> bool:
    """Whether the pod's labels, as its record keeps them, match the selector.

    True when that cannot be told (the selector cannot be read, or names a label the
    record does not keep as the pod has it): only a real mismatch is reported. The
    hub's LIST selector is ``component=<component_label>``, a label every record keeps.
    """
    try:
        selector = parsed_selector(label_selector)
    except SelectorError:
        return True
    if any(r.key not in _CHECKABLE_LABELS for r in selector.requirements):
        return True
    labels = record.get("labels")
    return selector.matches(labels if type(labels) is dict else {})


__all__ = [
    "GETS_WITHOUT_LIST",
    "PAGE_SIZE",
    "POLL_MAX_AGE",
    "RECENT_SECONDS",
    "WAIT_MAX_AGE",
    "PodRead",
    "PodReads",
    "ReadStats",
    "parse_pod_page",
]
