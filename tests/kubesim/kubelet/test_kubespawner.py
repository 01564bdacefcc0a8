"""Proof: the unmodified KubeSpawner from PyPI runs against kubesim, with either kubelet.

With the fake kubelet it starts, polls, streams progress and stops a simulated
server. With the process kubelet it starts a real one:
The pod's command is a small jupyterhub-singleuser-like HTTP server that binds
where JUPYTERHUB_SERVICE_URL says (http://0.0.0.0:8888/user/alice/, which the
process kubelet turns into the pod's own loopback IP) and answers under
JUPYTERHUB_SERVICE_PREFIX.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from jupyterhub.objects import Server
from kubernetes_asyncio.client import Configuration, CoreV1Api
from kubernetes_asyncio.config import kube_config
from kubernetes_asyncio.stream import WsApiClient
from kubespawner import KubeSpawner
from kubespawner import clients as kubespawner_clients
from traitlets.config import Config

from kubesim.testing import KubeSim, running_kubesim
from tests.support.waiting import wait_for

SINGLEUSER = """
import os, signal, sys, urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

url = urllib.parse.urlsplit(os.environ["JUPYTERHUB_SERVICE_URL"])
prefix = os.environ["JUPYTERHUB_SERVICE_PREFIX"]


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        found = self.path.startswith(prefix)
        body = ("hello " + os.environ["JUPYTERHUB_USER"]) if found else "not found"
        self.send_response(200 if found else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())


signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("listening on", url.hostname, url.port, flush=True)
HTTPServer((url.hostname, url.port), Handler).serve_forever()
"""


@pytest.fixture(params=["process"])
async def sim(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[KubeSim]:
    async with running_kubesim(kubelet=request.param) as running:
        # kubernetes_asyncio reads $KUBECONFIG at import time: point its default at this server.
        monkeypatch.setattr(
            kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(running.kubeconfig_path)
        )
        await KubeSpawner._stop_all_reflectors()  # reflectors are class-wide
        saved = Configuration.get_default_copy()
        try:
            yield running
        finally:
            # Leave no trace of this server in kubespawner's and the client's process-wide state.
            await KubeSpawner._stop_all_reflectors()
            kubespawner_clients.load_config.cache_clear()
            Configuration.set_default(saved)


def make_spawner(sim: KubeSim) -> KubeSpawner:
    config = Config()
    config.KubeSpawner.namespace = "default"
    config.KubeSpawner.k8s_api_host = sim.url  # also keys kubespawner's cached load_config
    config.KubeSpawner.cmd = [sys.executable, "-c", SINGLEUSER]
    config.KubeSpawner.start_timeout = 60
    user = SimpleNamespace(
        name="alice",
        id=1,
        url="/user/alice/",
        escaped_name="alice",
        base_url="/user/alice/",
        settings={},
        spawners={},
        server=None,
        progress_url=lambda server_name="": "/hub/api/users/alice/progress",
    )
    hub = SimpleNamespace(
        public_host="",
        url="http://hub:8081/hub/",
        base_url="/hub/",
        api_url="http://hub:8081/hub/api",
        public_url="",
    )
    spawner = KubeSpawner(
        user=user,
        hub=hub,
        config=config,
        api_token="token",
        oauth_client_id="jupyterhub-user-alice",
        db=SimpleNamespace(commit=lambda: None),
    )
    spawner.server = Server(base_url="/user/alice/")
    return spawner


async def http_get(url: str) -> tuple[int, bytes]:
    parts = url.split("/", 3)
    host, port = parts[2].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET /{parts[3]} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
    response = await reader.read()
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def test_kubespawner_starts_polls_streams_progress_and_stops_a_real_server(
    sim: KubeSim,
) -> None:
    spawner = make_spawner(sim)
    url = await asyncio.wait_for(spawner.start(), timeout=60)
    assert isinstance(url, str) and url.endswith(":8888")
    pod = sim.store.get("pods", "default", "jupyter-alice")
    assert pod is not None
    ip = pod["status"]["podIP"]
    assert url == f"http://{ip}:8888" and ip != "127.0.0.1"
    spawner.server.ip, spawner.server.port = ip, 8888  # what JupyterHub records after start

    assert await http_get(f"{url}/user/alice/api") == (200, b"hello alice")
    assert await spawner.poll() is None
    assert sim.server.kubelet is not None
    log = sim.server.kubelet.read_log("default", "jupyter-alice", "notebook")
    assert log is not None and f"listening on {ip} 8888".encode() in log

    messages: list[dict[str, Any]] = [event async for event in spawner.progress()]
    reasons = [m["raw_event"]["reason"] for m in messages if "raw_event" in m]
    assert reasons == ["Scheduled", "Pulling", "Pulled", "Created", "Started"]
    assert "Successfully assigned default/jupyter-alice to node-" in messages[0]["message"]

    await asyncio.wait_for(spawner.stop(), timeout=60)
    await wait_for(
        lambda: sim.store.get("pods", "default", "jupyter-alice") is None, message="the pod removed"
    )
    assert await spawner.poll() is not None
    with pytest.raises(OSError):
        await http_get(f"{url}/user/alice/api")


@pytest.mark.parametrize("sim", ["fake"], indirect=True)
async def test_kubespawner_starts_polls_streams_progress_and_stops_a_simulated_server(
    sim: KubeSim,
) -> None:
    spawner = make_spawner(sim)
    url = await asyncio.wait_for(spawner.start(), timeout=60)
    pod = sim.store.get("pods", "default", "jupyter-alice")
    assert pod is not None and pod["status"]["phase"] == "Running"
    assert url == f"http://{pod['status']['podIP']}:8888"
    assert await spawner.poll() is None

    messages: list[dict[str, Any]] = [event async for event in spawner.progress()]
    reasons = [m["raw_event"]["reason"] for m in messages if "raw_event" in m]
    assert reasons == ["Scheduled", "Pulling", "Pulled", "Created", "Started"]
    assert all(m["message"].split(" ", 2)[1] == "[Normal]" for m in messages)

    await asyncio.wait_for(spawner.stop(), timeout=60)
    await wait_for(
        lambda: sim.store.get("pods", "default", "jupyter-alice") is None, message="the pod removed"
    )
    assert await spawner.poll() == 1


CHECK_UP = """
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=10) as response:
    print(response.status, response.read().decode())
