"""No start or stop fails on a Ready (or gone) pod because the API is slow (issue 19).

A hub whose cache cannot answer (no cacher) with thousands of running servers
polls them; their reads share paginated LISTs which, at 400 ms per request,
take seconds. New starts and stops in the same namespace must still be
answered in time: by a lone GET when the shared LIST cannot end within
``k8s_api_request_timeout``, and with the API's last word at the deadline.

5,000 pods at 150 and 400 ms per request run here; 10,000 pods at both
latencies with ``KUBECACHE_LONG_TESTS=1``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable

import pytest

from kubecache.spawner import KubeCacheSpawner
from kubecache.spawner.cache_client import CacheClient
from kubecache.spawner.kube_api import KubeApi
from kubesim.store import Change
from kubesim.testing import KubeSim, running_kubesim
from tests.support.fleet import NAMESPACE, create_running_pods, make_spawners, mark_running
from tests.support.redis_server import RedisServer
from tests.support.safety import KubesimTruth, SafetySampler

#: servers polled in a loop, as JupyterHub's periodic polls of a large hub keep reads in flight
POLLING = 300
#: new starts (then stops) while the polls go on, as in the issue's run
STARTS = 4

LONG = pytest.mark.skipif(
    not os.environ.get("KUBECACHE_LONG_TESTS"), reason="the longer run: KUBECACHE_LONG_TESTS=1"
)


@pytest.fixture
async def sim(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[KubeSim]:
    # no kubelet: thousands of pods are put in the store Running (tests.support.fleet), and
    # a new pod is made Running and Ready by `kubelet_for_new_pods`
    async with running_kubesim(kubelet=None) as sim:
        monkeypatch.setenv("KUBECONFIG", str(sim.kubeconfig_path))
        sim.store.create("namespaces", None, {"metadata": {"name": NAMESPACE}})
        yield sim
        await CacheClient.close_all()
        await KubeApi.close_all()


def kubelet_for_new_pods(sim: KubeSim, *, after: float = 1.0) -> Callable[[Change], None]:
    """A store listener that makes each pod created from now on Running and Ready ``after``
    seconds later, as a kubelet would (the pods of tests.support.fleet are made Running
    directly); returned to be removed."""
    loop = asyncio.get_running_loop()
    counter = iter(range(1, 250))

    def ready(name: str, ip: str) -> None:
        if sim.store.get("pods", NAMESPACE, name) is not None:
            sim.store.mutate("pods", NAMESPACE, name, lambda pod: mark_running(pod, ip))

    def on_change(change: Change) -> None:
        if change.resource == "pods" and change.type == "ADDED":
            name = change.key[1]
            loop.call_later(after, ready, name, f"10.200.0.{next(counter)}")

    sim.store.add_change_listener(on_change)
    return on_change


async def keep_polling(
    sampler: SafetySampler, spawners: list[KubeCacheSpawner], done: asyncio.Event
) -> None:
    while not done.is_set():
        polled = await sampler.sample_polls(spawners)
        assert polled, "no server to poll"


async def starts_and_stops_under_latency(
    sim: KubeSim, redis: RedisServer, *, pods: int, latency_ms: int
) -> None:
    running = make_spawners(redis.url, pods)
    await create_running_pods(sim, running)
    new = make_spawners(redis.url, STARTS, prefix="new", start_timeout=30, storage_pvc_ensure=False)
    truth = KubesimTruth(sim.store)
    kubelet = kubelet_for_new_pods(sim)
    await sim.fault({"action": "latency", "ms": latency_ms})
    try:
        with SafetySampler(truth) as sampler:
            done = asyncio.Event()
            polls = asyncio.ensure_future(keep_polling(sampler, running[:POLLING], done))
            try:
                urls = await asyncio.gather(*(sampler.start(s) for s in new))
                stopped = await asyncio.gather(*(sampler.stop(s) for s in new))
            finally:
                done.set()
                await polls
    finally:
        truth.close()
        sim.store.remove_change_listener(kubelet)
        await sim.fault({"action": "clear"})
    figures = sampler.figures
    assert figures.failed_starts == 0, figures.details
    assert all(urls), figures.details
    assert all(stopped), figures.details
    assert figures.safe, figures.details
    assert figures.polls >= POLLING  # the LISTs really were in flight
    for spawner in new:
        assert sim.store.get("pods", NAMESPACE, spawner.pod_name) is None


@pytest.mark.parametrize("latency_ms", [150, 400])
async def test_starts_and_stops_of_ready_pods_succeed_at_5000_pods_with_a_slow_api(
    sim: KubeSim, private_redis: RedisServer, latency_ms: int
) -> None:
    await starts_and_stops_under_latency(
        sim, private_redis, pods=int(os.environ.get("XPODS", "5000")), latency_ms=latency_ms
    )


@LONG
@pytest.mark.timeout(900)
@pytest.mark.parametrize("latency_ms", [150, 400])
async def test_starts_and_stops_of_ready_pods_succeed_at_10000_pods_with_a_slow_api(
    sim: KubeSim, private_redis: RedisServer, latency_ms: int
) -> None:
    await starts_and_stops_under_latency(sim, private_redis, pods=10000, latency_ms=latency_ms)
