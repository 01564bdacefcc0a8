"""The hub's shared cache client against a real redis-server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from kubecache.contract import MIN_FEED_MAXLEN, Freshness, Keys
from kubecache.redis_connection import RedisSettings
from kubecache.spawner.cache_client import (
    RECORD_CHANGES,
    CacheClient,
    CacheUnavailable,
    FeedBatch,
    FeedReader,
)
from tests.spawner.support import CacheWriterDouble
from tests.spawner.unit.records import event, pod, running
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_for

KEY = "jhub/jupyter-alice"
STALE_AFTER_MS = 10_000


async def _client(url: str) -> CacheClient:
    client = CacheClient.shared(RedisSettings(url=url), prefix="kubecache:v1:", block_seconds=1.0)
    assert await client.wait_positioned(10), "the feed reader never positioned"
    return client


@pytest.fixture
async def writer(redis: aioredis.Redis) -> CacheWriterDouble:
    double = CacheWriterDouble(redis)
    await double.fresh()
    return double


@pytest.fixture
async def client(
    redis_server: RedisServer, writer: CacheWriterDouble
) -> AsyncIterator[CacheClient]:
    client = await _client(redis_server.url)
    yield client
    await client.close()


async def test_one_client_is_shared_per_loop_and_settings(client: CacheClient) -> None:
    again = CacheClient.shared(client.settings, prefix="kubecache:v1:")
    assert again is client


async def test_a_waiter_wakes_on_a_feed_entry_for_its_pod_only(
    client: CacheClient, writer: CacheWriterDouble
) -> None:
    async with client.watch(KEY) as mine, client.watch("jhub/jupyter-bob") as other:
        await writer.put_pod(pod())
        assert await mine.wait(10)
        assert mine.why == "pod"
        assert not await other.wait(0.05)


async def test_a_waiter_is_woken_with_its_pod_read_in_the_same_round_trip(
    client: CacheClient, writer: CacheWriterDouble, redis: aioredis.Redis
) -> None:
    async with client.watch(KEY) as mine, client.watch("jhub/jupyter-bob") as other:
        # the read blocked before the waiters came reads no record; the next ones do
        await writer.put_pod(pod(name="jupyter-bob"))
        assert await other.wait(10)
        await redis.config_resetstat()
        reads_before = client.stats.pipelines
        await writer.put_pod(running(rv=42))
        assert await mine.wait(10)
        snapshot = mine.take_snapshot()
        assert snapshot is not None and snapshot.record is not None
        assert snapshot.record["rv"] == 42 and snapshot.record["ready"]
        assert snapshot.freshness(stale_after_ms=STALE_AFTER_MS) is Freshness.FRESH
        assert mine.take_snapshot() is None  # taken once
        assert client.stats.pipelines == reads_before  # no read after the wake-up
        stats = await redis.info("commandstats")
        assert "cmdstat_xinfo" not in stats


async def test_a_health_entry_wakes_every_waiter(
    client: CacheClient, writer: CacheWriterDouble
) -> None:
    async with client.watch(KEY) as a, client.watch("jhub/jupyter-bob") as b:
        await writer.announce_health()
        assert await a.wait(10)
        assert await b.wait(10)


async def test_a_record_waiter_is_not_woken_by_the_event_entries_of_its_pod(
    client: CacheClient, writer: CacheWriterDouble
) -> None:
    # start() and stop() judge the record only: an event entry woke them for a useless read
    async with client.watch(KEY) as everything, client.watch(KEY, RECORD_CHANGES) as record:
        await writer.add_event("jhub", "jupyter-alice", event("e1", "Successfully assigned"))
        assert await everything.wait(10)
        assert everything.why == "event"
        # both waiters were looked at in the step that woke the first one
        assert not await record.wait(0)
        await writer.put_pod(running(rv=43))
        assert await record.wait(10)
        assert record.why == "pod"
        await writer.remove_pod("jhub", "jupyter-alice", rv=44)
        assert await record.wait(10)
        assert record.why == "gone"
        await writer.announce_health()  # and whatever wakes every waiter
        assert await record.wait(10)


def _observe_reads(client: CacheClient) -> Callable[[], bool]:
    """Wrap the client's feed reader step: the returned check says whether a read is being
    packed, sent or awaited now."""
    reading = False
    step = client.feed.step

    async def observed(prefetch: list[str] | None = None) -> FeedBatch:
        nonlocal reading
        reading = True
        try:
            return await step(prefetch)
        finally:
            reading = False

    client.feed.step = observed  # type: ignore[method-assign]
    return lambda: reading


async def test_woken_waiters_run_before_the_feed_reader_reads_again(
    client: CacheClient, writer: CacheWriterDouble
) -> None:
    reading = _observe_reads(client)
    async with client.watch(KEY) as watch:
        await writer.put_pod(pod(rv=2))  # the read in progress was not observed; the next is
        assert await watch.wait(10)
        # no wake left over (the client's start, rv 2 woken twice): the next is rv 3's, taken
        # as the reader hands over (a stale one returned while its next read was in flight)
        await wait_for(
            lambda: _feed_read_blocked(client.settings.url), message="the feed read blocked"
        )
        await watch.wait(0)

        async def woken() -> bool:
            """Whether the reader was reading when this waiter ran after its wake."""
            assert await watch.wait(10)
            return reading()

        # waiting before the write: the write's own reply may be handled after the reader's
        looking = asyncio.ensure_future(woken())
        await writer.put_pod(running(rv=3))
        # the reader handed over to the woken waiter before packing and sending its next read
        assert not await looking


async def test_reads_in_one_loop_tick_become_one_pipeline(
    client: CacheClient, writer: CacheWriterDouble, redis: aioredis.Redis
) -> None:
    await writer.put_pod(running())
    await writer.put_pod(pod(name="jupyter-bob"))
    await redis.config_resetstat()
    before = client.stats.pipelines
    keys = [KEY, "jhub/jupyter-bob", "jhub/nobody"] * 20
    snapshots = await asyncio.gather(*(client.get_pod(k) for k in keys))
    assert client.stats.pipelines - before == 1
    stats = await redis.info("commandstats")
    assert stats["cmdstat_hmget"]["calls"] == 1
    # every question, the repeated ones of the same tick too, gets its own pod
    assert [s.record["name"] if s.record else None for s in snapshots] == [
        "jupyter-alice",
        "jupyter-bob",
        None,
    ] * 20
    assert [s.key for s in snapshots] == keys
    assert all(s.freshness(stale_after_ms=STALE_AFTER_MS) is Freshness.FRESH for s in snapshots)


async def test_a_question_given_up_in_a_batch_leaves_the_others_answered(
    client: CacheClient, writer: CacheWriterDouble
) -> None:
    await writer.put_pod(running())
    given_up = asyncio.ensure_future(client.get_pod(KEY))
    others = [asyncio.ensure_future(client.get_pod(KEY)) for _ in range(3)]
    await asyncio.sleep(0)  # one yield (no timing): all four asked, one batch, not yet sent
    given_up.cancel()
    snapshots = await asyncio.gather(*others)
    assert all(s.record is not None and s.record["name"] == "jupyter-alice" for s in snapshots)
    assert given_up.cancelled()


async def test_freshness_tells_a_stale_an_unsynced_and_an_empty_cache_apart(
    client: CacheClient, writer: CacheWriterDouble
) -> None:
    await writer.stale()
    snapshot = await client.get_pod(KEY)
    assert snapshot.freshness(stale_after_ms=STALE_AFTER_MS) is Freshness.STALE
    await writer.not_synced()
    snapshot = await client.get_pod(KEY)
    assert snapshot.freshness(stale_after_ms=STALE_AFTER_MS) is Freshness.NOT_SYNCED
    await writer.empty()
    snapshot = await client.get_pod(KEY)
    assert snapshot.freshness(stale_after_ms=STALE_AFTER_MS) is Freshness.UNKNOWN


async def test_events_are_those_of_the_pod_with_the_given_uid(
    client: CacheClient, writer: CacheWriterDouble
) -> None:
    await writer.add_event("jhub", "jupyter-alice", event("old", "old pod", pod_uid="old-uid"))
    await writer.add_event("jhub", "jupyter-alice", event("new", "this pod"))
    events = await client.events(KEY, "uid-of-this-spawn")
    assert [e["message"] for e in events] == ["this pod"]


async def test_an_unreachable_redis_raises_cache_unavailable() -> None:
    client = CacheClient(RedisSettings(url="redis://127.0.0.1:1/0"), prefix="kubecache:v1:")
    client.start()
    try:
        with pytest.raises(CacheUnavailable, match="cannot read the cache"):
            await client.get_pod(KEY)
        with pytest.raises(CacheUnavailable):
            await client.events(KEY, "uid")
    finally:
        await client.close()


async def test_an_entry_written_while_the_reader_is_disconnected_is_not_missed(
    client: CacheClient, writer: CacheWriterDouble, redis: aioredis.Redis
) -> None:
    async with client.watch(KEY) as watch:
        await redis.client_kill_filter(_type="normal", skipme=True)
        await writer.put_pod(pod())
        await wait_for(lambda: watch.why == "pod", message="the waiter woken by the pod entry")


async def _feed_read_blocked(url: str) -> bool:
    """Whether the hub's feed connection is blocked in its XREAD (CLIENT LIST)."""
    admin = aioredis.Redis.from_url(url)
    try:
        clients = await admin.client_list()
    finally:
        await admin.aclose()
    return any(
        c.get("name") == "kubecache-feed" and c.get("cmd") == "xread" and "b" in c.get("flags", "")
        for c in clients
    )


