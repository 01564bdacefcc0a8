"""The whole system for one test: kubesim (process kubelet), the cacher, proxies and hubs.

kubesim runs in the test's event loop (``running_kubesim``) so the test can
read its store and request counters; everything else is a real subprocess:
the cacher (``python -m kubecache.cacher``), configurable-http-proxy, and JupyterHub,
plain or under ``kubecache hub-standby``. Redis is the session's real
redis-server, flushed for the test.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from kubecache.contract import (
    CacheHealth,
    Freshness,
    Keys,
    PodRecord,
    decode_pod_record,
    health_freshness,
    pod_key,
    redis_time_ms,
)
from kubesim.kubeconfig import write_kubeconfig
from kubesim.testing import KubeSim
from tests.e2e.support.hub_api import HubApi
from tests.e2e.support.processes import ManagedProcess, ProcessGroup
from tests.support.redis_server import free_port
from tests.support.waiting import wait_for

HUB_CONFIG = Path(__file__).with_name("jupyterhub_config.py")
#: the e2e cacher's identity in kubesim (a token of its own, allowed everything)
CACHER_USER = "system:serviceaccount:default:kubecache-cacher"
REPO = Path(__file__).resolve().parents[3]
#: Lease timing of the hub-standby wrappers: a standby takes over within 3 s of a crash.
STANDBY_TIMING = ("--lease-duration", "3", "--renew-deadline", "2", "--retry-period", "0.25")


@dataclass
class HubSettings:
    """What differs between the hubs of the tests (read by jupyterhub_config.py)."""

    name: str
    namespace: str
    public_url: str
    hub_url: str
    proxy_api_url: str
    proxy_token: str
    redis_url: str
    service_token: str
    db_path: str
    cookie_secret_file: str
    common_labels: dict[str, str] = field(default_factory=dict)
    poll_interval: int = 30
    poll_log: str | None = None
    default_url: str = ""
    working_dir: str | None = None
    #: the hub's spawner_class ("kubecache", or e.g. "kubespawner.KubeSpawner" to migrate from)
    spawner_class: str = "kubecache"
    #: a further configuration file loaded last (load_subconfig), e.g. z2jh-like storage
    extra_config: str | None = None
    #: zero-to-jupyterhub's defaults for user pods, with a client-model init container
    z2jh_like: bool = False
    #: replaces the configuration's profile_list when given
    profile_list: list[dict[str, Any]] | None = None
    #: the hub database (SQLAlchemy URL, e.g. PostgreSQL); sqlite at ``db_path`` when None
    db_url: str | None = None
    #: where the user servers and the proxy reach the hub (the hub Service); hub_url if None
    hub_connect_url: str | None = None
    #: each replica's own bind URL (two pods, two addresses); hub_url for the others
    replica_hub_urls: dict[str, str] = field(default_factory=dict)
    #: the user servers' command instead of jupyterhub-singleuser (e.g. tiny_server.py)
    server_cmd: list[str] | None = None


class Proxy:
    """An external configurable-http-proxy, shared by the hubs that take turns on it."""

    def __init__(
        self, process: ManagedProcess, port: int, api_port: int, token: str, hub_url: str
    ) -> None:
        self.process = process
        #: where the hubs using this proxy listen (one at a time): its error target
        self.hub_url = hub_url
        self.public_url = f"http://127.0.0.1:{port}"
        self.api_url = f"http://127.0.0.1:{api_port}"
        self.token = token

    async def answers(self) -> bool:
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(
                    self.api_url + "/api/routes",
                    headers={"Authorization": f"token {self.token}"},
                    timeout=aiohttp.ClientTimeout(total=2),
                ) as response,
            ):
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False


class Hub:
    """One hub deployment (settings file, REST client) and the replicas running it."""

    def __init__(self, settings: HubSettings, settings_path: Path, state_dir: Path) -> None:
        self.settings = settings
        self.settings_path = settings_path
        self.state_dir = state_dir
        self.api = HubApi(settings.public_url, settings.service_token)
        self.replicas: dict[str, ManagedProcess] = {}

    @property
    def name(self) -> str:
        return self.settings.name

    def save_settings(self) -> None:
        """Write changed settings for the next start of a replica (e.g. a new spawner_class)."""
        self.settings_path.write_text(json.dumps(asdict(self.settings), indent=2))

    def polls(self, replica: str) -> list[str]:
        """User names polled by ``replica`` (one line per poll), from the pre-poll hook."""
        path = self.poll_log(replica)
        return path.read_text().split() if path.exists() else []

    def poll_log(self, replica: str) -> Path:
        return Path(str(self.settings.poll_log).format(replica=replica))


class Cluster:
    """kubesim + a synced cacher + Redis, and the processes of one test."""

    def __init__(self, sim: KubeSim, redis: aioredis.Redis, redis_url: str, work_dir: Path) -> None:
        self.sim = sim
        self.redis = redis
        self.redis_url = redis_url
        self.work_dir = work_dir
        self.keys = Keys()
        self.processes = ProcessGroup(work_dir / "logs")
        self.processes.log_dir.mkdir(parents=True, exist_ok=True)
        self.hubs: list[Hub] = []
        # The editable install may map our packages as namespace packages (an install made
        # before they had __init__.py): subprocesses import them from this checkout.
        self.python_env = {
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        }

    # ------------------------------------------------------------------ cluster state

    def create_namespace(self, name: str) -> None:
        if self.sim.store.get("namespaces", None, name) is None:
            self.sim.store.create("namespaces", None, {"metadata": {"name": name}})

    def pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.sim.store.get("pods", namespace, name)

    async def record(self, namespace: str, name: str) -> PodRecord | None:
        """The cacher's record of a pod in Redis."""
        key = pod_key(namespace, name)
        raw = await self.redis.hget(self.keys.pods, key)
        return None if raw is None else decode_pod_record(raw, key=key)

    async def api_requests(self, resource: str = "pods") -> dict[str, int]:
        """kubesim's request counters on ``resource``, per verb (list, watch, get, create...),
        of everyone but the cacher (whose watches re-open every few seconds)."""
        counts: dict[str, int] = {}
        for user, verbs in (await self.sim.stats())["requests_by_user"].items():
            if user == CACHER_USER:
                continue
            for verb, per in verbs.items():
                counts[verb] = counts.get(verb, 0) + per.get(resource, 0)
        return counts

    def cacher_kubeconfig(self) -> Path:
        """The cacher's own credentials (its requests are told apart from the hubs')."""
        path = self.work_dir / "cacher.kubeconfig"
        if not path.exists():
            token = secrets.token_hex(16)
            self.sim.server.auth.add_token(token, CACHER_USER)
            write_kubeconfig(path, self.sim.url, token, ca_cert=self.sim.ca_cert)
        return path

    async def kubecache_cli(self, *args: str) -> tuple[int, str]:
        """Run the ``kubecache`` command against this test's Redis: (exit status, stdout)."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "kubecache.cli",
            "--redis-url",
            self.redis_url,
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, **self.python_env},
        )
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert process.returncode is not None
        if stderr:
            print(stderr.decode(errors="replace"))
        return process.returncode, stdout.decode(errors="replace")

    async def cache_fresh(self) -> bool:
        health = CacheHealth.from_redis(await self.redis.hgetall(self.keys.health))
        now_ms = redis_time_ms(await self.redis.time())
        return health_freshness(health, now_ms=now_ms, stale_after_ms=3000) is Freshness.FRESH

    # ------------------------------------------------------------------ waiting

    async def wait(
        self,
        condition: Callable[[], object | Awaitable[object]],
        *,
        timeout: float,
        message: str,
        watching: list[ManagedProcess] | None = None,
    ) -> Any:
        """wait_for, failing at once (with its log) when a watched process dies meanwhile."""

        async def check() -> object:
            for process in watching or []:
                if not process.running:
                    raise AssertionError(
                        f"{process.name} exited with {process.process.returncode} while waiting "
                        f"for {message}:\n{process.log_tail(60)}"
                    )
            result = condition()
            return await result if isinstance(result, Awaitable) else result

        return await wait_for(check, timeout=timeout, interval=0.1, message=message)

    # ------------------------------------------------------------------ processes

    async def start_cacher(self) -> ManagedProcess:
        cacher = self.processes.start(
            "cacher",
            [
                sys.executable,
                "-m",
                "kubecache.cacher",
                "--kubeconfig",
                str(self.cacher_kubeconfig()),
                "--redis-url",
                self.redis_url,
                "--lease-namespace",
                "default",
                "--identity",
                "e2e-cacher",
                "--health-host",
                "127.0.0.1",
                "--health-port",
                str(free_port()),
                "--heartbeat-interval",
                "0.5",
            ],
            env=self.python_env,
        )
        await self.wait(
            self.cache_fresh, timeout=60, message="a synced, fresh cache", watching=[cacher]
        )
        return cacher

    async def start_proxy(self, name: str = "proxy") -> Proxy:
        binary = shutil.which("configurable-http-proxy")
        if binary is None:
            raise RuntimeError("configurable-http-proxy is missing: run bash scripts/install.sh")
        port, api_port, token = free_port(), free_port(), secrets.token_hex(16)
        hub_url = f"http://127.0.0.1:{free_port()}"
        process = self.processes.start(
            name,
            [
                binary,
                "--ip",
                "127.0.0.1",
                "--port",
                str(port),
                "--api-ip",
                "127.0.0.1",
                "--api-port",
                str(api_port),
                "--error-target",
                f"{hub_url}/hub/error",
                "--log-level",
                "warn",
            ],
            env={"CONFIGPROXY_AUTH_TOKEN": token},
        )
        proxy = Proxy(process, port, api_port, token, hub_url)
        await self.wait(proxy.answers, timeout=30, message=f"{name} to answer", watching=[process])
        return proxy

    def hub(
        self,
        name: str,
        proxy: Proxy,
        *,
        namespace: str,
        common_labels: dict[str, str] | None = None,
        **options: Any,
    ) -> Hub:
        """Settings of one hub deployment (its replicas share database, proxy and hub URL)."""
        state = self.work_dir / name
        state.mkdir(parents=True, exist_ok=True)
        self.create_namespace(namespace)
        settings = HubSettings(
            name=name,
            namespace=namespace,
            public_url=proxy.public_url,
            hub_url=proxy.hub_url,
            proxy_api_url=proxy.api_url,
            proxy_token=proxy.token,
            redis_url=self.redis_url,
            service_token=secrets.token_hex(16),
            db_path=str(state / "jupyterhub.sqlite"),
            cookie_secret_file=str(state / "cookie_secret"),
            common_labels=common_labels
            or {"app": "jupyterhub", "heritage": "jupyterhub", "release": name},
            poll_log=str(state / "polls-{replica}.log"),
            **options,
        )
        hub = Hub(settings, state / "hub.json", state)
        hub.save_settings()
        self.hubs.append(hub)
        return hub

    def start_replica(
        self,
        hub: Hub,
        replica: str,
        *,
        standby: bool = False,
        kubeconfig: Path | None = None,
        redis_url: str | None = None,
        standby_args: tuple[str, ...] = (),
    ) -> ManagedProcess:
        """Run the hub: plainly, or under ``kubecache hub-standby`` (a Redis lease).

        ``kubeconfig``: the hub's credentials when not kubesim's admin token (e.g. a Role's).
        ``redis_url``: this replica's way to Redis (wrapper and hub), e.g. through a forwarder
        the test can cut. ``standby_args``: more ``hub-standby`` options (e.g. metrics).
        """
        command = [sys.executable, "-m", "jupyterhub", "-f", str(HUB_CONFIG)]
        if standby:
            command = [
                sys.executable,
                "-m",
                "kubecache.cli",
                "--redis-url",
                redis_url or self.redis_url,
                "hub-standby",
                "--lease-name",
                hub.name,
                "--identity",
                replica,
                *STANDBY_TIMING,
                "--stop-grace",
                "5",
                *standby_args,
                "--",
                *command,
            ]
        process = self.processes.start(
            f"{hub.name}-{replica}",
            command,
            env={
                **self.python_env,
                "KUBECACHE_E2E_HUB": str(hub.settings_path),
                "KUBECACHE_E2E_REPLICA": replica,
                "KUBECACHE_E2E_REDIS_URL": redis_url or self.redis_url,
                "KUBECONFIG": str(kubeconfig or self.sim.kubeconfig_path),
            },
            cwd=hub.state_dir,
        )
        hub.replicas[replica] = process
        return process

    async def start_hub(
        self, hub: Hub, replica: str = "hub", *, kubeconfig: Path | None = None
    ) -> ManagedProcess:
        process = self.start_replica(hub, replica, kubeconfig=kubeconfig)
        await self.wait(
            hub.api.answers, timeout=90, message=f"{hub.name} to answer", watching=[process]
        )
        return process

    def pod_logs(self) -> str:
        """The notebook container output of every pod still known to kubesim."""
        kubelet = self.sim.server.kubelet
        parts = []
        for pod in self.sim.store.list("pods"):
            namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
            log = kubelet.read_log(namespace, name, "notebook") if kubelet else None
            text = (log or b"").decode(errors="replace")
            parts.append(f"----- pod {namespace}/{name}\n{text[-6000:]}")
        return "\n".join(parts)

    async def close(self) -> None:
        for hub in self.hubs:
            await hub.api.close()
        await self.processes.stop_all()
