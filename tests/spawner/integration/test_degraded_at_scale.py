"""Degraded mode is one request, not N: 1,200 servers polled at once against kubesim.

With the cache stale (cacher stopped), Redis down, or the pod hash deleted
under a running cacher, every poll needs the API. They share one paginated
LIST of the hub's pods (plus the lone GET that came first), and every answer
is the API's: running servers stay running, deleted and exited ones are
reported with their status.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from kubecache.contract import Keys
from kubecache.spawner import KubeCacheSpawner
from kubecache.spawner.cache_client import CacheClient
from kubecache.spawner.kube_api import KubeApi
from kubesim.testing import KubeSim, running_kubesim
from tests.spawner.integration.conftest import NAMESPACE, cache_is_fresh, cacher_settings
from tests.support.cacher import running_cacher
from tests.support.fleet import create_running_pods, make_spawners
from tests.support.redis_server import RedisServer
from tests.support.safety import KubesimTruth, SafetySampler
from tests.support.waiting import wait_for

SERVERS = 1200
#: LIST requests (pages) allowed for one burst of polls: the hub's pods (3 pages of 500), one
#: more if a poll came late, and one of the whole namespace confirming the absent pods
MAX_LISTS = 3 + 3 + 3
#: GETs: the lone first question, the first absence confirmation, one spare
MAX_GETS = 3


def exit_pods(sim: KubeSim, spawners: list[KubeCacheSpawner]) -> dict[str, int | None]:
    """Delete 300 pods and let 5 exit (code 3) behind the cache's back; the expected answers."""
    expected: dict[str, int | None] = {s.pod_name: None for s in spawners}
    for spawner in spawners[100:400]:
        sim.store.remove("pods", NAMESPACE, spawner.pod_name)
        expected[spawner.pod_name] = 1

    def exited(pod: dict[str, Any]) -> None:
        pod["status"]["containerStatuses"][0]["state"] = {"terminated": {"exitCode": 3}}
        pod["status"]["containerStatuses"][0]["ready"] = False

    for spawner in spawners[500:505]:
        sim.store.mutate("pods", NAMESPACE, spawner.pod_name, exited)
        expected[spawner.pod_name] = 3
    return expected


def pod_requests(stats: dict[str, Any]) -> dict[str, int]:
    return {verb: per.get("pods", 0) for verb, per in stats["requests"].items() if verb != "watch"}


def sent(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {verb: after.get(verb, 0) - before.get(verb, 0) for verb in ("get", "list")}


@pytest.fixture
async def sim(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[KubeSim]:
    async with running_kubesim(kubelet=None) as sim:
        monkeypatch.setenv("KUBECONFIG", str(sim.kubeconfig_path))
        sim.store.create("namespaces", None, {"metadata": {"name": NAMESPACE}})
        yield sim
        await CacheClient.close_all()
        await KubeApi.close_all()


async def poll_all(
    sim: KubeSim, spawners: list[KubeCacheSpawner]
) -> tuple[dict[str, int | None], dict[str, int]]:
    before = pod_requests(await sim.stats())
    answers = await asyncio.gather(*(s.poll() for s in spawners))
    after = pod_requests(await sim.stats())
    return {s.pod_name: a for s, a in zip(spawners, answers, strict=True)}, sent(before, after)


def no_failed_reads(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "API failed" in r.getMessage()]


async def test_a_stale_cache_answers_a_thousand_polls_with_one_list(
    sim: KubeSim,
    redis: aioredis.Redis,
    redis_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # exact answers are asserted, so the shared LIST must finish: on a loaded 2-core machine
    # a 1,000-pod LIST outlived the default 3 s and the safe answer ("running") came back
    spawners = make_spawners(redis_server.url, SERVERS, k8s_api_request_timeout=15)
    await create_running_pods(sim, spawners)
    async with running_cacher(cacher_settings(sim, redis_server.url)):
        await wait_for(lambda: cache_is_fresh(redis), timeout=30, message="a fresh cache")
    # the cacher is gone: no heartbeat, the cache turns stale; the cluster goes on
    await wait_for(lambda: _stale(redis), timeout=10, message="a stale cache")
    expected = exit_pods(sim, spawners)
    with caplog.at_level(logging.WARNING):
        answers, requests = await poll_all(sim, spawners)
    assert answers == expected
    assert requests["list"] <= MAX_LISTS, requests
    assert requests["get"] <= MAX_GETS, requests
    assert no_failed_reads(caplog) == []


async def test_with_redis_down_a_thousand_polls_share_one_list_and_nothing_is_stopped(
    sim: KubeSim, private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    spawners = make_spawners(private_redis.url, SERVERS)
    await create_running_pods(sim, spawners)
    private_redis.stop()
    truth = KubesimTruth(sim.store)
    try:
        with caplog.at_level(logging.WARNING), SafetySampler(truth) as sampler:
            before = pod_requests(await sim.stats())
            for _ in range(3):  # three rounds, as JupyterHub's periodic polls
                answers = await sampler.sample_polls(spawners)
                assert answers == [None] * SERVERS
            requests = sent(before, pod_requests(await sim.stats()))
    finally:
        truth.close()
        private_redis.start()
    assert sampler.figures.polls == 3 * SERVERS
    assert sampler.figures.safe, sampler.figures.details
    assert requests["list"] <= 3 * MAX_LISTS, requests
    assert requests["get"] <= 3 * MAX_GETS, requests
    assert no_failed_reads(caplog) == []


async def test_a_deleted_pod_hash_under_a_running_cacher_stops_no_server(
    sim: KubeSim,
    redis: aioredis.Redis,
    redis_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """issue 9: DEL <prefix>pods left every running server polling as 1."""
    spawners = make_spawners(redis_server.url, SERVERS)
    await create_running_pods(sim, spawners)
    truth = KubesimTruth(sim.store)
    async with running_cacher(cacher_settings(sim, redis_server.url)):
        await wait_for(lambda: cache_is_fresh(redis), timeout=30, message="a fresh cache")
        await wait_for(
            lambda: _records(redis, SERVERS), timeout=30, message="every pod in the cache"
        )
        with caplog.at_level(logging.WARNING), SafetySampler(truth) as sampler:
            before = pod_requests(await sim.stats())
            await redis.delete(Keys().pods)
            answers = await sampler.sample_polls(spawners)
            requests = sent(before, pod_requests(await sim.stats()))
    truth.close()
    assert answers == [None] * SERVERS
    assert sampler.figures.safe, sampler.figures.details
    assert requests["list"] <= MAX_LISTS, requests
    assert requests["get"] <= MAX_GETS, requests
    assert no_failed_reads(caplog) == []


async def _stale(redis: aioredis.Redis) -> bool:
    return not await cache_is_fresh(redis, 1000)


async def _records(redis: aioredis.Redis, n: int) -> bool:
    return int(await redis.hlen(Keys().pods)) >= n
