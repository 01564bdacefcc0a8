"""The local demo of the whole system, on loopback, with embedded defaults.

Starts, in order: redis-server, kubesim (the Kubernetes API emulator, with its
process kubelet running real jupyterhub-singleuser servers on their own
127.x.y.z pod IPs), two cacher replicas (leader election through a Lease), and
JupyterHub with configurable-http-proxy and ``spawner_class = "kubecache"``.
Prints the URL and how to log in; Ctrl-C stops everything it started.

``--check`` runs the same system non-interactively: spawns a server through
the REST API, waits until it answers through the proxy, stops it, and exits
0 only if all of that worked. It uses its own temporary state directory and
a free port, so it never touches a demo that is running beside it.

Start-up mistakes (a busy port, a state directory a running demo holds) are
one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script: the repository's packages come first

from kubecache.listening import listen_problem  # noqa: E402

EXIT_USAGE = 2


class StartupError(Exception):
    """A mistake in how the demo was started; the message says what to change."""


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
        self.proxy_token = secrets.token_hex(32)

    async def spawn(self, name: str, *argv: str, env: dict[str, str] | None = None) -> None:
        log = (self.logs / f"{name}.log").open("ab")
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            env={**checkout_environment(), **(env or {})},
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
            "--tls",  # kubectl only sends its token over HTTPS
        )
        await self.wait_for("kubesim", self.kubeconfig.exists)
        await self.create_namespace("jhub")
        for i, port in enumerate(self.cacher_ports):
            await self.spawn(
                f"cacher-{i}",
                sys.executable,
                "-m",
                "kubecache.cacher",
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
                # known to the demo, so it can wait for the hub's route in the proxy
                "CONFIGPROXY_AUTH_TOKEN": self.proxy_token,
            },
        )
        await self.wait_for(
            f"JupyterHub on port {self.public_port} (see {self.logs / 'jupyterhub.log'})",
            self.hub_up,
            timeout=90,
        )

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
        """The hub answers on its own port, then the proxy routes to it, then the public URL.

        Asking the proxy before it has the hub's route makes configurable-http-proxy log a
        404 and an ECONNREFUSED stack trace (its error page is the hub's) into
        jupyterhub.log on every poll; in this order the public URL is asked once it works.
        """
        if not self._answers(f"http://127.0.0.1:{self.hub_port}/hub/api/"):
            return False
        if not self._proxy_routes_the_hub():
            return False
        return self._answers(f"http://127.0.0.1:{self.public_port}/hub/api/")

    @staticmethod
    def _answers(url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def _proxy_routes_the_hub(self) -> bool:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.proxy_api_port}/api/routes",
            headers={"Authorization": f"token {self.proxy_token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=1) as r:
                return "/" in json.loads(r.read() or b"{}")
        except (OSError, ValueError):
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

    async def check_what_the_user_and_operator_see(self, token: str) -> None:
        """The note naming the image, JupyterLab, the printed kubecache and kubectl commands."""
        server = f"http://127.0.0.1:{self.public_port}/user/demo-user"

        def get(url: str) -> tuple[int, bytes]:
            request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
            with urllib.request.urlopen(request, timeout=20) as r:
                return r.status, r.read()

        _, raw = await asyncio.to_thread(get, f"{server}/api/contents/WELCOME.md")
        if "quay.io/jupyter/base-notebook:latest" not in json.loads(raw).get("content", ""):
            raise SystemExit("WELCOME.md does not name the chosen image")
        print("  WELCOME.md names the chosen image")
        with contextlib.suppress(ImportError):
            import jupyterlab  # noqa: F401

            status, _ = await asyncio.to_thread(get, f"{server}/lab")
            print(f"  JupyterLab answers: HTTP {status}")
        # exactly the command the demo prints (and README shows), run as an operator would:
        # from a shell without the demo's environment
        printed = f"{cli_prefix()} --redis-url {self.redis_url} servers --user demo-user"
        commands = [("kubecache servers", ["sh", "-c", printed])]
        if shutil.which("kubectl"):
            commands.append(
                ("kubectl", ["kubectl", "--kubeconfig", str(self.kubeconfig), "get", "pods", "-A"])
            )
        for label, argv in commands:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=operator_environment(),
            )
            out, err = await asyncio.wait_for(process.communicate(), 60)
            if process.returncode != 0 or b"demo-user" not in out:
                raise SystemExit(f"{label} failed ({process.returncode}): {err.decode()[-300:]}")
            print(f"  {label} shows the server")

    async def check(self) -> None:
        """Spawn a server through the REST API and reach it through the proxy."""
        token = self.check_token
        base = f"http://127.0.0.1:{self.public_port}/hub/api"
        startup = (self.logs / "jupyterhub.log").read_text(errors="replace").splitlines()
        proxy_errors = [line for line in startup if "[ConfigProxy]" in line and "error" in line]
        if proxy_errors or any("ECONNREFUSED" in line for line in startup):
            raise SystemExit(f"jupyterhub.log has proxy errors from start-up: {proxy_errors[:3]}")
        print("  jupyterhub.log has no proxy errors from start-up")

        def call(method: str, path: str, body: dict | None = None) -> tuple[int, dict]:  # type: ignore[type-arg]
            request = urllib.request.Request(
                base + path,
                method=method,
                data=json.dumps(body).encode() if body is not None else None,
                headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
            )
            try:
                # a spawn request answers after JupyterHub's slow_spawn_timeout (10 s)
                with urllib.request.urlopen(request, timeout=60) as r:
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
        await self.check_what_the_user_and_operator_see(token)
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
        cli = cli_prefix()
        hint = venv_hint() if cli == "kubecache" else ""
        print(
            f"""
kubecache demo is running.

  JupyterHub:   http://127.0.0.1:{args.port}/
  Log in as any user name with the password: kubecache
  Inspect the cache (the demo's Redis is on a private port, so give --redis-url,
  or export KUBECACHE_REDIS_URL={demo.redis_url}):{hint}
      {cli} --redis-url {demo.redis_url} status
      {cli} --redis-url {demo.redis_url} servers
      {cli} --redis-url {demo.redis_url} events USER
  Talk to the emulated cluster (optional; needs kubectl):
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


def checkout_environment() -> dict[str, str]:
    """The environment of the demo's processes: this checkout's packages come first, whichever
    clone the machine's editable install of kubecache points to (demo.sh never re-points it)."""
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": str(REPO) + (os.pathsep + path if path else "")}


def operator_environment() -> dict[str, str]:
    """A shell's environment without the demo's own PYTHONPATH entry for this checkout."""
    env = dict(os.environ)
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p) != REPO]
    if parts:
        env["PYTHONPATH"] = os.pathsep.join(parts)
    else:
        env.pop("PYTHONPATH", None)
    return env


