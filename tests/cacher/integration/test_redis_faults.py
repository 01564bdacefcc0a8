"""Faults between the cacher and Redis: a leader cut off from Redis, evictions, foreign keys.

Each test is a real redis-server and kubesim; the cut is a TCP forwarder on
127.0.0.1 (tests/support/tcp_cut.py) between one cacher and Redis.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from kubecache.cacher.app import Cacher
from kubecache.contract import CacheHealth, Keys
from kubecache.doctor import run_checks
from tests.cacher.integration.checker import Checker
from tests.cacher.integration.conftest import create_pods
from tests.support.cacher import cacher_settings, running_cacher
from tests.support.redis_server import RedisServer
from tests.support.tcp_cut import TcpCut
from tests.support.waiting import wait_for

KEYS = Keys()


async def health_of(redis: aioredis.Redis) -> CacheHealth | None:
    return CacheHealth.from_redis(await redis.hgetall(KEYS.health))


async def leads_synced(redis: aioredis.Redis, identity: str) -> bool:
    health = await health_of(redis)
    return health is not None and health.leader == identity and health.synced


async def probe(cacher: Cacher, path: str) -> tuple[int, dict[str, Any]]:
    assert cacher.health is not None
    url = f"http://127.0.0.1:{cacher.health.port}{path}"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.json()


@pytest.mark.parametrize("cut", ["reset", "drop"])
async def test_a_leader_cut_off_from_redis_gives_way_to_a_standby_that_reaches_it(
    kubesim: Any, redis: aioredis.Redis, redis_server: RedisServer, cut: str
) -> None:
    create_pods(kubesim.store, [f"pod-{i}" for i in range(5)])
    link = TcpCut(redis_server.port)
    await link.start()
    try:
        settings_a = cacher_settings(kubesim, link.url, identity="cacher-a")
        settings_b = cacher_settings(kubesim, redis_server.url, identity="cacher-b")
        async with running_cacher(settings_a) as a:
            await wait_for(lambda: leads_synced(redis, "cacher-a"), timeout=30, message="a")
            async with running_cacher(settings_b) as b:
                await wait_for(lambda: b.role == "standby", timeout=10, message="b standby")
                began = time.monotonic()
                link.reset() if cut == "reset" else link.drop()
                await wait_for(
                    lambda: leads_synced(redis, "cacher-b"), timeout=30, message="b to take over"
                )
                took = time.monotonic() - began
                print(f"{cut}: the standby took over {took:.1f} s after the cut")
                assert a.metrics.value("kubecache_cacher_gave_way_total") == 1
                # the cut-off replica is not ready (it cannot write) but alive: not restarted
                status, body = await probe(a, "/readyz")
                assert status == 503, body
                assert (await probe(a, "/healthz"))[0] == 200
                assert (await probe(b, "/healthz"))[0] == 200
                link.heal()
                await Checker(redis, kubesim.store).converged()
                await wait_for(lambda: a.readiness().ready, timeout=30, message="a a standby")
                assert a.role == "standby"
    finally:
        await link.close()


async def test_a_short_redis_blip_keeps_the_leader(
    kubesim: Any, redis: aioredis.Redis, redis_server: RedisServer
) -> None:
    link = TcpCut(redis_server.port)
    await link.start()
    try:
        settings = cacher_settings(
            kubesim, link.url, identity="cacher-a", renew_deadline=8.0, lease_duration=10.0
        )
        async with running_cacher(settings) as a:
            await wait_for(lambda: leads_synced(redis, "cacher-a"), timeout=30, message="a")
            link.reset()
            await wait_for(lambda: not a.redis_ok, timeout=10, message="a to see the cut")
            link.heal()
            await wait_for(lambda: leads_synced(redis, "cacher-a"), timeout=30, message="back")
            assert a.metrics.value("kubecache_cacher_gave_way_total") == 0
    finally:
        await link.close()


async def test_an_evicting_redis_is_named_and_its_relists_are_paced(
    kubesim: Any, private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    private_redis.stop()
    private_redis.start("--maxmemory-policy", "allkeys-lru")
    redis = aioredis.Redis.from_url(private_redis.url)
    store = kubesim.store
    create_pods(store, [f"pod-{i:03d}" for i in range(60)])
    caplog.set_level(logging.INFO)
    try:
        async with running_cacher(
            cacher_settings(kubesim, private_redis.url, heartbeat_interval=0.1)
        ) as cacher:
            await Checker(redis, store).converged()
            labels = {"policy": "allkeys-lru", "evicting": "1"}
            assert cacher.metrics.value("kubecache_cacher_redis_maxmemory_policy", labels) == 1
            assert "maxmemory-policy is allkeys-lru" in caplog.text
            # memory pressure: Redis evicts (any key) as long as the junk keeps coming
            used = int((await redis.info("memory"))["used_memory"])
            await redis.config_set("maxmemory", str(used + 200_000))
            terms = cacher.terms
            began = time.monotonic()
            junk = 0
            while time.monotonic() - began < 12:  # 12 s of sustained pressure
                await redis.set(f"junk:{junk}", b"x" * 2000)
                junk += 1
                await asyncio.sleep(0.002)  # load pacing
            restarts = cacher.terms - terms
            evicted = int((await redis.info("stats"))["evicted_keys"])
            print(f"{evicted} keys evicted, {restarts} term restarts in 12 s")
            assert evicted > 0
            assert "evicted" in caplog.text
            # paced: 5 immediate restarts, then 0.5-1, 1-2, 2-4, 4-8 s ... (unpaced: hundreds)
            assert 1 <= restarts <= 11
            assert "next full resync in" in caplog.text
            await redis.config_set("maxmemory", "0")
            await redis.delete(*[f"junk:{i}" for i in range(junk)])
            await Checker(redis, store).converged(timeout=60)
    finally:
        await redis.aclose()


async def test_a_key_of_a_foreign_type_is_named_with_what_to_do(
    kubesim: Any, redis: aioredis.Redis, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    await redis.set(KEYS.pod_rv, "left by an older layout")
    create_pods(kubesim.store, ["alice"])
    caplog.set_level(logging.INFO)
    async with running_cacher(cacher_settings(kubesim, redis_server.url)) as cacher:
        await wait_for(
            lambda: "WRONGTYPE" in caplog.text and f"'{KEYS.pod_rv}' is a string" in caplog.text,
            timeout=30,
            message="the key named in the log",
        )
        assert f"redis-cli DEL '{KEYS.pod_rv}'" in caplog.text
        checks = await run_checks(redis, KEYS, stale_after_ms=5000)
        named = [c for c in checks if not c.ok and KEYS.pod_rv in c.detail]
        assert named and "kubecache doctor" not in named[0].fix, checks
        await redis.delete(KEYS.pod_rv)
        await wait_for(lambda: leads_synced(redis, "cacher-a"), timeout=60, message="healed")
        assert cacher.terms < 12  # paced, not a hot loop


async def test_two_deployments_on_one_prefix_are_named_on_both_sides_and_settle(
    kubesim: Any, redis: aioredis.Redis, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    store = kubesim.store
    create_pods(store, ["alice", "bob"])
    create_pods(store, ["carol"], namespace="other")
    caplog.set_level(logging.INFO)
    settings_a = cacher_settings(kubesim, redis_server.url, identity="release-a-0")
    settings_b = cacher_settings(
        kubesim,
        redis_server.url,
        identity="release-b-0",
        lease_name="release-b-cacher",
        namespaces=("other",),
    )
    async with running_cacher(settings_a) as a:
        await wait_for(lambda: leads_synced(redis, "release-a-0"), timeout=30, message="a")
        health = await health_of(redis)
        assert health is not None
        epoch = health.epoch
        async with running_cacher(settings_b) as b:
            await wait_for(
                lambda: "two kubecache deployments" in b.readiness().reason,
                timeout=30,
                message="b to refuse",
            )
            await wait_for(
                lambda: a.metrics.value("kubecache_cacher_prefix_conflict") == 1,
                timeout=30,
                message="a to see b",
            )
            messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
            on_b = [m for m in messages if "this cacher 'release-b-0'" in m]
            on_a = [m for m in messages if "this cacher 'release-a-0'" in m]
            assert on_b and on_a, messages
            for text in (on_b[0], on_a[0]):
                assert "default/kubecache-cacher" in text and "default/release-b-cacher" in text
                assert "--key-prefix" in text
            # settled: a keeps its epoch, b never took over
            health = await health_of(redis)
            assert health is not None and (health.leader, health.epoch) == ("release-a-0", epoch)
            assert b.terms <= 1 and a.terms == 1
        # a goes away: b takes the prefix over once a's heartbeat is stale
    async with running_cacher(settings_b) as b:
        await wait_for(lambda: leads_synced(redis, "release-b-0"), timeout=30, message="b")


async def test_doctor_names_an_event_log_of_a_foreign_type_without_scanning_the_keyspace(
    redis: aioredis.Redis,
) -> None:
    await redis.hset(KEYS.pods, "jhub/alice", "{}")
    await redis.hset(KEYS.events("jhub/alice"), "left", "by another tool")
    checks = {c.name: c for c in await run_checks(redis, KEYS, stale_after_ms=5000)}
    types = checks["key types"]
    assert not types.ok and KEYS.events("jhub/alice") in types.detail
    assert "is a hash, kubecache writes a list" in types.detail
    assert "redis-cli DEL" in types.fix and "kubecache doctor" not in types.fix
