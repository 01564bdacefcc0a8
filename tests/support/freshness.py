"""How a reader (a hub) judges the cache on one Redis node, for tests that sample it."""

from __future__ import annotations

import redis.asyncio as aioredis

from kubecache.contract import (
    CacheHealth,
    Freshness,
    Keys,
    health_freshness,
    redis_time_ms,
)


async def node_freshness(
    client: aioredis.Redis, *, keys: Keys | None = None, stale_after_ms: int = 15_000
) -> Freshness:
    """:meth:`CacheHealth.freshness` of the node ``client`` reads, with its own replid."""
    keys = keys or Keys()
    pipe = client.pipeline(transaction=True)
    pipe.hgetall(keys.health)
    pipe.time()
    pipe.info("replication")
    fields, time_reply, replication = await pipe.execute()
    return health_freshness(
        CacheHealth.from_redis(fields),
        now_ms=redis_time_ms(time_reply),
        stale_after_ms=stale_after_ms,
        node_replid=str(replication.get("master_replid", "")),
    )
