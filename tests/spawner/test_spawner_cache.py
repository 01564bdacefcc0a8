"""KubeCacheSpawner's reads against a real redis-server written by the cache writer double.

The Kubernetes API is replaced by a stub counting reads, so these tests say
exactly when the spawner leaves the cache for the API.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from kubecache.contract import PodRecord, lenient_pod_record
from kubecache.spawner import KubeCacheSpawner
from kubecache.spawner.cache_client import CacheClient
from kubecache.spawner.kube_api import KubeApiError
from kubecache.spawner.pod_reads import PodRead
from tests.spawner.support import CacheWriterDouble, MockDB, MockServer, mock_hub, mock_user
from tests.spawner.unit.records import POD_UID, container, event, pod, running
from tests.support.redis_server import RedisServer, free_port


class ApiStub:
    """Stands in for direct pod reads: counts them and answers as told (each one sent now)."""

    def __init__(self) -> None:
        self.reads = 0
        self.answer: dict[str, Any] | KubeApiError | None = KubeApiError("API unreachable")

    async def read(self, *, max_age: float, **_: Any) -> PodRead:
        self.reads += 1
        if isinstance(self.answer, KubeApiError):
            raise self.answer
        record = None if self.answer is None else lenient_pod_record(self.answer)
        return PodRead(record, time.monotonic(), "get")


@pytest.fixture
async def writer(redis: aioredis.Redis) -> CacheWriterDouble:
    double = CacheWriterDouble(redis)
    await double.fresh()
    return double


@pytest.fixture
async def make_spawner(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Callable[..., tuple[KubeCacheSpawner, ApiStub]]]:
    def make(**config: Any) -> tuple[KubeCacheSpawner, ApiStub]:
        stub = ApiStub()
        config.setdefault("redis_url", redis_server.url)
        spawner = KubeCacheSpawner(
            user=mock_user("alice"), hub=mock_hub(), namespace="jhub", **config
        )
        monkeypatch.setattr(spawner, "read_pod_from_api", stub.read)
        return spawner, stub

    yield make
    await CacheClient.close_all()


async def test_a_fresh_cache_answers_running_alone_and_stopped_only_with_the_apis_word(
    make_spawner: Callable[..., tuple[KubeCacheSpawner, ApiStub]], writer: CacheWriterDouble
) -> None:
    spawner, api = make_spawner(delete_stopped_pods=False)
    await writer.put_pod(running())
    assert await spawner.poll() is None
    assert api.reads == 0
    await writer.put_pod(pod("Running", containers=[container(state="terminated", exit_code=3)]))
    api.answer = pod_from_api(terminated_with=3)
    assert await spawner.poll() == 3
    assert api.reads == 1
    await writer.remove_pod("jhub", "jupyter-alice")
    api.answer = None  # 404
    assert await spawner.poll() == 1
    assert api.reads == 2


@pytest.mark.parametrize(
    "forged",
    [
        pod("Running", containers=[container(state="terminated", exit_code=0)]),
        pod("Failed"),
        pod("Succeeded", containers=[container(state="terminated", exit_code=0)]),
        None,  # the record deleted (DEL/HDEL, a failover to a replica that missed it)
    ],
    ids=["terminated", "failed", "succeeded", "absent"],
)
async def test_a_forged_or_outdated_record_never_stops_a_pod_running_in_the_api(
    make_spawner: Callable[..., tuple[KubeCacheSpawner, ApiStub]],
    writer: CacheWriterDouble,
    forged: PodRecord | None,
) -> None:
    spawner, api = make_spawner()  # delete_stopped_pods: a wrong verdict would delete the pod
    deleted: list[bool] = []

    async def stop(now: bool = False) -> None:
        deleted.append(now)

    spawner.stop = stop  # type: ignore[method-assign]
    if forged is not None:
        await writer.put_pod(forged)
    api.answer = running_pod_from_api()
    assert await spawner.poll() is None
    assert api.reads == 1
    assert deleted == []


async def test_a_stopped_verdict_the_api_cannot_confirm_keeps_the_server_running(
    make_spawner: Callable[..., tuple[KubeCacheSpawner, ApiStub]], writer: CacheWriterDouble
) -> None:
    spawner, api = make_spawner()
    await writer.put_pod(pod("Failed"))
    assert await spawner.poll() is None  # API unreachable: kept running
    assert api.reads == 1
    strict, _ = make_spawner(request_failed_poll_keep_running=False)
    assert await strict.poll() == 1


async def test_a_pending_pod_polls_as_running(
    make_spawner: Callable[..., tuple[KubeCacheSpawner, ApiStub]], writer: CacheWriterDouble
) -> None:
    spawner, _ = make_spawner()
    await writer.put_pod(pod("Pending"))
    assert await spawner.poll() is None


async def test_a_pod_absent_from_a_fresh_cache_can_be_kept_running_by_policy(
    make_spawner: Callable[..., tuple[KubeCacheSpawner, ApiStub]], writer: CacheWriterDouble
) -> None:
    spawner, _ = make_spawner(request_404_poll_keep_running=True)
    assert await spawner.poll() is None


@pytest.mark.parametrize("cache_state", ["stale", "not_synced", "empty"])
async def test_an_untrusted_cache_never_reports_a_running_server_dead(
    make_spawner: Callable[..., tuple[KubeCacheSpawner, ApiStub]],
    writer: CacheWriterDouble,
    cache_state: str,
) -> None:
    """kubespawner#742: KubeSpawner 7.1 returns 1 for every server when its first LIST fails."""
    spawner, api = make_spawner()
    await getattr(writer, cache_state)()
    assert await spawner.poll() is None
    assert api.reads == 1


