"""`kubecache doctor`: checks a reader's view of the cache, each failure with what to do."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError, NoPermissionError, RedisError, ResponseError

from kubecache.acl import setuser_command
from kubecache.contract import (
    SCHEMA_VERSION,
    CacheHealth,
    ContractError,
    Freshness,
    Keys,
    health_freshness,
    redis_time_ms,
)
from kubecache.foreign_keys import advice, foreign_keys
from kubecache.redis_connection import node_replid
from kubecache.redis_memory import EVICTING_POLICIES_HINT, evicted_keys, memory_policy
from kubecache.terminal import decoded

#: The commands a spawner runs, with the key each needs (checked for ACL denials).
READER_COMMANDS = ("TIME", "HGETALL health", "HMGET pods", "LRANGE events", "XREAD feed")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


async def run_checks(redis: aioredis.Redis, keys: Keys, *, stale_after_ms: int) -> list[Check]:
    """Every check in order; later checks are skipped when Redis cannot be reached."""
    checks: list[Check] = []
    try:
        await redis.ping()
    except AuthenticationError as e:
        return [
            Check(
                "redis reachable",
                False,
                f"authentication failed: {e}",
                "check --redis-username and the password (file), and the user's ACL in Redis",
            )
        ]
    except (RedisError, OSError) as e:
        return [
            Check(
                "redis reachable",
                False,
                f"{type(e).__name__}: {e}",
                "check --redis-url (host, port, TLS scheme), that Redis runs, "
                "and that network policies let this pod reach it",
            )
        ]
    checks.append(Check("redis reachable", True, "PING answered"))
    checks.append(await _check_permissions(redis, keys))
    types = await _check_key_types(redis, keys)
    checks.append(types)
    checks.append(await _check_memory(redis))
    if not types.ok and keys.health in types.detail:
        return checks  # the health record is not a hash: nothing more to read
    health_check, health = await _check_prefix(redis, keys)
    checks.append(health_check)
    if health is not None:
        checks.append(await _check_fresh(redis, health, stale_after_ms=stale_after_ms))
    return checks


async def _check_permissions(redis: aioredis.Redis, keys: Keys) -> Check:
    probes = [
        ("TIME",),
        ("HGETALL", keys.health),
        ("HMGET", keys.pods, "-/-"),
        ("LRANGE", keys.events("-/-"), "0", "0"),
        ("XREVRANGE", keys.feed, "+", "-", "COUNT", "1"),
    ]
    denied = []
    for probe in probes:
        try:
            await redis.execute_command(*probe)
        except NoPermissionError as e:
            denied.append(f"{probe[0]} {probe[1] if len(probe) > 1 else ''}: {e}".strip())
        except ResponseError as e:
            if "NOPERM" in str(e):
                denied.append(f"{probe[0]}: {e}")
    if denied:
        return Check(
            "credentials and ACL",
            False,
            "denied: " + "; ".join(denied),
            "grant the reader kubecache's read-only rules: "
            + setuser_command("cli", "<user>", prefix=keys.prefix),
        )
    return Check("credentials and ACL", True, "the reads a spawner makes are allowed")


async def _check_key_types(redis: aioredis.Redis, keys: Keys) -> Check:
    """Keys under the prefix of another type than kubecache's (WRONGTYPE for the cacher)."""
    try:
        found = await foreign_keys(redis, keys)
    except NoPermissionError as e:
        return Check("key types", True, f"not checked: {e}")
    if found:
        named = "; ".join(f"{f.key} is a {f.found}, kubecache writes a {f.expected}" for f in found)
        return Check("key types", False, named, advice(found, keys))
    return Check("key types", True, f"the keys under {keys.prefix} are of kubecache's types")


async def _check_memory(redis: aioredis.Redis) -> Check:
    """maxmemory-policy (kubecache's keys must not be evicted) and evictions so far."""
    policy = await memory_policy(redis)
    evicted = await evicted_keys(redis)
    seen = "" if evicted is None else f"; {evicted} keys evicted since Redis started"
    if policy.problem:
        return Check("eviction policy", False, policy.problem + seen, EVICTING_POLICIES_HINT)
    if not policy.policy:
        return Check(
            "eviction policy",
            True,
            f"maxmemory-policy cannot be read ({policy.unreadable}){seen}",
            "ask the Redis operator to confirm maxmemory-policy noeviction (or volatile-*)",
        )
    return Check("eviction policy", True, f"maxmemory-policy {policy.policy}{seen}")