def imports_this_checkout(script: str) -> bool:
    """Whether the console script ``script`` runs this checkout's kubecache (its shebang's
    interpreter, in an operator's environment)."""
    try:
        with open(script, "rb") as f:
            first = f.readline().decode(errors="replace").strip()
        interpreter = first[2:].split()[0] if first.startswith("#!") else sys.executable
        found = subprocess.run(
            [interpreter, "-c", "import kubecache; print(kubecache.__file__)"],
            env=operator_environment(),
            cwd="/",
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
    except (OSError, IndexError, subprocess.SubprocessError):
        return False
    return bool(found) and Path(found).resolve().parent.parent == REPO.resolve()


def cli_prefix() -> str:
    """How to run this checkout's `kubecache` CLI from an operator's shell.

    ``kubecache`` (as README says) when the console script on PATH runs this checkout; the
    checkout's venv script when only that one does; otherwise this checkout through
    ``PYTHONPATH``, in front of another install's ``kubecache`` or of ``python3 -m``.
    """
    on_path = shutil.which("kubecache")
    if on_path and imports_this_checkout(on_path):
        return "kubecache"
    venv_script = REPO / ".venv" / "bin" / "kubecache"
    if venv_script.exists() and imports_this_checkout(str(venv_script)):
        return shlex.quote(str(venv_script))
    prefix = f"PYTHONPATH={shlex.quote(str(REPO))} "
    if on_path:
        return prefix + "kubecache"
    return prefix + f"{shlex.quote(sys.executable)} -m kubecache.cli"


def venv_hint() -> str:
    """A line telling to activate the venv the printed `kubecache` lives in, if any."""
    on_path = shutil.which("kubecache")
    if not on_path:
        return ""
    venv = Path(on_path).resolve().parent.parent
    if (venv / "pyvenv.cfg").exists():
        return f"\n  (kubecache is in the venv {venv}: . {venv}/bin/activate first)"
    return ""


def claim_state(state: Path) -> int:
    """Lock ``state`` for this demo (fd kept open), or raise when a running demo holds it."""
    state.mkdir(parents=True, exist_ok=True)
    lock = os.open(state / "demo.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)
        raise StartupError(
            f"a demo is already running with the state directory {state}; stop it "
            "(Ctrl-C in its terminal) or give another --state"
        ) from None
    # every demo starts from an empty cluster: clear what a finished demo left
    for child in state.iterdir():
        if child.name != "demo.lock":
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
    return lock


def check_startup(args: argparse.Namespace) -> None:
    if not 0 < args.port < 65536:
        raise StartupError(f"--port {args.port}: use a port between 1 and 65535")
    problem = listen_problem("127.0.0.1", args.port)
    if problem:
        raise StartupError(
            f"port {args.port} on 127.0.0.1 is not free ({problem}): is another demo or "
            "JupyterHub running? Stop it, or start this one with --port, e.g. --port 8001"
        )
    for tool, fix in (
        ("redis-server", "run bash scripts/install.sh (apt-get install redis-server)"),
        ("configurable-http-proxy", "run bash scripts/install.sh (npm install -g ...)"),
    ):
        if shutil.which(tool) is None:
            raise StartupError(f"{tool} is not installed: {fix}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog="examples:\n  bash scripts/demo.sh\n  bash scripts/demo.sh --port 8001\n"
        "  python3 scripts/demo.py --check",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--port", type=int, default=None, help="public port of the hub (default 8000)"
    )
    parser.add_argument(
        "--state",
        default=None,
        help="state directory (default: demo-state in the repository; "
        "--check: a new temporary directory)",
    )
    parser.add_argument("--check", action="store_true", help="spawn, reach and stop, then exit")
    args = parser.parse_args()
    if args.port is None:  # --check must not collide with a demo running on 8000
        args.port = free_port() if args.check else 8000
    if args.state is None:
        args.state = (
            tempfile.mkdtemp(prefix="kubecache-demo-check-")
            if args.check
            else str(REPO / "demo-state")
        )
    state = Path(args.state).resolve()
    try:
        check_startup(args)
        lock = claim_state(state)
    except StartupError as e:
        print(f"demo: {e}", file=sys.stderr)
        return EXIT_USAGE
    try:
        code = asyncio.run(main_async(args, state))
    except KeyboardInterrupt:
        code = 0
    finally:  # a failure (SystemExit naming a log) keeps the state directory
        os.close(lock)
    if args.check and code == 0:
        shutil.rmtree(state, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
