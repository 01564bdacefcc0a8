"""KubeSpawner 7.1 (unmodified, from PyPI) against kubecache on one kubesim, in one run.

    python benchmarks/compare.py [--quick]

One kubesim (its own process, fake kubelet: a pod is Ready about four 0.5 s
steps after create), one redis-server and one cacher (its own process) serve
every scenario; each hub is its own process (``benchmarks/hub_worker.py``),
KubeSpawner's and kubecache's rounds alternate (the order swaps every round).
Writes ``benchmarks/results/compare.json``; ``benchmarks/report.py`` turns it
into the table and the plots.

Scenarios (see benchmarks/README.md for what each figure means):

- readiness: kubesim timestamps the store commit in which a pod's Ready
  condition turns True; the hub timestamps ``start()`` returning. Sequential
  spawns and 50 concurrent spawns; then one kubecache round with a second
  watcher and a second feed reader for the hop-by-hop breakdown;
- fresh hub: N running servers (1,000 / 3,000 / 10,000) and 3.5 events per
  server in the namespace; a new hub makes every spawner and polls them all
  at once: time until all answered, API requests and bytes, hub RSS;
- hub RSS sweep (run on the fresh-hub phase's climb): 0 -> 10,000 running
  servers with 3.5 events each (quick: 0 and 1,000); a new hub polls them all and,
  for KubeSpawner, has its pod and events reflectors past their first LIST: RSS;
- idle hubs: 1, 2, 4, 8 hubs with those servers sit idle: LIST and WATCH per
  minute, open watches, MB per minute sent by the API (the cacher's own
  requests included on kubecache's side);
- degraded: the fresh-hub poll with the cacher stopped (cache stale) and with
  Redis down: API requests, answers within the poll timeout; KubeSpawner's
  normal fresh-hub poll is re-taken first, with the namespace as it is then.

The namespace only grows: a phase after the fresh-hub climb sees all its pods
and Events (the idle-hub and degraded results record what it held).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import redis.asyncio as aioredis

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from kubecache.contract import CacheHealth, Keys  # noqa: E402
from tests.support.lifetime import die_with_parent  # noqa: E402
from tests.support.redis_server import RedisServer, free_port  # noqa: E402

SPAWNERS = ("kubespawner", "kubecache")
KEYS = Keys()
EVENTS_PER_SERVER = 3.5
RESULTS = REPO / "benchmarks" / "results"


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def summary_ms(values: list[float]) -> dict[str, Any]:
    """p50/p90/p99/max in ms of latencies in seconds."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 0.50) * 1000, 2),  # type: ignore[operator]
        "p90_ms": round(percentile(values, 0.90) * 1000, 2),  # type: ignore[operator]
        "p99_ms": round(percentile(values, 0.99) * 1000, 2),  # type: ignore[operator]
        "max_ms": round(max(values) * 1000, 2),
        "mean_ms": round(statistics.fmean(values) * 1000, 2),
    }


