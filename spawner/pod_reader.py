"""One spawner's reads of its own pod: polls and waits, with the verdict rule written once.

A :class:`PodReader` is built once per spawner (again when an option it was
built from changes, and at every start) from a frozen :class:`PodTarget`:
namespace, pod name, record key, the pod's labels already expanded, the
stale bound and the name logs give it. The spawner hands it the two reads
it may make (the shared cache client, the coalesced API read of
:mod:`kubecache.spawner.pod_reads`) and reads its answers back; the reader never
touches the spawner, and nothing on its per-poll path expands a template
or reads a traitlets option.

The verdict rule: **the cache may say "yes" alone, never "no"**. A trusted
cache (fresh, and watching pods like this one: :meth:`PodReader.freshness`)
answers "running" by itself; any destructive verdict (a poll's "stopped" or
"absent", a start that failed, a pod that is gone) is only given once an API
read sent after the question agrees (:meth:`PodReader._verdict`). An
untrusted or unreachable cache is replaced by a bounded API read.

``poll()`` (:meth:`PodReader.poll`): one pipelined cache read, coalesced with
the hub's other polls; the API when the cache cannot be trusted or says the
server stopped. The decisions are :mod:`kubecache.spawner.poll_policy`'s.

``start()`` and ``stop()`` (:meth:`PodReader.wait`): re-read the pod whenever
the cacher's feed mentions it, from the cache while it is trusted, else from
an API read that must answer (``must_answer``: a lone GET when the hub's
shared LIST cannot answer in time) by the wait's deadline; when the deadline
passes, one last API read (with a whole ``k8s_api_request_timeout``) has the
last word.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import NamedTuple, Protocol, TypeVar

from kubecache.contract import Freshness, PodRecord
from kubecache.spawner import pod_state
from kubecache.spawner.cache_client import CacheClient, CacheUnavailable, PodSnapshot, Watch
from kubecache.spawner.hub_log import EveryInterval, Logger
from kubecache.spawner.kube_api import KubeApiError
from kubecache.spawner.pod_reads import POLL_MAX_AGE, WAIT_MAX_AGE, PodRead
from kubecache.spawner.poll_policy import (
    PollAnswer,
    from_api,
    from_cache,
    needs_confirmation,
    when_unknown,
)

T = TypeVar("T")

#: Longest wait on the feed before re-checking that the cache is still trusted.
MAX_FEED_WAIT = 10.0
#: Pauses between API reads while the cache cannot answer: from the first to the longest.
#: A pod Ready in the API is seen at most API_WAIT_MAX s late; the reads of many waits are
#: coalesced (kubecache.spawner.pod_reads), so a hub sends about one LIST per second for all
#: of them.
API_WAIT_FIRST = 0.5
API_WAIT_MAX = 1.0
#: The least time given to an API read close to a wait's deadline (seconds).
MIN_READ_SECONDS = 0.5


class ApiRead(Protocol):
    """The spawner's (coalesced, bounded) API read of its pod; raises KubeApiError."""

    def __call__(
        self, *, max_age: float, must_answer: bool = False, within: float | None = None
    ) -> Awaitable[PodRead]: ...


class LazyLabels(Mapping[str, str]):
    """The pod's labels, expanded on first use (``expand``: the spawner's coverage_labels).

    A reader needs them only when its pod has no record that shows it is covered
    (:meth:`PodReader.freshness`): a hub's polls of running servers never expand
    a template. The reader is rebuilt when an option the labels are made of
    changes, so expanding later gives what expanding at build time would.
    """

    __slots__ = ("_expand", "_labels")

    def __init__(self, expand: Callable[[], Mapping[str, str]]) -> None:
        self._expand: Callable[[], Mapping[str, str]] | None = expand
        self._labels: Mapping[str, str] = {}

    def _get(self) -> Mapping[str, str]:
        if self._expand is not None:
            self._labels, self._expand = self._expand(), None
        return self._labels

    def __getitem__(self, key: str) -> str:
        return self._get()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())

    def __repr__(self) -> str:
        return f"LazyLabels({dict(self._get())!r})"


