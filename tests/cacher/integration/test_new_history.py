"""A cluster whose history restarts (resourceVersions low again) under a cacher's Redis.

As after an etcd restore without a revision bump, a rebuilt cluster, or a Redis and prefix
reused for another cluster: the cache must hold exactly what the new cluster holds, after
one take-over, whatever resourceVersions Redis held (issue 18, item 4).
"""

from __future__ import annotations

import logging

import pytest
import redis.asyncio as aioredis

from kubecache.contract import CacheHealth, Keys
from kubesim.testing import running_kubesim
from tests.cacher.integration.checker import Checker
from tests.cacher.integration.conftest import create_pods
from tests.support.cacher import cacher_settings, running_cacher
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_for

KEYS = Keys()


def names(prefix: str, n: int) -> list[str]:
    return [f"{prefix}-{i:03d}" for i in range(n)]


async def health(redis: aioredis.Redis) -> CacheHealth:
    found = CacheHealth.from_redis(await redis.hgetall(KEYS.health))
    assert found is not None
    return found


async def test_a_new_cluster_history_is_cached_exactly_after_one_take_over(
    redis: aioredis.Redis, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    # The old cluster's resourceVersions have climbed high.
    async with running_kubesim(
        kubelet="fake", fake_step_delay=0.01, first_resource_version=50_000_000
    ) as old:
        create_pods(old.store, names("user", 40))
        async with running_cacher(cacher_settings(old, redis_server.url)):
            await Checker(redis, old.store).converged()
        old_rv = old.store.resource_version
    assert await redis.hlen(KEYS.pods) == 40

    # A new cluster, its history starting low again: 4 of the same names, 6 others.
    async with running_kubesim(kubelet="fake", fake_step_delay=0.01) as new:
        create_pods(new.store, names("user", 4) + names("fresh", 6))
        assert new.store.resource_version < old_rv
        caplog.set_level(logging.INFO, logger="kubecache.cacher.writer")
        async with running_cacher(cacher_settings(new, redis_server.url)) as cacher:
            checker = Checker(redis, new.store)
            await checker.converged()
            settled = await health(redis)
            assert settled.synced
            # It stays settled: no further take-over over many heartbeats (0.2 s each).
            await wait_for(
                lambda: _heartbeats_since(redis, settled.heartbeat_ms, 15),
                timeout=20,
                message="15 heartbeats",
            )
            assert (await health(redis)).epoch == settled.epoch
            assert await checker.differences() == []
            value = cacher.metrics.value
            assert value("kubecache_cacher_leader_transitions_total", {"change": "gained"}) == 1
            assert value("kubecache_cacher_heals_total", {"check": "count"}) == 0
            assert value("kubecache_cacher_heals_total", {"check": "audit"}) == 0
            outcome = {"outcome": "deleted"}
            assert value("kubecache_cacher_list_reconciled_records_total", outcome) == 36
            outcome = {"outcome": "written"}
            assert value("kubecache_cacher_list_reconciled_records_total", outcome) == 10
        assert await redis.hlen(KEYS.pod_rv) == 0
    found = [r.getMessage() for r in caplog.records if r.getMessage().startswith("pod list at")]
    assert found and "10 pods listed" in found[0], found
    assert "36 records of pods not in the list deleted" in found[0], found


async def _heartbeats_since(redis: aioredis.Redis, since_ms: int, count: int) -> bool:
    return (await health(redis)).heartbeat_ms >= since_ms + count * 200