"""


async def exec_in_pod(sim: KubeSim, pod: str, command: list[str]) -> tuple[str, int]:
    """stdout and exit code of an exec, read as KubeSpawner's suite reads them."""
    configuration = Configuration()
    configuration.host = sim.url
    configuration.api_key = {"BearerToken": sim.token}
    configuration.api_key_prefix = {"BearerToken": "Bearer"}
    async with WsApiClient(configuration) as ws_api:
        connection = await CoreV1Api(ws_api).connect_get_namespaced_pod_exec(
            pod, "default", command=command, stdout=True, stderr=True, _preload_content=False
        )
        async with connection as ws:
            frames = [bytes(message.data) async for message in ws]
    stdout = b"".join(f[1:] for f in frames if f[:1] == b"\x01").decode()
    return stdout, WsApiClient.parse_error_data(frames[-1][1:])


async def test_a_server_kubespawner_started_is_reached_from_inside_the_cluster(
    sim: KubeSim,
) -> None:
    """KubeSpawner's own suite checks servers by exec-ing Python in a pod: that works here."""
    spawner = make_spawner(sim)
    url = await asyncio.wait_for(spawner.start(), timeout=60)
    checker = {
        "metadata": {"name": "kubespawner-test-exec"},
        "spec": {
            "containers": [
                {
                    "name": "python",
                    "image": "python:3.11",
                    "args": ["/bin/sh", "-c", "while true; do sleep 5; done"],
                }
            ],
            "terminationGracePeriodSeconds": 0,
        },
    }
    sim.store.create("pods", "default", checker)

    def running() -> bool:
        pod = sim.store.get("pods", "default", "kubespawner-test-exec") or {}
        return (pod.get("status") or {}).get("phase") == "Running"

    await wait_for(running, timeout=20, message="the exec pod running")
    output, code = await exec_in_pod(
        sim, "kubespawner-test-exec", [sys.executable, "-c", CHECK_UP, url + "/user/alice/"]
    )
    assert (output, code) == ("200 hello alice\n", 0)
    _, code = await exec_in_pod(sim, "kubespawner-test-exec", ["sh", "-c", "exit 4"])
    assert code == 4
    await asyncio.wait_for(spawner.stop(), timeout=60)
