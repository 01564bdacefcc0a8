"""kubesim in-process: ``running_kubesim`` (async context manager), ``KubeSim`` and the pytest
fixture ``kubesim`` (function scope, fake kubelet with fast steps).

    async with running_kubesim() as sim:
        async with sim.api_client() as api:
            await CoreV1Api(api).list_pod_for_all_namespaces()
"""

from __future__ import annotations

import asyncio
import importlib
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import aiohttp
import orjson
from aiohttp import web

from kubesim.auth import Authenticator
from kubesim.kubeconfig import write_kubeconfig
from kubesim.server import Kubelet, KubeSimServer
from kubesim.store import ObjectStore
from kubesim.tls import self_signed, server_context
from kubesim.watch import ETCD_PROGRESS_NOTIFY_INTERVAL

if TYPE_CHECKING:
    import kubernetes_asyncio.client

    from kubesim.cluster import NodeSpec

__all__ = ["KubeSim", "kubesim", "make_kubelet", "running_kubesim"]

KubeletMode = Literal["fake", "process"] | None


def make_kubelet(
    mode: KubeletMode,
    nodes: list[NodeSpec] | None = None,
    *,
    fake_step_delay: float = 0.02,
    kubelet_root: Path | None = None,
) -> Kubelet | None:
    """The simulated kubelet for ``mode`` (imported lazily: it is optional).

    ``kubelet_root``: where the process kubelet keeps volumes (default: a temporary directory).
    """
    if mode is None:
        return None
    if mode == "fake":
        module = importlib.import_module("kubesim.kubelet_fake")
        kubelet: Kubelet = module.FakeKubelet(nodes, fake_step_delay)
        return kubelet
    if mode == "process":
        module = importlib.import_module("kubesim.kubelet_process")
        kubelet = module.ProcessKubelet(nodes, root_dir=kubelet_root)
        return kubelet
    raise ValueError(f"unknown kubelet mode {mode!r}: use 'fake', 'process' or None")


class KubeSim:
    """A running kubesim: its URL, token, kubeconfig, store and admin helpers."""

    def __init__(
        self,
        server: KubeSimServer,
        url: str,
        token: str,
        kubeconfig_path: Path,
        ca_cert: Path | None = None,
    ) -> None:
        self.server = server
        self.url = url
        self.token = token
        self.kubeconfig_path = kubeconfig_path
        self.ca_cert = ca_cert  # set when served over HTTPS
        self.store: ObjectStore = server.store

    def api_client(self) -> kubernetes_asyncio.client.ApiClient:
        """A kubernetes_asyncio ApiClient for this server (the caller closes it)."""
        from kubernetes_asyncio import client

        configuration = client.Configuration()
        configuration.host = self.url
        configuration.api_key = {"BearerToken": self.token}
        configuration.api_key_prefix = {"BearerToken": "Bearer"}
        if self.ca_cert is not None:
            configuration.ssl_ca_cert = str(self.ca_cert)
        return client.ApiClient(configuration)

    async def _admin(self, method: str, path: str, body: Any = None) -> Any:
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                method,
                self.url + path,
                data=None if body is None else orjson.dumps(body),
                headers={"Content-Type": "application/json"},
            ) as response,
        ):
            payload = orjson.loads(await response.read())
            if response.status >= 400:
                raise RuntimeError(f"kubesim {path} answered {response.status}: {payload}")
            return payload

    async def fault(self, action: dict[str, Any]) -> None:
        """POST /kubesim/faults."""
        await self._admin("POST", "/kubesim/faults", action)

    async def stats(self) -> dict[str, Any]:
        """GET /kubesim/stats."""
        result: dict[str, Any] = await self._admin("GET", "/kubesim/stats")
        return result


@asynccontextmanager
async def running_kubesim(
    *,
    kubelet: KubeletMode = "fake",
    nodes: list[NodeSpec] | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    token: str = "kubesim-token",
    bookmark_interval: float = 60.0,
    event_bookmark_interval: float | None = None,
    history: int = 10_000,
    event_history: int = 1_000,
    fake_step_delay: float = 0.02,
    max_watch_queue: int = 10_000,
    auth: Authenticator | None = None,
    kubeconfig_path: Path | None = None,
    namespaces: tuple[str, ...] = ("default", "kube-system", "kube-public", "kube-node-lease"),
    tls: bool = False,
    kubelet_root: Path | None = None,
    consistent_list_from_cache: bool = True,
    progress_notify_interval: float | None = ETCD_PROGRESS_NOTIFY_INTERVAL,
    unconditional_bookmarks: bool = False,
    first_resource_version: int | None = None,
    anonymous_auth: bool = True,
) -> AsyncIterator[KubeSim]:
    """Serve kubesim on ``host:port`` (0 = a free port) until the block ends.

    ``tls=True`` serves HTTPS with a self-signed certificate (in the kubeconfig): kubectl
    only sends the bearer token over HTTPS. ``anonymous_auth``: a request without a token is
    ``system:anonymous`` and gets 403, as kube-apiserver's default ``--anonymous-auth=true``;
    False answers 401 (ignored when ``auth`` is given: its own ``anonymous`` decides).
    """
    store = ObjectStore(history=history, event_history=event_history)
    if first_resource_version is not None:
        store.start_history_at(first_resource_version)
    for name in namespaces:
        store.create("namespaces", None, {"metadata": {"name": name}})
    server = KubeSimServer(
        store,
        auth=auth or Authenticator.single(token, anonymous=anonymous_auth),
        kubelet=make_kubelet(
            kubelet, nodes, fake_step_delay=fake_step_delay, kubelet_root=kubelet_root
        ),
        bookmark_interval=bookmark_interval,
        event_bookmark_interval=event_bookmark_interval,
        max_watch_queue=max_watch_queue,
        consistent_list_from_cache=consistent_list_from_cache,
        progress_notify_interval=progress_notify_interval,
        unconditional_bookmarks=unconditional_bookmarks,
    )
    runner = web.AppRunner(server.app, handler_cancellation=True, access_log=None)
    await runner.setup()
    with tempfile.TemporaryDirectory(prefix="kubesim-") as tmp:
        try:
            ca_cert: Path | None = None
            context = None
            if tls:
                cert, key = await asyncio.to_thread(self_signed, Path(tmp), host)
                context = server_context(cert, key)
                ca_cert = cert
            site = web.TCPSite(runner, host, port, ssl_context=context)
            await site.start()
            bound = runner.addresses[0][1]
            url = f"{'https' if tls else 'http'}://{host}:{bound}"
            path = write_kubeconfig(
                kubeconfig_path or Path(tmp) / "kubeconfig", url, token, ca_cert=ca_cert
            )
            yield KubeSim(server, url, token, path, ca_cert)
        finally:
            await runner.cleanup()


async def _kubesim_fixture() -> AsyncIterator[KubeSim]:
    """A kubesim with the fake kubelet (fast steps) for one test."""
    async with running_kubesim(kubelet="fake", fake_step_delay=0.01) as sim:
        yield sim


try:  # pytest is a test extra; `kubesim serve` must not need it
    import pytest
except ImportError:  # pragma: no cover
    pass
else:
    kubesim = pytest.fixture(name="kubesim")(_kubesim_fixture)
