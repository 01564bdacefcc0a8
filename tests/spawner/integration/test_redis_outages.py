"""Degraded stays fast and whole: with Redis frozen (SIGSTOP), closed, or no cacher writing,
a start, its progress page, polls and a stop proceed from the Kubernetes API (issue 20 item 4,
issue 19 item 6), and the cache client recovers by itself when Redis returns."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from kubecache.spawner import KubeCacheSpawner
from kubecache.spawner.api_events import EventReads
from kubecache.spawner.cache_client import CacheClient
from kubecache.spawner.kube_api import KubeApi
from kubesim.testing import KubeSim, running_kubesim
from tests.spawner.integration.conftest import NAMESPACE
from tests.spawner.support import mock_hub, mock_user
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_for


@pytest.fixture
async def sim(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[KubeSim]:
    async with running_kubesim(kubelet="fake", fake_step_delay=0.05) as sim:
        monkeypatch.setenv("KUBECONFIG", str(sim.kubeconfig_path))
        sim.store.create("namespaces", None, {"metadata": {"name": NAMESPACE}})
        yield sim
        await CacheClient.close_all()
        await KubeApi.close_all()


@contextlib.contextmanager
def redis_fault(server: RedisServer, fault: str) -> Iterator[None]:
    """``frozen``: SIGSTOP (connections open, nothing answered); ``closed``: not running;
    ``no cacher``: Redis answers, nothing writes under the prefix."""
    assert server.process is not None
    pid = server.process.pid
    if fault == "frozen":
        os.kill(pid, signal.SIGSTOP)
    elif fault == "closed":
        server.stop()
    try:
        yield
    finally:
        if fault == "frozen":
            os.kill(pid, signal.SIGCONT)
        elif fault == "closed":
            server.start()


def make(redis_url: str, user: str = "alice") -> KubeCacheSpawner:
    spawner = KubeCacheSpawner(
        user=mock_user(user),
        hub=mock_hub(),
        namespace=NAMESPACE,
        redis_url=redis_url,
        image="quay.io/jupyter/base-notebook:latest",
        start_timeout=30,
        cache_stale_after=2.0,
        storage_pvc_ensure=False,
    )
    spawner.api_token = "token-" + user
    return spawner


async def spawn_with_progress(spawner: KubeCacheSpawner) -> tuple[str, list[dict[str, Any]]]:
    start = spawner.start()
    events = [e async for e in spawner.progress()]
    return await asyncio.wait_for(start, 40), events


@pytest.mark.parametrize("fault", ["frozen", "closed", "no cacher"])
async def test_starts_progress_polls_and_stops_proceed_from_the_api_without_the_cache(
    sim: KubeSim,
    private_redis: RedisServer,
    fault: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    spawner = make(private_redis.url)
    with caplog.at_level(logging.INFO), redis_fault(private_redis, fault):
        url, events = await spawn_with_progress(spawner)
        pod = sim.store.get("pods", NAMESPACE, spawner.pod_name)
        assert pod is not None
        assert url == f"http://{pod['status']['podIP']}:8888"
        messages = [e["message"] for e in events]
        # the API's events, in KubeSpawner's format
        assert any(f"Successfully assigned {NAMESPACE}/{spawner.pod_name}" in m for m in messages)
        assert all(" [Normal] " in m or " [Warning] " in m for m in messages), messages
        assert await spawner.poll() is None
        await spawner.stop()
        assert sim.store.get("pods", NAMESPACE, spawner.pod_name) is None
        assert await spawner.poll() == 1
        reads = EventReads.of(await spawner._api())
        assert reads.stats.lists >= 1
    cache = spawner._cache()
    if fault != "no cacher":
        assert not cache.available
        await wait_for(lambda: cache.available, timeout=15, message="the cache client recovered")
    hub_lines = [r.getMessage() for r in caplog.records if r.name == "traitlets"]
    if fault == "no cacher":
        unused = [line for line in hub_lines if "no cacher writes under the key prefix" in line]
        assert len(unused) == 1, hub_lines  # once per interval, not per read
        assert private_redis.url in unused[0]
    else:
        assert sum("did not answer" in line for line in hub_lines) == 1, hub_lines


async def test_progress_shows_the_api_events_without_list_on_events_as_none_and_says_why(
    sim: KubeSim, private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    await sim.fault({"action": "fail", "verb": "list", "resource": "events", "status": 403})
    spawner = make(private_redis.url)
    with caplog.at_level(logging.WARNING):
        url, events = await spawn_with_progress(spawner)
    assert url
    assert not [e for e in events if "raw_event" in e]
    warnings = [r.getMessage() for r in caplog.records if "may not list events" in r.getMessage()]
    assert len(warnings) == 1
    assert "Grant 'list' on events" in warnings[0]
    await spawner.stop()