async def test_an_untrusted_cache_asks_the_api_once(
    make_spawner: Callable[..., tuple[KubeCacheSpawner, ApiStub]], writer: CacheWriterDouble
) -> None:
    spawner, api = make_spawner()
    await writer.stale()
    api.answer = None  # 404
    assert await spawner.poll() == 1
    api.answer = {
        "metadata": {"name": "jupyter-alice", "namespace": "jhub", "uid": "u"},
        "spec": {"containers": [{"name": "notebook"}]},
        "status": {
            "phase": "Running",
            "containerStatuses": [{"name": "notebook", "state": {"terminated": {"exitCode": 0}}}],
        },
    }
    assert await spawner.poll() == 0
    assert api.reads == 2


async def test_an_unreachable_redis_keeps_the_server_running_unless_the_policy_says_otherwise(
    make_spawner: Callable[..., tuple[KubeCacheSpawner, ApiStub]],
) -> None:
    spawner, api = make_spawner(redis_url="redis://127.0.0.1:1/0")
    assert await spawner.poll() is None
    strict, _ = make_spawner(
        redis_url="redis://127.0.0.1:1/0", request_failed_poll_keep_running=False
    )
    assert await strict.poll() == 1
    assert api.reads == 1


@pytest.mark.parametrize(("result", "expected"), [(False, None), (None, None), (5, 5)])
async def test_a_pre_poll_hook_can_answer_instead_of_the_cache(
    make_spawner: Callable[..., tuple[KubeCacheSpawner, ApiStub]],
    writer: CacheWriterDouble,
    result: object,
    expected: int | None,
) -> None:
    # absent from a fresh cache: a real poll would say 1
    spawner, _ = make_spawner(pre_poll_hook=lambda spawner: result)
    assert await spawner.poll() == expected


async def test_a_pre_poll_hook_returning_true_polls_as_usual(
    make_spawner: Callable[..., tuple[KubeCacheSpawner, ApiStub]], writer: CacheWriterDouble
) -> None:
    async def hook(spawner: KubeCacheSpawner) -> bool:
        return True

    spawner, api = make_spawner(pre_poll_hook=hook)
    api.answer = None
    assert await spawner.poll() == 1


async def test_poll_never_raises(
    make_spawner: Callable[..., tuple[KubeCacheSpawner, ApiStub]], writer: CacheWriterDouble
) -> None:
    def broken(spawner: KubeCacheSpawner) -> bool:
        raise RuntimeError("hook bug")

    spawner, _ = make_spawner(pre_poll_hook=broken)
    assert await spawner.poll() is None


async def test_poll_updates_a_changed_pod_address_like_kubespawner(
    make_spawner: Callable[..., tuple[KubeCacheSpawner, ApiStub]], writer: CacheWriterDouble
) -> None:
    spawner, _ = make_spawner()
    server = MockServer()
    server.url = "http://10.0.0.1:8888/user/alice/"
    server.port = 8888
    db = MockDB()
    spawner._server = server  # no ORM spawner: JupyterHub's Spawner.server returns this
    spawner.db = db
    await writer.put_pod(running(ip="10.0.0.9"))
    assert await spawner.poll() is None
    assert (server.ip, server.port, db.commits) == ("10.0.0.9", 8888, 1)


