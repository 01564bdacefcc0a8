"""Degraded mode: N servers polled at once while the cache cannot answer.

Run from the repository root::

    python benchmarks/degraded_bench.py              # 3,000 servers
    python benchmarks/degraded_bench.py --servers 500
    python benchmarks/degraded_bench.py --profile degraded.prof   # first round, cProfile

Prints JSON and writes ``benchmarks/results/degraded.json``.

kubesim (no kubelet) holds N Running pods made from the spawners' own
manifests; a redis-server is either holding a stale health record (the
cacher stopped long ago) or stopped (Redis down). All N spawners poll at once
(``asyncio.gather``, as JupyterHub's polls after a hub restart); then every
server polls again, twice. For each round: Kubernetes requests about pods by
verb (kubesim's /kubesim/stats; kubesim counts each LIST page as one
"list"), polls the API did not answer within the request timeout (kept
running by the policy instead), wall time until the last answer, the
slowest single poll, and how many answers were "running" (all, else a server
would have been stopped). The path is the spawner's own ``poll()``; nothing
is patched.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.hub_worker import GcClock
from kubecache.spawner import KubeCacheSpawner
from kubecache.spawner.cache_client import CacheClient
from kubecache.spawner.kube_api import KubeApi
from kubesim.testing import KubeSim, running_kubesim
from tests.spawner.support import CacheWriterDouble
from tests.support.fleet import NAMESPACE, create_running_pods, make_spawners
from tests.support.redis_server import RedisServer


class PolicyAnswers(logging.Handler):
    """Counts polls the API did not answer in time (kept running by the policy, not known)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "reading the pod from the API failed" in record.getMessage():
            self.count += 1


def pod_requests(stats: dict[str, Any]) -> dict[str, int]:
    return {verb: per.get("pods", 0) for verb, per in stats["requests"].items() if verb != "watch"}


async def timed_poll(spawner: KubeCacheSpawner) -> tuple[int | None, float]:
    began = time.perf_counter()
    answer = await spawner.poll()
    return answer, time.perf_counter() - began


async def poll_rounds(
    sim: KubeSim,
    spawners: list[KubeCacheSpawner],
    rounds: int,
    profile: str = "",
    profile_round: int = 0,
) -> list[Any]:
    results = []
    unanswered = PolicyAnswers()
    logging.getLogger().addHandler(unanswered)
    clock = GcClock()
    gc.callbacks.append(clock)
    for r in range(rounds):
        unanswered.count = 0
        before = pod_requests(await sim.stats())
        clock.reset()
        profiler = None
        if profile and r == profile_round:
            profiler = cProfile.Profile(time.process_time)  # CPU: the machine is shared
            profiler.enable()
        began, cpu = time.perf_counter(), time.process_time()
        answers = await asyncio.gather(*(timed_poll(s) for s in spawners))
        wall, cpu = time.perf_counter() - began, time.process_time() - cpu
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(profile)
        after = pod_requests(await sim.stats())
        results.append(
            {
                "requests": {v: after.get(v, 0) - before.get(v, 0) for v in ("get", "list")},
                "wall_s": round(wall, 3),
                # this process's CPU (hub and kubesim: kubesim runs in it) and the GC's part
                "cpu_s": round(cpu, 3),
                "gc_cpu_s": round(clock.seconds, 3),
                "cpu_outside_gc_s": round(cpu - clock.seconds, 3),
                "gc_collections": list(clock.collections),
                "slowest_poll_s": round(max(t for _, t in answers), 3),
                "running": sum(1 for a, _ in answers if a is None),
                "stopped": sum(1 for a, _ in answers if a is not None),
                "not_answered_by_the_api": unanswered.count,
            }
        )
    logging.getLogger().removeHandler(unanswered)
    gc.callbacks.remove(clock)
    return results


async def scenario(
    name: str, servers: int, rounds: int, profile: str = "", profile_round: int = 0
) -> dict[str, Any]:
    redis_server = RedisServer()
    redis_server.start()
    try:
        async with running_kubesim(kubelet=None) as sim:
            os.environ["KUBECONFIG"] = str(sim.kubeconfig_path)
            sim.store.create("namespaces", None, {"metadata": {"name": NAMESPACE}})
            spawners = make_spawners(redis_server.url, servers, cache_stale_after=15.0)
            await create_running_pods(sim, spawners)
            redis = aioredis.Redis.from_url(redis_server.url)
            if name == "stale cache":
                await CacheWriterDouble(redis).stale(age_ms=600_000)
            else:
                redis_server.stop()
            await redis.aclose()
            result = {
                "scenario": name,
                "servers": servers,
                "rounds": await poll_rounds(sim, spawners, rounds, profile, profile_round),
            }
            await CacheClient.close_all()
            await KubeApi.close_all()
            return result
    finally:
        redis_server.close()


async def main(
    servers: int, rounds: int, profile: str = "", profile_round: int = 0
) -> dict[str, Any]:
    return {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load": os.getloadavg(),
        },
        "k8s_api_request_timeout_s": 3,
        "scenarios": [
            await scenario("stale cache", servers, rounds, profile, profile_round),
            await scenario("redis down", servers, rounds),
        ],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--profile", default="", help="cProfile (CPU time) the stale cache's first round into FILE"
    )
    parser.add_argument(
        "--profile-round",
        type=int,
        default=0,
        help="the round --profile records (0: the first, which sends the LIST)",
    )
    args = parser.parse_args()
    results = asyncio.run(main(args.servers, args.rounds, args.profile, args.profile_round))
    print(json.dumps(results, indent=2))
    out = Path(__file__).parent / "results" / "degraded.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
