"""The local demo of the whole system, on loopback, with embedded defaults.

Starts, in order: redis-server, kubesim (the Kubernetes API emulator, with its
process kubelet running real jupyterhub-singleuser servers on their own
127.x.y.z pod IPs), two cacher replicas (leader election through a Lease), and
JupyterHub with configurable-http-proxy and ``spawner_class = "kubecache"``.
Prints the URL and how to log in; Ctrl-C stops everything it started.

``--check`` runs the same system non-interactively: spawns a server through
the REST API, waits until it answers through the proxy, stops it, and exits
0 only if all of that worked.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_answers(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class Demo:
    def __init__(self, state: Path, public_port: int) -> None:
        self.state = state
        self.logs = state / "logs"
        self.processes: list[tuple[str, asyncio.subprocess.Process]] = []
        self.public_port = public_port
        self.redis_port = free_port()
        self.kubesim_port = free_port()
        self.hub_port = free_port()
        self.proxy_api_port = free_port()
        self.cacher_ports = [free_port(), free_port()]
        self.kubeconfig = state / "kubeconfig"
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.check_token = secrets.token_hex(16)

    async def spawn(self, name: str, *argv: str, env: dict[str, str] | None = None) -> None:
        log = (self.logs / f"{name}.log").open("ab")
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
        )
        self.processes.append((name, process))
        print(f"  started {name} (pid {process.pid}, log {self.logs / (name + '.log')})")

    async def wait_for(self, what: str, condition, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while not condition():
            for name, process in self.processes:
                if process.returncode is not None:
                    raise SystemExit(
                        f"{name} exited with {process.returncode} while waiting for {what}; "
                        f"see {self.logs / (name + '.log')}"
                    )
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
            await asyncio.sleep(0.1)

    async def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        redis_server = shutil.which("redis-server")
        if not redis_server:
            raise SystemExit("redis-server is missing: run bash scripts/install.sh")
        await self.spawn(
            "redis",
            redis_server,
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.redis_port),
            "--save",
            "",
            "--appendonly",
            "no",
        )
        await self.wait_for("redis-server", lambda: port_answers(self.redis_port))
        await self.spawn(
            "kubesim",
            sys.executable,
            "-m",
            "kubesim",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.kubesim_port),
            "--kubeconfig-out",
            str(self.kubeconfig),
            "--kubelet",
            "process",
        )
        await self.wait_for("kubesim", self.kubeconfig.exists)
        await self.create_namespace("jhub")
        for i, port in enumerate(self.cacher_ports):
            await self.spawn(
                f"cacher-{i}",
                sys.executable,
                "-m",
                "cacher",
                "--kubeconfig",
                str(self.kubeconfig),
                "--redis-url",
                self.redis_url,
                "--lease-namespace",
                "default",
                "--identity",
                f"cacher-{i}",
                "--health-host",
                "127.0.0.1",
                "--health-port",
                str(port),
            )
        await self.wait_for("a synced cacher", self.cache_synced)
        await self.spawn(
            "jupyterhub",
            sys.executable,
            "-m",
            "jupyterhub",
            "-f",
            str(REPO / "demo" / "jupyterhub_config.py"),
            env={
                "KUBECONFIG": str(self.kubeconfig),
                "KUBECACHE_REDIS_URL": self.redis_url,
                "KUBECACHE_DEMO_STATE": str(self.state),
                "KUBECACHE_DEMO_URL": f"http://127.0.0.1:{self.public_port}",
                "KUBECACHE_DEMO_HUB_PORT": str(self.hub_port),
                "KUBECACHE_DEMO_PROXY_API": f"http://127.0.0.1:{self.proxy_api_port}",
                "KUBECACHE_DEMO_CHECK_TOKEN": self.check_token,
            },
        )
        await self.wait_for("JupyterHub", self.hub_up, timeout=90)

    async def create_namespace(self, name: str) -> None:
        from kubernetes_asyncio import client, config

        api_client = await config.new_client_from_config(str(self.kubeconfig))
        async with api_client:
            await client.CoreV1Api(api_client).create_namespace(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            )

    def cache_synced(self) -> bool:
        for port in self.cacher_ports:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    body = json.loads(r.read() or b"{}")
                    if r.status == 200 and body.get("role") == "leader":
                        return True
            except (OSError, ValueError):
                continue
        return False

    def hub_up(self) -> bool:
        try:
            url = f"http://127.0.0.1:{self.public_port}/hub/api/"
            with urllib.request.urlopen(url, timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    async def stop(self) -> None:
        for name, process in reversed(self.processes):
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), 15)
                except TimeoutError:
                    print(f"  {name} did not stop: killing it")
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    await process.wait()
            print(f"  stopped {name}")

    async def check(self) -> None:
        """Spawn a server through the REST API and reach it through the proxy."""
        token = self.check_token
        base = f"http://127.0.0.1:{self.public_port}/hub/api"

        def call(method: str, path: str, body: dict | None = None) -> tuple[int, dict]:  # type: ignore[type-arg]
            request = urllib.request.Request(
                base + path,
                method=method,
                data=json.dumps(body).encode() if body is not None else None,
                headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as r:
                    return r.status, json.loads(r.read() or b"{}")
            except urllib.error.HTTPError as e:
                return e.code, json.loads(e.read() or b"{}")

        call("POST", "/users/demo-user")
        status, body = call("POST", "/users/demo-user/server", {"profile": "small"})
        print(f"  spawn requested: HTTP {status}")
        if status not in (201, 202):
            raise SystemExit(f"spawn request failed: {status} {body}")

        def ready() -> bool:
            _, user = call("GET", "/users/demo-user")
            return bool(user.get("servers", {}).get("", {}).get("ready"))

        await self.wait_for("the demo user's server to be ready", ready, timeout=90)
        url = f"http://127.0.0.1:{self.public_port}/user/demo-user/api/status"
        request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
        status = await asyncio.to_thread(lambda: urllib.request.urlopen(request, timeout=10).status)
        print(f"  the server answers through the proxy: HTTP {status}")
        status, _ = call("DELETE", "/users/demo-user/server")
        print(f"  stop requested: HTTP {status}")

        def stopped() -> bool:
            _, user = call("GET", "/users/demo-user")
            return not user.get("servers")

        await self.wait_for("the server to stop", stopped, timeout=60)
        print("  demo check passed")


async def main_async(args: argparse.Namespace, state: Path) -> int:
    demo = Demo(state, args.port)
    print("Starting the kubecache demo:")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await demo.start()
        if args.check:
            await demo.check()
            return 0
        print(
            f"""
kubecache demo is running.

  JupyterHub:   http://127.0.0.1:{args.port}/
  Log in as any user name with the password: kubecache
  Inspect the cache:
      kubecache --redis-url {demo.redis_url} status
      kubecache --redis-url {demo.redis_url} servers
  Talk to the emulated cluster:
      kubectl --kubeconfig {demo.kubeconfig} get pods -A
  Logs: {demo.logs}

Press Ctrl-C to stop everything.
"""
        )
        await stop.wait()
        return 0
    finally:
        print("Stopping:")
        await demo.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8000, help="public port of the hub")
    parser.add_argument("--state", default=str(REPO / "demo-state"), help="state directory")
    parser.add_argument("--check", action="store_true", help="spawn, reach and stop, then exit")
    args = parser.parse_args()
    shutil.rmtree(args.state, ignore_errors=True)  # every demo starts from an empty cluster
    return asyncio.run(main_async(args, Path(args.state).resolve()))


if __name__ == "__main__":
    sys.exit(main())
