"""Readers know about Redis failovers: health written on another primary is not trusted.

Real redis-servers: a replica promoted with REPLICAOF NO ONE gets a new
``master_replid``; the hub reads it with every pipelined cache read and
distrusts health written on the old primary until the cacher takes over.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from kubecache.contract import Freshness
from kubecache.redis_connection import RedisSettings
from kubecache.spawner.cache_client import CacheClient
from tests.spawner.support import CacheWriterDouble
from tests.spawner.unit.records import running
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_for

KEY = "jhub/jupyter-alice"
STALE_AFTER_MS = 10_000


async def replid(redis: aioredis.Redis) -> str:
    return str((await redis.info("replication"))["master_replid"])


@pytest.fixture
async def replica(private_redis: RedisServer) -> AsyncIterator[RedisServer]:
    server = RedisServer()
    server.start("--replicaof", private_redis.host, str(private_redis.port))
    yield server
    server.close()


async def test_health_written_on_another_primary_is_failed_over_until_rewritten(
    private_redis: RedisServer, replica: RedisServer
) -> None:
    primary = aioredis.Redis.from_url(private_redis.url)
    follower = aioredis.Redis.from_url(replica.url)
    client = CacheClient(RedisSettings(url=replica.url), prefix="kubecache:v1:")
    try:
        writer = CacheWriterDouble(primary)
        await writer.fresh(primary_replid=await replid(primary))
        await writer.put_pod(running())

        async def synced() -> bool:
            info = await follower.info("replication")
            return bool(
                info.get("master_link_status") == "up" and await follower.hlen(writer.keys.pods)
            )

        await wait_for(synced, timeout=15, message="the replica in sync")
        snapshot = await client.get_pod(KEY)
        assert snapshot.node_replid == await replid(primary)  # a replica shares its primary's
        assert snapshot.freshness(stale_after_ms=STALE_AFTER_MS) is Freshness.FRESH

        await follower.execute_command("REPLICAOF", "NO", "ONE")  # promoted
        snapshot = await client.get_pod(KEY)
        assert snapshot.record is not None  # the old data is there ...
        assert snapshot.node_replid != await replid(primary)
        # ... but not trusted, although the heartbeat is recent
        assert snapshot.freshness(stale_after_ms=STALE_AFTER_MS) is Freshness.FAILED_OVER

        # the cacher takes over on the new primary: its health names it
        await CacheWriterDouble(follower).fresh(primary_replid=await replid(follower))
        snapshot = await client.get_pod(KEY)
        assert snapshot.freshness(stale_after_ms=STALE_AFTER_MS) is Freshness.FRESH
    finally:
        await client.close()
        await primary.aclose()
        await follower.aclose()


async def test_a_hub_user_without_info_reads_on_without_the_check_and_says_so_once(
    private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    admin = aioredis.Redis.from_url(private_redis.url)
    await admin.execute_command(
        "ACL", "SETUSER", "hub", "on", ">hub-secret", "~kubecache:*", "+@all", "-info"
    )
    settings = RedisSettings(url=private_redis.url, username="hub", password="hub-secret")
    client = CacheClient(settings, prefix="kubecache:v1:")
    try:
        writer = CacheWriterDouble(admin)
        await writer.fresh(primary_replid=await replid(admin))
        await writer.put_pod(running())
        with caplog.at_level(logging.WARNING, logger="kubecache.spawner.replid_probe"):
            for _ in range(3):
                snapshot = await client.get_pod(KEY)
                assert snapshot.record is not None
                assert snapshot.node_replid is None
                assert snapshot.freshness(stale_after_ms=STALE_AFTER_MS) is Freshness.FRESH
        warnings = [r for r in caplog.records if "cannot run INFO" in r.getMessage()]
        assert len(warnings) == 1
        assert "+info" in warnings[0].getMessage()
        assert client.stats.pipelines == 3
    finally:
        await client.close()
        await admin.aclose()


async def test_the_node_replid_comes_with_every_read(redis_server: RedisServer) -> None:
    admin = aioredis.Redis.from_url(redis_server.url)
    client = CacheClient(RedisSettings(url=redis_server.url), prefix="kubecache:v1:")
    try:
        await CacheWriterDouble(admin).fresh(primary_replid="an-old-primary")
        snapshot = await client.get_pod(KEY)
        assert snapshot.node_replid == await replid(admin)
        assert snapshot.freshness(stale_after_ms=STALE_AFTER_MS) is Freshness.FAILED_OVER
    finally:
        await client.close()
        await admin.aclose()
