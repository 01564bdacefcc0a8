"""Which deployment owns a key prefix, and what happens when two share one.

Two kubecache deployments (other namespaces, another Lease) pointed at one
Redis with the same prefix would fence each other forever, each take-over a
full relist. The owner of the cache is therefore named in ``P health``
(``lease``: the Lease namespace/name of the deployment whose leader writes;
``namespaces`` and ``pod_selector`` are already there), and the rule is:

- before taking the cache over, a leader reads the health record: when a
  *fresh* heartbeat (younger than ``stale_after``) was written by a leader of
  another Lease, it refuses, logs an error naming both deployments' settings,
  leaves its own description in ``contender`` and checks again with back-off.
  It takes over only once the other stops writing (deployment removed);
- a leader that is fenced checks the same, so of two that started at the same
  time, the one whose take-over came last keeps the cache and the other
  refuses (no fight);
- the owner reads ``contender`` and logs the same error on its side (once a
  minute), so both deployments' logs name the collision and the fix;
- a leader stopping gracefully clears ``lease`` (the prefix is free at once);
  otherwise "fresh" allows for the longest restart back-off, during which a
  leader writes no heartbeat.

The checks are reads and one HSET of a field, and only when ``P health``
exists (nothing here creates it: a missing health record means an empty cache).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis

from kubecache.contract import CacheHealth, Keys, redis_time_ms
from kubecache.terminal import decoded

log = logging.getLogger(__name__)

#: KEYS: health. ARGV: epoch, lease. Names the owner if the epoch still owns the cache.
_CLAIM = """
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'lease', ARGV[2])
return 1
"""

#: KEYS: health. ARGV: epoch. A graceful stop: no owner (the prefix is free at once).
_RELEASE = """
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'lease', '')
return 1
"""

#: KEYS: health. ARGV: contender description. Only into an existing health record.
_CONTEND = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'contender', ARGV[1])
return 1
"""


@dataclass(frozen=True)
class Owner:
    """One deployment's settings that decide what it writes under the prefix."""

    identity: str
    lease: str  # namespace/name
    namespaces: str  # comma-separated, '' for all
    pod_selector: str

    def describe(self) -> str:
        return (
            f"cacher {self.identity!r} (Lease {self.lease or '?'}, namespaces "
            f"{self.namespaces or 'all'}, pod selector {self.pod_selector or 'none'!r})"
        )

    def encode(self, at_ms: int) -> str:
        return orjson.dumps(
            {
                "identity": self.identity,
                "lease": self.lease,
                "namespaces": self.namespaces,
                "pod_selector": self.pod_selector,
                "at_ms": at_ms,
            }
        ).decode()


def collision(prefix: str, me: Owner, other: Owner, *, refusing: bool) -> str:
    """The error both sides log: the colliding settings and the fix."""
    differ = [
        f"{name} {mine or empty} here, {theirs or empty} there"
        for name, mine, theirs, empty in (
            ("Lease", me.lease, other.lease, "?"),
            ("namespaces", me.namespaces, other.namespaces, "all"),
            ("pod selector", me.pod_selector, other.pod_selector, "none"),
        )
        if mine != theirs
    ]
    side = (
        "this cacher does not take the cache over while the other writes it"
        if refusing
        else "this cacher keeps writing; the other one waits"
    )
    return (
        f"two kubecache deployments use key prefix {prefix!r} in one Redis: this "
        f"{me.describe()} and {other.describe()} (differing: {'; '.join(differ) or 'nothing'}); "
        f"{side}. Give each deployment its own key prefix (--key-prefix, "
        "KUBECACHE_KEY_PREFIX; the chart's keyPrefix), in the cachers and in the hubs"
    )


class PrefixOwnership:
    def __init__(self, redis: aioredis.Redis, keys: Keys, me: Owner, *, stale_after: float):
        self.redis = redis
        self.keys = keys
        self.me = me
        self.stale_after_ms = int(stale_after * 1000)
        self._claim = redis.register_script(_CLAIM)
        self._contend = redis.register_script(_CONTEND)
        self._release = redis.register_script(_RELEASE)

    async def owner_elsewhere(self) -> Owner | None:
        """The other deployment writing this prefix now, or None (free, ours, stale)."""
        fields = await self.redis.hgetall(self.keys.health)
        if not fields:
            return None
        text = {decoded(k): decoded(v) for k, v in fields.items()}
        lease = text.get("lease", "")
        if not lease or lease == self.me.lease:
            return None  # ours, or written before owners were named
        try:
            health = CacheHealth.from_redis(fields)
        except Exception:  # a malformed record is the writer's problem, not a collision
            return None
        if health is None:
            return None
        now_ms = redis_time_ms(await self.redis.time())
        if health.heartbeat_age_ms(now_ms) > self.stale_after_ms:
            return None  # the other deployment stopped writing: take over
        return Owner(health.leader, lease, health.namespaces, health.pod_selector)

    async def claim(self, epoch: int) -> None:
        """Name this deployment's Lease in the health record of ``epoch``."""
        await self._claim(keys=[self.keys.health], args=[str(epoch), self.me.lease])

    async def release(self, epoch: int) -> None:
        """A graceful stop: name no owner, so another deployment need not wait."""
        await self._release(keys=[self.keys.health], args=[str(epoch)])

    async def contend(self) -> None:
        """Leave this deployment's description for the owner to log."""
        now_ms = redis_time_ms(await self.redis.time())
        await self._contend(keys=[self.keys.health], args=[self.me.encode(now_ms)])

    async def contender(self) -> Owner | None:
        """A deployment of another Lease that wanted the prefix recently, or None."""
        raw = await self.redis.hget(self.keys.health, "contender")
        if not raw:
            return None
        try:
            value = orjson.loads(raw)
            other = Owner(
                str(value["identity"]),
                str(value["lease"]),
                str(value["namespaces"]),
                str(value["pod_selector"]),
            )
            at_ms = int(value["at_ms"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None
        if other.lease == self.me.lease:
            return None
        now_ms = redis_time_ms(await self.redis.time())
        if now_ms - at_ms > self.stale_after_ms:
            return None
        return other


__all__ = ["Owner", "PrefixOwnership", "collision"]
