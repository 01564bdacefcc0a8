"""hub-standby: of several hub replicas exactly one runs the hub; a standby takes over."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as syncredis

from kubecache.contract import Keys
from kubecache.hub_standby import EXIT_LEASE_LOST
from kubecache.hub_standby_state import StandbyState, decode_lease
from tests.support.redis_server import RedisServer, free_port
from tests.support.tcp_forwarder import TcpForwarder
from tests.support.waiting import wait_until

FAKE_HUB = str(Path(__file__).parent / "support" / "fake_hub.py")
LEASE_KEY = Keys().hub_lease("jupyterhub")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class Replica:
    def __init__(
        self, url: str, identity: str, markers: Path, *extra: str, hub_args=(), env=None
    ) -> None:
        self.identity = identity
        self.marker = markers / identity
        self.log = markers / f"{identity}.log"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kubecache.cli",
                "--redis-url",
                url,
                "hub-standby",
                "--identity",
                identity,
                *extra,
                "--",
                sys.executable,
                FAKE_HUB,
                str(self.marker),
                *hub_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("w"),
            env={**os.environ, **(env or {})},
        )

    @property
    def hub_running(self) -> bool:
        """The hub process runs (a SIGKILLed fake hub leaves its marker behind: check its pid)."""
        try:
            return _alive(int(self.marker.read_text()))
        except (OSError, ValueError):
            return False

    def logged(self, text: str) -> bool:
        return text in self.log.read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


FAST = ("--lease-duration", "3", "--renew-deadline", "2", "--retry-period", "0.25")


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[syncredis.Redis]:
    if redis_server.process is None:
        redis_server.start()
    client = syncredis.Redis.from_url(redis_server.url)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def replicas(redis_server: RedisServer, redis_client, tmp_path: Path) -> Iterator[list[Replica]]:
    started: list[Replica] = []

    def start(
        identity: str,
        *extra: str,
        hub_args: tuple[str, ...] = (),
        url: str | None = None,
        env: dict[str, str] | None = None,
    ) -> Replica:
        replica = Replica(
            url or redis_server.url, identity, tmp_path, *extra, hub_args=hub_args, env=env
        )
        started.append(replica)
        return replica

    yield start
    for replica in started:
        replica.stop()


def _active_and_standby(a: Replica, b: Replica) -> tuple[Replica, Replica]:
    wait_until(lambda: a.hub_running or b.hub_running, timeout=15, message="one hub to start")
    active, standby = (a, b) if a.hub_running else (b, a)
    wait_until(
        lambda: standby.logged("standing by"), timeout=15, message="the other replica to stand by"
    )
    return active, standby


def test_exactly_one_replica_runs_the_hub(replicas, redis_client) -> None:
    a, b = replicas("hub-a", *FAST), replicas("hub-b", *FAST)
    active, standby = _active_and_standby(a, b)
    assert not standby.hub_running
    assert decode_lease(redis_client.get(LEASE_KEY)).holder == active.identity
    assert standby.logged(f"the hub runs on {active.identity}")


def test_a_standby_takes_over_when_the_active_replica_is_killed(replicas, redis_client) -> None:
    a, b = replicas("hub-a", *FAST), replicas("hub-b", *FAST)
    active, standby = _active_and_standby(a, b)
    active.process.send_signal(signal.SIGKILL)
    # The killed wrapper's hub dies with it (parent-death signal)...
    wait_until(lambda: not active.hub_running, timeout=10, message="the orphaned hub to stop")
    # ...and the standby starts its hub once the lease expires (3 s).
    wait_until(lambda: standby.hub_running, timeout=15, message="the standby to take over")
    assert decode_lease(redis_client.get(LEASE_KEY)).holder == standby.identity


def test_a_graceful_stop_releases_the_lease_at_once(replicas, redis_client) -> None:
    slow = ("--lease-duration", "60", "--renew-deadline", "30", "--retry-period", "0.25")
    a, b = replicas("hub-a", *slow), replicas("hub-b", *slow)
    active, standby = _active_and_standby(a, b)
    active.process.send_signal(signal.SIGTERM)
    assert active.process.wait(10) == 0
    assert not active.hub_running
    # Far less than the 60 s lease: only a released lease lets the standby in this soon.
    wait_until(
        lambda: standby.hub_running, timeout=10, message="the standby to take over a released lease"
    )


def test_a_hub_that_exits_ends_the_wrapper_with_its_status(replicas, redis_client) -> None:
    replica = replicas("hub-a", *FAST, hub_args=("3",))
    assert replica.process.wait(15) == 3
    assert redis_client.get(LEASE_KEY) is None


def test_a_replica_that_loses_its_lease_stops_its_hub(replicas, redis_client) -> None:
    replica = replicas("hub-a", *FAST)
    wait_until(lambda: replica.hub_running, timeout=15, message="the hub to start")
    redis_client.set(LEASE_KEY, "someone-else")
    assert replica.process.wait(15) == EXIT_LEASE_LOST
    assert not replica.hub_running
    assert replica.logged("was taken by someone-else")


def test_impossible_lease_timing_is_refused(redis_server) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kubecache.cli",
            "--redis-url",
            redis_server.url,
            "hub-standby",
            "--lease-duration",
            "5",
            "--renew-deadline",
            "10",
            "--",
            "true",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ},
    )
    assert result.returncode == 2
    assert "renew-deadline < lease-duration" in result.stderr


@pytest.fixture
def forwarder(redis_server: RedisServer) -> Iterator[TcpForwarder]:
    """A connection to Redis of one replica only, that the test can cut."""
    proxy = TcpForwarder((redis_server.host, redis_server.port))
    yield proxy
    proxy.close()


def _lease_ttl_while(condition, redis_client, *, timeout: float, message: str) -> int:
    """Wait for ``condition``; the lease's remaining time (ms) at the first check it held."""
    deadline = time.monotonic() + timeout
    while True:
        ttl = redis_client.pttl(LEASE_KEY)
        if condition():
            return int(ttl)
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(0.01)


