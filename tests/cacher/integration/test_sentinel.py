"""Redis failovers under Sentinel during churn: nothing lost, no false "stopped".

A real deployment on loopback (one primary, one replica, three sentinels; see
tests/support/sentinel.py), kubesim, and one cacher connected through
``redis+sentinel://``. Pods start and stop continuously while the primary
changes. Throughout, a sampler reads the cache as a hub would (through
Sentinel) and counts "false stopped" verdicts: a pod Running in the API whose
record is absent or terminated while :meth:`CacheHealth.freshness` (with the
read node's ``master_replid``) says FRESH. It must stay 0, and each test ends
with the records on the new primary equal to the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from kubecache.cacher.app import Cacher
from kubecache.cacher.watcher import cancel_and_wait
from kubecache.contract import (
    CacheHealth,
    ContractError,
    Freshness,
    Keys,
    decode_pod_record,
    health_freshness,
    redis_time_ms,
)
from kubecache.redis_connection import RedisSettings, connect
from tests.cacher.integration.checker import Checker
from tests.cacher.integration.conftest import NAMESPACE, create_pods, delete_pods
from tests.support.cacher import cacher_settings, running_cacher
from tests.support.freshness import node_freshness
from tests.support.sentinel import SentinelDeployment
from tests.support.waiting import wait_for

KEYS = Keys()
#: A pod counts once it has been Running in the API this long (a hub's start()
#: returned for it: its record was seen ready).
SETTLED = 1.0


@pytest.fixture
def sentinel() -> Iterator[SentinelDeployment]:
    deployment = SentinelDeployment()
    try:
        deployment.start()
        yield deployment
    finally:
        deployment.close()


def running_in_api(store: Any) -> dict[str, str]:
    """key -> uid of the pods Running in the API and not being deleted."""
    running: dict[str, str] = {}
    for pod in store.list("pods", NAMESPACE):
        meta = pod["metadata"]
        if pod.get("status", {}).get("phase") == "Running" and not meta.get("deletionTimestamp"):
            running[f"{NAMESPACE}/{meta['name']}"] = meta["uid"]
    return running


@dataclass
class Sampler:
    """Samples the cache through Sentinel, as a hub reads it."""

    store: Any
    client: aioredis.Redis
    samples: int = 0
    unreachable: int = 0
    verdicts: dict[Freshness, int] = field(default_factory=dict)
    false_stopped: list[str] = field(default_factory=list)
    since: dict[str, float] = field(default_factory=dict)

    async def sample(self) -> None:
        now = time.monotonic()
        running = running_in_api(self.store)
        for key in list(self.since):
            if key not in running:
                del self.since[key]
        for key in running:
            self.since.setdefault(key, now)
        settled = sorted(k for k in running if now - self.since[k] >= SETTLED)
        pipe = self.client.pipeline(transaction=True)
        pipe.hgetall(KEYS.health)
        pipe.time()
        pipe.info("replication")
        pipe.info("server")
        if settled:
            pipe.hmget(KEYS.pods, settled)
        try:
            replies = await pipe.execute()
        except RedisError:
            self.unreachable += 1  # a hub keeps its servers running then
            return
        self.samples += 1
        freshness = health_freshness(
            CacheHealth.from_redis(replies[0]),
            now_ms=redis_time_ms(replies[1]),
            stale_after_ms=15_000,
            node_replid=str(replies[2].get("master_replid", "")),
        )
        self.verdicts[freshness] = self.verdicts.get(freshness, 0) + 1
        if freshness is not Freshness.FRESH or not settled:
            return
        still = running_in_api(self.store)  # the API again, after the read
        health = CacheHealth.from_redis(replies[0])
        assert health is not None
        for key, raw in zip(settled, replies[4], strict=True):
            if still.get(key) != running.get(key):
                continue  # stopped meanwhile: not a false verdict
            try:
                record = None if raw is None else decode_pod_record(raw, key=key)
            except ContractError:
                record = None
            if record is None or record["phase"] in ("Succeeded", "Failed"):
                self.false_stopped.append(
                    f"{key} ({'absent' if record is None else 'ended'}) read on port "
                    f"{replies[3].get('tcp_port')} epoch {health.epoch} "
                    f"heartbeat age {redis_time_ms(replies[1]) - health.heartbeat_ms} ms"
                )

    async def run(self) -> None:
        while True:
            await self.sample()
            await asyncio.sleep(0.05)  # sampling pace, not synchronisation


@contextlib.asynccontextmanager
async def sampling(store: Any, url: str) -> AsyncIterator[Sampler]:
    client = connect(RedisSettings(url=url, socket_timeout=1.0, connect_timeout=1.0))
    sampler = Sampler(store, client)
    task = asyncio.create_task(sampler.run())
    try:
        yield sampler
    finally:
        await cancel_and_wait(task)  # again and again: redis-py's wait_for may drop a cancel
        await client.aclose()


@contextlib.asynccontextmanager
async def churning(store: Any, *, keep: int = 30) -> AsyncIterator[list[str]]:
    """Starts a pod and stops the oldest every 0.1 s (about ``keep`` alive)."""
    alive: list[str] = []

    async def churn() -> None:
        i = 0
        while True:
            name = f"churn-{i:04d}"
            create_pods(store, [name])
            alive.append(name)
            if len(alive) > keep:
                delete_pods(store, [alive.pop(0)])
            i += 1
            await asyncio.sleep(0.1)  # load pacing, not synchronisation

    task = asyncio.create_task(churn())
    try:
        yield alive
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def taken_over_on(port: int, after_epoch: int) -> bool:
    """The cacher leads on node ``port``: new epoch, its replid, synced and fresh."""
    client = aioredis.Redis(port=port, socket_timeout=1)
    try:
        health = CacheHealth.from_redis(await client.hgetall(KEYS.health))
        return (
            health is not None
            and health.epoch > after_epoch
            and await node_freshness(client) is Freshness.FRESH
        )
    except RedisError:
        return False
    finally:
        await client.aclose()


async def epoch_on(port: int) -> int:
    client = aioredis.Redis(port=port, socket_timeout=1)
    try:
        health = CacheHealth.from_redis(await client.hgetall(KEYS.health))
        return 0 if health is None else health.epoch
    finally:
        await client.aclose()


async def converged_on(port: int, store: Any) -> None:
    client = aioredis.Redis(port=port, socket_timeout=2)
    try:
        await Checker(client, store).converged(timeout=30)
    finally:
        await client.aclose()


async def settle(cacher: Cacher, sentinel: SentinelDeployment, store: Any) -> int:
    """Wait for the cacher to hold the API's state on the primary; returns its epoch."""
    port = sentinel.primary_port()
    await converged_on(port, store)
    await wait_for(lambda: taken_over_on(port, 0), timeout=30, message="a fresh cache")
    return await epoch_on(port)


