"""A frozen (SIGSTOP) or closed Redis is waited on once, not per call, and the client
recovers by itself when Redis returns (issue 20: degraded stays fast)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Iterator

import pytest
import redis.asyncio as aioredis

from kubecache.redis_connection import RedisSettings
from kubecache.spawner.cache_client import CacheClient, CacheUnavailable
from tests.spawner.support import CacheWriterDouble
from tests.spawner.unit.records import pod
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_for

KEY = "jhub/jupyter-alice"


@contextlib.contextmanager
def frozen(server: RedisServer) -> Iterator[None]:
    """redis-server stopped with SIGSTOP: connections open, nothing answered."""
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.process.pid, signal.SIGCONT)


async def fresh_client(server: RedisServer, log: logging.Logger) -> CacheClient:
    redis = aioredis.Redis.from_url(server.url)
    writer = CacheWriterDouble(redis)
    await writer.fresh()
    await writer.put_pod(pod())
    await redis.aclose()
    client = CacheClient(
        RedisSettings(url=server.url), prefix="kubecache:v1:", block_seconds=1.0, log=log
    )
    client.start()
    assert await client.wait_positioned(10), "the feed reader never positioned"
    assert (await client.get_pod(KEY)).record is not None
    return client


async def reads_fail_fast_then_recover(client: CacheClient) -> None:
    """The first read fails (after the short read timeout); the next ones at once."""
    with pytest.raises(CacheUnavailable):
        await client.get_pod(KEY)
    assert not client.available
    before = client.stats.fast_failures
    for _ in range(20):
        with pytest.raises(CacheUnavailable, match="reading the Kubernetes API"):
            await client.get_pod(KEY)
    with pytest.raises(CacheUnavailable):
        await client.events(KEY, "uid")
    assert client.stats.fast_failures == before + 21  # none of them waited on Redis


async def test_a_frozen_redis_is_waited_on_once_and_the_client_recovers_by_itself(
    private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    hub_log = logging.getLogger("JupyterHub.test")
    client = await fresh_client(private_redis, hub_log)
    try:
        with caplog.at_level(logging.INFO, logger="JupyterHub.test"), frozen(private_redis):
            await reads_fail_fast_then_recover(client)
        await wait_for(lambda: client.available, timeout=15, message="the breaker closed")
        assert (await client.get_pod(KEY)).record is not None
    finally:
        await client.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "JupyterHub.test"]
    assert sum("did not answer" in line for line in lines) == 1, lines  # once, not per read


async def test_a_closed_redis_fails_reads_at_once_and_the_client_recovers_when_it_returns(
    private_redis: RedisServer,
) -> None:
    client = await fresh_client(private_redis, logging.getLogger("JupyterHub.test"))
    try:
        private_redis.stop()
        await reads_fail_fast_then_recover(client)
        private_redis.start()
        await wait_for(lambda: client.available, timeout=15, message="the breaker closed")
        # Redis came back empty: reading works again (the pod is gone from the cache)
        assert (await client.get_pod(KEY)).record is None
    finally:
        await client.close()
