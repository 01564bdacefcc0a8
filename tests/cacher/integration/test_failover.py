"""Redis outages, leader failover, graceful hand-over, readiness, process exits."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from kubecache.cacher.app import Cacher
from kubecache.cacher.settings import Settings
from kubecache.contract import CacheHealth, Keys
from tests.cacher.integration.checker import Checker
from tests.cacher.integration.conftest import create_pods, label_pods
from tests.support.cacher import cacher_settings, running_cacher
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[3]


async def health_of(redis: aioredis.Redis) -> CacheHealth | None:
    return CacheHealth.from_redis(await redis.hgetall(Keys().health))


async def leader_is(redis: aioredis.Redis, identity: str) -> bool:
    health = await health_of(redis)
    return health is not None and health.leader == identity and health.synced


def cacher_command(settings: Settings) -> list[str]:
    return [
        sys.executable, "-m", "kubecache.cacher",
        "--kubeconfig", str(settings.kubeconfig),
        "--redis-url", settings.redis.url,
        "--identity", settings.identity,
        "--lease-namespace", settings.lease_namespace,
        "--lease-duration", str(settings.lease_duration),
        "--renew-deadline", str(settings.renew_deadline),
        "--retry-period", str(settings.retry_period),
        "--health-host", "127.0.0.1",
        "--health-port", "0",
        "--stall-timeout", str(settings.stall_timeout),
        "--heartbeat-interval", str(settings.heartbeat_interval),
    ]  # fmt: skip


@contextlib.asynccontextmanager
async def producer(store: Any, prefix: str) -> AsyncIterator[list[str]]:
    """Creates and modifies pods in the background (the "stream" a failover cuts)."""
    created: list[str] = []

    async def produce() -> None:
        i = 0
        while True:
            name = f"{prefix}-{i:04d}"
            create_pods(store, [name])
            created.append(name)
            if i % 3 == 0:
                label_pods(store, created[-3:], str(i))
            i += 1
            await asyncio.sleep(0.01)  # load pacing, not synchronisation

    task = asyncio.create_task(produce())
    try:
        yield created
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_redis_restart_is_resynced_under_a_new_epoch(
    kubesim: Any, private_redis: RedisServer
) -> None:
    store = kubesim.store
    create_pods(store, [f"before-{i}" for i in range(30)])
    redis = aioredis.Redis.from_url(private_redis.url)
    checker = Checker(redis, store)
    try:
        async with running_cacher(cacher_settings(kubesim, private_redis.url)) as cacher:
            await checker.converged()
            health = await health_of(redis)
            assert health is not None
            private_redis.restart()
            create_pods(store, [f"after-{i}" for i in range(30)])
            await checker.converged()
            again = await health_of(redis)
            assert again is not None and again.epoch > health.epoch
            assert cacher.metrics.value("kubecache_cacher_leader") == 1
    finally:
        await redis.aclose()


async def test_flushall_is_noticed_and_resynced_under_a_new_epoch(
    kubesim: Any, redis: aioredis.Redis, redis_server: RedisServer
) -> None:
    store = kubesim.store
    create_pods(store, [f"pod-{i}" for i in range(30)])
    checker = Checker(redis, store)
    async with running_cacher(cacher_settings(kubesim, redis_server.url)) as cacher:
        await checker.converged()
        health = await health_of(redis)
        assert health is not None
        await redis.flushall()
        await checker.converged()
        again = await health_of(redis)
        assert again is not None and again.epoch > health.epoch
        assert (
            cacher.metrics.value(
                "kubecache_cacher_relists_total", {"resource": "pods", "reason": "cache-lost"}
            )
            >= 1
        )


async def test_the_standby_takes_over_when_the_leader_is_killed_mid_stream(
    kubesim: Any, redis: aioredis.Redis, redis_server: RedisServer
) -> None:
    store = kubesim.store
    settings_a = cacher_settings(kubesim, redis_server.url, identity="cacher-a")
    settings_b = cacher_settings(kubesim, redis_server.url, identity="cacher-b")
    process = await asyncio.create_subprocess_exec(
        *cacher_command(settings_a), cwd=REPO, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    try:
        await wait_for(lambda: leader_is(redis, "cacher-a"), timeout=30, message="a to lead")
        async with running_cacher(settings_b) as standby, producer(store, "stream"):
            await wait_for(lambda: standby.role == "standby", message="b to stand by")
            await wait_for(lambda: len(store.list("pods")) >= 30, message="the stream to flow")
            process.send_signal(signal.SIGKILL)
            await process.wait()
            await wait_for(lambda: leader_is(redis, "cacher-b"), message="b to take over")
            await wait_for(lambda: len(store.list("pods")) >= 60, message="more pods")
        # the producer stopped; the survivor must hold exactly the API's state
        checker = Checker(redis, store)
        async with running_cacher(settings_b):
            await checker.converged()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_a_graceful_shutdown_releases_the_lease_for_an_immediate_failover(
    kubesim: Any, redis: aioredis.Redis, redis_server: RedisServer
) -> None:
    store = kubesim.store
    create_pods(store, [f"pod-{i}" for i in range(20)])
    # a's lease would block b for 60 s unless a releases it
    settings_a = cacher_settings(
        kubesim, redis_server.url, identity="cacher-a", lease_duration=60, renew_deadline=40
    )
    settings_b = cacher_settings(kubesim, redis_server.url, identity="cacher-b")
    checker = Checker(redis, store)
    leader = Cacher(settings_a)
    leading = asyncio.create_task(leader.run())
    try:
        await wait_for(lambda: leader_is(redis, "cacher-a"), message="a to lead")
        async with running_cacher(settings_b) as standby:
            await wait_for(lambda: standby.role == "standby", message="b to stand by")
            leader.stop()
            assert await leading == 0
            lease = store.get("leases", "default", settings_a.lease_name)
            assert lease["spec"]["holderIdentity"] in ("", "cacher-b")
            # well inside a's 60 s lease: only a release lets b lead this soon (the bound
            # leaves room for a loaded CI machine)
            await wait_for(lambda: standby.role == "leader", timeout=30, message="b to lead")
            await wait_for(lambda: leader_is(redis, "cacher-b"), message="b to sync")
            await checker.converged()
    finally:
        leader.stop()
        await asyncio.wait([leading])


async def test_readiness_reports_leader_standby_and_a_failed_watch(
    kubesim: Any, redis: aioredis.Redis, redis_server: RedisServer
) -> None:
    store = kubesim.store
    create_pods(store, ["alice"])
    settings_a = cacher_settings(kubesim, redis_server.url, identity="cacher-a")
    settings_b = cacher_settings(kubesim, redis_server.url, identity="cacher-b")

    async def ready(cacher: Cacher) -> tuple[int, dict[str, Any]]:
        assert cacher.health is not None
        url = f"http://127.0.0.1:{cacher.health.port}/readyz"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return response.status, await response.json()

    async with running_cacher(settings_a) as leader:
        await wait_for(lambda: leader_is(redis, "cacher-a"), message="a to lead")
        assert (await ready(leader))[0] == 200
        async with running_cacher(settings_b) as standby:
            await wait_for(lambda: standby.role == "standby", message="b to stand by")
            status, body = await ready(standby)
            assert (status, body["reason"]) == (200, "standby")
        await kubesim.fault({"action": "fail", "verb": "watch", "resource": "pods",
                             "status": 403})  # fmt: skip
        await kubesim.fault({"action": "drop_watches"})

        async def not_ready() -> bool:
            status, body = await ready(leader)
            return status == 503 and "failed" in body["reason"]

        await wait_for(not_ready, timeout=30, message="readiness to fail with the watch")
        health = await health_of(redis)
        assert health is not None and health.pods_watch.startswith("failed")
        await kubesim.fault({"action": "clear"})
        await wait_for(lambda: leader.readiness().ready, timeout=30, message="ready again")


def test_bad_configuration_exits_before_connecting(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kubecache.cacher", "--kubeconfig", str(tmp_path / "missing")],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "kubeconfig" in result.stderr and "does not exist" in result.stderr


async def test_the_command_line_once_syncs_and_exits_zero(
    kubesim: Any, redis: aioredis.Redis, redis_server: RedisServer
) -> None:
    create_pods(kubesim.store, ["alice", "bob"])
    settings = cacher_settings(kubesim, redis_server.url, identity="cli-once")
    process = await asyncio.create_subprocess_exec(
        *cacher_command(settings), "--once", "--log-format", "json", cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)}, stderr=subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()
    assert await redis.hexists(Keys().pods, "jhub/alice")
    assert b'"msg":"--once: pods and events are in Redis"' in stderr


async def test_a_fenced_leader_steps_down_and_campaigns_again(
    kubesim: Any, redis: aioredis.Redis, redis_server: RedisServer
) -> None:
    from kubecache.cacher.writer import CacheWriter

    store = kubesim.store
    create_pods(store, [f"pod-{i}" for i in range(10)])
    checker = Checker(redis, store)
    async with running_cacher(cacher_settings(kubesim, redis_server.url)) as cacher:
        await checker.converged()
        intruder = CacheWriter(redis, Keys(), identity="intruder")
        intruder_epoch = await intruder.take_over()  # e.g. a misconfigured second deployment

        async def led_again() -> bool:
            health = await health_of(redis)
            return (
                health is not None
                and health.leader == "cacher-a"
                and health.epoch > intruder_epoch
                and health.synced
            )

        await wait_for(led_again, timeout=20, message="a to step down and take over again")
        assert (
            cacher.metrics.value("kubecache_cacher_leader_transitions_total", {"change": "lost"})
            >= 1
        )
        await checker.converged()
