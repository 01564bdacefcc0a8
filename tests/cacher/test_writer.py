"""CacheWriter against a real redis-server: atomic, fenced, coalesced, bounded."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from kubecache.cacher import lua_scripts as scripts
from kubecache.cacher.pending import PendingEvents
from kubecache.cacher.writer import CacheLost, CacheWriter, CountingMetrics, Fenced
from kubecache.contract import (
    CacheHealth,
    Keys,
    decode_event_record,
    decode_feed_entry,
    decode_pod_record,
)
from tests.cacher.unit import pods
from tests.support.redis_server import RedisServer

KEYS = Keys()
ALICE = "jhub/jupyter-alice"


@pytest.fixture
async def writer(redis: aioredis.Redis) -> CacheWriter:
    w = CacheWriter(redis, KEYS, identity="cacher-a", metrics=CountingMetrics())
    await w.take_over()
    return w


def counts(w: CacheWriter) -> CountingMetrics:
    assert isinstance(w.metrics, CountingMetrics)
    return w.metrics


async def record(redis: aioredis.Redis, key: str = ALICE) -> dict[str, Any] | None:
    raw = await redis.hget(KEYS.pods, key)
    return None if raw is None else dict(decode_pod_record(raw, key=key))


async def feed(redis: aioredis.Redis) -> list[tuple[str, str, int]]:
    entries = await redis.xrange(KEYS.feed)
    out = []
    for _, fields in entries:
        entry = decode_feed_entry(fields)
        out.append((entry["kind"], entry["key"], entry["rv"]))
    return out


async def event_log(redis: aioredis.Redis, key: str = ALICE) -> list[dict[str, Any]]:
    return [dict(decode_event_record(e)) for e in await redis.lrange(KEYS.events(key), 0, -1)]


def pod(state: str = "ready", name: str = "jupyter-alice", **kw: Any) -> dict[str, Any]:
    return pods.named(pods.ALL_STATES[state](), name, **kw)


# ---------------------------------------------------------------- take over


async def test_take_over_writes_a_fresh_unsynced_health_record_and_feeds_health(
    redis: aioredis.Redis,
) -> None:
    w = CacheWriter(
        redis,
        KEYS,
        identity="cacher-a",
        namespaces="jhub",
        pod_selector="component=singleuser-server",
    )
    epoch = await w.take_over()
    now_ms = int((await redis.time())[0]) * 1000
    health = CacheHealth.from_redis(await redis.hgetall(KEYS.health))
    assert health is not None
    assert (health.epoch, health.leader, health.synced) == (epoch, "cacher-a", False)
    assert (health.namespaces, health.pod_selector) == ("jhub", "component=singleuser-server")
    assert epoch >= now_ms - 1000
    assert await feed(redis) == [("health", "", 0)]


async def test_every_take_over_gets_a_larger_epoch(redis: aioredis.Redis) -> None:
    a = CacheWriter(redis, KEYS, identity="a")
    b = CacheWriter(redis, KEYS, identity="b")
    first = await a.take_over()
    await redis.hset(KEYS.health, "epoch", str(first + 10**9))  # a clock far ahead
    second = await b.take_over()
    assert second == first + 10**9 + 1


async def test_a_writer_that_never_took_over_refuses_to_write(redis: aioredis.Redis) -> None:
    w = CacheWriter(redis, KEYS, identity="a")
    with pytest.raises(Fenced, match="take_over"):
        await w.apply_pods([("ADDED", pod())])
    assert await redis.exists(KEYS.pods) == 0


# ------------------------------------------------------------- pod writes


async def test_a_pod_record_and_its_feed_entry_are_written_together(
    redis: aioredis.Redis, writer: CacheWriter
) -> None:
    await writer.apply_pods([("ADDED", pod())])
    got = await record(redis)
    assert got is not None and got["rv"] == 1006 and got["ready"] is True
    assert await redis.hexists(KEYS.pod_rv, ALICE) == 0  # tombstones only
    assert (await feed(redis))[-1] == ("pod", ALICE, 1006)
    assert counts(writer).written["pod"] == 1


async def test_readers_never_see_a_feed_entry_without_its_record(
    redis: aioredis.Redis, writer: CacheWriter
) -> None:
    """Snapshots taken in MULTI while batches are written always agree."""
    done = asyncio.Event()
    snapshots: list[tuple[int, int]] = []

    async def read() -> None:
        while not done.is_set():
            async with redis.pipeline(transaction=True) as tx:
                tx.hlen(KEYS.pods).xlen(KEYS.feed)
                n_records, n_feed = await tx.execute()
            snapshots.append((n_records, n_feed - 1))  # minus take_over's health entry
            await asyncio.sleep(0)

    reader = asyncio.create_task(read())
    for batch in range(20):
        await writer.apply_pods(
            [
                ("ADDED", pod(name=f"jupyter-u{batch}-{i}", uid=f"uid-{batch}-{i}"))
                for i in range(50)
            ]
        )
    done.set()
    await reader
    assert len(snapshots) > 1
    assert all(records == entries for records, entries in snapshots), snapshots


async def test_an_older_resource_version_never_overwrites_a_newer_record(
    redis: aioredis.Redis, writer: CacheWriter
) -> None:
    await writer.apply_pods([("MODIFIED", pod("ready"))])  # rv 1006
    await writer.apply_pods([("MODIFIED", pod("pulling"))])  # rv 1003, late
    got = await record(redis)
    assert got is not None and got["rv"] == 1006
    assert counts(writer).stale["pod"] == 1
    assert [k for k, *_ in await feed(redis)].count("pod") == 1


async def test_a_stale_deletion_never_removes_a_newer_record(
    redis: aioredis.Redis, writer: CacheWriter
) -> None:
    await writer.apply_pods([("MODIFIED", pod("ready", rv=1200))])
    await writer.apply_pods([("DELETED", pod("ready", rv=1100))])  # an old watch
    got = await record(redis)
    assert got is not None and got["rv"] == 1200
    assert await redis.hexists(KEYS.pod_rv, ALICE) == 0


@pytest.mark.parametrize(
    "where",
    [
        ("metadata", "uid"),
        ("metadata", "labels", "component"),
        ("metadata", "annotations", "hub.jupyter.org/username"),
        ("metadata", "annotations", 'hub.jupyter.org/x-"rv":1'),
        ("status", "message"),
    ],
)
async def test_text_that_looks_like_an_rv_inside_a_record_never_fences_its_writes(
    redis: aioredis.Redis, writer: CacheWriter, where: tuple[str, ...]
) -> None:
    """The scripts read the stored rv with string.match; JSON escaping protects values."""

    def with_text(rv: int) -> dict[str, Any]:
        raw = pod("ready", rv=rv)
        *path, last = where
        target = raw
        for step in path:
            target = target.setdefault(step, {})
        target[last] = '"rv":999999,"rv":999999}'
        return raw

    await writer.apply_pods([("ADDED", with_text(1006))])
    await writer.apply_pods([("MODIFIED", with_text(1007))])  # newer: written
    got = await record(redis)
    assert got is not None and got["rv"] == 1007
    await writer.apply_pods([("MODIFIED", with_text(1005))])  # older: stale
    got = await record(redis)
    assert got is not None and got["rv"] == 1007
    await writer.apply_pods([("DELETED", with_text(1008))])
    assert await record(redis) is None


async def test_the_scripts_read_the_record_rv_past_values_that_contain_rv_text(
    redis: aioredis.Redis,
) -> None:
    """Even a value before ``rv`` cannot match: JSON escapes quotes inside strings."""
    value = '"rv":999999,"rv":8'
    stored = orjson.dumps({"labels": {"a": value}, "message": value, "rv": 1234, "b": value})
    read = redis.register_script(scripts._RECORD_RV + "return record_rv(ARGV[1])")
    assert await read(keys=[], args=[stored]) == 1234
    assert await read(keys=[], args=[b'{"name":"x"}']) is None


async def test_a_pod_rv_entry_of_a_live_pod_left_by_an_older_cacher_goes_with_the_next_write(
    redis: aioredis.Redis, writer: CacheWriter
) -> None:
    await writer.apply_pods([("ADDED", pod("pulling"))])  # rv 1003
    await redis.hset(KEYS.pod_rv, ALICE, "1003")
    await writer.apply_pods([("MODIFIED", pod("ready"))])  # rv 1006
    assert await redis.hexists(KEYS.pod_rv, ALICE) == 0
    got = await record(redis)
    assert got is not None and got["rv"] == 1006


async def test_a_stored_record_without_a_readable_rv_is_overwritten(
    redis: aioredis.Redis, writer: CacheWriter
) -> None:
    await redis.hset(KEYS.pods, ALICE, b"garbage")
    await writer.apply_pods([("ADDED", pod("ready"))])
    got = await record(redis)
    assert got is not None and got["rv"] == 1006


async def test_large_batches_are_written_in_chunks(redis: aioredis.Redis) -> None:
    w = CacheWriter(redis, KEYS, identity="a", batch_size=7, metrics=CountingMetrics())
    await w.take_over()
    await w.apply_pods([("ADDED", pod(name=f"jupyter-u{i}", uid=f"u{i}")) for i in range(50)])
    assert await redis.hlen(KEYS.pods) == 50
    assert counts(w).round_trips["pods"] == 8


async def test_a_fenced_writer_sends_no_further_chunk(redis: aioredis.Redis) -> None:
    w = CacheWriter(redis, KEYS, identity="a", batch_size=7, metrics=CountingMetrics())
    await w.take_over()
    await CacheWriter(redis, KEYS, identity="b").take_over()
    with pytest.raises(Fenced):
        await w.apply_pods([("ADDED", pod(name=f"jupyter-u{i}", uid=f"u{i}")) for i in range(50)])
    assert counts(w).round_trips["pods"] == 1
    assert await redis.hlen(KEYS.pods) == 0


async def test_the_feed_is_capped_near_its_maxlen(redis: aioredis.Redis) -> None:
    w = CacheWriter(redis, KEYS, identity="a", feed_maxlen=10)
    await w.take_over()
    await w.apply_pods([("ADDED", pod(name=f"jupyter-u{i}", uid=f"u{i}")) for i in range(1000)])
    assert await redis.xlen(KEYS.feed) < 250  # MAXLEN ~ trims whole stream nodes


async def test_a_late_write_after_delete_does_not_resurrect_the_pod(
    redis: aioredis.Redis, writer: CacheWriter
) -> None:
    await writer.apply_pods([("ADDED", pod("ready"))])
    await writer.apply_pods([("DELETED", pod("ready", rv=1100))])
    assert await record(redis) is None
    assert await redis.hget(KEYS.pod_rv, ALICE) == b"1100"  # tombstone
    await writer.apply_pods([("MODIFIED", pod("terminating"))])  # rv 1007 from an old watch
    assert await record(redis) is None
    assert writer.tracked_uid(ALICE) is None
    assert writer.records == 0
    assert (await feed(redis))[-1] == ("gone", ALICE, 1100)


async def test_a_pod_recreated_under_a_deleted_name_clears_the_tombstone(
    redis: aioredis.Redis, writer: CacheWriter
) -> None:
    await writer.apply_pods([("ADDED", pod("ready"))])
    await writer.apply_pods([("DELETED", pod("ready", rv=1100))])
    await writer.apply_pods([("ADDED", pod("pulling", uid="second", rv=1050))])  # older: stale
    assert await record(redis) is None
    await writer.apply_pods([("ADDED", pod("pulling", uid="second", rv=1200))])
    got = await record(redis)
    assert got is not None and (got["uid"], got["rv"]) == ("second", 1200)
    assert await redis.hexists(KEYS.pod_rv, ALICE) == 0
    await writer.apply_pods([("MODIFIED", pod("ready", rv=1150))])  # the first pod, late
    got = await record(redis)
    assert got is not None and (got["uid"], got["rv"]) == ("second", 1200)


async def test_a_deposed_writer_is_fenced_and_stops_writing(redis: aioredis.Redis) -> None:
    old = CacheWriter(redis, KEYS, identity="old", metrics=CountingMetrics())
    new = CacheWriter(redis, KEYS, identity="new")
    await old.take_over()
    await old.apply_pods([("ADDED", pod("pulling"))])
    await new.take_over()
    await new.apply_pods([("MODIFIED", pod("running not ready"))])
    with pytest.raises(Fenced):
        await old.apply_pods([("MODIFIED", pod("ready"))])  # newer rv, but deposed
    assert old.epoch is None
    assert counts(old).fenced == 1
    got = await record(redis)
    assert got is not None and got["rv"] == 1005
    with pytest.raises(Fenced):
        await old.heartbeat()
    with pytest.raises(Fenced):
        await old.apply_events([("ADDED", pods.event())])


async def test_a_burst_for_one_pod_is_coalesced_into_one_write(
    redis: aioredis.Redis, writer: CacheWriter
) -> None:
    await writer.apply_pods(
        [
            ("ADDED", pod("pending unschedulable")),
            ("MODIFIED", pod("pulling")),
            ("MODIFIED", pod("running not ready")),
            ("MODIFIED", pod("ready")),
            ("ADDED", pod("pulling", name="jupyter-bob", uid="bob")),
        ]
    )
    assert await feed(redis) == [
        ("health", "", 0),
        ("pod", ALICE, 1006),
        ("pod", "jhub/jupyter-bob", 1003),
    ]


async def test_a_deletion_wins_over_other_states_of_the_same_pod_in_a_burst(
    redis: aioredis.Redis, writer: CacheWriter
) -> None:
    await writer.apply_pods([("ADDED", pod("ready"))])
    await writer.apply_pods(
        [("DELETED", pod("terminating", rv=1050)), ("MODIFIED", pod("ready", rv=1060))]
    )
    assert await record(redis) is None


async def test_a_recreated_pod_after_deletion_in_one_burst_is_written(
    redis: aioredis.Redis, writer: CacheWriter
) -> None:
    await writer.apply_pods(
        [
            ("ADDED", pod("ready")),
            ("DELETED", pod("ready", rv=1050)),
            ("ADDED", pod("pulling", uid="second", rv=1060)),
        ]
    )
    got = await record(redis)
    assert got is not None and (got["uid"], got["rv"]) == ("second", 1060)
    assert writer.tracked_uid(ALICE) == "second"


async def test_malformed_pods_are_skipped_and_counted_without_raising(
    redis: aioredis.Redis, writer: CacheWriter, caplog: pytest.LogCaptureFixture
) -> None:
    broken = pod("ready", name="jupyter-broken")
    broken["status"]["conditions"] = "all good"
    no_uid = pod("ready", name="jupyter-nouid")
    del no_uid["metadata"]["uid"]
    await writer.apply_pods(
        [
            ("ADDED", broken),
            ("ADDED", no_uid),
            ("ADDED", "garbage"),  # type: ignore[list-item]
            ("BOOKMARK", {"metadata": {"resourceVersion": "9"}}),
            ("ADDED", pod()),
        ]
    )
    assert await redis.hkeys(KEYS.pods) == [ALICE.encode()]
    assert counts(writer).malformed["pods"] == 3
    assert "jhub/jupyter-broken" in caplog.text


async def test_scripts_are_reloaded_after_redis_forgot_them(
    redis: aioredis.Redis, writer: CacheWriter
) -> None:
    await writer.apply_pods([("ADDED", pod("pulling"))])
    await redis.script_flush()
    await writer.apply_pods([("MODIFIED", pod("ready"))])
    got = await record(redis)
    assert got is not None and got["rv"] == 1006


async def test_redis_errors_propagate_and_are_counted(private_redis: RedisServer) -> None:
    client = aioredis.Redis.from_url(private_redis.url, socket_timeout=2)
    w = CacheWriter(client, KEYS, identity="a", metrics=CountingMetrics())
    await w.take_over()
    private_redis.stop()
    with pytest.raises((RedisConnectionError, OSError)):
        await w.apply_pods([("ADDED", pod())])
    assert sum(counts(w).errors.values()) == 1
    await client.aclose()


@pytest.mark.parametrize("seed", range(6))
async def test_random_histories_in_any_order_converge_to_the_last_state(
    redis: aioredis.Redis, writer: CacheWriter, seed: int
) -> None:
    rng = random.Random(seed)
    rv = 2000
    changes: list[tuple[str, dict[str, Any]]] = []
    last: dict[str, tuple[str, int] | None] = {}
    states = sorted(pods.ALL_STATES)
    for p in range(12):
        name = f"jupyter-p{p}"
        for generation in range(rng.randint(1, 3)):
            uid = f"uid-{p}-{generation}"
            for i in range(rng.randint(1, 5)):
                rv += rng.randint(1, 3)
                kind = "ADDED" if i == 0 else "MODIFIED"
                changes.append((kind, pod(rng.choice(states), name=name, uid=uid, rv=rv)))
                last[f"jhub/{name}"] = (uid, rv)
            if rng.random() < 0.6:
                rv += 1
                changes.append(("DELETED", pod("terminating", name=name, uid=uid, rv=rv)))
                last[f"jhub/{name}"] = None
    changes.sort(key=lambda c: int(c[1]["metadata"]["resourceVersion"]))
    # A live watch in rv order, and an old watch replaying random changes late.
    replay = rng.sample(changes, k=len(changes) // 2)
    stream = changes + replay
    while stream:
        n = rng.randint(1, 8)
        await writer.apply_pods(stream[:n])
        stream = stream[n:]
    for key, expected in last.items():
        got = await record(redis, key)
        if expected is None:
            assert got is None, key
            assert writer.tracked_uid(key) is None, key
        else:
            assert got is not None and (got["uid"], got["rv"]) == expected, key
            assert writer.tracked_uid(key) == expected[0]


async def test_a_pod_record_keeps_only_the_compact_state(
    redis: aioredis.Redis, writer: CacheWriter
) -> None:
    """Sanity bound only; benchmarks/record_size.py measures against the 512-byte goal."""
    raw = pod("ready")
    await writer.apply_pods([("ADDED", raw)])
    stored = await redis.hget(KEYS.pods, ALICE)
    assert stored is not None and len(stored) <= 1024
    for leaked in (b"managedFields", b"JUPYTERHUB_API_TOKEN", b"kubectl.kubernetes.io", b"image"):
        assert leaked not in stored


# ------------------------------------------------------------------ events


async def test_events_of_a_tracked_pod_are_appended_with_a_feed_entry(
    redis: aioredis.Redis, writer: CacheWriter
) -> None:
    await writer.apply_pods([("ADDED", pod("pulling"))])
    await writer.apply_events(
        [
            ("ADDED", pods.event()),
            ("ADDED", pods.event("Pulling", "Pulling image", uid="e2", rv=2002)),
        ]
    )
    assert [e["reason"] for e in await event_log(redis)] == ["Scheduled", "Pulling"]
    assert (await feed(redis))[-2:] == [("event", ALICE, 2001), ("event", ALICE, 2002)]
    assert counts(writer).written["event"] == 2


async def test_an_event_log_is_capped_to_the_newest_entries(redis: aioredis.Redis) -> None:
    w = CacheWriter(redis, KEYS, identity="a", event_log_cap=3)
    await w.take_over()
    await w.apply_pods([("ADDED", pod())])
    await w.apply_events(
        [("ADDED", pods.event(f"R{i}", uid=f"e{i}", rv=2000 + i)) for i in range(5)]
    )
    assert [e["reason"] for e in await event_log(redis)] == ["R2", "R3", "R4"]


async def test_events_listed_again_after_a_relist_are_not_duplicated(
    redis: aioredis.Redis, writer: CacheWriter
) -> None:
    events = [("ADDED", pods.event(f"R{i}", uid=f"e{i}", rv=2000 + i)) for i in range(3)]
    await writer.apply_pods([("ADDED", pod())])
    await writer.apply_events(events)
    other = CacheWriter(redis, KEYS, identity="b")  # a new leader relists everything
    await other.take_over()
    await other.reconcile_pods([pod()], list_rv="1500")
    await other.apply_events(events)
    await other.apply_events(
        [("MODIFIED", pods.event("R1", uid="e1", rv=2010, count=2))]  # updated: appended
    )
    log = await event_log(redis)
    assert [(e["uid"], e["count"]) for e in log] == [("e0", 1), ("e1", 1), ("e2", 1), ("e1", 2)]


async def test_a_new_pod_under_the_same_name_starts_a_new_event_log(
    redis: aioredis.Redis, writer: CacheWriter
) -> None:
    await writer.apply_pods([("ADDED", pod())])
    await writer.apply_events([("ADDED", pods.event())])
    await writer.apply_pods([("DELETED", pod(rv=1100))])
    assert 0 < await redis.ttl(KEYS.events(ALICE)) <= 600
    await writer.apply_pods([("ADDED", pod("pulling", uid="second", rv=1200))])
    assert await event_log(redis) == []
    await writer.apply_events([("ADDED", pods.event(uid="e9", pod_uid="second", rv=2100))])
    assert [e["pod_uid"] for e in await event_log(redis)] == ["second"]


async def test_the_event_log_of_a_live_pod_never_expires(
    redis: aioredis.Redis, writer: CacheWriter
) -> None:
    await writer.apply_pods([("ADDED", pod())])
    await writer.apply_events([("ADDED", pods.event(pod_uid=""))])  # no involvedObject.uid
    await writer.apply_pods([("DELETED", pod(rv=1100))])
    await writer.apply_pods([("ADDED", pod("pulling", uid="second", rv=1200))])
    assert await redis.ttl(KEYS.events(ALICE)) == -1


async def test_an_old_event_listed_again_into_a_full_log_is_not_appended(
    redis: aioredis.Redis,
) -> None:
    w = CacheWriter(redis, KEYS, identity="a", event_log_cap=3)
    await w.take_over()
    await w.apply_pods([("ADDED", pod())])
    events = [("ADDED", pods.event(f"R{i}", uid=f"e{i}", rv=2000 + i)) for i in range(5)]
    await w.apply_events(events)
    again = CacheWriter(redis, KEYS, identity="b", event_log_cap=3)
    await again.take_over()
    await again.reconcile_pods([pod()], list_rv="1500")
    await again.apply_events(events)
    assert [e["reason"] for e in await event_log(redis)] == ["R2", "R3", "R4"]


async def test_a_new_leader_clears_the_event_log_of_a_recreated_pod(
    redis: aioredis.Redis, writer: CacheWriter
) -> None:
    await writer.apply_pods([("ADDED", pod())])
    await writer.apply_events([("ADDED", pods.event())])
    other = CacheWriter(redis, KEYS, identity="b")
    await other.take_over()
    await other.reconcile_pods([pod(uid="second", rv=1300)], list_rv="1400")
    assert await event_log(redis) == []


async def test_events_of_other_pods_never_reach_redis_and_are_dropped_when_expired(
    redis: aioredis.Redis, writer: CacheWriter
) -> None:
    now = [0.0]
    writer.pending = PendingEvents(ttl=5.0, capacity=100, clock=lambda: now[0])
    await writer.apply_events(
        [
            ("ADDED", pods.event(pod="hub-7d9f", uid="h1")),
            ("ADDED", pods.event(kind="Node", uid="n1")),
        ]
    )
    assert len(writer.pending) == 1
    now[0] = 6.0
    await writer.apply_events([])
    assert len(writer.pending) == 0
    assert counts(writer).dropped["untracked pod"] == 1
    assert await redis.keys(KEYS.events_pattern) == []


async def test_an_event_that_arrives_before_its_pod_is_written_when_the_pod_appears(
    redis: aioredis.Redis, writer: CacheWriter
) -> None:
    await writer.apply_events([("ADDED", pods.event())])
    assert await event_log(redis) == []
    await writer.apply_pods([("ADDED", pod("pulling"))])
    assert [e["reason"] for e in await event_log(redis)] == ["Scheduled"]
    assert len(writer.pending) == 0
    kinds = [k for k, *_ in await feed(redis)]
    assert kinds.index("pod") < kinds.index("event")


async def test_the_pending_buffer_is_bounded_and_counts_what_it_drops(
    redis: aioredis.Redis, writer: CacheWriter
) -> None:
    writer.pending = PendingEvents(ttl=60.0, capacity=10)
    await writer.apply_events(
        [("ADDED", pods.event(pod=f"other-{i}", uid=f"o{i}", rv=3000 + i)) for i in range(25)]
    )
    assert len(writer.pending) == 10
    assert counts(writer).dropped["pending full"] == 15


async def test_malformed_events_are_skipped_and_counted(
    redis: aioredis.Redis, writer: CacheWriter
) -> None:
    await writer.apply_pods([("ADDED", pod())])
    bad = pods.event(uid="bad")
    bad["metadata"]["resourceVersion"] = "not-a-number"
    await writer.apply_events([("ADDED", bad), ("ADDED", pods.event())])
    assert len(await event_log(redis)) == 1
    assert counts(writer).malformed["events"] == 1


# --------------------------------------------------------------- reconcile


async def test_reconcile_deletes_only_records_of_pods_absent_from_the_list(
    redis: aioredis.Redis, writer: CacheWriter
) -> None:
    await writer.apply_pods(
        [
            ("ADDED", pod(name=n, uid=n, rv=1000 + i))
            for i, n in enumerate(["jupyter-a", "jupyter-b", "jupyter-c", "jupyter-d"])
        ]
    )
    await writer.apply_events([("ADDED", pods.event(pod="jupyter-b", pod_uid="jupyter-b"))])
    unreducible = pod(name="jupyter-c", uid="jupyter-c", rv=1400)
    unreducible["status"] = "broken"
    # a resourceVersion above the list's says nothing (opaque; maybe another history)
    above_the_list = pod(name="jupyter-e", uid="jupyter-e", rv=1600)
    await writer.apply_pods([("ADDED", above_the_list)])
    await writer.reconcile_pods(
        [pod(name="jupyter-a", uid="jupyter-a", rv=1300), unreducible], list_rv="1500"
    )
    assert sorted(k.decode() for k in await redis.hkeys(KEYS.pods)) == [
        "jhub/jupyter-a",
        "jhub/jupyter-c",
    ]
    assert await redis.hlen(KEYS.pod_rv) == 0
    assert 0 < await redis.ttl(KEYS.events("jhub/jupyter-b")) <= 600
    assert ("gone", "jhub/jupyter-d", 1500) in await feed(redis)
    assert writer.tracked_uid("jhub/jupyter-b") is None
    assert writer.tracked_uid("jhub/jupyter-a") == "jupyter-a"
    assert counts(writer).malformed["pods"] == 1


async def test_reconcile_streams_pages_and_reads_the_list_rv_at_the_end(
    redis: aioredis.Redis,
) -> None:
    w = CacheWriter(redis, KEYS, identity="a", batch_size=4, metrics=CountingMetrics())
    await w.take_over()
    await w.apply_pods([("ADDED", pod(name="jupyter-gone", uid="gone", rv=1001))])
    consumed: list[int] = []

    async def pages() -> AsyncIterator[list[dict[str, Any]]]:
        for p in range(3):
            yield [pod(name=f"jupyter-p{p}-{i}", uid=f"{p}-{i}", rv=1100 + i) for i in range(5)]
            consumed.append(p)

    def list_rv() -> str:
        assert consumed == [0, 1, 2], "read before the last page"
        return "1500"

    await w.reconcile_pods(pages(), list_rv=list_rv)
    assert await redis.hlen(KEYS.pods) == 15
    assert not await redis.hexists(KEYS.pods, "jhub/jupyter-gone")
    assert w.records == 15


async def test_changes_older_than_the_last_list_are_stale(
    redis: aioredis.Redis, writer: CacheWriter
) -> None:
    await writer.reconcile_pods([], list_rv="1500")
    await writer.apply_pods([("ADDED", pod(rv=1400))])  # an old watch, after the relist
    assert await record(redis) is None
    await writer.apply_pods([("ADDED", pod(rv=1501))])
    assert await record(redis) is not None


async def test_reconcile_prunes_tombstones_older_than_the_list(
    redis: aioredis.Redis, writer: CacheWriter
) -> None:
    await writer.apply_pods([("ADDED", pod())])
    await writer.apply_pods([("DELETED", pod(rv=1100))])
    await writer.reconcile_pods([], list_rv="1500")
    assert await redis.hexists(KEYS.pod_rv, ALICE) == 0


async def test_a_list_of_a_new_history_replaces_whatever_redis_held(
    redis: aioredis.Redis, writer: CacheWriter
) -> None:
    # Redis holds another history's records, far above the new cluster's resourceVersions.
    await writer.apply_pods(
        [("ADDED", pod(name=n, uid=n, rv=9_000_000 + i)) for i, n in enumerate("abc")]
    )
    await writer.apply_pods([("DELETED", pod(name="d", uid="d", rv=9_999_999))])
    new_a = pod("pulling", name="a", uid="new-a", rv=150)
    await writer.reconcile_pods([new_a, pod(name="e", uid="e", rv=160)], list_rv="200")
    assert sorted(k.decode() for k in await redis.hkeys(KEYS.pods)) == ["jhub/a", "jhub/e"]
    got = await record(redis, "jhub/a")
    assert got is not None and (got["uid"], got["rv"]) == ("new-a", 150)
    assert await redis.hlen(KEYS.pod_rv) == 0
    assert counts(writer).reconciled == {"written": 2, "deleted": 2, "tombstone_removed": 1}
    # the watch that follows, in the new history, is written
    await writer.apply_pods([("ADDED", pod(name="d", uid="new-d", rv=250))])
    await writer.apply_pods([("MODIFIED", pod("ready", name="a", uid="new-a", rv=260))])
    got = await record(redis, "jhub/d")
    assert got is not None and got["uid"] == "new-d"
    got = await record(redis, "jhub/a")
    assert got is not None and got["rv"] == 260
    # a second list of the same history finds nothing to do
    await writer.reconcile_pods(
        [pod("ready", name="a", uid="new-a", rv=260), pod(name="e", uid="e", rv=160)],
        list_rv="300",
    )
    assert await redis.hlen(KEYS.pods) == 2 and counts(writer).reconciled["unchanged"] == 2


async def test_after_a_list_of_a_lower_history_its_watch_changes_are_not_stale(
    redis: aioredis.Redis, writer: CacheWriter
) -> None:
    await writer.reconcile_pods([], list_rv="5000000")
    await writer.reconcile_pods([], list_rv="200")  # a relist: the cluster's history restarted
    await writer.apply_pods([("ADDED", pod(rv=250))])
    assert await record(redis) is not None


async def test_tombstones_level_off_at_their_cap_over_many_create_delete_cycles(
    redis: aioredis.Redis,
) -> None:
    w = CacheWriter(redis, KEYS, identity="a", tombstone_cap=25, metrics=CountingMetrics())
    await w.take_over()
    await w.reconcile_pods([], list_rv="100")
    sizes = []
    for i in range(300):
        name = f"jupyter-user{i}"  # a new user name each time, as in a soak
        await w.apply_pods([("ADDED", pod(name=name, uid=name, rv=1000 + 2 * i))])
        await w.apply_pods([("DELETED", pod(name=name, uid=name, rv=1001 + 2 * i))])
        if i % 10 == 9:
            await w.heartbeat()
            sizes.append(await redis.hlen(KEYS.pod_rv))
    assert max(sizes) <= 25 and sizes[-1] == 25, sizes
    assert counts(w).tombstones_expired == 300 - 25
    assert w.tombstones == 25


async def test_tombstones_expire_by_age_and_a_later_deletion_keeps_its_own(
    redis: aioredis.Redis,
) -> None:
    now = [1000.0]
    w = CacheWriter(redis, KEYS, identity="a", tombstone_ttl=60.0, clock=lambda: now[0])
    await w.take_over()
    await w.reconcile_pods([], list_rv="100")
    for i, name in enumerate(["jupyter-old", "jupyter-new"]):
        await w.apply_pods([("ADDED", pod(name=name, uid=name, rv=1000 + 2 * i))])
        await w.apply_pods([("DELETED", pod(name=name, uid=name, rv=1001 + 2 * i))])
        now[0] += 40
    await w.heartbeat()  # the first is 80 s old, the second 40 s
    assert [k.decode() for k in await redis.hkeys(KEYS.pod_rv)] == ["jhub/jupyter-new"]
    now[0] += 30
    await w.heartbeat()
    assert await redis.hlen(KEYS.pod_rv) == 0


async def test_reconcile_by_a_deposed_writer_raises_fenced(
    redis: aioredis.Redis, writer: CacheWriter
) -> None:
    await CacheWriter(redis, KEYS, identity="b").take_over()
    with pytest.raises(Fenced):
        await writer.reconcile_pods([pod()], list_rv="1500")
    assert await record(redis) is None


# ------------------------------------------------------------------ health


async def test_mark_synced_sets_synced_once_and_feeds_health_once(
    redis: aioredis.Redis, writer: CacheWriter
) -> None:
    await writer.mark_synced("pods", "1500")
    await writer.mark_synced("pods", "1600")
    await writer.mark_synced("events", "1700")
    health = CacheHealth.from_redis(await redis.hgetall(KEYS.health))
    assert health is not None
    assert (health.synced, health.pods_rv, health.events_rv) == (True, "1600", "1700")
    assert [k for k, *_ in await feed(redis)] == ["health", "health"]


async def test_watch_state_changes_of_kind_feed_health(
    redis: aioredis.Redis, writer: CacheWriter
) -> None:
    await writer.set_watch_state("pods", "retrying connection reset")
    await writer.set_watch_state("pods", "retrying 429 Too Many Requests")
    await writer.set_watch_state("pods", "failed 403 Forbidden")
    health = CacheHealth.from_redis(await redis.hgetall(KEYS.health))
    assert health is not None and health.pods_watch == "failed 403 Forbidden"
    assert [k for k, *_ in await feed(redis)] == ["health"] * 3


async def test_heartbeat_writes_redis_time_and_records_without_feeding(
    redis: aioredis.Redis, writer: CacheWriter
) -> None:
    await writer.apply_pods([("ADDED", pod())])
    result = await writer.heartbeat(lag_ms=3)
    health = CacheHealth.from_redis(await redis.hgetall(KEYS.health))
    assert health is not None
    assert (health.heartbeat_ms, health.records, health.lag_ms) == (result.now_ms, 1, 3)
    assert result.epoch == writer.epoch
    assert [k for k, *_ in await feed(redis)] == ["health", "pod"]


async def test_heartbeat_detects_a_flushed_redis(
    redis: aioredis.Redis, writer: CacheWriter
) -> None:
    await redis.flushall()
    with pytest.raises(CacheLost):
        await writer.heartbeat()
    assert writer.epoch is None


async def test_writes_after_a_flush_raise_cache_lost_and_write_nothing(
    redis: aioredis.Redis, writer: CacheWriter
) -> None:
    await redis.flushall()
    with pytest.raises(CacheLost):
        await writer.apply_pods([("ADDED", pod())])
    assert await redis.exists(KEYS.pods, KEYS.feed) == 0


async def test_heartbeat_detects_another_epoch(redis: aioredis.Redis, writer: CacheWriter) -> None:
    await CacheWriter(redis, KEYS, identity="cacher-b").take_over()
    with pytest.raises(Fenced, match="cacher-b"):
        await writer.heartbeat()


async def test_a_restarted_redis_is_detected_and_a_new_take_over_resyncs(
    private_redis: RedisServer,
) -> None:
    client = aioredis.Redis.from_url(private_redis.url)
    w = CacheWriter(client, KEYS, identity="a")
    first = await w.take_over()
    await w.apply_pods([("ADDED", pod())])
    private_redis.stop()
    private_redis.start()  # empty: started with --save ''
    with pytest.raises((RedisConnectionError, OSError, CacheLost)):
        await w.heartbeat()
    if w.epoch is not None:
        with pytest.raises(CacheLost):
            await w.heartbeat()
    assert await w.take_over() > first
    await w.reconcile_pods([pod()], list_rv="1500")
    assert await client.hexists(KEYS.pods, ALICE)
    await client.aclose()


async def test_a_client_that_decodes_responses_works_the_same(redis_server: RedisServer) -> None:
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    await client.flushall()
    w = CacheWriter(client, KEYS, identity="a")
    await w.take_over()
    await w.apply_pods([("ADDED", pod("ready")), ("ADDED", pod(name="jupyter-bob", uid="b"))])
    await w.apply_events([("ADDED", pods.event())])
    await w.reconcile_pods([pod("ready")], list_rv="1500")
    await w.mark_synced("pods", "1500")
    assert (await w.heartbeat()).records == 1
    assert await client.hkeys(KEYS.pods) == [ALICE]
    assert len(await client.lrange(KEYS.events(ALICE), 0, -1)) == 1
    await client.aclose()
