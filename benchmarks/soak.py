"""Soak: does every key family under the cacher's prefix level off under churn?

Run from the repository root (low priority: the machine is shared)::

    nice -n 19 python benchmarks/soak.py                 # 30 minutes, ~3 spawns/s
    nice -n 19 python benchmarks/soak.py --minutes 5 --rate 3 --running 100

kubesim (in this process, fake kubelet: a pod is scheduled, pulled, started
and Ready in a few 0.5 s steps, with the kubelet's Events), a private
redis-server and one cacher (``python -m kubecache.cacher``, its own process, leader
election on, as ``cacher_bench.py`` starts it). A churn of servers shaped as
KubeCacheSpawner builds them (``tests/support/fleet.py``), each for a user
name never used before: a pod is created every ``1/rate`` s and, once more
than ``--running`` exist, the oldest is deleted (grace period 1 s, as the
spawner's ``delete_grace_period``), so each lives ``running / rate`` s.

Every ``--sample-every`` s (60): for each key family under the prefix
(:class:`kubecache.contract.Keys`) its size: ``pods`` (HLEN), ``pod-rv``
(deletion tombstones, HLEN), event logs (keys matching ``events:*``, SCAN),
``feed`` (XLEN), ``health`` (HLEN), plus every key under the prefix grouped
by family (a family not named here shows up too); Redis ``used_memory``;
the cacher's RSS; spawns so far; kubesim's pod LIST count (a healthy leader
lists once). Prints the table minute by minute and a verdict per family:
growth over the last third of the run against the first third. Writes
``benchmarks/results/soak.json`` (``--out``). Not part of ``python -m benchmarks``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import redis.asyncio as aioredis

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.cacher_bench import cacher_process, wait_synced  # noqa: E402
from kubecache.contract import DEFAULT_FEED_MAXLEN, CacheHealth, Keys  # noqa: E402
from kubesim.testing import KubeSim, running_kubesim  # noqa: E402
from tests.support.fleet import NAMESPACE, make_spawners  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402

KEYS = Keys()
#: The columns of the table, in order: the key families, then the process figures.
FAMILIES = ("pods", "pod_rv", "event_logs", "feed", "health_fields")
FIGURES = ("redis_used_memory_mb", "cacher_rss_mb")


async def family_sizes(redis: aioredis.Redis) -> dict[str, Any]:
    """The size of each key family under the prefix, and every key counted by family."""
    by_family: collections.Counter[str] = collections.Counter()
    event_logs = 0
    async for raw in redis.scan_iter(match=KEYS.prefix + "*", count=1000):
        rest = raw.decode()[len(KEYS.prefix) :]
        family = rest.split(":", 1)[0]
        by_family[family] += 1
        if family == "events":
            event_logs += 1
    return {
        "pods": await redis.hlen(KEYS.pods),
        "pod_rv": await redis.hlen(KEYS.pod_rv),
        "event_logs": event_logs,
        "feed": await redis.xlen(KEYS.feed) if await redis.exists(KEYS.feed) else 0,
        "health_fields": await redis.hlen(KEYS.health),
        "keys_by_family": dict(sorted(by_family.items())),
    }


async def pod_lists(sim: KubeSim) -> int:
    stats = await sim.stats()
    return int(stats["requests"].get("list", {}).get("pods", 0))


class Churn:
    """Create a server pod every ``1 / rate`` s for a new user; keep ``running`` of them."""

    def __init__(self, sim: KubeSim, redis_url: str, rate: float, running: int) -> None:
        self.sim = sim
        self.redis_url = redis_url
        self.rate = rate
        self.running = running
        self.alive: collections.deque[str] = collections.deque()
        self.spawns = 0
        self.deletes = 0
        self.errors: list[str] = []

    async def spawn_one(self) -> None:
        (spawner,) = make_spawners(self.redis_url, 1, prefix=f"soak{self.spawns:06d}-")
        body = await spawner.pod_request_body()
        self.sim.store.create("pods", NAMESPACE, body)
        self.alive.append(spawner.pod_name)
        self.spawns += 1

    def stop_oldest(self) -> None:
        name = self.alive.popleft()
        try:
            self.sim.store.delete("pods", NAMESPACE, name, grace_period_seconds=1)
            self.deletes += 1
        except Exception as e:  # a pod gone already is not the soak's failure
            self.errors.append(f"delete {name}: {e}")

    async def run(self, until: float) -> None:
        began = time.monotonic()
        while (now := time.monotonic()) < until:
            due = int((now - began) * self.rate) + 1
            while self.spawns < due:
                try:
                    await self.spawn_one()
                except Exception as e:
                    self.errors.append(f"spawn {self.spawns}: {e}")
                    self.spawns += 1
                while len(self.alive) > self.running:
                    self.stop_oldest()
            await asyncio.sleep(max(0.0, began + due / self.rate - time.monotonic()))


async def soak(
    minutes: float, rate: float, running: int, sample_every: float, feed_maxlen: int | None
) -> dict[str, Any]:
    server = RedisServer()
    server.start()
    redis = aioredis.Redis.from_url(server.url)
    redis_process = psutil.Process(server.process.pid) if server.process else None
    samples: list[dict[str, Any]] = []
    try:
        async with running_kubesim(kubelet="fake", fake_step_delay=0.5) as sim:
            os.environ["KUBECONFIG"] = str(sim.kubeconfig_path)
            sim.store.create("namespaces", None, {"metadata": {"name": NAMESPACE}})
            extra: tuple[str, ...] = ("--health-port", "0")
            if feed_maxlen is not None:
                extra += ("--feed-maxlen", str(feed_maxlen))
            async with cacher_process(sim, server.url, *extra) as cacher:
                await wait_synced(redis, 0, timeout=60)
                churn = Churn(sim, server.url, rate, running)
                began = time.monotonic()
                until = began + minutes * 60
                task = asyncio.create_task(churn.run(until))
                next_at = began
                while True:
                    next_at += sample_every
                    await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                    if next_at > until + 1:
                        break
                    sizes = await family_sizes(redis)
                    memory = await redis.info("memory")
                    health = CacheHealth.from_redis(await redis.hgetall(KEYS.health))
                    sample = {
                        "minute": round((time.monotonic() - began) / 60, 2),
                        **sizes,
                        "redis_used_memory_mb": round(memory["used_memory"] / 2**20, 2),
                        "redis_rss_mb": round(redis_process.memory_info().rss / 2**20, 1)
                        if redis_process
                        else None,
                        "cacher_rss_mb": round(cacher.memory_info().rss / 2**20, 1),
                        "cacher_cpu_s": round(sum(cacher.cpu_times()[:2]), 1),
                        "spawns": churn.spawns,
                        "deletes": churn.deletes,
                        "pods_in_kubesim": len(sim.store.list("pods", NAMESPACE)),
                        "pod_lists": await pod_lists(sim),
                        "synced": bool(health and health.synced),
                        "load1": round(os.getloadavg()[0], 2),
                    }
                    samples.append(sample)
                    print(row(sample), flush=True)
                await task
    finally:
        await redis.aclose()
        server.close()
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "settings": {
            "minutes": minutes,
            "rate_per_s": rate,
            "running": running,
            "sample_every_s": sample_every,
            "pod_lifetime_s": round(running / rate, 1),
            "feed_maxlen": feed_maxlen or DEFAULT_FEED_MAXLEN,
        },
        "samples": samples,
        "errors": churn.errors[:20],
        "verdict": verdicts(samples),
    }


HEADER = (
    f"{'min':>5} {'pods':>6} {'pod-rv':>7} {'ev-logs':>8} {'feed':>7} {'health':>6} "
    f"{'redisMB':>8} {'cacherMB':>8} {'spawns':>7} {'LISTs':>5} {'load':>5}"
)


def row(s: dict[str, Any]) -> str:
    return (
        f"{s['minute']:>5.1f} {s['pods']:>6} {s['pod_rv']:>7} {s['event_logs']:>8} "
        f"{s['feed']:>7} {s['health_fields']:>6} {s['redis_used_memory_mb']:>8.2f} "
        f"{s['cacher_rss_mb']:>8.1f} {s['spawns']:>7} {s['pod_lists']:>5} {s['load1']:>5.2f}"
    )


def verdicts(samples: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per family: growth over the first and the last third of the run, and whether it levelled.

    Levelled off: the last third grew by at most a quarter of what the first third grew,
    or by at most 5 % of its final value (a family that only wobbles around its level).
    """
    out: dict[str, dict[str, Any]] = {}
    if len(samples) < 3:
        return out
    third = max(1, len(samples) // 3)
    for name in (*FAMILIES, *FIGURES):
        values = [float(s[name]) for s in samples]
        first = values[third] - values[0]
        last = values[-1] - values[-1 - third]
        level = last <= max(0.25 * first, 0.05 * abs(values[-1]), 0.0)
        out[name] = {
            "first_third_growth": round(first, 2),
            "last_third_growth": round(last, 2),
            "window_samples": third,
            "levelled_off": level,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=3.0, help="spawns per second")
    parser.add_argument("--running", type=int, default=100, help="servers kept running")
    parser.add_argument("--sample-every", type=float, default=60.0, help="seconds")
    parser.add_argument(
        "--feed-maxlen",
        type=int,
        default=None,
        help=f"the cacher's --feed-maxlen (default: its own, {DEFAULT_FEED_MAXLEN:,}); the feed "
        "is capped there, so a smaller cap shows the trimming within a short run",
    )
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results" / "soak.json", help="JSON"
    )
    args = parser.parse_args()
    print(
        f"soak: {args.minutes:g} min, {args.rate:g} spawns/s, {args.running} running "
        f"(each lives ~{args.running / args.rate:.0f} s)",
        flush=True,
    )
    print(HEADER, flush=True)
    results = asyncio.run(
        soak(args.minutes, args.rate, args.running, args.sample_every, args.feed_maxlen)
    )
    print()
    print(HEADER)
    for sample in results["samples"]:
        print(row(sample))
    print()
    print(f"{'family':<22} {'first-third growth':>18} {'last-third growth':>18}  verdict")
    for name, v in results["verdict"].items():
        verdict = "levelled off" if v["levelled_off"] else "STILL GROWING"
        print(f"{name:<22} {v['first_third_growth']:>18} {v['last_third_growth']:>18}  {verdict}")
    if results["samples"]:
        cap = results["settings"]["feed_maxlen"]
        print(
            f"feed cap (XADD MAXLEN ~): {cap:,}; the feed at the end: "
            f"{results['samples'][-1]['feed']:,}"
        )
        print(f"keys by family at the end: {results['samples'][-1]['keys_by_family']}")
    if results["errors"]:
        print(f"churn errors (first {len(results['errors'])}): {results['errors']}")
    out = args.out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