async def _check_prefix(redis: aioredis.Redis, keys: Keys) -> tuple[Check, CacheHealth | None]:
    try:
        health = CacheHealth.from_redis(await redis.hgetall(keys.health))
    except ContractError as e:
        return Check(
            "prefix present", False, str(e), "another program writes this prefix: choose another"
        ), None
    if health is None:
        others = await _other_prefixes(redis)
        hint = f"; prefixes found in this Redis: {', '.join(others)}" if others else ""
        return (
            Check(
                "prefix present",
                False,
                f"no cache health record at {keys.health}{hint}",
                "start the cacher, or pass the --key-prefix it writes (KUBECACHE_KEY_PREFIX)",
            ),
            None,
        )
    if health.schema != SCHEMA_VERSION:
        return (
            Check(
                "prefix present",
                False,
                f"schema {health.schema} written, this kubecache reads {SCHEMA_VERSION}",
                "run the same kubecache version in the cacher and the hub",
            ),
            health,
        )
    return Check("prefix present", True, f"{keys.prefix} written by {health.leader}"), health


async def _other_prefixes(redis: aioredis.Redis, limit: int = 10) -> list[str]:
    """Prefixes of other deployments, when this user may SCAN (kubecache's CLI user may not:
    its ACL keeps it inside one prefix, see kubecache.acl)."""
    found: list[str] = []
    try:
        async for key in redis.scan_iter(match="*health", count=500):
            if await redis.type(key) in (b"hash", "hash"):  # any bytes: names are untrusted
                found.append(decoded(key).removesuffix("health"))
            if len(found) >= limit:
                break
    except NoPermissionError:
        return []
    return sorted(found)


async def _check_fresh(redis: aioredis.Redis, health: CacheHealth, *, stale_after_ms: int) -> Check:
    now_ms = redis_time_ms(await redis.time())
    try:
        replication: object = await redis.info("replication")
    except NoPermissionError as e:
        replication = e  # a user without +info: the failover check is skipped
    freshness = health_freshness(
        health,
        now_ms=now_ms,
        stale_after_ms=stale_after_ms,
        node_replid=node_replid(replication),
    )
    age = health.heartbeat_age_ms(now_ms) / 1000
    if freshness is Freshness.FRESH:
        return Check(
            "cache fresh",
            True,
            f"synced, heartbeat {age:.1f} s ago; Redis primary {health.primary_addr or '?'}, "
            f"{health.failovers} failovers (last at Redis time {health.last_failover_ms} ms)",
        )
    if freshness is Freshness.FAILED_OVER:
        return Check(
            "cache fresh",
            False,
            f"this Redis node is not the primary the cache was written on "
            f"({health.primary_addr or '?'}): Redis failed over and the cacher has not "
            "rewritten the cache here yet",
            "wait a few heartbeats; if it persists, check that the cacher reaches the new "
            "primary (its logs, kubecache_cacher_failovers_total)",
        )
    if freshness is Freshness.NOT_SYNCED:
        return Check(
            "cache fresh",
            False,
            f"epoch {health.epoch} is still syncing (heartbeat {age:.1f} s ago)",
            "wait for the sync; if it never ends, read the cacher's logs",
        )
    if health.pods_watch.startswith("failed"):
        return Check(
            "cache fresh",
            False,
            f"the pods watch cannot recover: {health.pods_watch}",
            "read the cacher's logs; 403 means its RBAC lacks list/watch on pods",
        )
    return Check(
        "cache fresh",
        False,
        f"last heartbeat {age:.1f} s ago (limit {stale_after_ms / 1000:.0f} s) "
        f"from {health.leader}",
        "is a cacher running and elected? kubectl -n NAMESPACE logs "
        "-l app.kubernetes.io/name=kubecache,app.kubernetes.io/component=cacher",
    )
