"""The cache tells readers the truth: watches that progress, resume points that
cannot be poisoned, records that heal when Redis loses or alters them."""

from __future__ import annotations

import time
from typing import Any

import orjson
import redis.asyncio as aioredis

from kubecache.contract import CacheHealth, Freshness, Keys
from tests.cacher.integration.checker import Checker
from tests.cacher.integration.conftest import NAMESPACE, create_pods
from tests.support.cacher import cacher_settings, running_cacher
from tests.support.freshness import node_freshness
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_for

KEYS = Keys()


def names(prefix: str, n: int) -> list[str]:
    return [f"{prefix}-{i:03d}" for i in range(n)]


async def epoch_of(redis: aioredis.Redis) -> int:
    health = CacheHealth.from_redis(await redis.hgetall(KEYS.health))
    return 0 if health is None else health.epoch


async def test_an_idle_watch_stays_fresh_and_a_stalled_one_turns_stale_within_the_promise(
    kubesim: Any, redis: aioredis.Redis, redis_server: RedisServer
) -> None:
    store = kubesim.store
    create_pods(store, names("idle", 5))
    checker = Checker(redis, store)
    # An 8 s promise: watches time out after 5 s; each one the server ends is progress.
    settings = cacher_settings(
        kubesim, redis_server.url, progress_stale_after=8.0, stall_timeout=6.0
    )
    async with running_cacher(settings) as cacher:
        await checker.converged()
        await wait_for(lambda: all_ready(store), timeout=30, message="pods to be ready")
        # Idle for 1.5 promises: no bookmark comes; watches the server ends keep it fresh.
        samples: list[Freshness] = []
        deadline = time.monotonic() + 12
        while time.monotonic() < deadline:
            samples.append(await node_freshness(redis))
            await wait_briefly()
        assert set(samples) == {Freshness.FRESH}, samples
        health = CacheHealth.from_redis(await redis.hgetall(KEYS.health))
        assert health is not None and health.progress_stale_ms == 8000
        assert health.pods_progress_ms > 0

        stalled_at = time.monotonic()
        await kubesim.fault({"action": "stall_watches"})

        async def stale() -> bool:
            return await node_freshness(redis) is Freshness.STALE

        await wait_for(stale, timeout=8 + 3, message="the stalled cache to turn stale")
        print(f"stalled watch: stale after {time.monotonic() - stalled_at:.1f} s (promise 8 s)")
        await wait_for(
            lambda: (
                cacher.metrics.value(
                    "kubecache_cacher_watch_restarts_total",
                    {"resource": "pods", "reason": "stalled"},
                )
                + cacher.metrics.value(
                    "kubecache_cacher_watch_restarts_total",
                    {"resource": "pods", "reason": "closed"},
                )
                >= 1
            ),
            message="the stalled watch to be restarted",
        )
        await kubesim.fault({"action": "clear"})

        async def fresh() -> bool:
            return await node_freshness(redis) is Freshness.FRESH

        await wait_for(fresh, timeout=15, message="the cache to be fresh again")
        create_pods(store, names("after", 5))
        await checker.converged()


def all_ready(store: Any) -> bool:
    pods = store.list("pods", NAMESPACE)
    return bool(pods) and all(p.get("status", {}).get("phase") == "Running" for p in pods)


async def wait_briefly() -> None:
    import asyncio

    await asyncio.sleep(0.2)  # sampling pace, not synchronisation