class PodTarget(NamedTuple):
    """What a reader reads, computed once from the spawner's options and state.

    A named tuple, immutable: a fresh hub makes one per running server on its first
    poll, and it costs half a frozen dataclass.

    ``labels``: the pod's labels with every template expanded (the cache
    coverage check); ``stale_after_ms``: ``cache_stale_after``; ``log_id``:
    how logs name the server (user, server name, pod). The poll policies are
    OutpostSpawner's options of the same names (:mod:`kubecache.spawner.poll_policy`).
    """

    namespace: str
    pod_name: str
    key: str
    labels: Mapping[str, str]
    stale_after_ms: int
    log_id: str
    keep_running_on_404: bool = False
    keep_running_on_failure: bool = True

    @property
    def stale_after(self) -> float:
        return self.stale_after_ms / 1000


class Unknown:
    """The pod's state could not be read (neither cache nor API answered)."""


UNKNOWN = Unknown()


@dataclass(frozen=True)
class PodView:
    """The pod as one read saw it.

    ``confirmed``: an API read sent after the question (may back a
    destructive verdict); ``from_cache``: a trusted cache answered;
    ``error``: why the API read failed (``record`` is :data:`UNKNOWN`).
    """

    record: PodRecord | Unknown | None
    confirmed: bool
    from_cache: bool = False
    error: str = ""


def pod_gone(record: PodRecord | None) -> bool | None:
    """The verdict of a wait for the pod to disappear: True once it has no record."""
    return True if record is None else None


#: (namespace, cacher namespaces, cacher selector) already reported uncovered: once per
#: process and cacher configuration, not per poll
_warned: set[tuple[str, str, str]] = set()


