"""How the leader meets Redis faults: give way, pace, name what it saw.

A mixin of :class:`kubecache.cacher.app.Cacher` (the state it uses is declared below and
set up by the Cacher): the leader's side of the faults in docs/redis-faults.md.

- Write deadline: no successful Redis write for :attr:`give_way_after` (the
  renew deadline) and the leader releases the Lease
  (:meth:`_write_deadline_passed`, :meth:`_give_way`); a standby campaigns only
  while Redis answers a PING (:meth:`_redis_answers`).
- Pacing: every fault that ends a term waits per
  :class:`~kubecache.cacher.term_pacing.TermPacer` and logs what was seen (:meth:`_pace`).
- Every few heartbeats (:meth:`_look_around`): evictions
  (:mod:`kubecache.cacher.evictions`) and another deployment wanting the prefix
  (:mod:`kubecache.cacher.prefix_owner`); before a take-over, :meth:`_wait_for_the_prefix`
  refuses a prefix another deployment writes.
- A WRONGTYPE reply names the foreign keys (:meth:`_name_foreign_keys`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from kubecache.backoff import Backoff
from kubecache.cacher.evictions import EvictionsSeen, EvictionWatch
from kubecache.cacher.leader import LeaderElector
from kubecache.cacher.metrics import CacherMetrics
from kubecache.cacher.prefix_owner import PrefixOwnership, collision
from kubecache.cacher.primary import UnsupportedRedis
from kubecache.cacher.settings import Settings
from kubecache.cacher.term_pacing import TermPacer, WriteDeadline
from kubecache.cacher.writer import CacheWriter
from kubecache.contract import Keys
from kubecache.foreign_keys import advice, foreign_keys
from kubecache.redis_connection import redacted

log = logging.getLogger(__name__)


class LeaderFaults:
    settings: Settings
    metrics: CacherMetrics
    keys: Keys
    redis: aioredis.Redis | None
    elector: LeaderElector | None
    role: str
    last_error: str
    pacer: TermPacer
    write_deadline: WriteDeadline
    ownership: PrefixOwnership | None
    evictions: EvictionWatch | None
    conflict: str
    redis_answers: bool
    progress_at: float
    _contender_logged: float = -1e9
    _looks: int = 0

    async def _with_redis(
        self, what: str, call: Callable[[], Awaitable[Any]], *, write: bool = True
    ) -> Any:
        raise NotImplementedError

    @property
    def give_way_after(self) -> float:
        """Seconds without a successful Redis write after which the leader gives way.

        The renew deadline (a leader that cannot renew its Lease for as long has
        lost it), at least two heartbeats; the standby takes over one retry
        period later, within the lease duration.
        """
        return max(self.settings.renew_deadline, 2 * self.settings.heartbeat_interval)

    async def _look_around(self, writer: CacheWriter) -> None:
        """Every few heartbeats: evictions, and another deployment wanting the prefix."""
        assert self.evictions is not None and self.ownership is not None
        self._looks += 1
        if self._looks % 3 == 0:  # INFO stats every ~6 s
            try:
                await self.evictions.check(self.keys, writer.logged_pods())
            except EvictionsSeen:
                writer.epoch = None  # no further write of this epoch
                raise
        other = await self.ownership.contender()
        if other is None:
            self.metrics.prefix_conflict.set(0)
            return
        self.metrics.prefix_conflict.set(1)
        now = time.monotonic()
        if now - self._contender_logged > 60:
            self._contender_logged = now
            log.error("%s", collision(self.keys.prefix, self.ownership.me, other, refusing=False))

    async def _wait_for_the_prefix(self, *, once: bool) -> None:
        """Refuse to take over while another deployment writes this prefix (back-off)."""
        assert self.ownership is not None
        ownership = self.ownership
        backoff = Backoff(initial=max(1.0, self.settings.heartbeat_interval), maximum=30.0)
        while True:
            other = await self._with_redis("prefix owner", ownership.owner_elsewhere, write=False)
            self.write_deadline.ok()  # refusing is this leader's job now
            self.progress_at = time.monotonic()
            if other is None:
                if self.conflict:
                    log.info("key prefix %r is free again: taking the cache over", self.keys.prefix)
                self.conflict = ""
                self.metrics.prefix_conflict.set(0)
                return
            self.conflict = collision(self.keys.prefix, ownership.me, other, refusing=True)
            self.metrics.prefix_conflict.set(1)
            if once:
                raise UnsupportedRedis(self.conflict)
            await self._with_redis("prefix contender", ownership.contend, write=False)
            delay = max(0.5, backoff.next_delay())
            log.error("%s; checking again in %.1f s", self.conflict, delay)
            self.write_deadline.pause(delay)
            await asyncio.sleep(delay)

    async def _fenced_by_another_deployment(self) -> bool:
        """After a fence: whether the new owner is another deployment (then refuse)."""
        assert self.ownership is not None
        try:
            other = await self.ownership.owner_elsewhere()
        except (RedisError, OSError):
            return False
        if other is None:
            return False
        self.metrics.prefix_conflict.set(1)
        log.error("%s", collision(self.keys.prefix, self.ownership.me, other, refusing=True))
        return True

    async def _name_foreign_keys(self, error: ResponseError) -> None:
        """A WRONGTYPE reply: name the keys of a foreign type and what to do."""
        try:
            found = await foreign_keys(self.redis, self.keys)  # type: ignore[arg-type]
        except (RedisError, OSError):
            found = []
        self.last_error = advice(found, self.keys)
        self.metrics.redis_error("wrongtype")
        log.error("Redis refused a write with WRONGTYPE (%s): %s", error, self.last_error)

    async def _pace(self, seen: str) -> None:
        """Wait before the next term after a fault (see TermPacer); say what was seen."""
        delay = self.pacer.next_delay()
        self.metrics.term_delay.set(delay)
        if delay:
            log.warning(
                "%s; next full resync in %.1f s (%d restarts after faults in the last %g s)",
                seen,
                delay,
                self.pacer.recent(),
                self.pacer.window,
            )
            self.write_deadline.pause(delay)
            await asyncio.sleep(delay)

    async def _release_prefix(self, ownership: PrefixOwnership, epoch: int) -> None:
        """On a graceful stop: the prefix is free for another deployment at once."""
        try:
            async with asyncio.timeout(self.settings.redis.socket_timeout):
                await ownership.release(epoch)
        except (RedisError, OSError, TimeoutError) as e:
            log.info("could not mark key prefix %r free (%s)", self.keys.prefix, e)

    async def _write_deadline_passed(self) -> str:
        """Return why once no Redis write succeeded for the write deadline."""
        check = min(1.0, self.give_way_after / 4)
        while True:
            if self.write_deadline.overdue():
                return self.write_deadline.why()
            # a clock to watch, not an event to wait for: a hung write sets nothing
            await asyncio.sleep(check)

    async def _give_way(self, why: str) -> None:
        """Release the Lease (a standby that reaches Redis takes over); wait for Redis."""
        assert self.elector is not None
        self.role = "gave way"
        self.last_error = why
        self.redis_answers = False  # until a PING says otherwise
        self.metrics.gave_way.inc()
        log.error(
            "giving up lease %s/%s: %s (write deadline %g s); a standby that reaches Redis "
            "takes over. Check the network between this pod and Redis %s",
            self.settings.lease_namespace,
            self.settings.lease_name,
            why,
            self.give_way_after,
            redacted(self.settings.redis.url),
        )
        await self.elector.release()
        await self._pace("gave the lease up")

    async def _redis_answers(self) -> bool:
        """One bounded PING: a standby campaigns only while Redis answers."""
        assert self.redis is not None
        try:
            async with asyncio.timeout(self.settings.redis.socket_timeout):
                await self.redis.ping()
        except (RedisError, OSError, TimeoutError) as e:
            if self.redis_answers:
                log.warning(
                    "Redis %s does not answer (%s): not campaigning for the lease until it does",
                    redacted(self.settings.redis.url),
                    f"{type(e).__name__}: {e}",
                )
            self.redis_answers = False
            self.last_error = f"{type(e).__name__}: {e}"
            return False
        if not self.redis_answers:
            log.info("Redis %s answers again", redacted(self.settings.redis.url))
        self.redis_answers = True
        return True


__all__ = ["LeaderFaults"]