@pytest.mark.parametrize("stubborn", [False, True], ids=["hub-stops", "hub-ignores-sigterm"])
def test_a_replica_cut_off_from_redis_stops_its_hub_before_the_lease_can_expire(
    replicas, redis_client, forwarder: TcpForwarder, stubborn: bool
) -> None:
    # A partition, not a refusal: renewals hang instead of failing. The hub must be dead
    # while the lease it last renewed still runs, or the standby's hub would overlap it.
    env = {"FAKE_HUB_IGNORE_SIGTERM": "1"} if stubborn else {}
    replica = replicas("hub-a", *FAST, url=f"redis://{forwarder.address}/0", env=env)
    wait_until(lambda: replica.hub_running, timeout=15, message="the hub to start")
    wait_until(lambda: redis_client.pttl(LEASE_KEY) > 2500, timeout=5, message="a renewal")
    forwarder.blackhole()
    ttl = _lease_ttl_while(
        lambda: not replica.hub_running, redis_client, timeout=10, message="the hub to stop"
    )
    assert ttl > 0, "the hub outlived the lease it held"
    assert replica.process.wait(15) == EXIT_LEASE_LOST
    assert replica.logged("stopping the hub before the lease expires")


def test_a_rolling_update_hands_over_only_after_the_old_hub_has_stopped(
    replicas, redis_client
) -> None:
    # The old hub takes 4 s to shut down, longer than the 3 s lease: the wrapper must keep
    # renewing while it stops, and the standby must not start its hub before it is gone.
    slow_stop = {"FAKE_HUB_STOP_SECONDS": "4"}
    a = replicas("hub-a", *FAST, "--stop-grace", "20", env=slow_stop)
    wait_until(lambda: a.hub_running, timeout=15, message="hub A to start")
    b = replicas("hub-b", *FAST, env=slow_stop)
    wait_until(lambda: b.logged("standing by"), timeout=15, message="B to stand by")
    a.process.send_signal(signal.SIGTERM)
    overlap = []
    deadline = time.monotonic() + 20
    while not b.hub_running:
        if a.hub_running and b.hub_running:
            overlap.append(time.monotonic())
        assert time.monotonic() < deadline, "B never took over"
        time.sleep(0.01)
    assert not a.hub_running, "B's hub started while A's was still stopping"
    assert not overlap
    assert a.process.wait(10) == 0
    assert decode_lease(redis_client.get(LEASE_KEY)).previous == "hub-a"


