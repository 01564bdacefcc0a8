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
from cacher.settings import Settings
from cacher.watcher import (
    Listing,
    Resource,
    ResourceSync,
    cancel_and_wait,
    run_together,
    targets_for,
)
from cacher.writer import CacheDiverged, CacheLost, CacheWriter, FailedOver, Fenced
from kubecache.backoff import Backoff
from kubecache.contract import Keys
from kubecache.redis_connection import (
    connect,
    connect_node,
    follows_sentinel,
    primary_address,
    redacted,
    topology_problem,
)

log = logging.getLogger(__name__)


class UnsupportedRedis(Exception):
    """The Redis server cannot hold a kubecache cache (e.g. a Cluster node): exit."""


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
        # The Redis primary written to, and the failovers noticed so far.
        self.primary_addr = ""
        self.primary_replid = ""
        self.last_epoch: int | None = None
        self.failovers = 0
        self.last_failover_ms = 0  # Redis time, ms
        self.stamp_failover = False
        self.rewrite_next = False  # the next list rewrites every record
        self.background: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------
    # Readiness

    def readiness(self) -> Readiness:
        details: dict[str, Any] = {"role": self.role, "identity": self.settings.identity}
        if self.primary_addr:
            details["redis_primary"] = self.primary_addr
            details["redis_failovers"] = self.failovers
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
        for task in list(self.background):
            await cancel_and_wait(task)
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
        sentinel = follows_sentinel(self.redis)  # type: ignore[arg-type]
        while True:
            await asyncio.sleep(self.settings.heartbeat_interval)
            result = await writer.heartbeat(
                lag_ms=self.metrics.recent_lag_p99_ms(),
                pods_progress_age=pods.progress_age(),
                events_progress_age=events.progress_age(),
            )
            self.metrics.records.set(result.records)
            self.redis_ok = True
            if sentinel:
                await self._check_sentinel(writer)

    async def _check_sentinel(self, writer: CacheWriter) -> None:
        """A failover when Sentinel names another primary than the epoch's.

        The old primary accepts writes until Sentinel demotes it (seconds after
        the switch), and they are lost when it resyncs: only Sentinel's view
        tells them apart.
        """
        try:
            named = await primary_address(self.redis)  # type: ignore[arg-type]
        except (RedisError, OSError) as e:
            log.warning("cannot ask Sentinel for the primary (%s); writing on", e)
            return
        if named != self.primary_addr:
            writer.epoch = None  # no further write of this epoch
            raise FailedOver(
                f"Sentinel names {named} as primary, the epoch writes to {self.primary_addr}"
            )

    def _retire_later(self, writer: CacheWriter, address: str, epoch: int | None) -> None:
        """Retire ``epoch`` on the replaced primary without delaying the take-over."""
        if not address or epoch is None:
            return
        task = asyncio.create_task(self._retire(writer, address, epoch), name="retire")
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def _retire(self, writer: CacheWriter, address: str, epoch: int) -> None:
        """Best effort, bounded: the replaced primary's readers stop trusting it."""
        node = connect_node(self.settings.redis, address)
        try:
            async with asyncio.timeout(2 * self.settings.redis.socket_timeout):
                if await writer.retire(node, epoch):
                    log.info("epoch %s retired on the replaced primary %s", epoch, address)
        except (RedisError, OSError, TimeoutError) as e:
            log.info("could not retire epoch %s on %s (%s): down or demoted", epoch, address, e)
        finally:
            await node.aclose()

    async def _check_topology(self) -> None:
        problem = await topology_problem(self.redis)  # type: ignore[arg-type]
        if problem:
            raise UnsupportedRedis(f"{redacted(self.settings.redis.url)}: {problem}")

    async def _take_over(self, writer: CacheWriter) -> int:
        await self._check_topology()
        addr = await primary_address(self.redis)  # type: ignore[arg-type]
        if self.primary_addr and addr != self.primary_addr and not self.stamp_failover:
            # e.g. the old primary died and Sentinel named another: a failover too
            self._count_failover(writer, f"the primary moved from {self.primary_addr} to {addr}")
            self._retire_later(writer, self.primary_addr, self.last_epoch)
        self.primary_addr = addr
        epoch = await writer.take_over(
            primary_addr=self.primary_addr,
            failovers=self.failovers,
            last_failover_ms=None if self.stamp_failover else self.last_failover_ms,
        )
        if self.stamp_failover:
            self.last_failover_ms = writer.taken_over_ms
            self.stamp_failover = False
        if self.primary_replid and writer.primary_replid != self.primary_replid:
            # Another node, or a restarted one: its records may be older than ours.
            writer.rewrite_next_list = True
        self.primary_replid = writer.primary_replid
        self.last_epoch = epoch
        self.metrics.set_primary(self.primary_addr, writer.primary_replid)
        return epoch

    def _count_failover(self, writer: CacheWriter, why: object) -> None:
        self.failovers += 1
        self.stamp_failover = True  # with the next take-over's Redis time
        writer.rewrite_next_list = True
        self.metrics.failovers.inc()
        self.metrics.relists.labels("pods", "failover").inc()
        log.warning(
            "Redis failover noticed (%s): new epoch on the current primary (was %s), every "
            "record is rewritten from a full list",
            why,
            self.primary_addr or "?",
        )

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
            epoch = await self._with_redis("take_over", functools.partial(self._take_over, writer))
            log.info(
                "leading as %s with epoch %s on Redis primary %s",
                self.settings.identity,
                epoch,
                self.primary_addr,
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
                self._retire_later(writer, self.primary_addr, writer.taken_epoch)
                self._count_failover(writer, e)
                # Connections to the old node reconnect to the current primary.
                await self.redis.connection_pool.disconnect()  # type: ignore[union-attr]
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
                # The node we write to became a replica: a failover (with a plain
                # URL the next take-over waits until the address is a primary again).
                self._retire_later(writer, self.primary_addr, writer.taken_epoch)
                self._count_failover(writer, f"READONLY from {self.primary_addr}: {e}")
                await self.redis.connection_pool.disconnect()  # type: ignore[union-attr]
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
