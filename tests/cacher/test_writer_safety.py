"""CacheWriter's safety checks against a real redis-server: the primary it writes
to, the progress it reports, and the records it finds altered under it."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from kubecache.cacher.writer import CacheDiverged, CacheWriter, FailedOver, fingerprint
from kubecache.contract import CacheHealth, Freshness, Keys, redis_time_ms
from tests.cacher.unit import pods

KEYS = Keys()
ALICE = "jhub/jupyter-alice"


def pod(name: str = "jupyter-alice", **kw: Any) -> dict[str, Any]:
    return pods.named(pods.ALL_STATES["ready"](), name, **kw)


async def health(redis: aioredis.Redis) -> CacheHealth:
    got = CacheHealth.from_redis(await redis.hgetall(KEYS.health))
    assert got is not None
    return got


@pytest.fixture
async def writer(redis: aioredis.Redis) -> CacheWriter:
    w = CacheWriter(redis, KEYS, identity="cacher-a", progress_stale_ms=30_000)
    await w.take_over(primary_addr="127.0.0.1:6379", failovers=2, last_failover_ms=1234)
    return w


async def test_take_over_records_the_primary_it_writes_to(
    redis: aioredis.Redis, writer: CacheWriter
) -> None:
    info = await redis.info("replication")
    got = await health(redis)
    assert got.primary_replid == info["master_replid"] == writer.primary_replid
    assert (got.primary_addr, got.failovers, got.last_failover_ms) == ("127.0.0.1:6379", 2, 1234)
    assert got.progress_stale_ms == 30_000 and got.pods_progress_ms == 0
    again = CacheWriter(redis, KEYS, identity="cacher-a")
    await again.take_over(failovers=3, last_failover_ms=None)
    assert (await health(redis)).last_failover_ms == again.taken_over_ms > 0


async def test_every_write_refuses_a_node_that_is_not_the_epochs_primary(
    redis: aioredis.Redis, writer: CacheWriter
) -> None:
    await writer.reconcile_pods([pod()], list_rv="1500")
    # What a promoted replica looks like: the epoch's health, another replid.
    await redis.hset(KEYS.health, "primary_replid", "0" * 40)
    with pytest.raises(FailedOver, match="primary"):
        await writer.apply_pods([("MODIFIED", pod(rv=1600))])
    assert writer.epoch is None
    decoded = orjson.loads(await redis.hget(KEYS.pods, ALICE))
    assert decoded["rv"] != 1600


async def test_the_heartbeat_refuses_another_node_and_names_both_replids(
    redis: aioredis.Redis, writer: CacheWriter
) -> None:
    await redis.hset(KEYS.health, "primary_replid", "f" * 40)
    with pytest.raises(FailedOver, match="f" * 40):
        await writer.heartbeat()


async def test_the_heartbeat_stores_progress_in_redis_time(
    redis: aioredis.Redis, writer: CacheWriter
) -> None:
    await writer.reconcile_pods([pod()], list_rv="1500")
    await writer.mark_synced("pods", "1500")
    result = await writer.heartbeat(pods_progress_age=2.5, events_progress_age=None)
    got = await health(redis)
    assert got.pods_progress_ms == result.now_ms - 2500
    assert got.events_progress_ms == 0
    now = redis_time_ms(await redis.time())
    assert got.freshness(now_ms=now, stale_after_ms=15_000) is Freshness.FRESH
    await writer.heartbeat(pods_progress_age=31.0)
    now = redis_time_ms(await redis.time())
    assert (await health(redis)).freshness(now_ms=now, stale_after_ms=15_000) is Freshness.STALE


@pytest.mark.parametrize(
    ("damage", "check", "found"),
    [
        ("hdel", "count", "missing record jhub/jupyter-bob"),
        ("extra", "audit", "unexpected record jhub/intruder"),
        ("alter", "audit", "altered record jhub/jupyter-bob"),
        ("replace", "audit", "altered record jhub/jupyter-bob"),
    ],
)
async def test_a_record_changed_under_the_writer_is_found_by_the_next_heartbeat(
    redis: aioredis.Redis, writer: CacheWriter, damage: str, check: str, found: str
) -> None:
    await writer.reconcile_pods([pod(), pod("jupyter-bob", uid="bob-uid", rv=1400)], list_rv="1500")
    await writer.heartbeat()  # clean
    bob = "jhub/jupyter-bob"
    if damage == "hdel":
        await redis.hdel(KEYS.pods, bob)
    elif damage == "extra":
        await redis.hset(KEYS.pods, "jhub/intruder", b"{}")
        await redis.hdel(KEYS.pods, ALICE)  # the same count, another key
    elif damage == "alter":
        await redis.hset(KEYS.pods, bob, (await redis.hget(KEYS.pods, bob)).replace(b"true", b"0"))
    else:
        await redis.hset(KEYS.pods, bob, await redis.hget(KEYS.pods, ALICE))
    with pytest.raises(CacheDiverged) as caught:
        await writer.heartbeat()
    assert caught.value.check == check
    assert found in caught.value.findings, caught.value.findings
    assert writer.epoch is None


async def test_a_forced_rewrite_replaces_a_record_that_claims_to_be_newer(
    redis: aioredis.Redis, writer: CacheWriter
) -> None:
    await writer.reconcile_pods([pod(rv=1400)], list_rv="1500")
    tampered = orjson.loads(await redis.hget(KEYS.pods, ALICE))
    tampered["rv"] = 99_999_999
    await redis.hset(KEYS.pods, ALICE, orjson.dumps(tampered))
    again = CacheWriter(redis, KEYS, identity="cacher-a")
    await again.take_over()
    again.rewrite_next_list = True
    await again.reconcile_pods([pod(rv=1400)], list_rv="1500")
    assert orjson.loads(await redis.hget(KEYS.pods, ALICE))["rv"] == 1400
    assert not again.rewrite_next_list
    await again.heartbeat()  # what it wrote is what Redis holds


async def test_stale_writes_adopt_the_fingerprint_of_the_record_left_in_place(
    redis: aioredis.Redis, writer: CacheWriter
) -> None:
    await writer.reconcile_pods([], list_rv="1450")
    await writer.apply_pods([("ADDED", pod(rv=1600))])
    # A change older than the record (within the list's history): the record stays and
    # the check agrees.
    await writer.apply_pods([("MODIFIED", pod("pulling", rv=1500))])
    stored = await redis.hget(KEYS.pods, ALICE)
    assert orjson.loads(stored)["rv"] == 1600
    await writer.heartbeat()
    assert fingerprint(stored) == int(
        (await redis.eval("return string.sub(redis.sha1hex(ARGV[1]), 1, 8)", 0, stored)), 16
    )


async def test_retire_marks_the_epoch_unsynced_on_a_replaced_primary(
    redis: aioredis.Redis, writer: CacheWriter
) -> None:
    await writer.mark_synced("pods", "1500")
    epoch = writer.epoch
    assert epoch is not None
    assert await writer.retire(redis, epoch)
    assert not (await health(redis)).synced
    assert not await writer.retire(redis, epoch - 1)  # another epoch: untouched