class Stack:
    """The shared kubesim, redis-server and cacher, and how to run hubs against them."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.kubeconfig = tmp / "kubeconfig"
        self.url = ""
        self.sim: asyncio.subprocess.Process | None = None
        self.redis = RedisServer()
        self.cacher: asyncio.subprocess.Process | None = None
        self.cacher_port = free_port()
        self.session: aiohttp.ClientSession | None = None
        self.env = {**os.environ, "PYTHONPATH": str(REPO), "KUBECONFIG": str(self.kubeconfig)}
        self.servers = 0  # bench pods made so far (grow_cluster)

    async def start(self) -> None:
        self.sim = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.sim_host", "--kubeconfig-out", str(self.kubeconfig),
            cwd=REPO, env=self.env, stdout=asyncio.subprocess.PIPE,
            preexec_fn=die_with_parent(),
        )  # fmt: skip
        assert self.sim.stdout is not None
        line = await asyncio.wait_for(self.sim.stdout.readline(), 30)
        self.url = json.loads(line)["url"]
        self.redis.start()
        self.session = aiohttp.ClientSession()
        await self.start_cacher()

    async def start_cacher(self, pods: int = 0) -> None:
        """Start the cacher and return once IT has listed pods and events: the health
        record a stopped cacher left says "synced" too (with its own epoch), so the wait
        is for a newer epoch; otherwise the new cacher's LIST falls into the next
        measurement (it did: 49-57 LISTs a minute in one idle kubecache hub's window)."""
        redis = aioredis.Redis.from_url(self.redis.url)
        try:
            before = CacheHealth.from_redis(await redis.hgetall(KEYS.health))
        finally:
            await redis.aclose()
        self.cacher = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "kubecache.cacher",
            "--kubeconfig", str(self.kubeconfig), "--redis-url", self.redis.url,
            "--identity", "bench", "--lease-namespace", "default", "--namespaces", "jhub",
            "--health-host", "127.0.0.1", "--health-port", str(self.cacher_port),
            "--log-level", "WARNING",
            cwd=REPO, env=self.env, stdout=asyncio.subprocess.DEVNULL,
            preexec_fn=die_with_parent(),
        )  # fmt: skip
        await self.wait_synced(pods, after_epoch=before.epoch if before else None)

    async def stop_cacher(self) -> None:
        if self.cacher is not None and self.cacher.returncode is None:
            self.cacher.terminate()
            await asyncio.wait_for(self.cacher.wait(), 30)
        self.cacher = None

    async def close(self) -> None:
        await self.stop_cacher()
        if self.session is not None:
            await self.session.close()
        self.redis.close()
        if self.sim is not None and self.sim.returncode is None:
            self.sim.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.sim.wait(), 30)

    async def wait_synced(
        self, pods: int, timeout: float = 600, *, after_epoch: int | None = None
    ) -> None:
        """Until a cacher has listed both pods (``pods`` records) and events, with an
        epoch newer than ``after_epoch`` (a cacher started since). "synced" is set once
        the pods are listed; a namespace of 35,000 events takes ~70 more LIST pages."""
        redis = aioredis.Redis.from_url(self.redis.url)
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                health = CacheHealth.from_redis(await redis.hgetall(KEYS.health))
                if (
                    health
                    and health.synced
                    and health.events_rv  # the events are listed too (after the pods)
                    and (after_epoch is None or health.epoch > after_epoch)
                    and await redis.hlen(KEYS.pods) >= pods
                ):
                    return
                await asyncio.sleep(0.05)
        finally:
            await redis.aclose()
        raise TimeoutError(f"the cacher did not sync {pods} pods in {timeout} s")

    async def sim_call(self, method: str, path: str) -> Any:
        assert self.session is not None
        async with self.session.request(method, self.url + path) as response:
            response.raise_for_status()
            return await response.json()

    async def stats(self) -> dict[str, Any]:
        return dict(await self.sim_call("GET", "/kubesim/stats"))

    async def reset(self) -> None:
        await self.sim_call("POST", "/bench/reset")

    # ---- hubs

    def hub_argv(self, scenario: str, spawner: str, **options: Any) -> list[str]:
        argv = [sys.executable, "-m", "benchmarks.hub_worker", scenario, "--spawner", spawner]
        argv += ["--redis-url", options.pop("redis_url", self.redis.url)]
        for name, value in options.items():
            argv += [f"--{name.replace('_', '-')}", str(value)]
        return argv

    async def run_hub(self, scenario: str, spawner: str, **options: Any) -> dict[str, Any]:
        process = await asyncio.create_subprocess_exec(
            *self.hub_argv(scenario, spawner, **options),
            cwd=REPO, env=self.env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=die_with_parent(),
        )  # fmt: skip
        out, err = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"hub {scenario}/{spawner} failed:\n{err.decode()[-3000:]}")
        return dict(json.loads(out.decode().strip().splitlines()[-1]))

    @asynccontextmanager
    async def background_hub(
        self, scenario: str, spawner: str, **options: Any
    ) -> AsyncIterator[dict[str, Any]]:
        """A hub that prints a ``ready`` line, runs until SIGTERM, then prints its result."""
        process = await asyncio.create_subprocess_exec(
            *self.hub_argv(scenario, spawner, **options),
            cwd=REPO, env=self.env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            preexec_fn=die_with_parent(),
        )  # fmt: skip
        assert process.stdout is not None
        result: dict[str, Any] = {}
        try:
            line = await asyncio.wait_for(process.stdout.readline(), 600)
            if not line:
                raise RuntimeError(f"background hub {scenario}/{spawner} exited early")
            result["ready"] = json.loads(line)
            yield result
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
            rest = await asyncio.wait_for(process.stdout.read(), 60)
            await process.wait()
            lines = rest.decode().strip().splitlines()
            if lines:
                result.update(json.loads(lines[-1]))


