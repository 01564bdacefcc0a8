"""The process kubelet runs the notebook container as a real process on its pod IP."""

from __future__ import annotations

import asyncio
import base64
import os
import sys
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kubesim.cluster import NodeSpec
from kubesim.container_spec import container_argv, container_environment, notebook_port
from kubesim.kubelet_process import LogBuffer, ProcessKubelet
from kubesim.store import ObjectStore
from tests.kubesim.kubelet.conftest import Cluster
from tests.support.waiting import wait_for

PY = sys.executable
IGNORE_SIGTERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('started', flush=True); time.sleep(60)"
)


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    store = ObjectStore()
    store.create("namespaces", None, {"metadata": {"name": "jhub"}})
    kubelet = ProcessKubelet([NodeSpec("node-1")], close_grace_period=0.5)
    kubelet.attach(store)
    await kubelet.start()
    yield Cluster(store, kubelet)  # type: ignore[arg-type]
    await kubelet.close()


def run_pod(
    cluster: Cluster,
    *args: str,
    name: str = "jupyter-alice",
    env: list[dict[str, Any]] | None = None,
    **spec: Any,
) -> None:
    """A pod whose notebook container runs this Python interpreter with ``args``."""
    notebook = {"command": [PY], "args": list(args), "env": env or []}
    cluster.create_pod(name, image="python:3.11", notebook=notebook, **spec)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def phase(cluster: Cluster, name: str = "jupyter-alice") -> str | None:
    pod = cluster.pod(name)
    return pod["status"].get("phase") if pod else None


def pids(cluster: Cluster) -> list[int]:
    kubelet: ProcessKubelet = cluster.kubelet  # type: ignore[assignment]
    return [c.process.pid for c in kubelet.processes.containers]


async def fetch(url: str) -> int:
    def get() -> int:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)

    return await asyncio.to_thread(get)


async def test_a_server_told_to_bind_everywhere_is_reachable_on_its_pod_ip(
    cluster: Cluster,
) -> None:
    run_pod(cluster, "-m", "http.server", "--bind", "0.0.0.0", "8888")
    await wait_for(
        lambda: cluster.condition("Ready").get("status") == "True",
        timeout=20,
        message="the server ready",
    )
    pod = cluster.pod()
    assert pod is not None
    ip = pod["status"]["podIP"]
    assert ip.startswith("127.") and ip != "127.0.0.1"
    assert await fetch(f"http://{ip}:8888/") == 200
    assert cluster.reasons() == ["Scheduled", "Pulling", "Pulled", "Created", "Started"]


async def test_exit_codes_map_to_the_container_state_and_phase(cluster: Cluster) -> None:
    run_pod(
        cluster, "-c", "import sys; print('bye', flush=True); sys.exit(3)", restartPolicy="Never"
    )
    await wait_for(lambda: phase(cluster) == "Failed", timeout=20, message="phase Failed")
    terminated = cluster.container_status()["state"]["terminated"]
    assert terminated["exitCode"] == 3 and terminated["reason"] == "Error"
    assert cluster.kubelet.read_log("jhub", "jupyter-alice", None) == b"bye\n"
    run_pod(cluster, "-c", "pass", name="clean", restartPolicy="Never")
    await wait_for(lambda: phase(cluster, "clean") == "Succeeded", timeout=20, message="Succeeded")
    assert cluster.container_status("clean")["state"]["terminated"]["reason"] == "Completed"


