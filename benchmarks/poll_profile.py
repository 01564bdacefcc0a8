"""kubecache's fresh-hub poll alone: hub CPU, garbage collection's share, and a profile.

    python benchmarks/poll_profile.py [--servers 10000] [--rounds 2] [--profile out.prof]

No kubesim and no cacher: a private ``redis-server`` holds what the cacher
writes (a fresh health record, one record per running server, reduced by the
cacher's own ``pod_record`` from the pod ``sim_host.py`` makes), and this
process is the hub: it makes one ``KubeCacheSpawner`` per server (as
``hub_worker.py`` does) and polls them all at once, ``--rounds`` times. The
first round is the fresh hub's (new spawner objects); later ones are a
running hub's periodic polls.

Per round: wall seconds, this process's CPU seconds, the CPU seconds spent
in Python's cyclic garbage collector (``gc.callbacks``) and its collections
per generation. With ``--profile`` the first round runs under cProfile and the
top functions are printed (and the stats saved). On a shared machine wall
time includes waiting for a core; CPU time and GC time are this process's.
Writes ``benchmarks/results/poll_profile.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import pstats
import sys
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.fleet import pod_ip, running_pod  # noqa: E402
from benchmarks.hub_worker import NAMESPACE, GcClock, make_spawner, poll_all  # noqa: E402
from kubecache.cacher.settings import DEFAULT_POD_SELECTOR  # noqa: E402
from kubecache.contract import (  # noqa: E402
    SCHEMA_VERSION,
    CacheHealth,
    Keys,
    encode_pod_record,
    pod_record,
)
from tests.support.redis_server import RedisServer  # noqa: E402

KEYS = Keys()


async def fill(redis: aioredis.Redis, servers: int) -> None:
    """What a synced cacher holds for ``servers`` running servers."""
    batch: dict[str, bytes] = {}
    for i in range(servers):
        pod = running_pod(f"srv{i}", NAMESPACE, i)
        pod["metadata"]["uid"] = f"uid-{i}"
        pod["metadata"]["resourceVersion"] = str(1000 + i)
        pod["metadata"]["creationTimestamp"] = "2026-11-23T12:00:00Z"
        batch[f"{NAMESPACE}/{pod['metadata']['name']}"] = encode_pod_record(pod_record(pod))
        if len(batch) == 1000:
            await redis.hset(KEYS.pods, mapping=batch)  # type: ignore[arg-type]
            batch = {}
    if batch:
        await redis.hset(KEYS.pods, mapping=batch)  # type: ignore[arg-type]
    await heartbeat(redis)


EPOCH = int(time.time() * 1000)


async def heartbeat(redis: aioredis.Redis) -> None:
    seconds, micros = await redis.time()
    now_ms = seconds * 1000 + micros // 1000
    health = CacheHealth(
        schema=SCHEMA_VERSION,
        leader="poll-profile",
        epoch=EPOCH,
        synced=True,
        heartbeat_ms=now_ms,
        namespaces=NAMESPACE,
        pod_selector=DEFAULT_POD_SELECTOR,
        pods_progress_ms=now_ms,
        events_progress_ms=now_ms,
        progress_stale_ms=30_000,
    )
    await redis.hset(KEYS.health, mapping=health.to_redis())  # type: ignore[arg-type]


async def beat(redis: aioredis.Redis) -> None:
    """The cacher's heartbeat, every second."""
    while True:
        await heartbeat(redis)
        await asyncio.sleep(1.0)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    server = RedisServer()
    server.start()
    redis = aioredis.Redis.from_url(server.url)
    clock = GcClock()
    gc.callbacks.append(clock)
    try:
        await fill(redis, args.servers)
        hub_args = argparse.Namespace(redis_url=server.url, request_timeout=3.0)
        began = time.perf_counter()
        spawners = [
            make_spawner("kubecache", f"srv{i}", i, hub_args, pod_ip(i))
            for i in range(args.servers)
        ]
        made = time.perf_counter() - began
        rounds: list[dict[str, Any]] = []
        beating = asyncio.create_task(beat(redis))  # a slow (profiled) round stays fresh
        for r in range(args.rounds):
            profile = None
            if args.profile and r == 0:
                import cProfile

                profile = cProfile.Profile(time.process_time)  # CPU: the machine is shared
            load = os.getloadavg()[0]
            clock.reset()
            cpu, wall = time.process_time(), time.perf_counter()
            if profile is not None:
                profile.enable()
            _, answers = await poll_all(spawners, 60.0)
            if profile is not None:
                profile.disable()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            rounds.append(
                {
                    "round": r,
                    "wall_s": round(wall, 3),
                    "cpu_s": round(cpu, 3),
                    "gc_cpu_s": round(clock.seconds, 3),
                    "gc_share_of_cpu": round(clock.seconds / cpu, 3) if cpu else None,
                    "gc_collections": list(clock.collections),
                    "gc_cpu_s_by_generation": [round(s, 4) for s in clock.seconds_by_generation],
                    "answers": answers,
                    "load_average_1m": load,
                    "profiled": profile is not None,
                }
            )
            print(f"round {r}: {rounds[-1]}", flush=True)
            if profile is not None:
                profile.dump_stats(args.profile)
                stats = pstats.Stats(profile)
                stats.sort_stats("tottime").print_stats(25)
                stats.sort_stats("cumulative").print_stats(40)
        beating.cancel()
        from kubecache.spawner.cache_client import CacheClient

        await CacheClient.close_all()
        return {
            "servers": args.servers,
            "spawners_made_s": round(made, 3),
            "rounds": rounds,
            "gc_thresholds": gc.get_threshold(),
        }
    finally:
        gc.callbacks.remove(clock)
        await redis.aclose()
        server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--profile", default="", help="cProfile the first round into this file")
    parsed = parser.parse_args()
    result = asyncio.run(main(parsed))
    out = REPO / "benchmarks" / "results" / "poll_profile.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