# -------------------------------------------------------------------- readiness


async def readiness_round(
    stack: Stack, spawner: str, users: int, concurrency: int, prefix: str
) -> dict[str, Any]:
    await stack.reset()
    hub = await stack.run_hub("start", spawner, users=users, concurrency=concurrency, prefix=prefix)
    ready = await stack.sim_call("GET", "/bench/ready")
    lags = [t - ready[key] for key, t in hub["returned"].items() if key in ready]
    return {"lags": lags, "errors": hub["errors"], "feed_read": hub["feed_read"], "ready": ready}


async def bench_readiness(stack: Stack, quick: bool) -> dict[str, Any]:
    sequential_rounds, per_round = (2, 3) if quick else (4, 8)
    concurrent_rounds, concurrent = (1, 50) if quick else (2, 50)
    out: dict[str, Any] = {}
    for label, rounds, users, concurrency in (
        ("sequential", sequential_rounds, per_round, 1),
        ("concurrent", concurrent_rounds, concurrent, concurrent),
    ):
        lags: dict[str, list[float]] = {s: [] for s in SPAWNERS}
        errors: dict[str, list[str]] = {s: [] for s in SPAWNERS}
        load_before = os.getloadavg()
        for r in range(rounds):
            order = SPAWNERS if r % 2 == 0 else SPAWNERS[::-1]
            for spawner in order:
                got = await readiness_round(
                    stack, spawner, users, concurrency, f"{label[:3]}{r}{spawner[4]}"
                )
                lags[spawner] += got["lags"]
                errors[spawner] += got["errors"]
                print(f"  readiness {label} round {r} {spawner}: {summary_ms(got['lags'])}")
        out[label] = {
            s: {**summary_ms(lags[s]), "errors": errors[s], "concurrency": concurrency}
            for s in SPAWNERS
        }
        out[label]["samples_s"] = lags
        out[label]["load_average"] = [load_before, os.getloadavg()]
    out["breakdown"] = await readiness_breakdown(stack, 4 if quick else 16)
    # the same hops with 50 at once: how much of it is the emulator's own delivery
    out["breakdown_concurrent"] = await readiness_breakdown(stack, concurrent, concurrent)
    return out


async def readiness_breakdown(stack: Stack, users: int, concurrency: int = 1) -> dict[str, Any]:
    """kubecache, ``concurrency`` spawns at a time, with a second watcher and feed reader
    timing each hop."""
    await stack.reset()
    load_before = os.getloadavg()
    async with stack.background_hub("observe", "kubecache") as observed:
        hub = await stack.run_hub(
            "start", "kubecache", users=users, concurrency=concurrency, prefix=f"hop{concurrency}x"
        )
    ready = await stack.sim_call("GET", "/bench/ready")
    hops: dict[str, list[float]] = {
        "commit -> a watcher receives": [],
        "commit -> feed entry readable": [],
        "commit -> hub feed reader has it": [],
        "commit -> start() returns": [],
        "hub feed reader -> start() returns": [],
    }
    for key, returned in hub["returned"].items():
        committed = ready.get(key)
        if committed is None:
            continue
        watched = observed.get("watch_ready", {}).get(key)
        written = [t for t in observed.get("feed_written", {}).get(key, []) if t >= committed]
        read = [t for t in hub["feed_read"].get(key, []) if t >= committed]
        if watched is not None:
            hops["commit -> a watcher receives"].append(watched - committed)
        if written:
            hops["commit -> feed entry readable"].append(written[0] - committed)
        if read:
            hops["commit -> hub feed reader has it"].append(read[0] - committed)
            hops["hub feed reader -> start() returns"].append(returned - read[0])
        hops["commit -> start() returns"].append(returned - committed)
    return {
        "hops": {name: summary_ms(values) for name, values in hops.items()},
        "concurrency": concurrency,
        "load_average": [load_before, os.getloadavg()],
        "cacher_lag": await cacher_lag_buckets(stack),
    }


