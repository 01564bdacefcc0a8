"""hub-standby: of several hub replicas exactly one runs the hub; a standby takes over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as syncredis

from kubecache.contract import Keys
from kubecache.hub_standby import EXIT_LEASE_LOST
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_until

FAKE_HUB = str(Path(__file__).parent / "support" / "fake_hub.py")
LEASE_KEY = Keys().hub_lease("jupyterhub")


class Replica:
    def __init__(self, url: str, identity: str, markers: Path, *extra: str, hub_args=()) -> None:
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
        )

    @property
    def hub_running(self) -> bool:
        return self.marker.exists()

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

    def start(identity: str, *extra: str, hub_args: tuple[str, ...] = ()) -> Replica:
        replica = Replica(redis_server.url, identity, tmp_path, *extra, hub_args=hub_args)
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
    assert redis_client.get(LEASE_KEY).decode() == active.identity
    assert standby.logged(f"the hub runs on {active.identity}")


def test_a_standby_takes_over_when_the_active_replica_is_killed(replicas, redis_client) -> None:
    a, b = replicas("hub-a", *FAST), replicas("hub-b", *FAST)
    active, standby = _active_and_standby(a, b)
    active.process.send_signal(signal.SIGKILL)
    # The killed wrapper's hub dies with it (parent-death signal)...
    wait_until(lambda: not active.hub_running, timeout=10, message="the orphaned hub to stop")
    # ...and the standby starts its hub once the lease expires (3 s).
    wait_until(lambda: standby.hub_running, timeout=15, message="the standby to take over")
    assert redis_client.get(LEASE_KEY).decode() == standby.identity


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