async def test_state_uses_kubespawners_keys_and_a_kubespawner_state_loads(
    make_spawner: Callable[..., tuple[KubeCacheSpawner, ApiStub]],
) -> None:
    spawner, _ = make_spawner()
    spawner.load_state(
        {
            "kubespawner_version": "7.1.0",
            "pod_name": "jupyter-old-name",
            "namespace": "other",
            "dns_name": "jupyter-old-name.other.svc.cluster.local",
            "pvc_name": "claim-old-name",
        }
    )
    assert (spawner.pod_name, spawner.namespace, spawner.pvc_name) == (
        "jupyter-old-name",
        "other",
        "claim-old-name",
    )
    state = spawner.get_state()
    assert {k: state[k] for k in ("pod_name", "namespace", "dns_name", "pvc_name")} == {
        "pod_name": "jupyter-old-name",
        "namespace": "other",
        "dns_name": "jupyter-old-name.other.svc.cluster.local",
        "pvc_name": "claim-old-name",
    }
    assert "kubespawner_version" in state


async def test_progress_shows_this_spawns_events_then_ends_with_the_start(
    make_spawner: Callable[..., tuple[KubeCacheSpawner, ApiStub]], writer: CacheWriterDouble
) -> None:
    spawner, _ = make_spawner(
        filter_events=lambda spawner, e: {} if "hidden" in e["message"] else e
    )
    start: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    spawner._start_future = start
    spawner._pod_uid = POD_UID
    await writer.add_event("jhub", "jupyter-alice", event("old", "the old pod", pod_uid="old"))
    await writer.add_event("jhub", "jupyter-alice", event("e1", "Successfully assigned"))
    shown: list[dict[str, Any]] = []

    async def follow() -> None:
        async for item in spawner.progress():
            shown.append(item)
            if len(shown) == 1:
                await writer.add_event("jhub", "jupyter-alice", event("e2", "hidden one"))
                await writer.add_event(
                    "jhub", "jupyter-alice", event("e3", "Pulling image", reason="Pulling")
                )
            if len(shown) == 2:
                start.set_result("http://10.0.0.7:8888")

    await asyncio.wait_for(follow(), 10)
    assert [e["message"] for e in shown] == [
        "2024-05-01T12:00:01Z [Normal] Successfully assigned",
        "2024-05-01T12:00:01Z [Normal] Pulling image",
    ]
    assert [e["progress"] for e in shown] == [30, 63]


async def test_progress_is_silent_without_events_enabled(
    make_spawner: Callable[..., tuple[KubeCacheSpawner, ApiStub]],
) -> None:
    spawner, _ = make_spawner(events_enabled=False)
    assert [e async for e in spawner.progress()] == []


async def test_cache_options_default_to_the_kubecache_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUBECACHE_REDIS_URL", "redis://redis.example:6379/2")
    monkeypatch.setenv("KUBECACHE_KEY_PREFIX", "other:v1:")
    monkeypatch.setenv("KUBECACHE_STALE_AFTER", "40")
    spawner = KubeCacheSpawner(user=mock_user("alice"), hub=mock_hub())
    assert spawner.redis_url == "redis://redis.example:6379/2"
    assert spawner.redis_key_prefix == "other:v1:"
    assert spawner.cache_stale_after == 40.0
    assert spawner.request_failed_poll_keep_running is True
    assert spawner.request_404_poll_keep_running is False


async def test_a_custom_poll_interval_sets_this_servers_polling(
    make_spawner: Callable[..., tuple[KubeCacheSpawner, ApiStub]],
) -> None:
    spawner, _ = make_spawner(custom_poll_interval=lambda spawner, options: 1234)
    spawner.start_polling()
    try:
        assert spawner._poll_callback is not None
        assert spawner._poll_callback.callback_time == 1234
    finally:
        spawner.stop_polling()


async def test_a_server_whose_start_is_pending_polls_as_running(
    make_spawner: Callable[..., tuple[KubeCacheSpawner, ApiStub]], writer: CacheWriterDouble
) -> None:
    spawner, api = make_spawner()
    spawner._start_future = asyncio.get_running_loop().create_future()
    assert await spawner.poll() is None  # the pod does not exist yet
    assert api.reads == 0
    spawner._start_future.set_result("http://10.0.0.7:8888")
    api.answer = None
    assert await spawner.poll() == 1


