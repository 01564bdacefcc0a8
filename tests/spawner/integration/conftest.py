"""A cluster for spawner integration tests: kubesim + real redis-server + a running cacher."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import redis.asyncio as aioredis

from kubecache.cacher.app import Cacher
from kubecache.cacher.settings import Settings
from kubecache.contract import Freshness, Keys, health_freshness, redis_time_ms
from kubecache.spawner import KubeCacheSpawner
from kubecache.spawner.cache_client import CacheClient
from kubecache.spawner.kube_api import KubeApi
from tests.spawner.support import mock_hub, mock_user
from tests.support.cacher import cacher_settings as test_cacher_settings
from tests.support.cacher import running_cacher
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_for

NAMESPACE = "jhub"


def cacher_settings(kubesim: Any, redis_url: str, **overrides: Any) -> Settings:
    """A test cacher of its own identity (see tests.support.cacher)."""
    return test_cacher_settings(
        kubesim, redis_url, **{"identity": "cacher-spawner-tests", **overrides}
    )


async def cache_is_fresh(redis: aioredis.Redis, stale_after_ms: int = 2000) -> bool:
    health = await redis.hgetall(Keys().health)
    from kubecache.contract import CacheHealth

    now = redis_time_ms(await redis.time())
    return (
        health_freshness(CacheHealth.from_redis(health), now_ms=now, stale_after_ms=stale_after_ms)
        is Freshness.FRESH
    )


@asynccontextmanager
async def cacher_for(kubesim: Any, redis_url: str, redis: aioredis.Redis) -> AsyncIterator[Cacher]:
    async with running_cacher(cacher_settings(kubesim, redis_url)) as cacher:
        await wait_for(lambda: cache_is_fresh(redis), timeout=20, message="a fresh cache")
        yield cacher


@pytest.fixture
async def cluster(
    kubesim: Any, redis: aioredis.Redis, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Any]:
    """kubesim with namespace jhub, KUBECONFIG pointing at it, and a fresh cache."""
    monkeypatch.setenv("KUBECONFIG", str(kubesim.kubeconfig_path))
    if kubesim.store.get("namespaces", None, NAMESPACE) is None:
        kubesim.store.create("namespaces", None, {"metadata": {"name": NAMESPACE}})
    async with cacher_for(kubesim, redis_server.url, redis) as cacher:
        kubesim.cacher = cacher
        yield kubesim
    await CacheClient.close_all()
    await KubeApi.close_all()


@pytest.fixture
def make_spawner(redis_server: RedisServer) -> Callable[..., KubeCacheSpawner]:
    def make(user: str = "alice", **config: Any) -> KubeCacheSpawner:
        config.setdefault("redis_url", redis_server.url)
        config.setdefault("namespace", NAMESPACE)
        config.setdefault("image", "quay.io/jupyter/base-notebook:latest")
        config.setdefault("start_timeout", 20)
        config.setdefault("cache_stale_after", 2.0)
        config.setdefault("storage_pvc_ensure", False)
        spawner = KubeCacheSpawner(user=mock_user(user), hub=mock_hub(), **config)
        spawner.api_token = "token-" + user
        return spawner

    return make