class PodReader:
    """Answers polls and waits about one pod (see the module docstring)."""

    def __init__(
        self,
        target: PodTarget,
        *,
        cache: Callable[[], CacheClient],
        read_api: ApiRead,
        log: Logger,
    ) -> None:
        self.target = target
        self._cache = cache
        self._read_api = read_api
        self.log = log
        #: (cacher namespaces, cacher selector) -> whether the cacher covers this pod
        self._covered: tuple[str, str, bool] | None = None

    # ------------------------------------------------------------------ trust

    def freshness(self, snapshot: PodSnapshot) -> Freshness:
        """How far ``snapshot`` may be trusted: the cache's health, and whether the
        cacher watches pods like this one at all.

        A cacher whose ``--namespaces`` or ``--pod-selector`` leave the hub's pods
        out would report every server absent, and JupyterHub would stop them;
        such an answer is :data:`Freshness.UNCOVERED`, so the API is read instead.
        A pod with a record is covered when the record's own labels (the
        :data:`~kubecache.contract.RECORD_LABELS` the pod has, as the cacher saw
        them) match the cacher's selector in a namespace it watches; otherwise, and
        for a pod without a record, this spawner's expanded labels decide.
        """
        target = self.target
        freshness = snapshot.freshness(stale_after_ms=target.stale_after_ms)
        health = snapshot.health
        if freshness is not Freshness.FRESH or health is None:
            return freshness
        record = snapshot.record
        if record is not None and health.covers(target.namespace, record["labels"]):
            # The cacher records only pods it watches, and this record's own labels (the
            # pod's, as the cacher saw them) match its selector in a namespace it watches:
            # covered, without expanding this spawner's label templates.
            return freshness
        known = self._covered
        if known is not None and known[0] == health.namespaces and known[1] == health.pod_selector:
            covered = known[2]
        else:
            covered = health.covers(target.namespace, target.labels)
            self._covered = (health.namespaces, health.pod_selector, covered)
        if covered:
            return freshness
        seen = (target.namespace, health.namespaces, health.pod_selector)
        if seen not in _warned:
            _warned.add(seen)
            self.log.error(
                "kubecache: the cacher (%s) does not watch pod %s/%s: its namespaces (%s) and "
                "pod selector (%r) leave out namespace %s or labels %s. Every read of such pods "
                "goes to the Kubernetes API. Make the cacher's --namespaces and --pod-selector "
                "cover the hub's pods (c.KubeSpawner.namespace, component_label, extra_labels).",
                health.leader,
                target.namespace,
                target.pod_name,
                health.namespaces or "all",
                health.pod_selector,
                target.namespace,
                dict(target.labels),
            )
        return Freshness.UNCOVERED

    async def trusted_snapshot(self) -> tuple[PodSnapshot | None, str]:
        """The pod from the cache when it may be trusted, else None and why not."""
        try:
            snapshot = await self._cache().get_pod(self.target.key)
            freshness = self.freshness(snapshot)
            if freshness.trusted:
                return snapshot, ""
            return None, f"the cache is {freshness.value}"
        except (CacheUnavailable, ValueError) as e:  # ValueError: Redis settings that cannot work
            return None, str(e)

    # ------------------------------------------------------------------ reads

    async def read_api_view(
        self,
        *,
        max_age: float,
        why: str,
        until: float | None = None,
        must_answer: bool = True,
        quiet: bool = False,
        asked: float | None = None,
    ) -> PodView:
        """The pod from an API read (by ``until``, monotonic, if given).

        ``must_answer``: a start or stop waits on it (see :mod:`kubecache.spawner.pod_reads`);
        ``quiet``: the caller logs a failure itself (its ``error`` says what failed);
        ``asked``: when the question was asked (monotonic; default now): a read sent
        since then is ``confirmed``.
        """
        now = time.monotonic()
        if asked is None:
            asked = now
        within = None if until is None else max(until - now, MIN_READ_SECONDS)
        try:
            if must_answer:
                read = await self._read_api(max_age=max_age, must_answer=True, within=within)
            else:
                read = await self._read_api(max_age=max_age)
        except KubeApiError as e:
            if not quiet:
                self.log.warning(
                    "kubecache: %s: %s and the API read failed: %s", self.target.log_id, why, e
                )
            return PodView(UNKNOWN, confirmed=False, error=str(e))
        # the record is the read's own (a LIST's shared by every question it answered)
        return PodView(read.record, confirmed=read.started >= asked)

    async def read(
        self, snapshot: PodSnapshot | None = None, *, until: float | None = None
    ) -> PodView:
        """The pod from a trusted cache, else from a bounded API read, else UNKNOWN.

        ``snapshot``: the pod as read with the feed entry that woke the waiter (the
        cache is not read again; it is trusted or not by the same rule). ``until``:
        the API read ends by then (monotonic).
        """
        if snapshot is None:
            snapshot, problem = await self.trusted_snapshot()
        else:
            freshness = self.freshness(snapshot)
            problem = "" if freshness.trusted else f"the cache is {freshness.value}"
        if not problem and snapshot is not None:
            return PodView(snapshot.record, confirmed=False, from_cache=True)
        self.log.debug(
            "kubecache: %s: %s; reading the pod from the API", self.target.log_id, problem
        )
        return await self.read_api_view(max_age=WAIT_MAX_AGE, why=problem, until=until)

    # ------------------------------------------------------------------ the verdict rule

    async def _verdict(
        self,
        view: PodView,
        judge: Callable[[PodView], T | None],
        destructive: Callable[[T], bool],
        confirm: Callable[[], Awaitable[PodView]],
    ) -> tuple[T | None, PodView]:
        """``judge``'s value for ``view``; a destructive one only once a read sent after
        the question agrees: the cache may say "yes" alone, never "no".

        Returns the value and the view it comes from: ``view`` itself, or the
        confirming read (None, with an UNKNOWN record, when that read failed).
        """
        result = judge(view)
        if result is None or view.confirmed or not destructive(result):
            return result, view
        confirmation = await confirm()
        if isinstance(confirmation.record, Unknown):
            return None, confirmation
        return judge(confirmation), confirmation

    # ------------------------------------------------------------------ poll

    async def poll(self) -> tuple[PollAnswer, PodRecord | None]:
        """The cache's "running", else the API's answer, else the policy's.

        A trusted cache answers "running" alone. Any other answer (stopped,
        absent) is confirmed by an API read sent after the question before it is
        given; an untrusted or unreachable cache is replaced by a (coalesced) API
        read, whose "stopped" is confirmed the same way when it was not fresh.
        Returns the answer and the record it was read from (None: absent or unknown).

        The trusted "running" is the hot path of a hub (every server, every poll
        interval, all at once after a restart): it awaits the cache client's
        coalesced read directly and defines no closure, so a poll in flight holds
        as few objects as it can (:meth:`_poll_further` has the rest).
        """
        target = self.target
        asked = time.monotonic()
        snapshot: PodSnapshot | None = None
        try:
            cache = self._cache()
            read = await cache.read_pod(target.key)
            freshness = read.freshness(stale_after_ms=target.stale_after_ms)
            if freshness is Freshness.FRESH:  # else no record is decoded
                snapshot = cache.snapshot(target.key, read)
                freshness = self.freshness(snapshot)
            problem = "" if freshness.trusted else f"the cache is {freshness.value}"
        except (CacheUnavailable, ValueError) as e:  # ValueError: Redis settings that cannot work
            problem = str(e)
        if not problem and snapshot is not None:
            record = snapshot.record
            answer = from_cache(
                record, Freshness.FRESH, keep_running_on_404=target.keep_running_on_404
            )
            if answer is not None and answer.status is None:
                return answer, record  # the cache's "running" (or the 404 policy's)
            return await self._poll_further(
                PodView(record, confirmed=False, from_cache=True), problem, asked
            )
        view = await self.read_api_view(
            max_age=POLL_MAX_AGE, why=problem, must_answer=False, quiet=True, asked=asked
        )
        return await self._poll_further(view, problem, asked)

    async def _poll_further(
        self, view: PodView, problem: str, asked: float
    ) -> tuple[PollAnswer, PodRecord | None]:
        """A poll whose first read did not say "running" from a trusted cache: the verdict
        rule (a destructive answer only once an API read sent after the question agrees)."""
        target = self.target
        keep_on_404 = target.keep_running_on_404
        record = view.record
        if not view.from_cache and not isinstance(record, Unknown):
            # An API read answered (the degraded mode's every poll): its answer stands when
            # it needs no confirmation (running) or is confirmed already; what _verdict
            # would return, without its closures and coroutines for each of 3,000 polls.
            said = from_api(record, found=record is not None, keep_running_on_404=keep_on_404)
            if view.confirmed or not needs_confirmation(said, fresh=False):
                return said, record

        def judge(seen: PodView) -> PollAnswer | None:
            if isinstance(seen.record, Unknown):
                return None
            if seen.from_cache:
                return from_cache(seen.record, Freshness.FRESH, keep_running_on_404=keep_on_404)
            found = seen.record is not None
            return from_api(seen.record, found=found, keep_running_on_404=keep_on_404)

        cache_said = judge(view) if view.from_cache else None
        if cache_said is not None:
            problem = f"the cache says {cache_said.why}"

        async def confirm() -> PodView:
            return await self.read_api_view(max_age=0, why=problem, must_answer=False, quiet=True)

        answer, seen = await self._verdict(
            view,
            judge,
            lambda said: said is not None and needs_confirmation(said, fresh=False),
            confirm,
        )
        if answer is None:  # the API did not answer
            why = f"{problem}; reading the pod from the API failed: {seen.error}"
            unknown = when_unknown(keep_running=target.keep_running_on_failure, why=why)
            held_back = _unanswered.due()
            if held_back is None:
                self.log.debug("kubecache: poll of %s: %s", target.log_id, unknown.why)
            else:
                self.log.warning(
                    "kubecache: poll of %s: %s (%d more polls like this one since the last "
                    "line like this)",
                    target.log_id,
                    unknown.why,
                    held_back,
                )
            return unknown, None
        if cache_said is not None and answer.status is None:
            held_back = _contradicted.due()
            if held_back is not None:
                self.log.warning(
                    "kubecache: poll of %s: the cache said %s but the API says %s: kept "
                    "running (%d such polls in this hub so far; the cacher should heal its "
                    "records)",
                    target.log_id,
                    cache_said.why,
                    answer.why,
                    _contradicted.count,
                )
        record = None if isinstance(seen.record, Unknown) else seen.record
        return answer, record

    # ------------------------------------------------------------------ waits

    async def wait(
        self,
        watch: Watch,
        until: Callable[[PodRecord | None], T | None],
        *,
        deadline: float,
        destructive: Callable[[T], bool],
        last_word: bool = True,
    ) -> T | None:
        """Re-read the pod whenever the feed mentions it until ``until`` gives a value.

        None when ``deadline`` (monotonic) passes first. While the cache is
        untrusted the pod is read from the API with back-off instead, and
        while a trusted cache stays quiet (no feed wake-up; its watch may be
        stalled) the API is read as well, at most once per quiet wait. A
        value for which ``destructive`` is true (the start failed, the pod
        is gone) is only returned when an API read sent after the cache said
        so agrees (:meth:`_verdict`). Reads end by ``deadline``; then, with
        ``last_word``, one more API read decides.
        """
        fallback_wait = API_WAIT_FIRST
        woken = True
        snapshot: PodSnapshot | None = None
        while True:
            view = await self.read(snapshot, until=deadline)
            if view.from_cache and not woken:
                # a quiet trusted cache: look at the API too (a stalled watch sends nothing)
                api_view = await self.read_api_view(
                    max_age=WAIT_MAX_AGE, why="no news from the cache", until=deadline
                )
                if not isinstance(api_view.record, Unknown):
                    view = api_view
            result = await self._wait_verdict(view, until, destructive, deadline=deadline)
            if result is not None:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if not last_word:
                    return None
                # out of time: the API has the last word (a stalled cache may have missed it)
                last = await self.read_api_view(max_age=0, why="the wait timed out")
                return None if isinstance(last.record, Unknown) else until(last.record)
            if view.from_cache and self._cache().connected:
                wait = min(remaining, MAX_FEED_WAIT, max(self.target.stale_after / 2, 0.5))
            else:
                wait = min(remaining, fallback_wait)
                fallback_wait = min(fallback_wait * 2, API_WAIT_MAX)
            woken = await watch.wait(wait)
            snapshot = watch.take_snapshot() if woken else None

    async def _wait_verdict(
        self,
        view: PodView,
        until: Callable[[PodRecord | None], T | None],
        destructive: Callable[[T], bool],
        *,
        deadline: float,
    ) -> T | None:
        """``until``'s value for the pod; a destructive one only once the API confirms it."""

        def judge(seen: PodView) -> T | None:
            return None if isinstance(seen.record, Unknown) else until(seen.record)

        async def confirm() -> PodView:
            return await self.read_api_view(
                max_age=0, why="confirming the cache's verdict", until=deadline
            )

        result, seen = await self._verdict(
            view, judge, lambda value: value is not None and destructive(value), confirm
        )
        if result is None and seen is not view and not isinstance(seen.record, Unknown):
            self.log.warning(
                "kubecache: %s: the cache's verdict (%s) is not what the API says (%s); "
                "going by the API",
                self.target.log_id,
                pod_state.pending_reason(_known(view.record)),
                pod_state.pending_reason(seen.record),
            )
        return result


def _known(record: PodRecord | Unknown | None) -> PodRecord | None:
    return None if isinstance(record, Unknown) else record


#: Hub-wide limits of lines every server's poll could log at once. An API outage while
#: the cache cannot answer would log one line per server per poll interval (3,000 lines a
#: round on a large hub); the first is logged, then one a minute with the count held back
#: (the rest at DEBUG).
_unanswered = EveryInterval(60.0)
#: The API overruled a trusted cache's "not running": first time, then once a minute.
_contradicted = EveryInterval(60.0)


__all__ = [
    "MAX_FEED_WAIT",
    "UNKNOWN",
    "ApiRead",
    "LazyLabels",
    "PodReader",
    "PodTarget",
    "PodView",
    "Unknown",
    "pod_gone",
]