async def test_waiters_wake_after_a_redis_restart_and_see_new_entries(
    private_redis: RedisServer,
) -> None:
    client = await _client(private_redis.url)
    try:
        async with client.watch(KEY) as watch:
            # the restart must cut a read in flight (one sent before it would find the new
            # server on a fresh connection, redis-py reconnecting unseen)
            await wait_for(
                lambda: _feed_read_blocked(private_redis.url), message="the feed read blocked"
            )
            private_redis.restart()
            redis = aioredis.Redis.from_url(private_redis.url)
            writer = CacheWriterDouble(redis)
            await writer.fresh()
            # woken by the outage and by the reconnect; then the new entry must arrive
            await wait_for(
                lambda: client.connected and client.stats.reconnects >= 1,
                message="the reader reconnected",
            )
            watch.why = ""
            await writer.put_pod(pod())
            await wait_for(lambda: watch.why == "pod", message="the new pod entry")
            snapshot = await client.get_pod(KEY)
            assert snapshot.record is not None
            await redis.aclose()
    finally:
        await client.close()


async def test_a_feed_trimmed_past_the_last_entry_read_is_a_gap(redis: aioredis.Redis) -> None:
    writer = CacheWriterDouble(redis, feed_maxlen=MIN_FEED_MAXLEN)
    await writer.put_pod(pod())
    reader = FeedReader(redis, Keys(), block_seconds=0.1)
    assert await reader.check() == "connected to the change feed"
    assert (await reader.step()).entries == []
    for rv in range(MIN_FEED_MAXLEN + 5):
        await writer.put_pod(pod(rv=rv))
    batch = await reader.step()  # after a quiet read: the feed is looked at first
    assert batch.wake_all is not None and "gap" in batch.wake_all
    after = await reader.step()
    assert len(after.entries) == MIN_FEED_MAXLEN  # what the feed still holds


