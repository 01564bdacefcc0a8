"""Waiting for a verdict on one spawner's pod: the cache may say "yes" alone, never "no".

``start()`` and ``stop()`` wait until their pod runs, failed or is gone. The
pod is re-read whenever the cacher's feed mentions it: from the cache while
it is trusted, else from a bounded Kubernetes API read (:mod:`spawner.pod_reads`).
A destructive verdict (the start failed, the pod is gone) is only returned once
an API read sent after the cache said so agrees.

Every API read of a wait must be answered (``must_answer``: a lone GET when the
hub's shared LIST cannot answer in time, see :mod:`spawner.pod_reads`) and ends
by the wait's deadline; when the deadline passes, one last API read (with a
whole ``k8s_api_request_timeout``) has the last word.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from kubecache.contract import Freshness, PodRecord, lenient_pod_record
from spawner import pod_state
from spawner.cache_client import CacheClient, CacheUnavailable, PodSnapshot, Watch
from spawner.kube_api import KubeApiError
from spawner.pod_reads import WAIT_MAX_AGE, PodRead

T = TypeVar("T")

#: Longest wait on the feed before re-checking that the cache is still trusted.
MAX_FEED_WAIT = 10.0
#: Pauses between API reads while the cache cannot answer: from the first to the longest.
#: A pod Ready in the API is seen at most API_WAIT_MAX s late; the reads of many waits are
#: coalesced (spawner.pod_reads), so a hub sends about one LIST per second for all of them.
API_WAIT_FIRST = 0.5
API_WAIT_MAX = 1.0
#: The least time given to an API read close to a wait's deadline (seconds).
MIN_READ_SECONDS = 0.5


class Unknown:
    """The pod's state could not be read (neither cache nor API answered)."""


UNKNOWN = Unknown()


@dataclass(frozen=True)
class PodView:
    """The pod as one read saw it.

    ``confirmed``: an API read sent after the question (may back a
    destructive verdict); ``from_cache``: a trusted cache answered.
    """

    record: PodRecord | Unknown | None
    confirmed: bool
    from_cache: bool = False


def pod_gone(record: PodRecord | None) -> bool | None:
    """The verdict of a wait for the pod to disappear: True once it has no record."""
    return True if record is None else None


@dataclass(frozen=True)
class PodWait:
    """Reads and waits for one pod with what its spawner knows.

    ``read_api(max_age=..., must_answer=..., within=...)`` is the spawner's
    (coalesced) API read, raising :class:`KubeApiError`; ``trust`` says how far
    a cache snapshot of the pod may be trusted.
    """

    cache: Callable[[], CacheClient]
    read_api: Callable[..., Awaitable[PodRead]]
    trust: Callable[[PodSnapshot], Freshness]
    pod_key: str
    log_id: str
    log: logging.Logger | logging.LoggerAdapter[Any]
    cache_stale_after: float

    async def read_api_view(
        self, *, max_age: float, why: str, until: float | None = None
    ) -> PodView:
        """The pod from an API read that must answer (by ``until``, monotonic, if given)."""
        asked = time.monotonic()
        within = None if until is None else max(until - asked, MIN_READ_SECONDS)
        try:
            read = await self.read_api(max_age=max_age, must_answer=True, within=within)
        except KubeApiError as e:
            self.log.warning("kubecache: %s: %s and the API read failed: %s", self.log_id, why, e)
            return PodView(UNKNOWN, confirmed=False)
        record = lenient_pod_record(read.pod) if read.pod is not None else None
        return PodView(record, confirmed=read.started >= asked)

    async def read(
        self, snapshot: PodSnapshot | None = None, *, until: float | None = None
    ) -> PodView:
        """The pod from a trusted cache, else from a bounded API read, else UNKNOWN.

        ``snapshot``: the pod as read with the feed entry that woke the waiter (the
        cache is not read again; it is trusted or not by the same rule). ``until``:
        the API read ends by then (monotonic).
        """
        problem = ""
        try:
            if snapshot is None:
                snapshot = await self.cache().get_pod(self.pod_key)
            freshness = self.trust(snapshot)
            if freshness.trusted:
                return PodView(snapshot.record, confirmed=False, from_cache=True)
            problem = f"the cache is {freshness.value}"
        except CacheUnavailable as e:
            problem = str(e)
        except ValueError as e:  # Redis settings that cannot work
            problem = str(e)
        self.log.debug("kubecache: %s: %s; reading the pod from the API", self.log_id, problem)
        return await self.read_api_view(max_age=WAIT_MAX_AGE, why=problem, until=until)

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
        so agrees: the cache may say "yes" alone, never "no". Reads end by
        ``deadline``; then, with ``last_word``, one more API read decides.
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
            result = await self._confirmed_result(view, until, destructive, deadline=deadline)
            if result is not None:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if not last_word:
                    return None
                # out of time: the API has the last word (a stalled cache may have missed it)
                last = await self.read_api_view(max_age=0, why="the wait timed out")
                return None if isinstance(last.record, Unknown) else until(last.record)
            if view.from_cache and self.cache().connected:
                wait = min(remaining, MAX_FEED_WAIT, max(self.cache_stale_after / 2, 0.5))
            else:
                wait = min(remaining, fallback_wait)
                fallback_wait = min(fallback_wait * 2, API_WAIT_MAX)
            woken = await watch.wait(wait)
            snapshot = watch.take_snapshot() if woken else None

    async def _confirmed_result(
        self,
        view: PodView,
        until: Callable[[PodRecord | None], T | None],
        destructive: Callable[[T], bool],
        *,
        deadline: float,
    ) -> T | None:
        """``until``'s value for the pod; a destructive one only once the API confirms it."""
        if isinstance(view.record, Unknown):
            return None
        result = until(view.record)
        if result is None or view.confirmed or not destructive(result):
            return result
        confirmation = await self.read_api_view(
            max_age=0, why="confirming the cache's verdict", until=deadline
        )
        if isinstance(confirmation.record, Unknown):
            return None  # nobody can confirm: keep waiting
        confirmed = until(confirmation.record)
        if confirmed is None:
            self.log.warning(
                "kubecache: %s: the cache's verdict (%s) is not what the API says (%s); "
                "going by the API",
                self.log_id,
                pod_state.pending_reason(view.record),
                pod_state.pending_reason(confirmation.record),
            )
        return confirmed


__all__ = ["MAX_FEED_WAIT", "UNKNOWN", "PodView", "PodWait", "Unknown", "pod_gone"]