async def test_a_malformed_resource_version_is_skipped_counted_and_never_a_resume_point(
    kubesim: Any, redis: aioredis.Redis, redis_server: RedisServer
) -> None:
    store = kubesim.store
    create_pods(store, names("before", 5))
    checker = Checker(redis, store)
    async with running_cacher(cacher_settings(kubesim, redis_server.url)) as cacher:
        await checker.converged()
        await wait_for(
            lambda: kubesim.server.hub.open_watches >= 2, message="both watches to be open"
        )
        bad_event = {
            "type": "ADDED",
            "object": {
                "kind": "Event",
                "apiVersion": "v1",
                "metadata": {"name": "poison", "namespace": NAMESPACE, "resourceVersion": "x"},
                "involvedObject": {"kind": "Pod", "namespace": NAMESPACE, "name": "before-000"},
                "reason": "Poison",
                "message": "a line with a resourceVersion that is not one",
            },
        }
        bad_pod = {
            "type": "MODIFIED",
            "object": {"kind": "Pod", "metadata": {"namespace": NAMESPACE, "resourceVersion": "7"}},
        }
        for resource, line in (("events", bad_event), ("pods", bad_pod)):
            await kubesim.fault({"action": "inject_watch_line", "resource": resource, "line": line})
        await wait_for(
            lambda: (
                cacher.metrics.value(
                    "kubecache_cacher_rejected_watch_lines_total",
                    {"resource": "events", "problem": "resource-version"},
                )
                >= 1
                and cacher.metrics.value(
                    "kubecache_cacher_rejected_watch_lines_total",
                    {"resource": "pods", "problem": "identity"},
                )
                >= 1
            ),
            message="both lines to be rejected",
        )
        # Resuming from a poisoned resourceVersion would fail with 400 from now on.
        await kubesim.fault({"action": "drop_watches"})
        create_pods(store, names("after", 10))
        await checker.converged()
        for resource in ("pods", "events"):
            assert (
                cacher.metrics.value(
                    "kubecache_cacher_watch_restarts_total",
                    {"resource": resource, "reason": "client-error"},
                )
                == 0
            )
        assert await redis.hget(KEYS.health, "events_watch") == b"ok"


async def heal(kubesim: Any, redis: aioredis.Redis, url: str, damage: Any, check: str) -> float:
    """Converge, damage Redis, and return how long the cacher took to heal it."""
    store = kubesim.store
    create_pods(store, names("pod", 40))
    checker = Checker(redis, store)
    async with running_cacher(cacher_settings(kubesim, url)) as cacher:
        await checker.converged()
        await wait_for(lambda: all_ready(store), timeout=30, message="pods to be ready")
        await checker.converged()
        before = await epoch_of(redis)
        damaged_at = time.monotonic()
        await damage(redis)
        await wait_for(
            lambda: cacher.metrics.value("kubecache_cacher_heals_total", {"check": check}) >= 1,
            message=f"the {check} check to notice the damage",
        )
        await checker.converged()
        healed = time.monotonic() - damaged_at
        assert await epoch_of(redis) > before
        assert (
            cacher.metrics.value(
                "kubecache_cacher_relists_total", {"resource": "pods", "reason": "cache-diverged"}
            )
            >= 1
        )
        return healed


async def test_a_deleted_pods_hash_is_noticed_and_rewritten_under_a_new_epoch(
    kubesim: Any, redis: aioredis.Redis, redis_server: RedisServer
) -> None:
    async def damage(client: aioredis.Redis) -> None:
        await client.delete(KEYS.pods)

    took = await heal(kubesim, redis, redis_server.url, damage, "count")
    print(f"DEL of the pods hash healed in {took:.2f} s")


async def test_one_deleted_record_is_noticed_and_rewritten(
    kubesim: Any, redis: aioredis.Redis, redis_server: RedisServer
) -> None:
    async def damage(client: aioredis.Redis) -> None:
        assert await client.hdel(KEYS.pods, f"{NAMESPACE}/pod-007") == 1

    took = await heal(kubesim, redis, redis_server.url, damage, "count")
    print(f"HDEL of one record healed in {took:.2f} s")


async def test_an_altered_record_is_noticed_and_rewritten_even_when_it_claims_to_be_newer(
    kubesim: Any, redis: aioredis.Redis, redis_server: RedisServer
) -> None:
    async def damage(client: aioredis.Redis) -> None:
        key = f"{NAMESPACE}/pod-011"
        record = orjson.loads(await client.hget(KEYS.pods, key))
        record["phase"] = "Failed"
        record["rv"] += 1_000_000  # would win every resourceVersion comparison
        await client.hset(KEYS.pods, key, orjson.dumps(record))

    took = await heal(kubesim, redis, redis_server.url, damage, "audit")
    print(f"an altered record healed in {took:.2f} s")
