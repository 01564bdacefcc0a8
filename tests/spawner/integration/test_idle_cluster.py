"""An idle cluster keeps the cache trusted; a frozen watch does not (issue 18).

kubesim sends bookmarks as a real kube-apiserver does: none to a watch whose watch cache has
not moved, which is every watch of an idle cluster. Scaled down five times (a 6 s progress
promise instead of 30 s, 4 s watches instead of 20 s, bookmarks due every 12 s instead of
60 s): a minute of nothing changing is ten promises.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from kubecache.contract import Freshness
from kubecache.spawner.cache_client import CacheClient
from kubecache.spawner.kube_api import KubeApi
from kubesim.testing import KubeSim, running_kubesim
from tests.spawner.integration.conftest import NAMESPACE, cacher_settings
from tests.support.cacher import running_cacher
from tests.support.fleet import create_running_pods, make_spawners
from tests.support.freshness import node_freshness
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_for

PROMISE = 6.0
IDLE_SECONDS = 60.0


@pytest.fixture
async def sim(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[KubeSim]:
    async with running_kubesim(kubelet=None, bookmark_interval=12.0) as sim:
        monkeypatch.setenv("KUBECONFIG", str(sim.kubeconfig_path))
        sim.store.create("namespaces", None, {"metadata": {"name": NAMESPACE}})
        yield sim
        await CacheClient.close_all()
        await KubeApi.close_all()


def pod_reads(stats: dict[str, Any]) -> int:
    return sum(per.get("pods", 0) for verb, per in stats["requests"].items() if verb != "watch")


async def test_an_idle_cluster_stays_fresh_without_api_reads_and_a_frozen_watch_turns_stale(
    sim: KubeSim, redis: aioredis.Redis, redis_server: RedisServer
) -> None:
    spawners = make_spawners(redis_server.url, 3)
    await create_running_pods(sim, spawners)
    settings = cacher_settings(
        sim, redis_server.url, progress_stale_after=PROMISE, heartbeat_interval=0.3
    )
    async with running_cacher(settings) as cacher:
        await wait_for(
            lambda: _fresh(redis), timeout=20, message="the cache to be fresh after its list"
        )
        assert [await s.poll() for s in spawners] == [None, None, None]
        before = await sim.stats()
        samples: list[Freshness] = []
        polls: list[int | None] = []
        end = time.monotonic() + IDLE_SECONDS
        while time.monotonic() < end:  # nothing changes in the cluster meanwhile
            samples.append(await node_freshness(redis))
            polls += [await s.poll() for s in spawners]
            await asyncio.sleep(0.25)  # the sampling period, not a synchronisation
        after = await sim.stats()
        ended = cacher.metrics.value(
            "kubecache_cacher_watch_completions_total", {"resource": "pods"}
        )
        stale = [i for i, s in enumerate(samples) if s is not Freshness.FRESH]
        print(
            f"idle {IDLE_SECONDS:.0f} s: {len(samples)} samples, {len(stale)} not fresh; "
            f"bookmarks sent {after['bookmarks_sent'] - before['bookmarks_sent']}, withheld "
            f"{after['bookmarks_withheld'] - before['bookmarks_withheld']}; watches the server "
            f"ended cleanly {ended:.0f}"
        )
        assert not stale, [samples[i] for i in stale]
        assert set(polls) == {None}
        assert pod_reads(after) - pod_reads(before) == 0, "the hubs (or the cacher) read the API"
        # The real server's rule held: the idle watches got no bookmark at all.
        assert after["bookmarks_sent"] == before["bookmarks_sent"]
        assert after["bookmarks_withheld"] > before["bookmarks_withheld"]

        # A frozen connection: open, silent, not even ended by its timeout.
        frozen_at = time.monotonic()
        await sim.fault({"action": "stall_watches"})
        await wait_for(
            lambda: _stale(redis), timeout=PROMISE + 3, message="the frozen cache to turn stale"
        )
        print(f"frozen watch: stale after {time.monotonic() - frozen_at:.1f} s (promise 6 s)")
        # Untrusted: the hubs ask the API, which says the servers run.
        assert [await s.poll() for s in spawners] == [None, None, None]
        await sim.fault({"action": "clear"})
        await wait_for(lambda: _fresh(redis), timeout=30, message="fresh again once cleared")


async def _fresh(redis: aioredis.Redis) -> bool:
    return await node_freshness(redis) is Freshness.FRESH


async def _stale(redis: aioredis.Redis) -> bool:
    return await node_freshness(redis) is Freshness.STALE
