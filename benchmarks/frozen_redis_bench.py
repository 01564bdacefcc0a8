"""A frozen Redis costs the hub no visible latency: healthy vs frozen (SIGSTOP), side by side.

Run from the repository root::

    python benchmarks/frozen_redis_bench.py               # 5 spawns and stops per condition
    python benchmarks/frozen_redis_bench.py --rounds 2

Prints a table and writes ``benchmarks/results/frozen_redis.json``.

The whole system on loopback, as the end-to-end tests run it: kubesim in
this process (the process kubelet: each pod is a real jupyterhub-singleuser),
a private redis-server, the cacher (``python -m kubecache.cacher``), configurable-http-
proxy and a real JupyterHub with KubeCacheSpawner. One user keeps a server
running. For each condition (``healthy``, then ``frozen``: the redis-server
stopped with SIGSTOP, which freezes the cacher's writes too; connections stay
open and nothing is answered) it measures, through the proxy as a client:

- ``GET /hub/api/users/<name>`` (REST, no poll), ``POST
  /hub/api/users/<name>/server`` of the running server (JupyterHub polls it,
  then answers 400) and ``GET /hub/home`` as that user, logged in with a
  cookie (the page polls the server), each ``--requests`` times: the first
  request after the condition began, the median and the max;
- ``--rounds`` spawns (POST, until the REST model says ready) and stops
  (DELETE, until the hub no longer lists the server) of other users, one at
  a time.

Every figure is wall time on the shared machine; the footer states its load.
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
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kubesim.testing import running_kubesim
from tests.e2e.support.hub_api import HubApi
from tests.e2e.support.stack import Cluster
from tests.support.redis_server import RedisServer

NAMESPACE = "jhub"


async def timed(call: Callable[[], Awaitable[Any]]) -> float:
    began = time.monotonic()
    await call()
    return time.monotonic() - began


async def until(condition: Callable[[], Awaitable[bool]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.05)


def summary(times: list[float]) -> dict[str, float]:
    return {
        "first": round(times[0], 3),
        "median": round(statistics.median(times), 3),
        "max": round(max(times), 3),
    }


class Browser:
    """A user logged in with a cookie (the dummy authenticator), loading hub pages."""

    def __init__(self, public_url: str) -> None:
        self.public_url = public_url.rstrip("/")
        self.session = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=aiohttp.ClientTimeout(total=60)
        )

    async def login(self, user: str) -> None:
        async with self.session.get(self.public_url + "/hub/login") as response:
            await response.read()
        xsrf = next((c.value for c in self.session.cookie_jar if c.key == "_xsrf"), "")
        async with self.session.post(
            self.public_url + "/hub/login?_xsrf=" + xsrf,
            data={"username": user, "password": "x", "_xsrf": xsrf},
            allow_redirects=False,
        ) as response:
            await response.read()
            if response.status != 302:
                raise RuntimeError(f"login answered {response.status}")

    async def page(self, path: str) -> None:
        async with self.session.get(self.public_url + path, allow_redirects=False) as response:
            await response.read()
            if response.status != 200:
                raise RuntimeError(f"{path} answered {response.status}")

    async def close(self) -> None:
        await self.session.close()


async def requests(api: HubApi, browser: Browser, user: str, n: int) -> dict[str, Any]:
    rest: list[float] = []
    polled: list[float] = []
    home: list[float] = []

    async def start_running() -> None:
        # the server runs: JupyterHub polls it (poll_and_notify), then answers 400
        await api.request("POST", f"/users/{user}/server", expect=(400,))

    for _ in range(n):
        rest.append(await timed(lambda: api.request("GET", f"/users/{user}")))
        polled.append(await timed(start_running))
        home.append(await timed(lambda: browser.page("/hub/home")))
    return {"rest_user": summary(rest), "rest_polled": summary(polled), "home_page": summary(home)}


async def spawn_and_stop(api: HubApi, user: str) -> tuple[float, float]:
    await api.create_user(user)
    began = time.monotonic()
    await api.start_server(user)
    await until(lambda: api.spawned(user), timeout=120)
    spawn = time.monotonic() - began
    began = time.monotonic()
    await api.stop_server(user)
    await until(lambda: api.server_gone(user), timeout=120)
    return spawn, time.monotonic() - began


async def condition(
    api: HubApi, browser: Browser, *, name: str, n_requests: int, rounds: int
) -> dict[str, Any]:
    result = await requests(api, browser, "bench", n_requests)
    spawns, stops = [], []
    for i in range(rounds):
        spawn, stop = await spawn_and_stop(api, f"{name}-{i}")
        spawns.append(spawn)
        stops.append(stop)
    result["spawn"] = summary(spawns)
    result["stop"] = summary(stops)
    return result


async def main(rounds: int, n_requests: int) -> dict[str, Any]:
    server = RedisServer()
    server.start()
    results: dict[str, Any] = {}
    try:
        redis = aioredis.Redis.from_url(server.url)
        with tempfile.TemporaryDirectory(prefix="kubecache-frozen-") as work:
            async with running_kubesim(kubelet="process") as sim:
                cluster = Cluster(sim, redis, server.url, Path(work))
                try:
                    await cluster.start_cacher()
                    proxy = await cluster.start_proxy()
                    hub = cluster.hub("bench", proxy, namespace=NAMESPACE)
                    await cluster.start_hub(hub)
                    api = hub.api
                    await api.create_user("bench")
                    await api.start_server("bench")
                    await until(lambda: api.spawned("bench"), timeout=120)
                    browser = Browser(proxy.public_url)
                    await browser.login("bench")
                    results["healthy"] = await condition(
                        api, browser, name="healthy", n_requests=n_requests, rounds=rounds
                    )
                    assert server.process is not None
                    os.kill(server.process.pid, signal.SIGSTOP)
                    try:
                        results["frozen"] = await condition(
                            api, browser, name="frozen", n_requests=n_requests, rounds=rounds
                        )
                    finally:
                        os.kill(server.process.pid, signal.SIGCONT)
                        await browser.close()
                finally:
                    await cluster.close()
        await redis.aclose()
    finally:
        server.close()
    results["machine"] = {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
    }
    return results


def table(results: dict[str, Any]) -> str:
    rows = [
        ("`GET /hub/api/users/<name>` (REST)", "rest_user"),
        ("`POST /hub/api/users/<name>/server`, running (polls it; 400)", "rest_polled"),
        ("`GET /hub/home` page (polls the running server)", "home_page"),
        ("spawn (POST until ready)", "spawn"),
        ("stop (DELETE until gone)", "stop"),
    ]
    lines = [
        "| s (first / median / max) | healthy Redis | frozen Redis (SIGSTOP) |",
        "| --- | --- | --- |",
    ]
    for label, key in rows:
        cells = []
        for cond in ("healthy", "frozen"):
            s = results[cond][key]
            cells.append(f"{s['first']:.3f} / {s['median']:.3f} / {s['max']:.3f}")
        lines.append(f"| {label} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="spawns and stops per condition")
    parser.add_argument("--requests", type=int, default=20, help="REST and page requests")
    args = parser.parse_args()
    results = asyncio.run(main(args.rounds, args.requests))
    print(json.dumps(results, indent=2))
    print(table(results))
    out = Path(__file__).parent / "results" / "frozen_redis.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
