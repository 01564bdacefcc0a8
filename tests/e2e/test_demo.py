"""The demo as a user starts it: scripts/demo.py, its start-up mistakes and --check.

``--check`` spawns through the REST API, reaches the server through the proxy,
finds the note naming the chosen image (and JupyterLab when installed), runs
the ``kubecache`` and ``kubectl`` commands the demo prints (kubesim serves TLS,
so kubectl sends its token) and stops the server.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "scripts" / "demo.py"


def run_demo(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DEMO), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


def test_a_busy_hub_port_is_refused_at_once_with_the_fix(busy_port: int, tmp_path: Path) -> None:
    result = run_demo("--port", str(busy_port), "--state", str(tmp_path / "state"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert f"port {busy_port}" in result.stderr and "--port" in result.stderr
    assert not (tmp_path / "state" / "logs").exists()  # nothing was started


def test_a_state_directory_held_by_a_running_demo_is_left_alone(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "jupyterhub.sqlite").write_text("the running demo's database")
    with open(state / "demo.lock", "w") as lock:  # held as a running demo holds it
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = run_demo("--state", str(state), "--port", str(free_port()))
    assert result.returncode == 2
    assert "already running" in result.stderr and "--state" in result.stderr
    assert (state / "jupyterhub.sqlite").read_text() == "the running demo's database"


@pytest.mark.skipif(
    shutil.which("configurable-http-proxy") is None, reason="needs configurable-http-proxy"
)
def test_the_demo_check_passes_end_to_end() -> None:
    result = run_demo("--check", timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "demo check passed" in result.stdout
    assert "WELCOME.md names the chosen image" in result.stdout
    # readiness polling never asks the proxy before it routes to the hub (no ECONNREFUSED)
    assert "jupyterhub.log has no proxy errors from start-up" in result.stdout
    if shutil.which("kubectl"):
        assert "kubectl shows the server" in result.stdout