async def cacher_lag_buckets(stack: Stack) -> dict[str, float]:
    """The cacher's own receive -> Redis ack histogram for pods (cumulative counts)."""
    assert stack.session is not None
    url = f"http://127.0.0.1:{stack.cacher_port}/metrics"
    async with stack.session.get(url) as response:
        text = await response.text()
    buckets: dict[str, float] = {}
    for line in text.splitlines():
        name = "kubecache_cacher_event_lag_seconds_bucket"
        if line.startswith(name) and 'resource="pods"' in line:
            le = line.split('le="')[1].split('"')[0]
            buckets[le] = float(line.rsplit(" ", 1)[1])
    return buckets


# -------------------------------------------------------------------- fresh hub


def api_load(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Requests per verb (all resources) and bytes between two /kubesim/stats snapshots."""
    verbs: dict[str, int] = {}
    by_resource: dict[str, int] = {}
    for verb, per in after["requests"].items():
        for resource, total in per.items():
            n = total - before["requests"].get(verb, {}).get(resource, 0)
            if n:
                verbs[verb] = verbs.get(verb, 0) + n
                by_resource[f"{verb} {resource}"] = n
    return {
        "requests": sum(verbs.values()),
        "by_verb": verbs,
        "by_resource": by_resource,
        "hub_requests": sum(n for k, n in by_resource.items() if not k.endswith("leases")),
        "bytes": after["bytes_sent"] - before["bytes_sent"],
        "open_watches": after["open_watches"],
    }


async def grow_cluster(stack: Stack, servers: int) -> None:
    """At least ``servers`` running pods (3.5 Events each) in the namespace; it never shrinks."""
    have = stack.servers
    if servers > have:
        await stack.sim_call("POST", f"/bench/pods?n={servers - have}&prefix=srv&start={have}")
        await stack.sim_call("POST", f"/bench/events?n={int((servers - have) * EVENTS_PER_SERVER)}")
        await stack.wait_synced(servers)
        stack.servers = servers


def namespace_state(stack: Stack) -> dict[str, int]:
    """What the namespace holds now (bench pods and Events; later phases see earlier growth)."""
    return {"pods": stack.servers, "events": int(stack.servers * EVENTS_PER_SERVER)}


async def fresh_hub(stack: Stack, spawner: str, servers: int, **options: Any) -> dict[str, Any]:
    before = await stack.stats()
    load_before = os.getloadavg()
    result = await stack.run_hub("poll", spawner, users=servers, prefix="srv", **options)
    result["api"] = api_load(before, await stack.stats())
    result["load_average"] = [load_before, os.getloadavg()]
    return result


async def bench_fresh_hub(
    stack: Stack, sizes: list[int], rss_points: list[int], out_rss: dict[str, Any]
) -> dict[str, Any]:
    """The fresh-hub poll at ``sizes``; on the way up, the hub-RSS sweep at ``rss_points``.

    The namespace only grows (pods and events are not deleted between steps), so both
    scenarios share one climb; the sweep's rows land in ``out_rss``.
    """
    out: dict[str, Any] = {}
    for i, size in enumerate(sorted(set(sizes) | set(rss_points))):
        await grow_cluster(stack, size)
        order = SPAWNERS if i % 2 == 0 else SPAWNERS[::-1]
        if size in rss_points:
            point: dict[str, Any] = {"events": int(size * EVENTS_PER_SERVER)}
            for spawner in order:
                point[spawner] = await stack.run_hub("rss", spawner, users=size, prefix="srv")
                print(f"  hub rss {size} {spawner}: {point[spawner]}")
            out_rss[str(size)] = point
        if size in sizes:
            row: dict[str, Any] = {"events": int(size * EVENTS_PER_SERVER)}
            for spawner in order:
                row[spawner] = await fresh_hub(stack, spawner, size)
                print(f"  fresh hub {size} {spawner}: {row[spawner]}")
            out[str(size)] = row
    return out


# -------------------------------------------------------------------- idle hubs


async def bench_idle_hubs(stack: Stack, counts: list[int], servers: int, window: float) -> Any:
    """Idle hubs for ``window`` s each: what the API serves them per minute.

    During KubeSpawner's windows the cacher is stopped, so its requests are not counted
    there; during kubecache's it runs and everything it asks of the API (one watch per
    resource, Lease renewals) is counted in kubecache's column. ``window`` should cover
    several of the cacher's watch timeouts (20 s by default), or its WATCH per minute
    depends on where the window falls in the cycle.
    """
    await grow_cluster(stack, servers)
    out: dict[str, Any] = {"servers": servers, "window_s": window}
    out["namespace"] = namespace_state(stack)
    for i, hubs in enumerate(counts):
        row: dict[str, Any] = {}
        for spawner in SPAWNERS if i % 2 == 0 else SPAWNERS[::-1]:
            if spawner == "kubespawner":
                await stack.stop_cacher()
            elif stack.cacher is None:
                await stack.start_cacher(stack.servers)
            async with _hubs(stack, spawner, hubs, servers) as results:
                before = await stack.stats()
                began = time.monotonic()
                await asyncio.sleep(window)
                load = api_load(before, await stack.stats())
                elapsed = time.monotonic() - began
            per_minute = 60 / elapsed
            row[spawner] = {
                "window_s": round(elapsed, 1),
                "cacher_running": stack.cacher is not None,
                "list_per_min": round(load["by_verb"].get("list", 0) * per_minute, 2),
                "watch_per_min": round(load["by_verb"].get("watch", 0) * per_minute, 2),
                "requests_per_min": round(load["requests"] * per_minute, 2),
                "bytes_per_min": round(load["bytes"] * per_minute),
                "mb_per_min": load["bytes"] / 2**20 * per_minute,
                "open_watches": load["open_watches"],
                "by_resource": load["by_resource"],
                "hub_rss_mb": [r.get("rss_mb") for r in results],
            }
            print(f"  idle hubs {hubs} {spawner}: {row[spawner]}", flush=True)
        out[str(hubs)] = row
    if stack.cacher is None:
        await stack.start_cacher(stack.servers)
    return out


@asynccontextmanager
async def _hubs(
    stack: Stack, spawner: str, hubs: int, servers: int
) -> AsyncIterator[list[dict[str, Any]]]:
    results: list[dict[str, Any]] = []
    async with _nested_hubs(stack, spawner, hubs, servers, results):
        yield results


@asynccontextmanager
async def _nested_hubs(
    stack: Stack, spawner: str, hubs: int, servers: int, results: list[dict[str, Any]]
) -> AsyncIterator[None]:
    if hubs == 0:
        yield
        return
    async with (
        stack.background_hub("idle", spawner, users=servers, prefix="srv") as result,
        _nested_hubs(stack, spawner, hubs - 1, servers, results),
    ):
        yield
    results.append(result)


# -------------------------------------------------------------------- degraded


async def bench_degraded(stack: Stack, servers: int, stale_after: float) -> dict[str, Any]:
    """kubecache's fresh-hub poll when its cache cannot be trusted.

    KubeSpawner has no cache to lose: its figure is its normal fresh-hub poll, taken
    here with the namespace as it is now (earlier phases may have grown it).
    """
    await grow_cluster(stack, servers)
    out: dict[str, Any] = {"servers": servers, "namespace": namespace_state(stack)}
    out["kubespawner"] = await fresh_hub(stack, "kubespawner", servers)
    print(f"  degraded (normal poll) {servers} kubespawner: {out['kubespawner']}")
    await stack.stop_cacher()
    await asyncio.sleep(stale_after + 1)  # the last heartbeat ages past cache_stale_after
    out["stale"] = await fresh_hub(stack, "kubecache", servers, poll_timeout=30)
    print(f"  degraded stale {servers}: {out['stale']}")
    closed = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens: Redis is down
    out["redis_down"] = await fresh_hub(
        stack, "kubecache", servers, redis_url=closed, poll_timeout=30
    )
    print(f"  degraded redis down {servers}: {out['redis_down']}")
    await stack.start_cacher(stack.servers)
    return out


# -------------------------------------------------------------------- main


def machine() -> dict[str, Any]:
    memory = psutil.virtual_memory().total
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(memory / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "load_average_at_start": os.getloadavg(),
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    sizes = [1000] if quick else [1000, 3000, 10000]
    rss_points = [0, 1000] if quick else [0, 1000, 3000, 6000, 10000]
    if args.sizes:
        sizes = [int(n) for n in args.sizes.split(",")]
    if args.rss_points is not None:
        rss_points = [int(n) for n in args.rss_points.split(",") if n]
    hub_rss: dict[str, Any] = {}
    results: dict[str, Any] = {"machine": machine(), "quick": quick, "started": time.time()}
    only = set(args.only.split(",")) if args.only else None
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
        stack = Stack(Path(tmp))
        await stack.start()
        try:
            phases: list[tuple[str, Any]] = [
                ("readiness", lambda: bench_readiness(stack, quick and not args.full_readiness)),
                ("fresh_hub", lambda: bench_fresh_hub(stack, sizes, rss_points, hub_rss)),
                (
                    "idle_hubs",
                    lambda: bench_idle_hubs(
                        stack,
                        [1, 4] if quick else [1, 2, 4, 8],
                        sizes[0] if quick else sizes[1],
                        args.idle_window,
                    ),
                ),
                ("degraded", lambda: bench_degraded(stack, sizes[0], 15.0)),
            ]
            for name, run in phases:
                if only and name not in only:
                    continue
                print(f"## {name}", flush=True)
                began = time.monotonic()
                results[name] = await run()
                if name == "fresh_hub":
                    results["hub_rss"] = hub_rss
                results.setdefault("seconds", {})[name] = round(time.monotonic() - began, 1)
        finally:
            await stack.close()
    results["machine"]["load_average_at_end"] = os.getloadavg()
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (under 5 minutes)")
    parser.add_argument("--only", default="", help="comma-separated phases")
    parser.add_argument("--sizes", default="", help="fresh-hub sizes, e.g. 3000,10000")
    parser.add_argument(
        "--full-readiness", action="store_true", help="the full run's readiness rounds with --quick"
    )
    parser.add_argument(
        "--rss-points", default=None, help="hub-RSS sweep points ('' for none), e.g. 0,1000"
    )
    parser.add_argument(
        "--idle-window",
        type=float,
        default=60.0,
        help="seconds each set of idle hubs is measured (>= 60: the cacher's watches renew "
        "every ~20 s, a shorter window counts their WATCHes by chance)",
    )
    parsed = parser.parse_args()
    got = asyncio.run(main(parsed))
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "compare.json"
    if parsed.only and path.exists():  # a partial run replaces only its own phases
        previous = json.loads(path.read_text())
        if previous.get("quick") == got["quick"]:
            seconds = {**previous.get("seconds", {}), **got.get("seconds", {})}
            rerun = {"phases": parsed.only, "machine": got["machine"]}
            reruns = [*previous.get("reruns", []), rerun]
            got = {**previous, **got, "seconds": seconds, "reruns": reruns}
            got["machine"] = previous["machine"]
    path.write_text(json.dumps(got, indent=2) + "\n")
    print(f"wrote {RESULTS / 'compare.json'}")
