"""The leader's watch on Redis evictions.

At each take-over the leader reads ``maxmemory-policy``
(:mod:`kubecache.redis_memory`) and logs what it means (an error for an
``allkeys-*`` policy, a warning when it cannot be read); every few heartbeats
it reads ``evicted_keys``. When that counter grew (whatever the policy says
now: it may have been changed at runtime), the leader checks that the event
logs it wrote still exist (records and the health record are checked every
heartbeat by the writer);
when some are gone, the term ends with :class:`EvictionsSeen`: the next term
lists pods and events again, which rewrites evicted records and restores
evicted event logs from the API (as far as the API still holds the Events),
paced by :class:`kubecache.cacher.term_pacing.TermPacer` so sustained pressure is not a
relist storm. A vanished health record or pod record is also caught by the
writer (CacheLost, CacheDiverged); :meth:`EvictionWatch.explain` adds the
evictions to that message.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import redis.asyncio as aioredis

from kubecache.cacher.metrics import CacherMetrics
from kubecache.cacher.write_errors import WriterStopped
from kubecache.contract import Keys
from kubecache.redis_memory import (
    EVICTING_POLICIES_HINT,
    MemoryPolicy,
    evicted_keys,
    memory_policy,
)

log = logging.getLogger(__name__)


class EvictionsSeen(WriterStopped):
    """Redis evicted keys and kubecache's may be among them: rewrite from a full list."""


class EvictionWatch:
    def __init__(self, redis: aioredis.Redis, metrics: CacherMetrics, *, where: str) -> None:
        self.redis = redis
        self.metrics = metrics
        self.where = where  # the redacted Redis URL, for logs
        self.policy = MemoryPolicy("", "", unreadable="not read yet")
        self.evicted: int | None = None  # evicted_keys at the last look
        self._logged_policy = ""

    async def check_policy(self) -> MemoryPolicy:
        """Read the policy, log it when it changed, export it."""
        self.policy = await memory_policy(self.redis)
        self.metrics.set_maxmemory_policy(
            self.policy.policy or "unknown", bool(self.policy.problem)
        )
        said = self.policy.policy or self.policy.unreadable
        if said != self._logged_policy:
            self._logged_policy = said
            if self.policy.problem:
                log.error(
                    "Redis %s: %s; %s", self.where, self.policy.problem, EVICTING_POLICIES_HINT
                )
            elif not self.policy.policy:
                log.warning(
                    "cannot read maxmemory-policy of Redis %s (%s): make sure it is noeviction "
                    "(or volatile-*); evictions are still watched through INFO stats",
                    self.where,
                    self.policy.unreadable,
                )
            else:
                log.info("Redis %s: maxmemory-policy %s", self.where, self.policy.policy)
        if self.evicted is None:
            self.evicted = await evicted_keys(self.redis)
            if self.evicted is not None:
                self.metrics.evicted_keys.set(self.evicted)
        return self.policy

    async def newly_evicted(self) -> int:
        """Keys Redis evicted since the last look (0 when unknown)."""
        now = await evicted_keys(self.redis)
        if now is None:
            return 0
        self.metrics.evicted_keys.set(now)
        before, self.evicted = self.evicted, now
        if before is None or now < before:  # first look, or Redis restarted
            return 0
        return now - before

    async def check(self, keys: Keys, logged_pods: Sequence[str]) -> None:
        """Raise :class:`EvictionsSeen` when Redis evicted event logs of ``logged_pods``."""
        evicted = await self.newly_evicted()
        if not evicted:
            return
        await self.check_policy()  # it may have changed since the take-over (CONFIG SET)
        # whatever the policy says now, the keys are gone: check the logs this leader wrote
        lost = await self._missing_logs(keys, logged_pods)
        if not lost:
            log.log(
                logging.WARNING if self.policy.may_evict else logging.INFO,
                "Redis %s evicted %d keys (maxmemory-policy %s now), none of the %d event "
                "logs this cacher wrote%s",
                self.where,
                evicted,
                self.policy.policy or "unknown",
                len(logged_pods),
                f"; {EVICTING_POLICIES_HINT}" if self.policy.may_evict else "",
            )
            return
        self.metrics.relists.labels("pods", "evictions").inc()
        self.metrics.events_dropped("evicted", len(lost))
        raise EvictionsSeen(
            f"Redis {self.where} evicted {evicted} keys (maxmemory-policy "
            f"{self.policy.policy or 'unknown'}), the event logs of {len(lost)} pods among "
            f"them (e.g. {lost[0]}); {EVICTING_POLICIES_HINT}"
        )

    async def _missing_logs(self, keys: Keys, pods: Sequence[str]) -> list[str]:
        missing: list[str] = []
        for start in range(0, len(pods), 1000):
            chunk = pods[start : start + 1000]
            pipe = self.redis.pipeline(transaction=False)
            for pod in chunk:
                pipe.exists(keys.events(pod))
            for pod, exists in zip(chunk, await pipe.execute(), strict=True):
                if not exists:
                    missing.append(pod)
        return missing

    async def explain(self) -> str:
        """' (Redis evicted N keys …)' when evictions may explain a lost cache, else ''."""
        try:
            evicted = await self.newly_evicted()
        except Exception:  # only a better message is at stake
            return ""
        if not evicted:
            return ""
        await self.check_policy()
        return (
            f" (Redis evicted {evicted} keys meanwhile, maxmemory-policy "
            f"{self.policy.policy or 'unknown'}: {EVICTING_POLICIES_HINT})"
        )


__all__ = ["EvictionWatch", "EvictionsSeen"]
