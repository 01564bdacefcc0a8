"""Doubles for spawner tests: a cache writer named by behaviour, and a minimal hub.

:class:`CacheWriterDouble` writes Redis exactly as the cacher's write scripts
do (cacher/lua_scripts.py: the same bytes, through the contract's encoders; a record
and its feed entry in one MULTI; a live pod has no tombstone, a deleted one
has), so the spawner's
cache client is tested against a real redis-server without a cacher:
a fresh cache, a stale cache, an empty cache; an unreachable cache is a
stopped ``private_redis``.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import redis.asyncio as aioredis

from kubecache.contract import (
    DEFAULT_PREFIX,
    SCHEMA_VERSION,
    CacheHealth,
    EventRecord,
    FeedEntry,
    Keys,
    PodRecord,
    encode_event_record,
    encode_pod_record,
    pod_key,
    redis_time_ms,
)

EPOCH = 1_700_000_000_000
#: How long a deleted pod's event log stays (the cacher's default ``deleted_events_ttl``).
DELETED_EVENTS_TTL = 600


def feed_fields(entry: FeedEntry) -> dict[str, str]:
    """The stream fields of a feed entry as the cacher's scripts XADD them: strings, in order."""
    return {field: str(entry[field]) for field in ("kind", "key", "rv", "epoch")}  # type: ignore[literal-required]


class CacheWriterDouble:
    """Writes the contract like the cacher's leader would."""

    def __init__(
        self, redis: aioredis.Redis, *, prefix: str = DEFAULT_PREFIX, feed_maxlen: int | None = None
    ) -> None:
        self.redis = redis
        self.keys = Keys(prefix)
        self.epoch = EPOCH
        self.feed_maxlen = feed_maxlen

    async def now_ms(self) -> int:
        return redis_time_ms(await self.redis.time())

    async def _health(
        self,
        *,
        synced: bool,
        heartbeat_ms: int,
        pods_watch: str = "ok",
        schema: int = SCHEMA_VERSION,
        namespaces: str = "",
        pod_selector: str = "component=singleuser-server",
        primary_replid: str = "",
    ) -> None:
        health = CacheHealth(
            namespaces=namespaces,
            pod_selector=pod_selector,
            primary_replid=primary_replid,
            schema=schema,
            leader="double",
            epoch=self.epoch,
            synced=synced,
            heartbeat_ms=heartbeat_ms,
            pods_watch=pods_watch,
        )
        await self.redis.hset(self.keys.health, mapping=health.to_redis())  # type: ignore[arg-type]

    async def fresh(self, **watching: str) -> None:
        """A synced cache with a heartbeat now; ``namespaces``/``pod_selector``: what it watches;
        ``primary_replid``: the Redis primary the health claims to be written on."""
        await self._health(synced=True, heartbeat_ms=await self.now_ms(), **watching)

    async def stale(self, *, age_ms: int = 600_000) -> None:
        """A synced cache whose last heartbeat is ``age_ms`` old (the cacher stopped)."""
        await self._health(synced=True, heartbeat_ms=await self.now_ms() - age_ms)

    async def not_synced(self) -> None:
        await self._health(synced=False, heartbeat_ms=await self.now_ms())

    async def empty(self) -> None:
        """No cacher ever wrote (or Redis was flushed)."""
        await self.redis.delete(self.keys.health, self.keys.pods, self.keys.feed)

    async def _feed(self, pipe: Any, kind: str, key: str, rv: int) -> None:
        entry: FeedEntry = {"kind": kind, "key": key, "rv": rv, "epoch": self.epoch}  # type: ignore[typeddict-item]
        if self.feed_maxlen is None:
            pipe.xadd(self.keys.feed, feed_fields(entry))
        else:
            pipe.xadd(
                self.keys.feed, feed_fields(entry), maxlen=self.feed_maxlen, approximate=False
            )

    async def put_pod(self, record: PodRecord) -> None:
        key = pod_key(record["namespace"], record["name"])
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.pods, key, encode_pod_record(record))
            pipe.hdel(self.keys.pod_rv, key)  # P pod-rv holds tombstones only
            pipe.persist(self.keys.events(key))  # a live pod's log does not expire
            await self._feed(pipe, "pod", key, record["rv"])
            await pipe.execute()

    async def remove_pod(self, namespace: str, name: str, *, rv: int = 0) -> None:
        key = pod_key(namespace, name)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self.keys.pods, key)
            pipe.hset(self.keys.pod_rv, key, str(rv))
            pipe.expire(self.keys.events(key), DELETED_EVENTS_TTL)
            await self._feed(pipe, "gone", key, rv)
            await pipe.execute()

    async def add_event(self, namespace: str, name: str, event: EventRecord) -> None:
        key = pod_key(namespace, name)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(self.keys.events(key), encode_event_record(event))
            await self._feed(pipe, "event", key, event["rv"])
            await pipe.execute()

    async def announce_health(self) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            await self._feed(pipe, "health", "", 0)
            await pipe.execute()


# --------------------------------------------------------------------------
# A minimal hub for constructing spawners (JupyterHub's MockUser/MockHub in spirit)


class MockServer:
    def __init__(self) -> None:
        self.ip = ""
        self.port = 0
        self.base_url = "/user/mock/"
        self.url = "http://127.0.0.1:8888/user/mock/"


def mock_user(name: str = "alice", *, user_id: int = 1) -> Any:
    """An object with what spawners read from ``spawner.user``."""
    return SimpleNamespace(
        name=name,
        id=user_id,
        url=f"/user/{name}/",
        base_url=f"/user/{name}/",
        escaped_name=name,
        progress_url=lambda server_name="": f"/hub/api/users/{name}/server/progress",
        settings={},
        spawners={},
        server=None,
    )


def mock_hub() -> Any:
    return SimpleNamespace(
        public_host="",
        url="http://hub:8081/hub/",
        base_url="/hub/",
        api_url="http://hub:8081/hub/api",
        public_url="",
    )


class MockDB:
    def __init__(self) -> None:
        self.commits = 0

    def commit(self) -> None:
        self.commits += 1
