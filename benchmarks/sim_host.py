"""kubesim in its own process for the side-by-side benchmarks, with a few bench-only routes.

    python -m benchmarks.sim_host --kubeconfig-out PATH [--step-delay 0.5]

Prints one JSON line ``{"url": ..., "kubeconfig": ...}`` once serving. The fake
kubelet runs pods the spawners create (Ready about four steps after create);
the routes below are this benchmark's, not kubesim's API:

- ``POST /bench/pods?n=&prefix=&start=&namespace=``: ``n`` pods that are already
  Running and Ready, named and labelled as both spawners name their pods
  (``jupyter-<prefix><i>``, ``i`` from ``start``), on a node the kubelet does not run, so they stay
  as written (a cluster full of running servers, made in one go);
- ``POST /bench/events?n=&namespace=``: ``n`` Events about those pods;
- ``GET /bench/ready``: ``{"namespace/name": t}`` where ``t`` is
  ``time.monotonic()`` (system-wide on Linux, so comparable with the hub
  process) at the store commit in which the pod's Ready condition turned
  True: the instrumentation point of the readiness latency, taken by a
  change listener inside the commit, not from the 1 s-resolution
  ``lastTransitionTime``;
- ``POST /bench/reset``: zero ``/kubesim/stats`` and forget readiness times.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from benchmarks.fleet import NOW, PARKED_NODE, running_pod
from kubesim.auth import Authenticator
from kubesim.kubeconfig import write_kubeconfig
from kubesim.store import Change, ObjectStore
from kubesim.testing import make_kubelet

TOKEN = "bench-token"


def is_ready(pod: dict[str, Any] | None) -> bool:
    for condition in ((pod or {}).get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def pod_event(pod_name: str, uid: str, namespace: str, index: int) -> dict[str, Any]:
    reasons = ("Scheduled", "Pulling", "Pulled", "Created", "Started")
    return {
        "metadata": {"name": f"{pod_name}.{index:x}", "namespace": namespace},
        "involvedObject": {
            "kind": "Pod",
            "namespace": namespace,
            "name": pod_name,
            "uid": uid,
            "apiVersion": "v1",
            "fieldPath": "spec.containers{notebook}",
        },
        "reason": reasons[index % len(reasons)],
        "message": f"bench event {index} for {pod_name}",
        "type": "Normal",
        "source": {"component": "kubelet", "host": PARKED_NODE},
        "firstTimestamp": NOW,
        "lastTimestamp": NOW,
        "count": 1,
    }


class BenchRoutes:
    def __init__(self, store: ObjectStore, server: Any) -> None:
        self.store = store
        self.server = server
        self.ready_at: dict[str, float] = {}
        self.events_made = 0
        store.add_change_listener(self._on_change)

    def _on_change(self, change: Change) -> None:
        # Runs inside ObjectStore._commit: the moment the Ready=True state is committed.
        if change.resource == "pods" and is_ready(change.obj) and not is_ready(change.prev):
            self.ready_at[f"{change.key[0]}/{change.key[1]}"] = time.monotonic()

    def add_to(self, app: web.Application) -> None:
        app.router.add_post("/bench/pods", self.pods)
        app.router.add_post("/bench/events", self.events)
        app.router.add_get("/bench/ready", self.ready)
        app.router.add_post("/bench/reset", self.reset)

    def _namespace(self, request: web.Request) -> str:
        namespace = request.query.get("namespace", "jhub")
        if self.store.get("namespaces", None, namespace) is None:
            self.store.create("namespaces", None, {"metadata": {"name": namespace}})
        return namespace

    async def pods(self, request: web.Request) -> web.Response:
        n, prefix = int(request.query["n"]), request.query.get("prefix", "user")
        first = int(request.query.get("start", "0"))
        namespace = self._namespace(request)
        for i in range(first, first + n):
            self.store.create("pods", namespace, running_pod(f"{prefix}{i}", namespace, i))
            if i % 1000 == 999:
                await asyncio.sleep(0)  # keep answering (lease renewals, watches)
        return web.json_response({"pods": n})

    async def events(self, request: web.Request) -> web.Response:
        n = int(request.query["n"])
        namespace = self._namespace(request)
        pods = self.store.list("pods", namespace)
        if not pods:
            return web.json_response({"error": "no pods to write events about"}, status=400)
        for i in range(self.events_made, self.events_made + n):
            pod = pods[i % len(pods)]["metadata"]
            self.store.create("events", namespace, pod_event(pod["name"], pod["uid"], namespace, i))
            if i % 1000 == 999:
                await asyncio.sleep(0)
        self.events_made += n
        return web.json_response({"events": n})

    async def ready(self, request: web.Request) -> web.Response:
        return web.json_response(self.ready_at)

    async def reset(self, request: web.Request) -> web.Response:
        self.server.stats.reset()
        self.ready_at.clear()
        return web.json_response({})


async def serve(args: argparse.Namespace) -> None:
    from kubesim.server import KubeSimServer

    store = ObjectStore(history=args.history, event_history=args.history)
    for name in ("default", "kube-system", "kube-public", "kube-node-lease", "jhub"):
        store.create("namespaces", None, {"metadata": {"name": name}})
    server = KubeSimServer(
        store,
        auth=Authenticator.single(TOKEN),
        kubelet=make_kubelet("fake", fake_step_delay=args.step_delay),
        max_watch_queue=args.history,
    )
    BenchRoutes(store, server).add_to(server.app)
    runner = web.AppRunner(server.app, handler_cancellation=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    write_kubeconfig(args.kubeconfig_out, url, TOKEN)
    print(json.dumps({"url": url, "kubeconfig": str(args.kubeconfig_out)}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig-out", type=Path, default=None)
    parser.add_argument("--step-delay", type=float, default=0.5)
    parser.add_argument("--history", type=int, default=100_000)
    args = parser.parse_args()
    if args.kubeconfig_out is None:
        args.kubeconfig_out = Path(tempfile.mkdtemp(prefix="bench-sim-")) / "kubeconfig"
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
