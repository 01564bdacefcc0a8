"""When the cache cannot be trusted: cacher stopped, Redis down, hub restarted.

The rule under test: a running server is never reported dead because the
cache is unknown, and a healthy cache answers without any Kubernetes request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from kubecache.spawner import KubeCacheSpawner
from kubecache.spawner.cache_client import CacheClient
from kubecache.spawner.kube_api import KubeApi
from tests.spawner.integration.conftest import NAMESPACE, cache_is_fresh, cacher_for
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_for

POD = "jupyter-alice"


def pod_requests(stats: dict[str, Any]) -> dict[str, int]:
    """Requests about pods by verb, without the cacher's watches."""
    return {
        verb: per["pods"]
        for verb, per in stats["requests"].items()
        if verb != "watch" and "pods" in per
    }


@pytest.fixture
async def sim(kubesim: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    monkeypatch.setenv("KUBECONFIG", str(kubesim.kubeconfig_path))
    kubesim.store.create("namespaces", None, {"metadata": {"name": NAMESPACE}})
    yield kubesim
    await CacheClient.close_all()
    await KubeApi.close_all()


async def test_a_start_finishes_when_the_cacher_stops_midway(
    sim: Any,
    redis: aioredis.Redis,
    redis_server: RedisServer,
    make_spawner: Callable[..., KubeCacheSpawner],
) -> None:
    spawner = make_spawner(
        extra_annotations={"kubesim.dev/ready-after": "1.5"}, cache_stale_after=1.0
    )
    async with cacher_for(sim, redis_server.url, redis):
        start = spawner.start()
        await wait_for(lambda: sim.store.get("pods", NAMESPACE, POD), message="the pod created")
    # the cacher is gone: no feed entry will announce readiness
    url = await asyncio.wait_for(start, 30)
    pod = sim.store.get("pods", NAMESPACE, POD)
    assert url == f"http://{pod['status']['podIP']}:8888"


async def test_a_start_finishes_when_redis_goes_down_midway(
    sim: Any, private_redis: RedisServer, make_spawner: Callable[..., KubeCacheSpawner]
) -> None:
    redis = aioredis.Redis.from_url(private_redis.url)
    spawner = make_spawner(
        redis_url=private_redis.url, extra_annotations={"kubesim.dev/ready-after": "1"}
    )
    try:
        async with cacher_for(sim, private_redis.url, redis):
            start = spawner.start()
            await wait_for(lambda: sim.store.get("pods", NAMESPACE, POD), message="the pod")
            private_redis.stop()
            url = await asyncio.wait_for(start, 30)
            pod = sim.store.get("pods", NAMESPACE, POD)
            assert url == f"http://{pod['status']['podIP']}:8888"
    finally:
        private_redis.start()
        await redis.aclose()


async def test_poll_asks_the_api_while_the_cacher_is_stopped(
    sim: Any,
    redis: aioredis.Redis,
    redis_server: RedisServer,
    make_spawner: Callable[..., KubeCacheSpawner],
) -> None:
    spawner = make_spawner(cache_stale_after=1.0)
    async with cacher_for(sim, redis_server.url, redis):
        await spawner.start()
    await wait_for(lambda: _not(cache_is_fresh(redis, 1000)), message="a stale cache")
    before = pod_requests(await sim.stats())
    assert await spawner.poll() is None
    assert pod_requests(await sim.stats()).get("get", 0) == before.get("get", 0) + 1
    sim.store.remove("pods", NAMESPACE, POD)  # gone while nobody watches
    assert await spawner.poll() == 1


async def _not(value: Any) -> bool:
    return not await value


async def test_poll_with_redis_down_asks_the_api_and_else_keeps_the_server_running(
    sim: Any, private_redis: RedisServer, make_spawner: Callable[..., KubeCacheSpawner]
) -> None:
    redis = aioredis.Redis.from_url(private_redis.url)
    # a poll's direct read may take one k8s_api_request_timeout, retries included
    spawner = make_spawner(redis_url=private_redis.url, k8s_api_request_timeout=1)
    strict = make_spawner(
        redis_url=private_redis.url,
        k8s_api_request_timeout=1,
        request_failed_poll_keep_running=False,
    )
    try:
        async with cacher_for(sim, private_redis.url, redis):
            await spawner.start()
            private_redis.stop()
            assert await spawner.poll() is None  # the API says it runs
            await sim.fault({"action": "fail", "verb": "get", "resource": "pods", "status": 503})
            assert await spawner.poll() is None  # nobody knows: kept running
            assert await strict.poll() == 1  # unless the policy says otherwise
            await sim.fault({"action": "clear"})
            sim.store.remove("pods", NAMESPACE, POD)
            assert await spawner.poll() == 1  # the API knows it is gone
    finally:
        private_redis.start()
        await redis.aclose()


async def test_a_restarted_hub_answers_poll_from_saved_state_and_the_api_only_confirms_a_stop(
    sim: Any,
    redis: aioredis.Redis,
    redis_server: RedisServer,
    make_spawner: Callable[..., KubeCacheSpawner],
) -> None:
    async with cacher_for(sim, redis_server.url, redis):
        first = make_spawner()
        await first.start()
        state = first.get_state()
        await CacheClient.close_all()  # the old hub process is gone
        await KubeApi.close_all()
        restarted = make_spawner()
        restarted.load_state(state)
        before = pod_requests(await sim.stats())
        assert await restarted.poll() is None
        assert pod_requests(await sim.stats()) == before
        sim.store.remove("pods", NAMESPACE, POD)
        await wait_for(lambda: _stopped(restarted), message="poll noticing the pod is gone")
        # "stopped" is never the cache's word alone: one GET confirmed it
        assert pod_requests(await sim.stats()) == {**before, "get": before.get("get", 0) + 1}


async def _stopped(spawner: KubeCacheSpawner) -> bool:
    return await spawner.poll() == 1