async def test_the_polls_of_many_servers_in_one_tick_are_one_redis_pipeline(
    make_spawner: Callable[..., tuple[KubeCacheSpawner, ApiStub]],
    writer: CacheWriterDouble,
    redis: aioredis.Redis,
) -> None:
    spawners = []
    for i in range(30):
        spawner, _ = make_spawner()
        spawner.pod_name = f"jupyter-user{i}"
        await writer.put_pod(running(name=spawner.pod_name))
        spawners.append(spawner)
    await redis.config_resetstat()
    results = await asyncio.gather(*(s.poll() for s in spawners))
    assert results == [None] * 30
    stats = await redis.info("commandstats")
    assert stats["cmdstat_hmget"]["calls"] == 1


async def test_check_allowed_refuses_a_start_before_anything_is_created(
    make_spawner: Callable[..., tuple[KubeCacheSpawner, ApiStub]], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(spawner: KubeCacheSpawner, user_options: dict[str, Any]) -> None:
        if user_options.get("system") == "closed":
            raise ValueError("system closed is in maintenance")

    spawner, _ = make_spawner(check_allowed=refuse)
    spawner.user_options = {"system": "closed"}

    async def no_api() -> None:
        raise AssertionError("the API was used")

    monkeypatch.setattr(spawner, "_api", no_api)
    with pytest.raises(ValueError, match="maintenance"):
        await spawner.start()


async def test_progress_shows_the_slow_spawn_message_while_waiting(
    make_spawner: Callable[..., tuple[KubeCacheSpawner, ApiStub]], writer: CacheWriterDouble
) -> None:
    spawner, _ = make_spawner(
        slow_spawn_message_threshold=1,
        slow_spawn_message_frequency=1,
        slow_spawn_message="Still waiting after {seconds} s",
    )
    start: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    spawner._start_future = start
    shown: list[dict[str, Any]] = []

    async def follow() -> None:
        async for item in spawner.progress():
            shown.append(item)
            if len(shown) == 2:
                start.set_result("http://10.0.0.7:8888")

    await asyncio.wait_for(follow(), 10)
    seconds = [
        int(e["message"].removeprefix("Still waiting after ").removesuffix(" s")) for e in shown
    ]
    assert 1 <= seconds[0] < seconds[1]


@pytest.mark.parametrize(
    "watching",
    [{"pod_selector": "component=other-hubs-servers"}, {"namespaces": "team-a,team-b"}],
    ids=["selector", "namespaces"],
)
async def test_a_cacher_that_does_not_watch_this_hubs_pods_is_not_trusted_with_absence(
    make_spawner: Callable[..., tuple[KubeCacheSpawner, ApiStub]],
    writer: CacheWriterDouble,
    watching: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A fresh cache without the record would say "stopped"; it never watched such pods."""
    spawner, api = make_spawner()
    await writer.fresh(**watching)
    api.answer = running_pod_from_api()
    assert await spawner.poll() is None
    assert api.reads == 1
    assert "does not watch pod jhub/jupyter-alice" in caplog.text
    assert "--pod-selector" in caplog.text


async def test_a_running_record_the_cacher_covers_answers_without_expanding_label_templates(
    make_spawner: Callable[..., tuple[KubeCacheSpawner, ApiStub]],
    writer: CacheWriterDouble,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The record's own labels match the cacher's selector: covered, no template expanded."""
    spawner, api = make_spawner()
    expanded: list[int] = []
    real = spawner.coverage_labels
    monkeypatch.setattr(spawner, "coverage_labels", lambda: expanded.append(1) or real())
    await writer.put_pod(running(labels={"component": "singleuser-server"}))
    assert await spawner.poll() is None
    assert api.reads == 0 and expanded == []
    await writer.remove_pod("jhub", "jupyter-alice")  # no record: the pod's labels decide
    api.answer = running_pod_from_api()
    assert await spawner.poll() is None
    assert expanded == [1]


async def test_a_record_whose_labels_the_cacher_does_not_select_is_checked_with_the_pods_labels(
    make_spawner: Callable[..., tuple[KubeCacheSpawner, ApiStub]],
    writer: CacheWriterDouble,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A record left from another selector is not proof of coverage: the spawner's own
    labels decide, and a cacher that does not select them is not trusted."""
    spawner, api = make_spawner()
    await writer.fresh(pod_selector="component=retired-selector")  # logged once per selector
    await writer.put_pod(running(labels={"component": "singleuser-server"}))
    api.answer = running_pod_from_api()
    assert await spawner.poll() is None
    assert api.reads == 1
    assert "does not watch pod jhub/jupyter-alice" in caplog.text


def pod_from_api(*, terminated_with: int) -> dict[str, Any]:
    return {
        "metadata": {"name": "jupyter-alice", "namespace": "jhub", "uid": POD_UID},
        "spec": {"containers": [{"name": "notebook"}]},
        "status": {
            "phase": "Running",
            "podIP": "10.0.0.9",
            "containerStatuses": [
                {"name": "notebook", "state": {"terminated": {"exitCode": terminated_with}}}
            ],
        },
    }


def running_pod_from_api() -> dict[str, Any]:
    return {
        "metadata": {"name": "jupyter-alice", "namespace": "jhub", "uid": POD_UID},
        "spec": {"containers": [{"name": "notebook"}]},
        "status": {
            "phase": "Running",
            "podIP": "10.0.0.9",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {"name": "notebook", "ready": True, "state": {"running": {}}, "restartCount": 0}
            ],
        },
    }


async def test_a_cache_written_on_another_redis_primary_is_not_trusted_by_poll(
    make_spawner: Callable[..., tuple[KubeCacheSpawner, ApiStub]], writer: CacheWriterDouble
) -> None:
    """issue 15: a promoted replica's old health looked fresh; its missing records said stopped."""
    spawner, api = make_spawner()
    await writer.fresh(primary_replid="replid-of-the-old-primary")
    await writer.put_pod(running())
    api.answer = running_pod_from_api()
    assert await spawner.poll() is None
    assert api.reads == 1  # the cache's "running" was not trusted either: the API answered


async def test_a_changed_redis_option_takes_effect_on_the_next_read(
    make_spawner: Callable[..., tuple[KubeCacheSpawner, ApiStub]],
    writer: CacheWriterDouble,
) -> None:
    spawner, stub = make_spawner()
    await writer.put_pod(running())
    assert await spawner.poll() is None
    assert stub.reads == 0
    spawner.redis_url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    stub.answer = None  # 404
    assert await spawner.poll() == 1  # the unreachable Redis sent this poll to the API
    assert stub.reads == 1


async def test_poll_follows_a_pod_that_moves_after_its_address_was_checked(
    make_spawner: Callable[..., tuple[KubeCacheSpawner, ApiStub]], writer: CacheWriterDouble
) -> None:
    from jupyterhub.objects import Server

    spawner, _ = make_spawner()
    server = Server(base_url="/user/alice/")
    server.ip, server.port = "10.0.0.9", 8888
    db = MockDB()
    spawner._server = server
    spawner.db = db
    await writer.put_pod(running(ip="10.0.0.9"))
    assert await spawner.poll() is None
    assert await spawner.poll() is None
    assert db.commits == 0
    await writer.put_pod(running(ip="10.0.0.42", rv=11))
    assert await spawner.poll() is None
    assert (server.ip, server.port, db.commits) == ("10.0.0.42", 8888, 1)
    assert await spawner.poll() is None
    assert db.commits == 1


async def test_a_poll_expands_no_template_once_the_reader_is_built(
    make_spawner: Callable[..., tuple[KubeCacheSpawner, ApiStub]],
    writer: CacheWriterDouble,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spawner, api = make_spawner(extra_labels={"team": "{username}"})
    await writer.put_pod(running())
    assert await spawner.poll() is None
    expanded: list[str] = []
    real = KubeCacheSpawner._expand_user_properties

    def counted(self: KubeCacheSpawner, template: str, *args: Any) -> str:
        expanded.append(template)
        return real(self, template, *args)

    monkeypatch.setattr(KubeCacheSpawner, "_expand_user_properties", counted)
    for _ in range(3):
        assert await spawner.poll() is None
    assert expanded == [] and api.reads == 0


async def test_an_api_outage_while_the_cache_cannot_answer_logs_a_line_a_minute_not_a_poll(
    make_spawner: Callable[..., tuple[KubeCacheSpawner, ApiStub]],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both down on a big hub would log one warning per server per poll interval."""
    from kubecache.spawner import pod_reader
    from kubecache.spawner.hub_log import EveryInterval

    limit = EveryInterval(60.0)
    monkeypatch.setattr(pod_reader, "_unanswered", limit)
    nowhere = f"redis://127.0.0.1:{free_port()}/0"  # Redis down too
    spawners = [make_spawner(redis_url=nowhere)[0] for _ in range(5)]
    with caplog.at_level(logging.DEBUG):
        assert await asyncio.gather(*(s.poll() for s in spawners)) == [None] * 5
        limit.interval = 0.0  # a minute later
        assert await spawners[0].poll() is None

    lines = [r for r in caplog.records if "reading the pod from the API failed" in r.getMessage()]
    assert len(lines) == 6
    warnings = [r.getMessage() for r in lines if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "kept running (0 more polls" in warnings[0]
    assert "kept running (4 more polls" in warnings[1]