def report(what: str, sampler: Sampler, converged: float, cacher: Cacher) -> None:
    print(
        f"{what}: converged on the new primary {converged:.2f} s after the fault; "
        f"{sampler.samples} samples ({sampler.unreachable} unreachable), verdicts "
        f"{ {k.value: v for k, v in sampler.verdicts.items()} }, false stopped "
        f"{len(sampler.false_stopped)}; failovers noticed {failovers(cacher):.0f}"
    )


async def test_a_manual_sentinel_failover_during_churn_loses_nothing(
    kubesim: Any, sentinel: SentinelDeployment
) -> None:
    store = kubesim.store
    create_pods(store, [f"steady-{i:02d}" for i in range(20)])
    async with running_cacher(cacher_settings(kubesim, sentinel.url)) as cacher:
        before = await settle(cacher, sentinel, store)
        async with sampling(store, sentinel.url) as sampler:
            async with churning(store):
                await wait_for(lambda: sampler.samples >= 20, message="samples before")
                faulted = time.monotonic()
                new = await asyncio.to_thread(sentinel.failover)
                await wait_for(
                    lambda: taken_over_on(new, before), timeout=30, message="the take-over"
                )
                converged = time.monotonic() - faulted
                await wait_for(lambda: sampler.samples >= 60, message="samples after")
            await converged_on(new, store)
            assert sampler.false_stopped == []
        assert failovers(cacher) >= 1
        assert cacher.readiness().details["redis_primary"] == f"127.0.0.1:{new}"
        health = CacheHealth.from_redis(await health_on(new))
        assert health is not None and health.failovers >= 1 and health.last_failover_ms > 0
        assert health.primary_addr == f"127.0.0.1:{new}"
        labels = {"addr": f"127.0.0.1:{new}", "replid": health.primary_replid}
        assert cacher.metrics.value("kubecache_cacher_redis_primary_info", labels) == 1
        report("SENTINEL FAILOVER", sampler, converged, cacher)


