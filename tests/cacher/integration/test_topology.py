"""Redis topologies the cacher refuses, and a node that stops being the primary."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from kubecache.cacher.app import Cacher
from kubecache.contract import CacheHealth, Keys
from tests.cacher.integration.checker import Checker
from tests.cacher.integration.conftest import create_pods
from tests.support.cacher import cacher_settings, running_cacher
from tests.support.redis_server import RedisServer, free_port
from tests.support.waiting import wait_for


@pytest.fixture
def cluster_node() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start(
        "--cluster-enabled", "yes",
        "--cluster-config-file", str(server.dir / "nodes.conf"),
        "--cluster-port", str(free_port()),  # the default (port + 10000) may not exist
    )  # fmt: skip
    yield server
    server.close()


async def test_a_redis_cluster_node_is_refused_with_a_clear_error(
    kubesim: Any, cluster_node: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    cacher = Cacher(cacher_settings(kubesim, cluster_node.url))
    with caplog.at_level(logging.ERROR, logger="kubecache.cacher.app"):
        assert await cacher.run() == 2
    assert "Redis Cluster node" in caplog.text
    assert "redis+sentinel://" in caplog.text


async def test_a_primary_turned_replica_behind_a_plain_url_is_a_failover_and_is_rewritten(
    kubesim: Any, private_redis: RedisServer
) -> None:
    store = kubesim.store
    create_pods(store, [f"pod-{i}" for i in range(10)])
    other = RedisServer()
    other.start()
    node = aioredis.Redis.from_url(private_redis.url)
    promoted = aioredis.Redis.from_url(other.url)
    checker = Checker(node, store)
    try:
        async with running_cacher(cacher_settings(kubesim, private_redis.url)) as cacher:
            await checker.converged()
            # The other node copies this one, is promoted, and this one follows it:
            # the URL now names a replica.
            await promoted.replicaof("127.0.0.1", private_redis.port)
            await wait_for(lambda: link_up(promoted), timeout=10, message="the copy to be in sync")
            await promoted.replicaof("NO", "ONE")
            await node.replicaof("127.0.0.1", other.port)
            await wait_for(
                lambda: cacher.metrics.value("kubecache_cacher_failovers_total") >= 1,
                timeout=10,
                message="the failover",
            )
            create_pods(store, ["while-a-replica"])
            await node.replicaof("NO", "ONE")  # the address is a primary again
            await checker.converged()
            health = CacheHealth.from_redis(await node.hgetall(Keys().health))
            info = await node.info("replication")
            assert health is not None and health.primary_replid == info["master_replid"]
            assert health.failovers >= 1
    finally:
        await node.aclose()
        await promoted.aclose()
        other.close()


async def link_up(client: aioredis.Redis) -> bool:
    return (await client.info("replication")).get("master_link_status") == "up"


async def test_a_redis_user_without_info_is_refused_with_the_grant_to_add(
    kubesim: Any, private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    admin = aioredis.Redis.from_url(private_redis.url)
    await admin.acl_setuser(
        "cacher", enabled=True, passwords=["+secret"], keys=["*"],
        commands=["+@read", "+@write", "+@scripting", "+@connection", "+@stream", "+time"],
    )  # fmt: skip
    await admin.aclose()
    url = f"redis://cacher:secret@127.0.0.1:{private_redis.port}/0"
    cacher = Cacher(cacher_settings(kubesim, url))
    with caplog.at_level(logging.ERROR, logger="kubecache.cacher.app"):
        assert await cacher.run() == 2
    assert "+info" in caplog.text
