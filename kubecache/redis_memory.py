"""Whether Redis may evict kubecache's keys, and whether it has been evicting.

kubecache's keys must not be evicted: a lost health record forces a full
resync, a lost pod hash or event log loses state until the next list. The
chart's Redis runs with ``maxmemory-policy noeviction``; an external Redis
may not. :func:`memory_policy` reads the policy (``INFO memory``, which
kubecache's ACL users may run; ``CONFIG GET`` as a fallback, often refused by
ACLs or renamed by managed services: then it says so and does not fail) and
:func:`policy_problem` judges it:

- ``noeviction``: nothing is evicted (writes fail at ``maxmemory`` instead);
- ``volatile-*``: only keys with a TTL, i.e. the event logs of deleted pods
  (they expire anyway): acceptable;
- ``allkeys-*``: any key, the health record included: a problem.

:func:`evicted_keys` reads ``evicted_keys`` from ``INFO stats`` (a server-wide
counter since the server started; its growth is the signal).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

EVICTING_POLICIES_HINT = (
    "set maxmemory-policy noeviction on this Redis (the chart's Redis does), or give "
    "kubecache a Redis of its own: evicted keys force full resyncs and lose event logs"
)


@dataclass(frozen=True)
class MemoryPolicy:
    policy: str  # '' when it could not be read
    problem: str  # '' when the policy keeps kubecache's keys
    unreadable: str = ""  # why the policy could not be read

    @property
    def may_evict(self) -> bool:
        """Whether Redis may evict any of kubecache's keys (unknown counts as may)."""
        return bool(self.problem) or not self.policy


def policy_problem(policy: str) -> str:
    """What is wrong with ``maxmemory-policy`` ``policy`` for kubecache ('' nothing)."""
    if policy == "noeviction" or policy.startswith("volatile-"):
        return ""
    if policy.startswith("allkeys-"):
        return (
            f"maxmemory-policy is {policy}: under memory pressure Redis evicts any key, "
            "kubecache's health record, pod records and event logs included"
        )
    return f"maxmemory-policy is {policy!r}, which kubecache does not know"


def _field(info: Any, name: str) -> str:
    if isinstance(info, dict):
        value = info.get(name)
        if value is None:
            value = info.get(name.encode())
        if value is not None:
            return value.decode() if isinstance(value, bytes) else str(value)
    return ""


async def memory_policy(redis: aioredis.Redis) -> MemoryPolicy:
    """Read and judge ``maxmemory-policy``; never raises for a refused command."""
    refusals: list[str] = []
    try:
        policy = _field(await redis.info("memory"), "maxmemory_policy")
        if policy:
            return MemoryPolicy(policy, policy_problem(policy))
        refusals.append("INFO memory has no maxmemory_policy")
    except (RedisError, OSError) as e:
        refusals.append(f"INFO memory: {e}")
    try:
        reply = await redis.config_get("maxmemory-policy")
        policy = _field(reply, "maxmemory-policy")
        if policy:
            return MemoryPolicy(policy, policy_problem(policy))
        refusals.append("CONFIG GET maxmemory-policy answered nothing")
    except (RedisError, OSError) as e:
        refusals.append(f"CONFIG GET maxmemory-policy: {e}")
    return MemoryPolicy("", "", unreadable="; ".join(refusals))


async def evicted_keys(redis: aioredis.Redis) -> int | None:
    """``evicted_keys`` of ``INFO stats``; None when it cannot be read."""
    try:
        value = _field(await redis.info("stats"), "evicted_keys")
    except (RedisError, OSError):
        return None
    try:
        return int(value)
    except ValueError:
        return None


__all__ = [
    "EVICTING_POLICIES_HINT",
    "MemoryPolicy",
    "evicted_keys",
    "memory_policy",
    "policy_problem",
]
