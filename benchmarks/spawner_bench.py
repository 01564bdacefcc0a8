"""Spawner benchmarks: poll cost from Redis, change-feed wake-up latency, start latency.

Run from the repository root::

    python benchmarks/spawner_bench.py            # everything
    python benchmarks/spawner_bench.py --quick    # smaller sizes

Prints a table and writes ``benchmarks/results/spawner.json``.

- poll: N spawners of one hub poll at once (as after a hub restart), answered
  from a fresh cache written by the test double: wall time, Redis pipelines
  used and Kubernetes requests made (none).
- wake: a record and its feed entry written to Redis (one MULTI); time until
  the shared cache client wakes the waiter of that pod (median and p99).
- start: ``KubeCacheSpawner.start()`` against kubesim (fake kubelet, 10 ms
  steps) with a running cacher, until the URL is returned (median of runs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kubecache.redis_connection import RedisSettings
from spawner import KubeCacheSpawner
from spawner.cache_client import CacheClient
from spawner.kube_api import KubeApi
from tests.spawner.support import CacheWriterDouble, mock_hub, mock_user
from tests.spawner.unit.records import pod, running
from tests.support.redis_server import RedisServer


async def bench_poll(url: str, n: int) -> dict[str, Any]:
    redis = aioredis.Redis.from_url(url)
    await redis.flushall()
    writer = CacheWriterDouble(redis)
    await writer.fresh()
    spawners = []
    for i in range(n):
        spawner = KubeCacheSpawner(user=mock_user(f"user{i}"), hub=mock_hub(), namespace="jhub")
        spawner.redis_url = url
        await writer.put_pod(running(name=spawner.pod_name))
        spawners.append(spawner)
    client = spawners[0]._cache()  # the hub's shared client
    await client.get_pod("jhub/warm-up")
    before = client.stats.pipelines
    began = time.perf_counter()
    results = await asyncio.gather(*(s.poll() for s in spawners))
    elapsed = time.perf_counter() - began
    assert results == [None] * n
    result = {
        "servers": n,
        "wall_ms": round(elapsed * 1000, 1),
        "pipelines": client.stats.pipelines - before,
        "kubernetes_requests": sum(sum(api.requests.values()) for api in KubeApi._shared.values()),
    }
    await CacheClient.close_all()
    await redis.aclose()
    return result


async def bench_wake(url: str, n: int) -> dict[str, Any]:
    redis = aioredis.Redis.from_url(url)
    await redis.flushall()
    writer = CacheWriterDouble(redis)
    await writer.fresh()
    client = CacheClient.shared(RedisSettings(url=url), prefix="kubecache:v1:")
    await client.wait_positioned(10)
    latencies = []
    async with client.watch("jhub/jupyter-alice") as watch:
        for i in range(n):
            began = time.perf_counter()
            await writer.put_pod(pod(rv=i + 1))
            await watch.wait(10)
            latencies.append((time.perf_counter() - began) * 1000)
    await CacheClient.close_all()
    await redis.aclose()
    latencies.sort()
    return {
        "writes": n,
        "median_ms": round(statistics.median(latencies), 3),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 3),
    }


async def bench_start(url: str, runs: int) -> dict[str, Any]:
    from cacher.app import running_cacher
    from kubesim.testing import running_kubesim
    from tests.spawner.integration.conftest import cache_is_fresh, cacher_settings
    from tests.support.waiting import wait_for

    redis = aioredis.Redis.from_url(url)
    await redis.flushall()
    durations = []
    async with running_kubesim(kubelet="fake", fake_step_delay=0.01) as sim:
        os.environ["KUBECONFIG"] = str(sim.kubeconfig_path)
        sim.store.create("namespaces", None, {"metadata": {"name": "jhub"}})
        async with running_cacher(cacher_settings(sim, url)):
            await wait_for(lambda: cache_is_fresh(redis), timeout=20)
            for i in range(runs):
                spawner = KubeCacheSpawner(
                    user=mock_user(f"user{i}"), hub=mock_hub(), namespace="jhub"
                )
                spawner.redis_url = url
                spawner.image = "quay.io/jupyter/base-notebook:latest"
                spawner.api_token = "token"
                began = time.perf_counter()
                await spawner.start()
                durations.append((time.perf_counter() - began) * 1000)
                await spawner.stop(now=True)
        await CacheClient.close_all()
        await KubeApi.close_all()
    await redis.aclose()
    return {"runs": runs, "median_ms": round(statistics.median(durations), 1)}


async def main(quick: bool) -> dict[str, Any]:
    server = RedisServer()
    server.start()
    try:
        return {
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
            "poll": await bench_poll(server.url, 200 if quick else 2000),
            "wake": await bench_wake(server.url, 200 if quick else 1000),
            "start": await bench_start(server.url, 3 if quick else 10),
        }
    finally:
        server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    results = asyncio.run(main(args.quick))
    print(json.dumps(results, indent=2))
    out = Path(__file__).parent / "results" / "spawner.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