def test_a_frozen_replica_kills_its_hub_as_soon_as_it_wakes_up(replicas, redis_client) -> None:
    a = replicas("hub-a", *FAST)
    wait_until(lambda: a.hub_running, timeout=15, message="hub A to start")
    b = replicas("hub-b", *FAST)
    wait_until(lambda: b.logged("standing by"), timeout=15, message="B to stand by")
    hub_pid = int(a.marker.read_text())
    for pid in (a.process.pid, hub_pid):  # the whole pod freezes
        os.kill(pid, signal.SIGSTOP)
    try:
        wait_until(lambda: b.hub_running, timeout=15, message="B to take over from frozen A")
    finally:
        for pid in (hub_pid, a.process.pid):
            os.kill(pid, signal.SIGCONT)
    assert a.process.wait(10) == EXIT_LEASE_LOST
    assert not a.hub_running
    assert a.logged("this replica was frozen; killing the hub now")
    assert decode_lease(redis_client.get(LEASE_KEY)).holder == "hub-b"


def test_status_and_metrics_show_the_active_replica_and_the_last_takeover(
    replicas, redis_client, redis_server: RedisServer
) -> None:
    ports = {name: free_port() for name in ("hub-a", "hub-b")}
    a = replicas("hub-a", *FAST, "--metrics-port", str(ports["hub-a"]))
    wait_until(lambda: a.hub_running, timeout=15, message="hub A to start")
    b = replicas("hub-b", *FAST, "--metrics-port", str(ports["hub-b"]))
    wait_until(lambda: b.logged("standing by"), timeout=15, message="B to stand by")

    def metrics(name: str) -> dict[str, float]:
        url = f"http://127.0.0.1:{ports[name]}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        return {
            line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("kubecache_hub_standby_")
        }

    assert metrics("hub-a")["kubecache_hub_standby_active"] == 1
    assert metrics("hub-b")["kubecache_hub_standby_active"] == 0
    assert metrics("hub-b")['kubecache_hub_standby_lease_holder{holder="hub-a"}'] == 1

    a.process.send_signal(signal.SIGKILL)
    wait_until(lambda: b.hub_running, timeout=15, message="B to take over")
    after = metrics("hub-b")
    assert after["kubecache_hub_standby_active"] == 1
    assert after["kubecache_hub_standby_takeovers_total"] == 1
    assert after["kubecache_hub_standby_last_takeover_timestamp_seconds"] > time.time() - 60
    assert b.logged("taking over from hub-a")

    status = subprocess.run(
        [
            sys.executable,
            "-m",
            "kubecache.cli",
            "--redis-url",
            redis_server.url,
            "status",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lease = json.loads(status.stdout)["hub_lease"]
    assert lease["active"] == "hub-b" and lease["took_over_from"] == "hub-a", lease
    assert 0 < lease["expires_in_s"] <= 3
    text = subprocess.run(
        [sys.executable, "-m", "kubecache.cli", "--redis-url", redis_server.url, "status"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    ).stdout
    assert "active hub" in text and "hub-b" in text and "took over from hub-a" in text, text


def test_a_preloading_standby_imports_jupyterhub_early_and_runs_it_only_with_the_lease(
    redis_server: RedisServer, redis_client, tmp_path: Path
) -> None:
    redis_client.set(LEASE_KEY, "someone-else", px=60_000)
    out = tmp_path / "hub.out"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kubecache.cli",
            "--redis-url",
            redis_server.url,
            "hub-standby",
            "--identity",
            "hub-a",
            "--preload",
            *FAST,
            "--",
            sys.executable,
            "-m",
            "jupyterhub",
            "--version",
        ],
        stdout=out.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(
            lambda: "JupyterHub imported in" in out.read_text(),
            timeout=120,
            message="JupyterHub to be imported while standing by",
        )
        assert "standing by: the hub runs on someone-else" in out.read_text()
        import jupyterhub

        assert jupyterhub.__version__ not in out.read_text().split("imported in")[1]
        redis_client.delete(LEASE_KEY)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    after_takeover = out.read_text().split("acquired lease", 1)[1]
    assert f"\n{jupyterhub.__version__}\n" in after_takeover, after_takeover


def test_the_monitoring_doc_lists_every_hub_standby_metric() -> None:
    state = StandbyState("jupyterhub", "hub-a")
    state.saw_holder("hub-b")
    state.stepped_down("taken")
    exported = {
        sample.name
        for family in state.registry.collect()
        for sample in family.samples
        if sample.name.startswith("kubecache_hub_standby_") and not sample.name.endswith("_created")
    }
    doc = (Path(__file__).parents[1] / "docs" / "monitoring.md").read_text()
    documented = set(re.findall(r"`(kubecache_hub_standby_[a-z_]+)", doc))
    assert documented == exported
