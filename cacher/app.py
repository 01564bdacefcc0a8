"""Orchestration: elect → take over → list/watch pods and events → Redis.

One :class:`Cacher` per process. As a standby it only campaigns for the
Lease. As the leader it runs one *term*: a :class:`~kubecache.cacher.writer.CacheWriter`
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

The leader's handling of Redis faults is :mod:`kubecache.cacher.term_faults`; one
term's list/watch output reaches its writer through :mod:`kubecache.cacher.term_sink`.
Faults that end a term are paced (:class:`~kubecache.cacher.term_pacing.TermPacer`): a
few restarts are immediate, then they back off, each with a log line saying
what was seen. A leader whose Redis writes fail for the write deadline (the
renew deadline: the same bound as for the Lease) gives the Lease up
(:class:`~kubecache.cacher.term_pacing.WriteDeadline`) and campaigns again only once
Redis answers; a standby campaigns only while Redis answers, so the Lease
goes to a replica that can write. Two deployments on one prefix are named
and settle (:mod:`kubecache.cacher.prefix_owner`); Redis evictions are named and
repaired (:mod:`kubecache.cacher.evictions`); a key of a foreign type is named
(:mod:`kubecache.foreign_keys`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ReadOnlyError, RedisError, ResponseError

from kubecache.backoff import Backoff
from kubecache.cacher.evictions import EvictionsSeen, EvictionWatch
from kubecache.cacher.health_server import HealthServer, Readiness
from kubecache.cacher.kube_api import KubeHttp, connect_kube
from kubecache.cacher.leader import LeaderElector
from kubecache.cacher.metrics import CacherMetrics
from kubecache.cacher.prefix_owner import Owner, PrefixOwnership
from kubecache.cacher.primary import PrimaryWatch, UnsupportedRedis
from kubecache.cacher.settings import Settings
from kubecache.cacher.term_faults import LeaderFaults
from kubecache.cacher.term_pacing import TermPacer, WriteDeadline
from kubecache.cacher.term_sink import TermSink
from kubecache.cacher.watcher import (
    ResourceSync,
    cancel_and_wait,
    run_together,
    targets_for,
)
from kubecache.cacher.write_errors import CacheDiverged, CacheLost, FailedOver, Fenced
from kubecache.cacher.writer import CacheWriter
from kubecache.contract import Keys
from kubecache.foreign_keys import is_wrongtype
from kubecache.redis_connection import connect, redacted, topology_problem

log = logging.getLogger(__name__)

#: Seconds past its lease's expiry that a leader which did not step down stays "alive"
#: (client-go's ``maxTolerableExpiredLease``; kube-controller-manager uses 20 s).
LEASE_EXPIRY_TOLERANCE = 20.0


class Cacher(LeaderFaults):
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
        self.pacer = TermPacer()
        self.write_deadline = WriteDeadline(give_way_after=self.give_way_after)
        self.ownership: PrefixOwnership | None = None
        self.evictions: EvictionWatch | None = None
        self.conflict = ""  # why this leader refuses to write (another deployment's prefix)
        self.epoch: int | None = None  # the last epoch this replica took over
        self.redis_answers = True  # the last PING of a standby
        self.progress_at = time.monotonic()  # the control loop's last sign of life

    @property
    def wedged_after(self) -> float:
        """Seconds without any progress of the control loop after which /healthz fails."""
        return max(60.0, 4 * self.settings.lease_duration, 3 * self.settings.redis.socket_timeout)

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
            if not self.redis_answers:
                return Readiness(False, f"standby cannot reach Redis: {self.last_error}", details)
            return Readiness(True, "standby", details)
        if self.role == "gave way":
            return Readiness(False, f"gave the lease up: {self.last_error}", details)
        if self.role != "leader" or self.sink is None:
            return Readiness(False, self.role, details)
        if self.conflict:
            return Readiness(False, self.conflict, details)
        if not self.redis_ok:
            return Readiness(False, f"Redis unavailable: {self.last_error}", details)
        for resource, state in self.sink.watch_states.items():
            if state.startswith("failed"):
                return Readiness(False, f"{resource} watch {state}", details)
        if not self.sink.pods_synced.is_set():
            return Readiness(False, "leader, initial sync running", details)
        return Readiness(True, "leader, synced and writing", details)

    def liveness(self) -> Readiness:
        """Whether the process still does its job (/healthz; a failure restarts the pod).

        Fails only when the process is wedged: the control loop (campaigning,
        renewing, heartbeats, waiting for Redis) made no progress for
        :attr:`wedged_after`, or a leader has not written to Redis far past the
        write deadline and still holds the Lease (it should have given way). A
        Redis or API outage alone never fails it: restarting every replica
        would not bring Redis back, and a standby that cannot reach Redis does
        not campaign.
        """
        now = time.monotonic()
        last = max(self.progress_at, self.elector.last_attempt if self.elector else 0.0)
        if now - last > self.wedged_after:
            return Readiness(False, f"no progress of the control loop for {now - last:.0f} s")
        elector = self.elector
        if elector is not None and elector.is_leader:
            # client-go's LeaderElector.Check: a leader whose lease expired long ago
            # should have stopped (a deadlock, kubernetes#70819)
            expired = now - elector.last_renew - self.settings.lease_duration
            if expired > LEASE_EXPIRY_TOLERANCE:
                return Readiness(
                    False, f"leader's lease expired {expired:.0f} s ago and it did not step down"
                )
        holding = self.elector is not None and self.elector.is_leader and self.role == "leader"
        limit = (
            self.give_way_after
            + self.settings.lease_duration
            + 2 * self.settings.redis.socket_timeout
        )
        if holding and not self.conflict and self.write_deadline.silent_for() > limit:
            return Readiness(
                False,
                f"leader holds the lease but {self.write_deadline.why()}; it should have given way",
            )
        return Readiness(True, "alive")

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
        owner = Owner(
            self.settings.identity,
            f"{self.settings.lease_namespace}/{self.settings.lease_name}",
            ",".join(self.settings.namespaces),
            self.settings.pod_selector,
        )
        self.ownership = PrefixOwnership(
            self.redis,
            self.keys,
            owner,
            # a leader waits up to the pacer's longest back-off without a heartbeat
            stale_after=max(2 * self.settings.lease_duration, 5 * self.settings.heartbeat_interval)
            + self.pacer.maximum,
        )
        self.evictions = EvictionWatch(
            self.redis, self.metrics, where=redacted(self.settings.redis.url)
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

    async def _with_redis(
        self, what: str, call: Callable[[], Awaitable[Any]], *, write: bool = True
    ) -> Any:
        """Run ``call`` until Redis answers (back-off with jitter).

        A successful ``write`` counts for the write deadline; while it fails,
        the deadline runs out and :meth:`campaign_and_lead` gives the Lease up
        (this loop is then cancelled): it does not retry forever as leader.
        """
        backoff = Backoff(initial=0.2, maximum=10)
        while True:
            try:
                result = await call()
                self.redis_ok = True
                if write:
                    self.write_deadline.ok()
                return result
            except (RedisError, OSError) as e:
                self.redis_ok = False
                self.last_error = f"{type(e).__name__}: {e}"
                self.write_deadline.failed(self.last_error)
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
        assert self.primary is not None and self.evictions is not None
        # read at each take-over, once the list is under way (it is not delayed)
        await self.evictions.check_policy()
        beats = 0
        every = max(1, round(2.0 / max(0.05, self.settings.heartbeat_interval)))  # ~2 s
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
            self.write_deadline.ok()
            self.progress_at = time.monotonic()
            await self.primary.check_sentinel(writer)
            beats += 1
            if beats % every == 0:
                await self._look_around(writer)

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
            assert self.primary is not None and self.evictions is not None
            assert self.ownership is not None
            primary = self.primary
            # a Redis kubecache cannot use is refused before any read of the prefix
            problem = await self._with_redis(
                "topology", functools.partial(topology_problem, primary.redis), write=False
            )
            if problem:
                raise UnsupportedRedis(f"{redacted(self.settings.redis.url)}: {problem}")
            await self._wait_for_the_prefix(once=once)
            take_over = functools.partial(primary.take_over, writer)
            epoch = await self._with_redis("take_over", take_over)
            self.epoch = epoch
            await self._with_redis("claim", functools.partial(self.ownership.claim, epoch))
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
                await self._pace(f"Redis failed over ({e})")
            except Fenced as e:
                if not await self._fenced_by_another_deployment():
                    raise
                await self._pace(f"fenced by another deployment ({e})")
            except EvictionsSeen as e:
                writer.rewrite_next_list = True
                log.warning("%s: new epoch, records and event logs rewritten from a full list", e)
                await self._pace("Redis evicted keys")
            except CacheDiverged as e:
                writer.rewrite_next_list = True
                self.metrics.heals.labels(e.check).inc()
                self.metrics.relists.labels("pods", "cache-diverged").inc()
                log.warning(
                    "the records in Redis are not what this cacher wrote (%s): new epoch, "
                    "every record is rewritten from a full list%s",
                    e,
                    await self.evictions.explain(),
                )
                await self._pace(f"the records in Redis diverged ({e.check})")
            except CacheLost as e:
                log.warning(
                    "Redis lost the cache (%s): full resync%s", e, await self.evictions.explain()
                )
                self.metrics.relists.labels("pods", "cache-lost").inc()
                await self._pace(f"the cache health record vanished ({e})")
            except ReadOnlyError as e:
                # The node we write to became a replica (with a plain URL the next
                # take-over waits until the address is a primary again).
                primary.noticed(writer, f"READONLY from {primary.addr}: {e}", writer.taken_epoch)
                await primary.after_failover()
            except ResponseError as e:
                self.redis_ok = False
                if is_wrongtype(e):
                    await self._name_foreign_keys(e)
                else:
                    self.last_error = f"{type(e).__name__}: {e}"
                    self.metrics.redis_error("write")
                    log.warning("Redis refused a write (%s): resync", self.last_error)
                self.write_deadline.failed(self.last_error)
                await self._pace(f"Redis refused a write ({e})")
            except RedisError as e:
                self.redis_ok = False
                self.last_error = f"{type(e).__name__}: {e}"
                self.metrics.redis_error("write")
                log.warning(
                    "Redis failed while writing (%s): resync once it answers", self.last_error
                )
                await self._with_redis("ping", self.redis.ping, write=False)  # type: ignore[union-attr]
                await self._pace(f"Redis failed while writing ({self.last_error})")
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
            self.write_deadline.restart()
            lead = asyncio.create_task(self.lead(), name="lead")
            hold = asyncio.create_task(self.elector.hold(), name="hold")
            deadline = asyncio.create_task(self._write_deadline_passed(), name="write-deadline")
            try:
                await asyncio.wait([lead, hold, deadline], return_when=asyncio.FIRST_COMPLETED)
            finally:
                await cancel_and_wait(lead, hold, deadline)  # stop writing at once
            self.sink = None
            self.metrics.synced.set(0)
            if deadline.done() and not deadline.cancelled():
                await self._give_way(deadline.result())
                continue
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
            self.progress_at = time.monotonic()
            if not await self._redis_answers():
                await asyncio.sleep(self.settings.retry_period)
                continue
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
            liveness=self.liveness,
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
            await cancel_and_wait(main, stop)
            self.role = "stopping"
            if self.elector is not None:
                if self.elector.is_leader and self.epoch is not None and self.ownership:
                    await self._release_prefix(self.ownership, self.epoch)
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


__all__ = ["Cacher", "TermSink", "UnsupportedRedis"]
