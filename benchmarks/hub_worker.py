"""One hub process of the side-by-side benchmarks: KubeSpawner 7.1 or kubecache, one scenario.

    python -m benchmarks.hub_worker start --spawner kubecache --users 10 --concurrency 1 ...
    python -m benchmarks.hub_worker poll  --spawner kubespawner --users 3000 ...
    python -m benchmarks.hub_worker idle  --spawner kubespawner --users 3000 ...
    python -m benchmarks.hub_worker rss   --spawner kubespawner --users 3000 ...
    python -m benchmarks.hub_worker observe --redis-url ...

Every hub is its own process, as a hub is: KubeSpawner's reflectors and
kubecache's shared Redis client are per process, and RSS is the process's.
``KUBECONFIG`` points both spawners at the benchmark's kubesim. Results are one
JSON line on stdout (``idle`` prints a ``ready`` line first and its result on
SIGTERM). Timestamps are ``time.monotonic()``, comparable with kubesim's
``/bench/ready`` (same machine, CLOCK_MONOTONIC).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import signal
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.fleet import pod_ip  # noqa: E402

NAMESPACE = "jhub"


class GcClock:
    """CPU seconds in Python's cyclic garbage collector, and collections per generation
    (``gc.callbacks``; CPU time: on a shared machine a preempted collection would count
    the other processes' turn)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = [0, 0, 0]
        #: CPU seconds per generation collected
        self.seconds_by_generation = [0.0, 0.0, 0.0]
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.thread_time()
        else:
            took = time.thread_time() - self._began
            self.seconds += took
            self.collections[info["generation"]] += 1
            self.seconds_by_generation[info["generation"]] += took

    def reset(self) -> None:
        self.seconds, self.collections = 0.0, [0, 0, 0]
        self.seconds_by_generation = [0.0, 0.0, 0.0]


def rss_mb() -> float:
    gc.collect()
    return round(psutil.Process().memory_info().rss / 2**20, 1)


def user(name: str, index: int) -> Any:
    return SimpleNamespace(
        name=name,
        id=index + 1,
        url=f"/user/{name}/",
        base_url=f"/user/{name}/",
        escaped_name=name,
        progress_url=lambda server_name="": f"/hub/api/users/{name}/server/progress",
        settings={},
        spawners={},
        server=None,
    )


HUB = SimpleNamespace(
    public_host="",
    url="http://hub:8081/hub/",
    base_url="/hub/",
    api_url="http://hub:8081/hub/api",
    public_url="",
)


#: One Config per hub process and spawner kind: JupyterHub gives every spawner the
#: application's own config object (jupyterhub/user.py, ``config=self.settings['config']``).
_CONFIGS: dict[tuple[str, str, float], Any] = {}


def hub_config(kind: str, args: argparse.Namespace) -> Any:
    """The hub's configuration as a z2jh hub sets it (only what the scenario needs)."""
    from traitlets.config import Config

    key = (kind, args.redis_url, args.request_timeout)
    config = _CONFIGS.get(key)
    if config is None:
        config = _CONFIGS[key] = Config()
        if kind != "kubespawner":
            config.KubeCacheSpawner.redis_url = args.redis_url
            config.KubeCacheSpawner.k8s_api_request_timeout = args.request_timeout
        config.KubeSpawner.namespace = NAMESPACE
        config.KubeSpawner.start_timeout = 120
        config.KubeSpawner.image = "quay.io/jupyterhub/k8s-singleuser-sample:4.0.0"
        config.KubeSpawner.k8s_api_request_timeout = args.request_timeout
    return config


def make_spawner(
    kind: str, name: str, index: int, args: argparse.Namespace, running_ip: str | None = None
) -> Any:
    """A spawner of ``kind`` as a z2jh hub configures it (only what the scenario needs);
    the spawners of one hub share one Config, as JupyterHub's do."""
    from jupyterhub.objects import Server

    if kind == "kubespawner":
        from kubespawner import KubeSpawner as cls
    else:
        from kubecache.spawner import KubeCacheSpawner as cls
    config = hub_config(kind, args)
    spawner = cls(
        user=user(name, index),
        hub=HUB,
        config=config,
        api_token="token",
        oauth_client_id=f"jupyterhub-user-{name}",
        db=SimpleNamespace(commit=lambda: None),
    )
    spawner.server = Server(base_url=f"/user/{name}/")
    if running_ip is not None:  # what the hub's database holds for a running server
        spawner.server.ip, spawner.server.port = running_ip, 8888
    return spawner


def pod_key(name: str) -> str:
    return f"{NAMESPACE}/jupyter-{name}"


def time_feed_reads(spawner: Any) -> dict[str, list[float]]:
    """When the hub's change-feed reader got each pod entry (kubecache's hop 'feed read').

    Wraps the shared client's read step on this instance; the path is unchanged.
    """
    from kubecache.spawner.cache_client import CacheClient

    client = CacheClient.shared(spawner.redis_settings(), prefix=spawner.redis_key_prefix)
    reads: dict[str, list[float]] = {}
    step = client.feed.step

    async def timed_step(*args: Any, **kwargs: Any) -> Any:
        batch = await step(*args, **kwargs)
        now = time.monotonic()
        for entry in batch.entries:
            if entry["kind"] == "pod":
                reads.setdefault(entry["key"], []).append(now)
        return batch

    client.feed.step = timed_step  # type: ignore[method-assign]
    return reads


async def close_clients(kind: str) -> None:
    if kind == "kubespawner":
        from kubespawner import KubeSpawner

        await KubeSpawner._stop_all_reflectors()
    else:
        from kubecache.spawner.cache_client import CacheClient
        from kubecache.spawner.kube_api import KubeApi

        await CacheClient.close_all()
        await KubeApi.close_all()


# ---------------------------------------------------------------- scenarios


async def scenario_start(args: argparse.Namespace) -> dict[str, Any]:
    """Start ``users`` servers, ``concurrency`` at a time; when did each start() return."""
    names = [f"{args.prefix}{i}" for i in range(args.users)]
    spawners = [make_spawner(args.spawner, n, i, args) for i, n in enumerate(names)]
    feed_reads = time_feed_reads(spawners[0]) if args.spawner == "kubecache" else {}
    if args.spawner == "kubecache":
        from kubecache.spawner.cache_client import CacheClient

        first = spawners[0]
        client = CacheClient.shared(first.redis_settings(), prefix=first.redis_key_prefix)
        await client.wait_positioned(10)
    else:
        await spawners[0]._start_watching_pods()  # a running hub has its reflector up
    returned: dict[str, float] = {}
    errors: list[str] = []
    gate = asyncio.Semaphore(args.concurrency)

    async def one(spawner: Any, name: str) -> None:
        async with gate:
            try:
                await asyncio.wait_for(spawner.start(), 120)
                returned[pod_key(name)] = time.monotonic()
            except Exception as e:  # reported, not raised
                errors.append(f"{name}: {type(e).__name__}: {e}")

    await asyncio.gather(*(one(s, n) for s, n in zip(spawners, names, strict=True)))
    await asyncio.gather(*(s.stop(now=True) for s in spawners), return_exceptions=True)
    await close_clients(args.spawner)
    return {"returned": returned, "feed_read": feed_reads, "errors": errors}


async def poll_all(spawners: list[Any], timeout: float) -> tuple[list[float], dict[str, int]]:
    """Every spawner polls at once (JupyterHub's startup check: one task per spawner,
    gathered, each awaiting ``poll()`` itself); per-poll seconds and answers.

    ``timeout`` bounds the whole round (polls still unanswered then count as "timeout"),
    not each poll: a per-poll ``wait_for`` or ``asyncio.timeout`` would add a task or a
    timer per poll that JupyterHub does not make, for both spawners.
    """
    answers: dict[str, int] = {}
    durations: list[float] = []

    async def one(spawner: Any) -> None:
        began = time.perf_counter()
        try:
            answer = await spawner.poll()
            what = "running" if answer is None else f"stopped({answer})"
        except Exception as e:  # counted, not raised
            what = type(e).__name__
        durations.append(time.perf_counter() - began)
        answers[what] = answers.get(what, 0) + 1

    tasks = [asyncio.ensure_future(one(s)) for s in spawners]
    _, pending = await asyncio.wait(tasks, timeout=timeout) if tasks else (set(), set())
    for task in pending:
        task.cancel()
    if pending:
        answers["timeout"] = len(pending)
        await asyncio.gather(*pending, return_exceptions=True)
    return durations, answers


async def scenario_poll(args: argparse.Namespace) -> dict[str, Any]:
    """A fresh hub (restart or failover): make every spawner and poll them all at once."""
    baseline = rss_mb()
    began = time.perf_counter()
    spawners = [
        make_spawner(args.spawner, f"{args.prefix}{i}", i, args, pod_ip(i))
        for i in range(args.users)
    ]
    made = time.perf_counter()
    made_cpu = time.process_time()
    profile = None
    if args.profile:
        import cProfile

        profile = cProfile.Profile()
        profile.enable()
    gc_clock = GcClock()
    gc.callbacks.append(gc_clock)
    try:
        durations, answers = await poll_all(spawners, args.poll_timeout)
    finally:
        gc.callbacks.remove(gc_clock)
    if profile is not None:
        profile.disable()
        profile.dump_stats(args.profile)
    done = time.perf_counter()
    poll_cpu = time.process_time() - made_cpu
    durations.sort()
    result = {
        "servers": args.users,
        # a hub makes its spawner objects first (the same traitlets cost for both)
        "spawners_made_s": round(made - began, 3),
        "all_answered_s": round(done - made, 3),
        "poll_p50_ms": round(statistics.median(durations) * 1000, 1) if durations else None,
        "poll_max_ms": round(durations[-1] * 1000, 1) if durations else None,
        "answers": answers,
        # this process's CPU while the polls ran (the machine is shared: wall time waits
        # for a core), and the cyclic garbage collector's part of it
        "poll_cpu_s": round(poll_cpu, 3),
        "gc_cpu_s": round(gc_clock.seconds, 3),
        "gc_collections": gc_clock.collections,
        "gc_cpu_s_by_generation": [round(s, 4) for s in gc_clock.seconds_by_generation],
        "rss_mb": rss_mb(),
        "rss_before_mb": baseline,
    }
    await close_clients(args.spawner)
    return result


async def scenario_idle(args: argparse.Namespace) -> dict[str, Any]:
    """A hub with ``users`` running servers, polled once, then idle until SIGTERM."""
    spawners = [
        make_spawner(args.spawner, f"{args.prefix}{i}", i, args, pod_ip(i))
        for i in range(args.users)
    ]
    _, answers = await poll_all(spawners, args.poll_timeout)
    if args.spawner == "kubespawner" and spawners:
        # A hub that has shown any spawn's progress page since it came up follows the
        # namespace's events too (KubeSpawner.progress starts that reflector).
        await spawners[0]._start_watching_events()
    print(json.dumps({"ready": True, "answers": answers}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    result = {"rss_mb": rss_mb(), "answers": answers}
    await close_clients(args.spawner)
    return result


async def scenario_rss(args: argparse.Namespace) -> dict[str, Any]:
    """A hub's RSS once it holds what it needs for ``users`` running servers (0 allowed).

    ``rss_code_mb`` is the hub with one spawner object made (each spawner imports the
    rest of its code then) and nothing polled or watched yet. Then every running server
    is polled; a KubeSpawner hub then has its pod reflector and, as after any spawn
    whose progress page was shown, its events reflector, both past their first LIST.
    With no running server the hub still has that one spawner object (a user who has
    none running), which is what starts KubeSpawner's reflectors.
    """
    first = make_spawner(
        args.spawner, f"{args.prefix}0", 0, args, pod_ip(0) if args.users else None
    )
    code = rss_mb()
    running = [first] if args.users else []
    running += [
        make_spawner(args.spawner, f"{args.prefix}{i}", i, args, pod_ip(i))
        for i in range(1, args.users)
    ]
    _, answers = await poll_all(running, args.poll_timeout)
    if args.spawner == "kubespawner":
        await first._start_watching_pods()
        await first._start_watching_events()
    result: dict[str, Any] = {
        "servers": args.users,
        "rss_mb": rss_mb(),
        "rss_code_mb": code,
        "answers": answers,
    }
    if args.spawner == "kubespawner":
        result["reflector_objects"] = {
            "pods": len(first.pod_reflector.resources),
            "events": len(first.event_reflector.resources),
        }
    await close_clients(args.spawner)
    return result


async def scenario_observe(args: argparse.Namespace) -> dict[str, Any]:
    """A second watcher and a second feed reader, for the hop-by-hop breakdown.

    ``watch_ready``: when a plain pod watch on kubesim (the fan-out the cacher also
    reads) delivered the pod's Ready=True state; ``feed_written``: when an
    XREAD BLOCK on the change feed returned each pod entry. Both are upper bounds
    of the moment they stand for (they include this process's own wake-up).
    """
    import aiohttp
    import orjson
    import redis.asyncio as aioredis
    import yaml

    from kubecache.contract import Keys

    kubeconfig = yaml.safe_load(await asyncio.to_thread(Path(os.environ["KUBECONFIG"]).read_text))
    url = kubeconfig["clusters"][0]["cluster"]["server"]
    token = kubeconfig["users"][0]["user"]["token"]
    watch_ready: dict[str, float] = {}
    feed_written: dict[str, list[float]] = {}
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    keys = Keys()
    reader = aioredis.Redis.from_url(args.redis_url, socket_timeout=None)
    ready_line = asyncio.Event()

    async def watch() -> None:
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession() as session:
            query = {"watch": "true", "labelSelector": "component=singleuser-server"}
            async with session.get(
                f"{url}/api/v1/namespaces/{NAMESPACE}/pods",
                params=query,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=None),
            ) as response:
                ready_line.set()
                buffer = b""
                async for chunk in response.content.iter_any():
                    now = time.monotonic()
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        obj = orjson.loads(line)["object"]
                        key = f"{NAMESPACE}/{obj['metadata']['name']}"
                        conditions = (obj.get("status") or {}).get("conditions") or []
                        if any(
                            c.get("type") == "Ready" and c.get("status") == "True"
                            for c in conditions
                        ):
                            watch_ready.setdefault(key, now)

    async def feed() -> None:
        last = "$"
        while True:
            reply = await reader.xread({keys.feed: last}, block=0, count=1000)
            now = time.monotonic()
            for _, entries in reply or []:
                for entry_id, fields in entries:
                    last = entry_id
                    if fields.get(b"kind") == b"pod":
                        feed_written.setdefault(fields[b"key"].decode(), []).append(now)

    tasks = [asyncio.create_task(watch()), asyncio.create_task(feed())]
    await ready_line.wait()
    print(json.dumps({"ready": True}), flush=True)
    await stop.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await reader.aclose()
    return {"watch_ready": watch_ready, "feed_written": feed_written}


SCENARIOS = {
    "start": scenario_start,
    "poll": scenario_poll,
    "idle": scenario_idle,
    "rss": scenario_rss,
    "observe": scenario_observe,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--spawner", choices=("kubespawner", "kubecache"), default="kubecache")
    parser.add_argument("--users", type=int, default=1)
    parser.add_argument("--prefix", default="user")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--poll-timeout", type=float, default=60.0)
    parser.add_argument("--request-timeout", type=float, default=3.0)
    parser.add_argument("--profile", default="", help="cProfile the polls into this file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    result = asyncio.run(SCENARIOS[args.scenario](args))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
