"""Orchestration: elect → take over → list/watch pods and events → Redis.

One :class:`Cacher` per process. As a standby it only campaigns for the
Lease. As the leader it runs one *term*: a :class:`~cacher.writer.CacheWriter`
takes the cache over (new epoch), pods are listed and reconciled, events
follow, and a heartbeat runs every couple of seconds. A term ends when

- the lease is lost: the term is cancelled at once (no further writes);
- the writer is fenced (another leader's epoch): step down, campaign again;
- Redis comes back empty or with a foreign epoch (CacheLost), or Redis fails:
  the term restarts with a new epoch and a full relist, after Redis answers;
- the writes reach another Redis node than the epoch's primary (FailedOver:
  a promoted replica, a reconnect elsewhere, or Sentinel naming another
  primary, checked every heartbeat), or the records in Redis are not what
  the writer wrote (CacheDiverged): the term restarts with a new epoch and
  every record is rewritten from a full list;
- the process is asked to stop (SIGTERM): watches stop, the lease is released.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ReadOnlyError, RedisError

from cacher.health_server import HealthServer, Readiness
from cacher.kube import KubeHttp, connect_kube
from cacher.leader import LeaderElector
from cacher.metrics import CacherMetrics
from cacher.primary import PrimaryWatch, UnsupportedRedis
from cacher.settings import Settings
from cacher.watcher import (
    Listing,
    Resource,
    ResourceSync,
    cancel_and_wait,
    run_together,
    targets_for,
)
from cacher.write_errors import CacheDiverged, CacheLost, FailedOver, Fenced
from cacher.writer import CacheWriter
from kubecache.backoff import Backoff
from kubecache.contract import Keys
from kubecache.redis_connection import connect, redacted

log = logging.getLogger(__name__)


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
            await self.writer.apply_events(changes)
            self._note_events([obj for _, obj in changes])
        self.metrics.observe_lag(resource, received)

    async def state(self, resource: Resource, state: str) -> None:
        self.watch_states[resource] = state
        self.metrics.watch_state(resource, state)
        await self.writer.set_watch_state(resource, state)


class Cacher:
    def __init__(
        self,
        settings: Settings,
        *,
        metrics: CacherMetrics | None = None,
        http: KubeHttp | None = None,
        redis: aioredis.Redis | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or CacherMetrics()
        self.http = http
        self.redis = redis
        self.keys = Keys(settings.key_prefix)
        self.role = "starting"
        self.sink: TermSink | None = None
        self.redis_ok = True
        self.lease_ok = True
        self.last_error = ""
        self.stopping = asyncio.Event()
        self.health: HealthServer | None = None
        self.elector: LeaderElector | None = None
        self.terms = 0
        self.syncs_of_term: tuple[ResourceSync, ResourceSync] | None = None
        self.primary: PrimaryWatch | None = None  # the Redis primary written to
        self.rewrite_next = False  # the next list rewrites every record

    # ------------------------------------------------------------------
    # Readiness

    def readiness(self) -> Readiness:
        details: dict[str, Any] = {"role": self.role, "identity": self.settings.identity}
        if self.primary is not None and self.primary.addr:
            details["redis_primary"] = self.primary.addr
            details["redis_failovers"] = self.primary.failovers
        if self.sink is not None:
            details["watches"] = dict(self.sink.watch_states)
        if self.role == "standby":
            if not self.lease_ok:
                return Readiness(
                    False, f"standby cannot reach the lease: {self.last_error}", details
                )
            return Readiness(True, "standby", details)
        if self.role != "leader" or self.sink is None:
            return Readiness(False, self.role, details)
        if not self.redis_ok:
            return Readiness(False, f"Redis unavailable: {self.last_error}", details)
        for resource, state in self.sink.watch_states.items():
            if state.startswith("failed"):
                return Readiness(False, f"{resource} watch {state}", details)
        if not self.sink.pods_synced.is_set():
            return Readiness(False, "leader, initial sync running", details)
        return Readiness(True, "leader, synced and writing", details)

    # ------------------------------------------------------------------
    # Setup

    async def open(self) -> None:
        if self.http is None:
            self.http = await connect_kube(self.settings)
        if self.redis is None:
            self.redis = connect(self.settings.redis)
        self.primary = PrimaryWatch(self.redis, self.settings.redis, self.metrics)
        self.elector = LeaderElector(
            self.http,
            name=self.settings.lease_name,
            namespace=self.settings.lease_namespace,
            identity=self.settings.identity,
            lease_duration=self.settings.lease_duration,
            renew_deadline=self.settings.renew_deadline,
            retry_period=self.settings.retry_period,
            metrics=self.metrics,
        )

    async def close(self) -> None:
        if self.primary is not None:
            await self.primary.close()
        if self.http is not None:
            await self.http.close()
        if self.redis is not None:
            await self.redis.aclose()

    def writer(self) -> CacheWriter:
        assert self.redis is not None
        return CacheWriter(
            self.redis,
            self.keys,
            identity=self.settings.identity,
            event_log_cap=self.settings.event_log_cap,
            feed_maxlen=self.settings.feed_maxlen,
            namespaces=",".join(self.settings.namespaces),
            pod_selector=self.settings.pod_selector,
            metrics=self.metrics,
            progress_stale_ms=int(self.settings.progress_stale_after * 1000),
        )

    def syncs(self, sink: TermSink) -> tuple[ResourceSync, ResourceSync]:
        assert self.http is not None
        common: dict[str, Any] = {
            "metrics": self.metrics,
            "watch_timeout": self.settings.watch_timeout_seconds,
            "stall_timeout": self.settings.stall_seconds,
        }
        pods = ResourceSync(
            self.http,
            targets_for(
                "pods", self.settings.namespaces, label_selector=self.settings.pod_selector
            ),
            sink,
            **common,
        )
        events = ResourceSync(
            self.http, targets_for("events", self.settings.namespaces), sink, **common
        )
        return pods, events

    # ------------------------------------------------------------------
    # A term as leader

    async def _with_redis(self, what: str, call: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``call`` until Redis answers (back-off with jitter)."""
        backoff = Backoff(initial=0.2, maximum=10)
        while True:
            try:
                result = await call()
                self.redis_ok = True
                return result
            except (RedisError, OSError) as e:
                self.redis_ok = False
                self.last_error = f"{type(e).__name__}: {e}"
                self.metrics.redis_error(what)
                delay = backoff.next_delay()
                log.warning(
                    "Redis %s failed at %s (%s); retrying in %.1f s",
                    redacted(self.settings.redis.url),
                    what,
                    self.last_error,
                    delay,
                )
                await asyncio.sleep(delay)

    async def _heartbeat_loop(
        self, writer: CacheWriter, pods: ResourceSync, events: ResourceSync
    ) -> None:
        assert self.primary is not None
        while True:
            await asyncio.sleep(self.settings.heartbeat_interval)
            pods_age, events_age = pods.progress_age(), events.progress_age()
            result = await writer.heartbeat(
                lag_ms=self.metrics.recent_lag_p99_ms(),
                pods_progress_age=pods_age,
                events_progress_age=events_age,
            )
            self.metrics.records.set(result.records)
            self.metrics.heartbeat_written()
            self.metrics.progress_age("pods", pods_age)
            self.metrics.progress_age("events", events_age)
            self.redis_ok = True
            await self.primary.check_sentinel(writer)

    async def lead(self, *, once: bool = False) -> None:
        """Write the cache as the leader until cancelled or fenced.

        Raises :class:`Fenced` when another writer owns the cache.
        """
        while True:
            writer = self.writer()
            writer.rewrite_next_list = self.rewrite_next
            sink = TermSink(writer, self.metrics, per_namespace=len(self.settings.namespaces) > 1)
            self.sink = sink
            self.terms += 1
            assert self.primary is not None
            primary = self.primary
            take_over = functools.partial(primary.take_over, writer)
            epoch = await self._with_redis("take_over", take_over)
            log.info(
                "leading as %s with epoch %s on Redis primary %s",
                self.settings.identity,
                epoch,
                primary.addr,
            )
            pods, events = self.syncs(sink)
            self.syncs_of_term = (pods, events)
            try:
                if once:
                    await pods.relist("once")
                    await events.relist("once")
                    return
                await run_together(
                    {
                        "pods": pods.run(),
                        "events": self._events_after_pods(sink, events),
                        "heartbeat": self._heartbeat_loop(writer, pods, events),
                    }
                )
            except FailedOver as e:
                primary.noticed(writer, e, writer.taken_epoch)
                await primary.after_failover()
            except CacheDiverged as e:
                writer.rewrite_next_list = True
                self.metrics.heals.labels(e.check).inc()
                self.metrics.relists.labels("pods", "cache-diverged").inc()
                log.warning(
                    "the records in Redis are not what this cacher wrote (%s): new epoch, "
                    "every record is rewritten from a full list",
                    e,
                )
            except CacheLost as e:
                log.warning("Redis lost the cache (%s): full resync", e)
                self.metrics.relists.labels("pods", "cache-lost").inc()
            except ReadOnlyError as e:
                # The node we write to became a replica (with a plain URL the next
                # take-over waits until the address is a primary again).
                primary.noticed(writer, f"READONLY from {primary.addr}: {e}", writer.taken_epoch)
                await primary.after_failover()
            except RedisError as e:
                self.redis_ok = False
                self.last_error = f"{type(e).__name__}: {e}"
                self.metrics.redis_error("write")
                log.warning(
                    "Redis failed while writing (%s): resync once it answers", self.last_error
                )
                await self._with_redis("ping", self.redis.ping)  # type: ignore[union-attr]
            self.rewrite_next = writer.rewrite_next_list
            self.metrics.synced.set(0)

    async def _events_after_pods(self, sink: TermSink, events: ResourceSync) -> None:
        # Events of a pod reach Redis only once its record exists.
        await sink.pods_synced.wait()
        await events.run()

    # ------------------------------------------------------------------
    # The process

    async def campaign_and_lead(self) -> None:
        """Standby until elected, lead until the lease is lost, repeat."""
        assert self.elector is not None
        crash_backoff = Backoff(initial=1.0, maximum=60.0)
        while not self.stopping.is_set():
            self.role = "standby"
            await self._acquire()
            self.role = "leader"
            lead = asyncio.create_task(self.lead(), name="lead")
            hold = asyncio.create_task(self.elector.hold(), name="hold")
            try:
                await asyncio.wait([lead, hold], return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not lead.done():
                    await cancel_and_wait(lead)  # stop writing at once
                await cancel_and_wait(hold)
            self.sink = None
            self.metrics.synced.set(0)
            error = lead.exception() if lead.done() and not lead.cancelled() else None
            if isinstance(error, UnsupportedRedis):
                raise error
            if isinstance(error, Fenced):
                log.warning("fenced (%s): stepping down", error)
                await self.elector.release()
            elif error is not None:
                # A bug or an unforeseen failure: hand over rather than crash-loop.
                log.error("leading failed; releasing the lease", exc_info=error)
                self.last_error = f"{type(error).__name__}: {error}"
                await self.elector.release()
                await asyncio.sleep(crash_backoff.next_delay())
            elif hold.done():
                log.warning("lost leadership (%s): stopped writing", hold.result())

    async def _acquire(self) -> None:
        assert self.elector is not None
        while True:
            try:
                if await self.elector.try_acquire_or_renew():
                    self.lease_ok = True
                    return
                self.lease_ok = True
            except Exception as e:  # the API is down: stay a (not ready) standby
                self.lease_ok = False
                self.last_error = str(e)
                log.warning("cannot campaign for the lease: %s", e)
            await asyncio.sleep(self.settings.retry_period)

    async def run(self) -> int:
        """The whole process until :meth:`stop`; returns the exit status."""
        await self.open()
        self.health = HealthServer(
            metrics=self.metrics,
            readiness=self.readiness,
            host=self.settings.health_host,
            port=self.settings.health_port,
        )
        await self.health.start()
        log.info(
            "cacher %s started; health on %s:%s",
            self.settings.identity,
            self.settings.health_host,
            self.health.port,
        )
        main = asyncio.create_task(self.campaign_and_lead(), name="campaign")
        stop = asyncio.create_task(self.stopping.wait(), name="stop")
        try:
            await asyncio.wait([main, stop], return_when=asyncio.FIRST_COMPLETED)
        finally:
            await cancel_and_wait(main)
            await cancel_and_wait(stop)
            self.role = "stopping"
            if self.elector is not None:
                await self.elector.release()
            await self.health.close()
            await self.close()
        if main.done() and not main.cancelled() and main.exception() is not None:
            error = main.exception()
            if isinstance(error, UnsupportedRedis):
                log.error("cannot use this Redis: %s", error)
                return 2
            raise error  # type: ignore[misc]
        log.info("cacher %s stopped", self.settings.identity)
        return 0

    async def run_once(self) -> int:
        """``--once``: take the lease, sync pods and events, release, exit."""
        await self.open()
        assert self.elector is not None
        try:
            try:
                async with asyncio.timeout(
                    self.settings.lease_duration + 2 * self.settings.retry_period
                ):
                    await self._acquire()
            except TimeoutError:
                log.error(
                    "another cacher holds lease %s/%s; --once is for when none runs",
                    self.settings.lease_namespace,
                    self.settings.lease_name,
                )
                return 2
            self.role = "leader"
            try:
                await self.lead(once=True)
            except UnsupportedRedis as e:
                log.error("cannot use this Redis: %s", e)
                return 2
            log.info("--once: pods and events are in Redis")
            return 0
        finally:
            await self.elector.release()
            await self.close()

    def stop(self) -> None:
        self.stopping.set()


@contextlib.asynccontextmanager
async def running_cacher(settings: Settings, **kwargs: Any) -> AsyncIterator[Cacher]:
    """A cacher running as a task (tests, benchmarks); stopped gracefully on exit."""
    cacher = Cacher(settings, **kwargs)
    task = asyncio.create_task(cacher.run())
    try:
        yield cacher
    finally:
        cacher.stop()
        await asyncio.wait([task])
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


__all__ = ["Cacher", "TermSink", "UnsupportedRedis", "running_cacher"]