async def test_the_environment_comes_from_the_pod_with_the_pod_ip(cluster: Cluster) -> None:
    cluster.store.create(
        "secrets",
        "jhub",
        {"metadata": {"name": "token"}, "data": {"t": base64.b64encode(b"s3cret").decode()}},
    )
    script = (
        "import os; print(os.environ['JUPYTERHUB_SERVICE_URL'], os.environ['TOKEN'], "
        "os.environ['POD'], os.environ['REF'], 'PATH' in os.environ, flush=True)"
    )
    env: list[dict[str, Any]] = [
        {"name": "JUPYTERHUB_SERVICE_URL", "value": "http://0.0.0.0:8888/user/alice/"},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "token", "key": "t"}}},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "REF", "value": "$(POD)-x"},
    ]
    run_pod(cluster, "-c", script, restartPolicy="Never", name="envy", env=env)
    await wait_for(lambda: phase(cluster, "envy") == "Succeeded", timeout=20, message="Succeeded")
    pod = cluster.pod("envy")
    assert pod is not None
    ip = pod["status"]["podIP"]
    output = cluster.kubelet.read_log("jhub", "envy", "notebook")
    assert output == f"http://{ip}:8888/user/alice/ s3cret envy envy-x True\n".encode()


async def test_deletion_sends_sigterm_then_sigkill_after_the_grace_period(cluster: Cluster) -> None:
    run_pod(cluster, "-c", IGNORE_SIGTERM)
    await wait_for(
        lambda: cluster.kubelet.read_log("jhub", "jupyter-alice", None),
        timeout=20,
        message="the process started",
    )
    [pid] = pids(cluster)
    seen: list[dict[str, Any]] = []
    cluster.store.add_listener(
        lambda kind, resource, obj: seen.append(obj) if resource == "pods" else None
    )
    cluster.store.delete("pods", "jhub", "jupyter-alice", grace_period_seconds=1)
    await wait_for(lambda: cluster.pod() is None, timeout=20, message="the pod removed")
    assert not alive(pid)
    final = [p for p in seen if p["status"].get("containerStatuses")][-1]["status"]
    assert final["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 137
    killing = cluster.event("Killing")
    assert killing is not None and killing["message"] == "Stopping container notebook"


async def test_a_server_that_honours_sigterm_stops_at_once(cluster: Cluster) -> None:
    run_pod(cluster, "-m", "http.server", "--bind", "0.0.0.0", "8888")
    await wait_for(
        lambda: cluster.condition("Ready").get("status") == "True",
        timeout=20,
        message="the server ready",
    )
    [pid] = pids(cluster)
    cluster.store.delete("pods", "jhub", "jupyter-alice", grace_period_seconds=30)
    await wait_for(lambda: cluster.pod() is None, timeout=20, message="the pod removed")
    assert not alive(pid)


async def test_close_leaves_no_process_behind(cluster: Cluster) -> None:
    run_pod(cluster, "-c", IGNORE_SIGTERM, name="a")
    run_pod(cluster, "-c", "import time; time.sleep(60)", name="b")
    await wait_for(lambda: len(pids(cluster)) == 2, timeout=20, message="both processes")
    running = pids(cluster)
    await cluster.kubelet.close()
    assert not any(alive(pid) for pid in running)


async def test_close_sends_sigterm_before_sigkill(cluster: Cluster) -> None:
    graceful = (
        "import signal, sys, time\n"
        "def bye(*_):\n    print('terminated', flush=True); sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, bye); print('started', flush=True); time.sleep(60)"
    )
    run_pod(cluster, "-c", graceful)
    await wait_for(
        lambda: cluster.kubelet.read_log("jhub", "jupyter-alice", None),
        timeout=20,
        message="the process started",
    )
    await cluster.kubelet.close()
    output = cluster.kubelet.read_log("jhub", "jupyter-alice", None)
    assert output == b"started\nterminated\n", output


async def test_a_missing_executable_is_a_start_error(cluster: Cluster) -> None:
    cluster.create_pod(
        "broken",
        image="python:3.11",
        restartPolicy="Never",
        notebook={"command": ["/nonexistent/kubesim-test-binary"]},
    )
    await wait_for(lambda: phase(cluster, "broken") == "Failed", timeout=20, message="Failed")
    terminated = cluster.container_status("broken")["state"]["terminated"]
    assert terminated["reason"] == "StartError" and terminated["exitCode"] == 128
    assert "Started" not in cluster.reasons("broken")
    failed = cluster.event("Failed", "broken")
    assert failed is not None and failed["type"] == "Warning"
    assert failed["message"].startswith("Error: failed to start container 'notebook': ")


def test_argv_and_env_substitute_the_pod_ip() -> None:
    container = {
        "name": "notebook",
        "command": ["jupyterhub-singleuser"],
        "args": ["--ip=0.0.0.0", "--port=$(PORT)", "$$(PORT)"],
        "env": [{"name": "PORT", "value": "8888"}],
    }
    pod = {"metadata": {"name": "p", "namespace": "jhub"}, "spec": {}}
    env = container_environment(pod, container, pod_ip="127.9.9.9", host_env={"PATH": "/bin"})
    assert env == {"PATH": "/bin", "PORT": "8888"}
    assert container_argv(container, env, "127.9.9.9") == [
        "jupyterhub-singleuser",
        "--ip=127.9.9.9",
        "--port=8888",
        "$(PORT)",
    ]


def test_the_notebook_port_is_the_named_one_else_the_first() -> None:
    assert (
        notebook_port(
            {"ports": [{"containerPort": 80}, {"name": "notebook-port", "containerPort": 8888}]}
        )
        == 8888
    )
    assert notebook_port({"ports": [{"containerPort": 80}]}) == 80
    assert notebook_port({}) is None


def test_the_log_buffer_keeps_the_tail() -> None:
    buffer = LogBuffer(limit=10)
    buffer.append(b"0123456789")
    buffer.append(b"abcdef")
    assert buffer.read() == b"6789abcdef"


async def test_a_container_without_command_or_args_is_simulated(cluster: Cluster) -> None:
    cluster.create_pod("plain")
    await wait_for(
        lambda: cluster.condition("Ready", "plain").get("status") == "True",
        timeout=20,
        message="the simulated container ready",
    )
    assert pids(cluster) == []
    assert cluster.kubelet.read_log("jhub", "plain", None) is None


HTTP_SERVER = """
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        print("GET", self.path, self.headers.get("User-Agent"), flush=True)
        self.send_response(200 if self.path == "/healthz" else 500)
        self.end_headers()


HTTPServer((sys.argv[1], 8080), Handler).serve_forever()
"""


async def test_an_http_readiness_probe_decides_readiness(cluster: Cluster) -> None:
    probe = {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1}
    cluster.create_pod(
        "probed",
        image="python:3.11",
        notebook={
            "command": [PY, "-c", HTTP_SERVER, "0.0.0.0"],
            "ports": [{"name": "http", "containerPort": 8080}],
            "readinessProbe": probe,
        },
    )
    await wait_for(
        lambda: cluster.condition("Ready", "probed").get("status") == "True",
        timeout=20,
        message="ready by its probe",
    )
    log = cluster.kubelet.read_log("jhub", "probed", None) or b""
    assert b"GET /healthz kube-probe/1.32" in log


async def test_an_exec_readiness_probe_holds_readiness_until_it_succeeds(
    cluster: Cluster, tmp_path: Any
) -> None:
    flag, probes = tmp_path / "ready", tmp_path / "probes"
    check = f"echo probe >> {probes}; test -f {flag}"
    cluster.create_pod(
        "gated",
        image="python:3.11",
        notebook={
            "command": [PY, "-c", "import time; time.sleep(60)"],
            "readinessProbe": {"exec": {"command": ["sh", "-c", check]}, "periodSeconds": 1},
        },
    )
    await wait_for(
        lambda: probes.exists() and len(probes.read_text().split()) >= 2,
        timeout=20,
        message="two failed probes",
    )
    assert cluster.condition("Ready", "gated").get("status") == "False"
    flag.write_text("")
    await wait_for(
        lambda: cluster.condition("Ready", "gated").get("status") == "True",
        timeout=20,
        message="ready once the probe passes",
    )
