"""kubesim benchmark: LIST of 10,000 pods and watch fan-out to 1 and 20 watchers.

The server runs in its own process (one core: one asyncio loop) with its store filled
directly; the clients run here. Watch fan-out changes are generated inside the server process
(``POST /bench/churn``), so the rate measured is what kubesim delivers, not what a client can
write. Not a test: run ``python benchmarks/kubesim_bench.py [--pods N] [--events N]``; prints a
table and writes ``benchmarks/results/kubesim.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

TOKEN = "bench-token"
RESULTS = Path(__file__).parent / "results" / "kubesim.json"


def realistic_pod(i: int) -> dict[str, Any]:
    """A KubeSpawner-like user pod (~2 KB of JSON)."""
    user = f"user-{i:05d}"
    return {
        "metadata": {
            "name": f"jupyter-{user}",
            "labels": {
                "app": "jupyterhub",
                "component": "singleuser-server",
                "hub.jupyter.org/username": user,
                "hub.jupyter.org/servername": "",
                "heritage": "jupyterhub",
            },
            "annotations": {"hub.jupyter.org/username": user, "hub.jupyter.org/servername": ""},
        },
        "spec": {
            "nodeName": f"node-{i % 3 + 1}",
            "containers": [
                {
                    "name": "notebook",
                    "image": "quay.io/jupyter/base-notebook:2025-01-01",
                    "args": ["jupyterhub-singleuser"],
                    "ports": [{"name": "notebook-port", "containerPort": 8888}],
                    "env": [
                        {"name": "JUPYTERHUB_USER", "value": user},
                        {"name": "JUPYTERHUB_API_URL", "value": "http://hub:8081/hub/api"},
                        {"name": "JUPYTERHUB_SERVICE_PREFIX", "value": f"/user/{user}/"},
                        {"name": "MEM_GUARANTEE", "value": "1073741824"},
                    ],
                    "resources": {
                        "requests": {"cpu": "100m", "memory": "1Gi"},
                        "limits": {"cpu": "1", "memory": "2Gi"},
                    },
                    "volumeMounts": [{"name": "home", "mountPath": "/home/jovyan"}],
                }
            ],
            "volumes": [{"name": "home", "persistentVolumeClaim": {"claimName": f"claim-{user}"}}],
        },
    }


def serve(pods: int, port_queue: Any) -> None:
    """Child process: a kubesim with ``pods`` pods plus a churn endpoint."""
    from kubesim.auth import Authenticator
    from kubesim.server import KubeSimServer
    from kubesim.store import ObjectStore

    async def main() -> None:
        store = ObjectStore(history=10_000)
        store.create("namespaces", None, {"metadata": {"name": "jhub"}})
        for i in range(pods):
            store.create("pods", "jhub", realistic_pod(i))
        server = KubeSimServer(store, auth=Authenticator.single(TOKEN))
        names = [key[1] for key, _, _ in store.items("pods", "jhub")]

        async def churn(request: web.Request) -> web.Response:
            total = int(request.query["n"])
            started = time.perf_counter()
            for i in range(total):
                name = names[i % len(names)]
                counter = str(i)

                def bump(obj: dict[str, Any], counter: str = counter) -> None:
                    obj["metadata"]["annotations"]["counter"] = counter

                store.mutate("pods", "jhub", name, bump)
                if i % 100 == 99:
                    await asyncio.sleep(0)  # let the watch pumps write, as requests would
            return web.json_response({"seconds": time.perf_counter() - started})

        server.app.router.add_post("/bench/churn", churn)
        runner = web.AppRunner(server.app, handler_cancellation=True, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port_queue.put(runner.addresses[0][1])
        await asyncio.Event().wait()

    asyncio.run(main())


HEADERS = {"Authorization": f"Bearer {TOKEN}"}


async def bench_list(url: str, session: aiohttp.ClientSession, rounds: int) -> dict[str, Any]:
    times: list[float] = []
    parse_times: list[float] = []
    size = count = 0
    for _ in range(rounds):
        started = time.perf_counter()
        async with session.get(f"{url}/api/v1/pods", headers=HEADERS) as response:
            body = await response.read()
        times.append(time.perf_counter() - started)
        started = time.perf_counter()
        count = len(orjson.loads(body)["items"])
        parse_times.append(time.perf_counter() - started)
        size = len(body)
    pages_started = time.perf_counter()
    token, pages = "", 0
    while True:
        query = f"limit=500&continue={token}" if token else "limit=500"
        async with session.get(f"{url}/api/v1/pods?{query}", headers=HEADERS) as response:
            page = orjson.loads(await response.read())
        pages += 1
        token = page["metadata"].get("continue", "")
        if not token:
            break
    paged = time.perf_counter() - pages_started
    return {
        "pods": count,
        "bytes": size,
        "median_ms": statistics.median(times) * 1000,
        "min_ms": min(times) * 1000,
        "client_parse_ms": statistics.median(parse_times) * 1000,
        "paged_500_total_ms": paged * 1000,
        "pages": pages,
    }


async def count_events(
    session: aiohttp.ClientSession,
    url: str,
    rv: str,
    wanted: int,
    *,
    ready: asyncio.Event,
    opened: list[int],
) -> float:
    async with session.get(
        f"{url}/api/v1/namespaces/jhub/pods?watch=true&resourceVersion={rv}",
        headers=HEADERS,
        timeout=aiohttp.ClientTimeout(total=None),
    ) as response:
        opened.append(1)
        ready.set()
        seen = 0
        async for chunk in response.content.iter_any():
            seen += chunk.count(b"\n")
            if seen >= wanted:
                return time.perf_counter()
    raise RuntimeError(f"watch ended after {seen} of {wanted} events (closed as too slow?)")


async def bench_fanout(
    url: str, session: aiohttp.ClientSession, watchers: int, events: int
) -> dict[str, Any]:
    async with session.get(f"{url}/api/v1/namespaces/jhub/pods?limit=1", headers=HEADERS) as r:
        rv = (orjson.loads(await r.read()))["metadata"]["resourceVersion"]
    ready = asyncio.Event()
    opened: list[int] = []
    tasks = [
        asyncio.ensure_future(count_events(session, url, rv, events, ready=ready, opened=opened))
        for _ in range(watchers)
    ]
    while len(opened) < watchers:
        await asyncio.wait_for(ready.wait(), 30)
        ready.clear()
    started = time.perf_counter()
    async with session.post(f"{url}/bench/churn?n={events}") as response:
        generated = (await response.json())["seconds"]
    finished = await asyncio.gather(*tasks)
    elapsed = max(finished) - started
    delivered = watchers * events
    return {
        "watchers": watchers,
        "events_per_watcher": events,
        "seconds": elapsed,
        "generate_seconds": generated,
        "events_delivered_per_s": delivered / elapsed,
    }


async def run(args: argparse.Namespace, port: int) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}"
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        listing = await bench_list(url, session, args.rounds)
        fanout = [await bench_fanout(url, session, n, args.events) for n in (1, 20)]
    return {"list": listing, "watch_fanout": fanout}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    queue: Any = multiprocessing.Queue()
    child = multiprocessing.Process(target=serve, args=(args.pods, queue), daemon=True)
    child.start()
    try:
        port = queue.get(timeout=300)
        results = asyncio.run(run(args, port))
    finally:
        child.terminate()
        child.join(10)
    results["machine"] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "load_average": os.getloadavg(),
    }
    listing = results["list"]
    print(f"{'measure':<44}{'value':>14}")
    print(
        f"{'LIST ' + str(listing['pods']) + ' pods (median, ms)':<44}{listing['median_ms']:>14.1f}"
    )
    print(f"{'LIST response size (MB)':<44}{listing['bytes'] / 1e6:>14.1f}")
    print(f"{'client orjson parse (median, ms)':<44}{listing['client_parse_ms']:>14.1f}")
    print(f"{'LIST in pages of 500 (total, ms)':<44}{listing['paged_500_total_ms']:>14.1f}")
    for row in results["watch_fanout"]:
        label = f"watch fan-out to {row['watchers']} watcher(s) (events/s)"
        print(f"{label:<44}{row['events_delivered_per_s']:>14,.0f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
