"""One cacher against kubesim: Redis ends equal to the API after every fault."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from kubecache.contract import CacheHealth, Keys
from tests.cacher.integration.checker import Checker
from tests.cacher.integration.conftest import (
    NAMESPACE,
    create_pods,
    delete_pods,
    ensure_namespace,
    label_pods,
    pod_manifest,
)
from tests.support.cacher import cacher_settings, running_cacher
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_for


def names(prefix: str, n: int) -> list[str]:
    return [f"{prefix}-{i:04d}" for i in range(n)]


async def test_hundreds_of_pods_created_modified_and_deleted_end_up_exactly_in_redis(
    kubesim: Any, redis: aioredis.Redis, redis_server: RedisServer
) -> None:
    store = kubesim.store
    create_pods(store, names("early", 100))  # present before the cacher starts: listed
    ensure_namespace(store, "other")
    store.create("pods", "other", pod_manifest("not-a-user", labels={"component": "hub"}))
    checker = Checker(redis, store)
    async with running_cacher(cacher_settings(kubesim, redis_server.url)) as cacher:
        await checker.converged()
        create_pods(store, names("late", 300))
        label_pods(store, names("early", 100), "1")
        delete_pods(store, names("late", 300)[::3])
        await checker.converged(timeout=60)
        assert await redis.hexists(Keys().pods, "other/not-a-user") == 0
        events = cacher.metrics.value(
            "kubecache_cacher_watch_events_total", {"resource": "pods", "type": "ADDED"}
        )
        assert events >= 300


async def test_dropped_watches_resume_without_a_relist(
    kubesim: Any, redis: aioredis.Redis, redis_server: RedisServer
) -> None:
    store = kubesim.store
    checker = Checker(redis, store)
    async with running_cacher(cacher_settings(kubesim, redis_server.url)) as cacher:
        await checker.converged()
        for round_ in range(3):
            create_pods(store, names(f"r{round_}", 30))
            await kubesim.fault({"action": "drop_watches"})
            label_pods(store, names(f"r{round_}", 30)[::2], "x")
        await checker.converged()
        relists = cacher.metrics.value(
            "kubecache_cacher_relists_total", {"resource": "pods", "reason": "expired"}
        )
        assert relists == 0


async def test_compacted_history_forces_a_relist_of_pods_and_events_that_reconciles(
    kubesim: Any, redis: aioredis.Redis, redis_server: RedisServer
) -> None:
    store = kubesim.store
    create_pods(store, names("keep", 40) + names("gone", 20))
    checker = Checker(redis, store)
    async with running_cacher(cacher_settings(kubesim, redis_server.url)) as cacher:
        await checker.converged()
        # No watch may reconnect while things change and the history is compacted.
        await kubesim.fault({"action": "fail", "verb": "watch", "status": 503})
        await kubesim.fault({"action": "drop_watches"})
        delete_pods(store, names("gone", 20))
        create_pods(store, names("new", 20))
        label_pods(store, names("keep", 40), "after-compaction")
        await kubesim.fault({"action": "compact"})
        await kubesim.fault({"action": "clear"})
        await checker.converged()
        for resource in ("pods", "events"):
            await wait_for(
                lambda r=resource: (
                    cacher.metrics.value(
                        "kubecache_cacher_relists_total", {"resource": r, "reason": "expired"}
                    )
                    >= 1
                ),
                message=f"a relist of {resource} after 410",
            )


async def test_throttling_and_unavailable_bursts_are_ridden_out(
    kubesim: Any, redis: aioredis.Redis, redis_server: RedisServer
) -> None:
    store = kubesim.store
    checker = Checker(redis, store)
    await kubesim.fault(
        {"action": "fail", "verb": "list", "resource": "pods", "status": 503, "count": 3}
    )
    async with running_cacher(cacher_settings(kubesim, redis_server.url)) as cacher:
        await checker.converged()
        await kubesim.fault(
            {
                "action": "fail",
                "verb": "watch",
                "resource": "pods",
                "status": 429,
                "count": 3,
                "retry_after": 1,
            }
        )
        await kubesim.fault(
            {"action": "fail", "verb": "watch", "resource": "events", "status": 503, "count": 3}
        )
        await kubesim.fault({"action": "drop_watches"})
        create_pods(store, names("burst", 50))
        await checker.converged()
        assert (
            cacher.metrics.value(
                "kubecache_cacher_watch_restarts_total", {"resource": "pods", "reason": "throttled"}
            )
            >= 1
        )


async def test_a_stalled_watch_is_detected_and_reconnected(
    kubesim: Any, redis: aioredis.Redis, redis_server: RedisServer
) -> None:
    store = kubesim.store
    checker = Checker(redis, store)
    # The read timeout never cuts a watch before the server could end it (a 4 s watch here):
    # 4 s + 10 % + 2 s.
    settings = cacher_settings(
        kubesim, redis_server.url, stall_timeout=1.0, progress_stale_after=6.0
    )
    async with running_cacher(settings) as cacher:
        await checker.converged()
        await kubesim.fault({"action": "stall_watches"})
        create_pods(store, names("stalled", 20))
        await wait_for(
            lambda: (
                cacher.metrics.value(
                    "kubecache_cacher_watch_restarts_total",
                    {"resource": "pods", "reason": "stalled"},
                )
                >= 1
            ),
            timeout=6.4 + 5,
            message="the stalled pod watch to be detected",
        )
        await kubesim.fault({"action": "clear"})
        await checker.converged()


async def test_malformed_objects_are_skipped_and_counted_and_the_cacher_keeps_going(
    kubesim: Any, redis: aioredis.Redis, redis_server: RedisServer
) -> None:
    store = kubesim.store
    checker = Checker(redis, store)
    async with running_cacher(cacher_settings(kubesim, redis_server.url)) as cacher:
        await checker.converged()
        create_pods(store, ["broken"])

        def break_status(pod: dict[str, Any]) -> None:
            pod["status"] = "not an object"

        store.mutate("pods", NAMESPACE, "broken", break_status)
        await wait_for(
            lambda: (
                cacher.metrics.value(
                    "kubecache_cacher_malformed_objects_total", {"resource": "pods"}
                )
                >= 1
            ),
            message="the malformed pod to be counted",
        )
        create_pods(store, names("after", 10))
        await checker.converged()


async def test_once_syncs_everything_and_exits(
    kubesim: Any, redis: aioredis.Redis, redis_server: RedisServer
) -> None:
    from kubecache.cacher.app import Cacher

    store = kubesim.store
    create_pods(store, names("once", 30))
    checker = Checker(redis, store)

    # nothing changes any more while --once lists
    await wait_for(lambda: all_ready(store, 30), timeout=30, message="every pod to be ready")
    settings = cacher_settings(kubesim, redis_server.url, once=True)
    assert await Cacher(settings).run_once() == 0
    assert not await checker.differences()
    health = CacheHealth.from_redis(await redis.hgetall(Keys().health))
    assert health is not None and health.synced
    lease = store.get("leases", "default", settings.lease_name)
    assert lease is not None and not lease["spec"].get("holderIdentity")


def all_ready(store: Any, count: int) -> bool:
    pods = store.list("pods", NAMESPACE)
    return len(pods) == count and all(
        any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (p.get("status") or {}).get("conditions") or []
        )
        for p in pods
    )


def pod_event(store: Any, pod_name: str, n: int) -> None:
    pod = store.get("pods", NAMESPACE, pod_name)
    store.create(
        "events",
        NAMESPACE,
        {
            "metadata": {"name": f"{pod_name}.test{n}"},
            "involvedObject": {
                "kind": "Pod",
                "apiVersion": "v1",
                "namespace": NAMESPACE,
                "name": pod_name,
                "uid": pod["metadata"]["uid"],
            },
            "reason": "Nudged",
            "message": f"nudge {n}",
            "type": "Normal",
            "count": 1,
            "firstTimestamp": "2026-11-23T00:00:00Z",
            "lastTimestamp": "2026-11-23T00:00:00Z",
            "source": {"component": "test"},
        },
    )


async def test_an_expired_event_watch_relists_events_without_touching_pod_records(
    kubesim: Any, redis: aioredis.Redis, redis_server: RedisServer
) -> None:
    store = kubesim.store
    create_pods(store, names("quiet", 10))
    await wait_for(lambda: all_ready(store, 10), timeout=30, message="pods to be ready")
    checker = Checker(redis, store)
    async with running_cacher(cacher_settings(kubesim, redis_server.url)) as cacher:
        await checker.converged()
        pod_writes = await redis.xlen(Keys().feed)
        # The event watch cannot come back while events happen and history goes.
        await kubesim.fault(
            {"action": "fail", "verb": "watch", "resource": "events", "status": 503}
        )
        await kubesim.fault({"action": "drop_watches"})
        for i, name in enumerate(names("quiet", 10)):
            pod_event(store, name, i)
        await kubesim.fault({"action": "compact"})
        await kubesim.fault({"action": "clear"})
        await wait_for(
            lambda: (
                cacher.metrics.value(
                    "kubecache_cacher_relists_total", {"resource": "events", "reason": "expired"}
                )
                >= 1
            ),
            message="the event watch to relist after 410",
        )
        await checker.converged()
        assert (
            cacher.metrics.value(
                "kubecache_cacher_relists_total", {"resource": "pods", "reason": "expired"}
            )
            == 0
        )
        feed = await redis.xrange(Keys().feed, count=100_000)
        kinds = [fields[b"kind"] for _, fields in feed[pod_writes:]]
        assert b"pod" not in kinds and b"gone" not in kinds
        assert kinds.count(b"event") >= 10


async def test_several_namespaces_get_one_watch_each_and_others_are_ignored(
    kubesim: Any, redis: aioredis.Redis, redis_server: RedisServer
) -> None:
    store = kubesim.store
    for namespace in ("team-a", "team-b", "elsewhere"):
        create_pods(store, [f"{namespace}-user-{i}" for i in range(5)], namespace=namespace)
    checker = Checker(redis, store, namespaces=("team-a", "team-b"))
    settings = cacher_settings(kubesim, redis_server.url, namespaces=("team-a", "team-b"))
    async with running_cacher(settings):
        await checker.converged()
        create_pods(store, ["late-a"], namespace="team-a")
        create_pods(store, ["late-elsewhere"], namespace="elsewhere")
        await checker.converged()
        stats = await kubesim.stats()
    assert stats  # the emulator served us
    assert not await redis.hexists(Keys().pods, "elsewhere/late-elsewhere")


async def test_an_unforeseen_failure_while_leading_hands_over_and_recovers(
    kubesim: Any, redis: aioredis.Redis, redis_server: RedisServer, monkeypatch: Any
) -> None:
    from kubecache.cacher.writer import CacheWriter

    store = kubesim.store
    checker = Checker(redis, store)
    original = CacheWriter.apply_pods
    failures: list[int] = []

    async def flaky(self: CacheWriter, changes: Any) -> None:
        if not failures:
            failures.append(1)
            raise RuntimeError("a bug in the write path")
        await original(self, changes)

    monkeypatch.setattr(CacheWriter, "apply_pods", flaky)
    async with running_cacher(cacher_settings(kubesim, redis_server.url)) as cacher:
        await checker.converged()
        create_pods(store, names("boom", 10))
        await wait_for(lambda: failures, message="the write path to fail once")
        await checker.converged()
        assert (
            cacher.metrics.value("kubecache_cacher_leader_transitions_total", {"change": "gained"})
            == 2
        )
