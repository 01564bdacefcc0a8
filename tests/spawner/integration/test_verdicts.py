"""Destructive verdicts rest on the API: a lying or frozen cache destroys nothing.

kubesim + a real redis-server + the real cacher. The cache is made to lie
(a forged record, a record deleted behind the cacher's back) or to freeze
(kubesim stalls every watch while the cacher keeps beating, so the cache
looks fresh); the spawner must neither stop, fail nor delete a server that
runs in the API, nor conclude a pod is gone while it still exists.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from kubecache.contract import (
    FeedEntry,
    Keys,
    PodRecord,
    decode_pod_record,
    encode_pod_record,
    pod_key,
)
from kubecache.spawner import KubeCacheSpawner
from tests.spawner.integration.conftest import NAMESPACE, cache_is_fresh, cacher_settings
from tests.spawner.support import feed_fields
from tests.support.cacher import running_cacher
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_for

POD = "jupyter-alice"
KEY = pod_key(NAMESPACE, POD)
KEYS = Keys()


async def forge(redis: aioredis.Redis, change: Callable[[PodRecord], None]) -> None:
    """Rewrite the pod's record as told and announce it on the feed (wakes the waiters)."""
    raw = await redis.hget(KEYS.pods, KEY)
    assert raw is not None, "no record to forge"
    record = decode_pod_record(raw, key=KEY)
    change(record)
    health = await redis.hgetall(KEYS.health)
    epoch = int(health[b"epoch"])
    entry: FeedEntry = {"kind": "pod", "key": KEY, "rv": record["rv"], "epoch": epoch}
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(KEYS.pods, KEY, encode_pod_record(record))
        pipe.xadd(KEYS.feed, feed_fields(entry))
        await pipe.execute()


async def forge_gone(redis: aioredis.Redis) -> None:
    health = await redis.hgetall(KEYS.health)
    entry: FeedEntry = {"kind": "gone", "key": KEY, "rv": 0, "epoch": int(health[b"epoch"])}
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hdel(KEYS.pods, KEY)
        pipe.xadd(KEYS.feed, feed_fields(entry))
        await pipe.execute()


def terminated(record: PodRecord) -> None:
    record["phase"] = "Failed"
    record["ready"] = False
    for container in record["containers"]:
        container["state"] = "terminated"
        container["exit_code"] = 137
        container["ready"] = False


def crash_looping(record: PodRecord) -> None:
    for container in record["containers"]:
        container["state"] = "waiting"
        container["reason"] = "CrashLoopBackOff"


def pod_in(cluster: Any) -> dict[str, Any] | None:
    pod: dict[str, Any] | None = cluster.store.get("pods", NAMESPACE, POD)
    return pod


async def test_a_forged_terminated_record_neither_stops_nor_deletes_a_running_server(
    cluster: Any, redis: aioredis.Redis, make_spawner: Callable[..., KubeCacheSpawner]
) -> None:
    spawner = make_spawner()  # delete_stopped_pods: a believed verdict deletes the pod
    await spawner.start()
    uid = pod_in(cluster)["metadata"]["uid"]  # type: ignore[index]
    await forge(redis, terminated)
    for _ in range(3):
        assert await spawner.poll() is None
    pod = pod_in(cluster)
    assert pod is not None and pod["metadata"]["uid"] == uid
    assert "deletionTimestamp" not in pod["metadata"]
    await forge_gone(redis)
    assert await spawner.poll() is None
    assert pod_in(cluster) is not None


async def test_a_start_is_not_failed_by_a_forged_failure(
    cluster: Any, redis: aioredis.Redis, make_spawner: Callable[..., KubeCacheSpawner]
) -> None:
    spawner = make_spawner(extra_annotations={"kubesim.dev/ready-after": "2"})
    start = spawner.start()
    await wait_for(lambda: redis.hexists(KEYS.pods, KEY), message="the new pod in the cache")
    await forge(redis, crash_looping)  # would fail the start at once (start_failure_reasons)
    await forge(redis, terminated)
    url = await asyncio.wait_for(start, 30)
    pod = pod_in(cluster)
    assert pod is not None
    assert url == f"http://{pod['status']['podIP']}:8888"


async def test_stop_waits_for_the_api_to_say_gone_while_the_cache_already_does(
    cluster: Any, redis: aioredis.Redis, make_spawner: Callable[..., KubeCacheSpawner]
) -> None:
    spawner = make_spawner(
        extra_annotations={"kubesim.dev/ignore-sigterm": "true"}, delete_grace_period=2
    )
    await spawner.start()
    stop = asyncio.ensure_future(spawner.stop())
    await wait_for(
        lambda: (pod_in(cluster) or {}).get("metadata", {}).get("deletionTimestamp"),
        message="the pod terminating",
    )
    await forge_gone(redis)
    await asyncio.wait_for(stop, 30)
    assert pod_in(cluster) is None  # stop() returned only once the API said so


async def test_a_start_whose_cache_is_frozen_notices_readiness_from_the_api(
    kubesim: Any,
    redis: aioredis.Redis,
    redis_server: RedisServer,
    make_spawner: Callable[..., KubeCacheSpawner],
    monkeypatch: Any,
) -> None:
    """issue 9: a silently stalled watch failed a start whose pod was Running in the API."""
    monkeypatch.setenv("KUBECONFIG", str(kubesim.kubeconfig_path))
    kubesim.store.create("namespaces", None, {"metadata": {"name": NAMESPACE}})
    # a cacher that would notice the stall only after two minutes: the cache looks fresh
    settings = cacher_settings(kubesim, redis_server.url, stall_timeout=120.0)
    async with running_cacher(settings):
        await wait_for(lambda: cache_is_fresh(redis), timeout=20, message="a fresh cache")
        await kubesim.fault({"action": "stall_watches"})
        spawner = make_spawner(extra_annotations={"kubesim.dev/ready-after": "1"}, start_timeout=20)
        url = await asyncio.wait_for(spawner.start(), 30)
        assert await cache_is_fresh(redis), "the cache was to look fresh all along"
        assert not await redis.hexists(KEYS.pods, KEY), "the frozen cache saw the pod"
        pod = kubesim.store.get("pods", NAMESPACE, POD)
        assert url == f"http://{pod['status']['podIP']}:8888"
        assert await spawner.poll() is None  # absent from a fresh cache, running in the API
        await kubesim.fault({"action": "clear"})


async def test_a_start_waiting_on_a_quiet_cache_reads_the_api_at_a_modest_rate(
    cluster: Any, make_spawner: Callable[..., KubeCacheSpawner]
) -> None:
    # cache_stale_after 2 s: a quiet wait lasts 1 s, then the API is read once
    spawner = make_spawner(extra_annotations={"kubesim.dev/never-ready": "true"}, start_timeout=10)
    before = (await cluster.stats())["requests"].get("get", {}).get("pods", 0)
    with pytest.raises(TimeoutError, match="running but not ready"):  # the API's last word
        await spawner.start()
    gets = (await cluster.stats())["requests"].get("get", {}).get("pods", 0) - before
    # the start waits 5.5 s (start_timeout 10, less JupyterHub's margin and one request
    # timeout): at most one read per quiet second, and the last word at the deadline
    assert 1 <= gets <= 8, gets