async def test_a_gap_wakes_every_waiter_of_the_client(
    redis_server: RedisServer, redis: aioredis.Redis
) -> None:
    writer = CacheWriterDouble(redis, feed_maxlen=MIN_FEED_MAXLEN)
    await writer.put_pod(pod(name="jupyter-bob"))
    client = CacheClient(RedisSettings(url=redis_server.url), prefix="kubecache:v1:")
    try:
        await client.feed.check()  # positioned, not yet following: entries pile up
        for _ in range(MIN_FEED_MAXLEN + 3):
            await writer.put_pod(pod(name="jupyter-bob"))
        async with client.watch(KEY) as watch:
            client.start()
            assert await watch.wait(10)
            assert "gap" in watch.why
    finally:
        await client.close()


async def test_a_reader_keeping_up_reads_without_looking_at_the_feed_each_time(
    redis: aioredis.Redis,
) -> None:
    writer = CacheWriterDouble(redis, feed_maxlen=MIN_FEED_MAXLEN)
    reader = FeedReader(redis, Keys(), block_seconds=5.0)
    assert await reader.check() == "connected to the change feed"
    for rv in range(3 * MIN_FEED_MAXLEN):  # the feed is trimmed all along: no gap for us
        await writer.put_pod(pod(rv=rv))
        batch = await reader.step()
        assert [e["rv"] for e in batch.entries] == [rv] and batch.wake_all is None
    assert reader.checks == 1  # the XINFO STREAM of connecting, none per read


async def test_a_quiet_read_looks_at_the_feed_before_blocking_again(
    redis: aioredis.Redis,
) -> None:
    writer = CacheWriterDouble(redis)
    await writer.put_pod(pod(rv=5))
    reader = FeedReader(redis, Keys(), block_seconds=0.05)
    await reader.check()
    assert (await reader.step()).entries == []
    await redis.delete(Keys().feed)  # flushed while the reader blocked
    await writer.put_pod(pod(rv=6))
    batch = await reader.step()
    assert batch.wake_all is not None  # every waiter re-reads
    assert reader.checks == 2


async def test_closing_wakes_waiters_and_ends_the_reader(redis_server: RedisServer) -> None:
    client = await _client(redis_server.url)
    async with client.watch(KEY) as watch:
        await client.close()
        assert await watch.wait(1)
    assert client._task is not None and client._task.done()
    with pytest.raises(CacheUnavailable):
        await client.get_pod(KEY)