def failovers(cacher: Cacher) -> float:
    return cacher.metrics.value("kubecache_cacher_failovers_total")


async def health_on(port: int) -> dict[Any, Any]:
    client = aioredis.Redis(port=port, socket_timeout=1)
    try:
        return await client.hgetall(KEYS.health)  # type: ignore[no-any-return]
    finally:
        await client.aclose()


async def test_a_killed_primary_during_churn_loses_nothing(
    kubesim: Any, sentinel: SentinelDeployment
) -> None:
    store = kubesim.store
    create_pods(store, [f"steady-{i:02d}" for i in range(20)])
    async with running_cacher(cacher_settings(kubesim, sentinel.url)) as cacher:
        before = await settle(cacher, sentinel, store)
        async with sampling(store, sentinel.url) as sampler:
            async with churning(store):
                await wait_for(lambda: sampler.samples >= 20, message="samples before")
                faulted = time.monotonic()
                old = await asyncio.to_thread(sentinel.kill_primary)
                new = await asyncio.to_thread(sentinel.wait_for_switch, old)
                await wait_for(
                    lambda: taken_over_on(new, before), timeout=30, message="the take-over"
                )
                converged = time.monotonic() - faulted
                await wait_for(lambda: sampler.samples >= 60, message="samples after")
            await converged_on(new, store)
            assert sampler.false_stopped == []
        assert failovers(cacher) >= 1
        report("kill -9 of the primary", sampler, converged, cacher)


async def test_a_lagging_replica_promoted_is_distrusted_until_rewritten(
    kubesim: Any, sentinel: SentinelDeployment
) -> None:
    store = kubesim.store
    create_pods(store, [f"steady-{i:02d}" for i in range(20)])
    async with running_cacher(cacher_settings(kubesim, sentinel.url)) as cacher:
        before = await settle(cacher, sentinel, store)
        primary, replica = sentinel.primary(), sentinel.replica()
        async with sampling(store, sentinel.url) as sampler:
            await wait_for(lambda: sampler.samples >= 20, message="samples before")
            sentinel.pause(replica)
            # Fill the replication stream so the pod changes below stay in the
            # primary's output buffer: the replica really misses them.
            filler = aioredis.Redis(port=primary.port, socket_timeout=10)
            await filler.set("kubecache-test:filler", b"x" * (48 << 20))
            await filler.aclose()
            stopped = [f"steady-{i:02d}" for i in range(5)]
            delete_pods(store, stopped)
            create_pods(store, [f"late-{i:02d}" for i in range(5)])
            await converged_on(primary.port, store)
            await wait_for(
                lambda: all(k in running_in_api(store) for k in (f"{NAMESPACE}/late-00",)),
                timeout=30,
                message="the new pods to run",
            )
            await converged_on(primary.port, store)
            faulted = time.monotonic()
            old = await asyncio.to_thread(sentinel.kill_primary)
            sentinel.resume(replica)
            new = await asyncio.to_thread(sentinel.wait_for_switch, old, timeout=30)
            assert new == replica.port
            await wait_for(lambda: taken_over_on(new, before), timeout=30, message="the take-over")
            converged = time.monotonic() - faulted
            await wait_for(lambda: sampler.samples >= 60, message="samples after")
            await converged_on(new, store)
            assert sampler.false_stopped == []
        assert failovers(cacher) >= 1
        report("lagging replica promoted", sampler, converged, cacher)
