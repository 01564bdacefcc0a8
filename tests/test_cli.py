"""The kubecache CLI reads the cache from Redis and says what is wrong."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as syncredis

from kubecache import contract
from kubecache.cli import EXIT_FAILED, EXIT_UNTRUSTED, main
from kubecache.contract import CacheHealth, Keys
from tests.support.redis_server import RedisServer

KEYS = Keys()
REPO = Path(__file__).resolve().parents[1]


def _record(user: str, server: str = "", **extra: object) -> contract.PodRecord:
    name = f"jupyter-{user}" + (f"--{server}" if server else "")
    record = {
        "namespace": "jhub",
        "name": name,
        "uid": f"uid-{name}",
        "rv": 10,
        "phase": "Running",
        "ready": True,
        "ip": "10.0.0.5",
        "node": "node-1",
        "created": 1_700_000_000,
        "containers": [{"name": "notebook", "ready": True, "state": "running", "restarts": 0}],
        "labels": {"component": "singleuser-server", "hub.jupyter.org/username": user},
        "annotations": {"hub.jupyter.org/username": user, "hub.jupyter.org/servername": server},
    }
    record.update(extra)
    return record  # type: ignore[return-value]


@pytest.fixture
def seeded(redis_server: RedisServer) -> Iterator[syncredis.Redis]:
    if redis_server.process is None:
        redis_server.start()
    client = syncredis.Redis.from_url(redis_server.url)
    client.flushall()
    now_s, micros = client.time()
    health = CacheHealth(
        schema=1,
        leader="cacher-0",
        epoch=7,
        synced=True,
        heartbeat_ms=now_s * 1000 + micros // 1000,
        lag_ms=3,
        pods_rv="120",
    )
    client.hset(KEYS.health, mapping=health.to_redis())
    for record in (_record("alice"), _record("bob", "gpu", phase="Pending", ready=False)):
        client.hset(KEYS.pods, f"jhub/{record['name']}", contract.encode_pod_record(record))
    event: contract.EventRecord = {
        "uid": "e1",
        "rv": 11,
        "pod_uid": "uid-jupyter-alice",
        "type": "Normal",
        "reason": "Started",
        "message": "Started container notebook",
        "last": "2026-11-23T10:00:00Z",
        "count": 1,
    }
    stale: contract.EventRecord = {**event, "uid": "e0", "pod_uid": "old-pod", "message": "old pod"}
    client.rpush(
        KEYS.events("jhub/jupyter-alice"),
        contract.encode_event_record(stale),
        contract.encode_event_record(event),
    )
    client.xadd(KEYS.feed, {"kind": "pod", "key": "jhub/jupyter-alice", "rv": "10", "epoch": "7"})
    yield client
    client.close()


def _run(capsys: pytest.CaptureFixture[str], url: str, *argv: str) -> tuple[int, str, str]:
    code = main(["--redis-url", url, *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_status_reports_leader_epoch_and_freshness(seeded, redis_server, capsys) -> None:
    code, out, _ = _run(capsys, redis_server.url, "status", "--json")
    status = json.loads(out)
    assert code == 0
    assert status["leader"] == "cacher-0" and status["epoch"] == 7
    assert status["freshness"] == "fresh" and status["records"] == 2 and status["lag_ms"] == 3


def test_status_fails_when_the_heartbeat_is_old(seeded, redis_server, capsys) -> None:
    seeded.hset(KEYS.health, "heartbeat_ms", "1000")
    code, out, _ = _run(capsys, redis_server.url, "status")
    assert code == EXIT_UNTRUSTED
    assert "stale" in out and "last cacher heartbeat was" in out


def test_health_written_on_another_primary_is_a_failover_for_every_command(
    seeded, redis_server, capsys
) -> None:
    # this node's own replid is not the one the cache was written on: a promoted replica
    seeded.hset(KEYS.health, mapping={"primary_replid": "0" * 40, "primary_addr": "10.0.0.9:6379"})
    code, out, _ = _run(capsys, redis_server.url, "status")
    assert code == EXIT_UNTRUSTED
    assert "failed over" in out
    code, _, err = _run(capsys, redis_server.url, "servers")
    assert code == EXIT_UNTRUSTED and "CACHE FAILED-OVER" in err
    code, out, _ = _run(capsys, redis_server.url, "doctor")
    assert code != 0 and "not the primary the cache was written on" in out
    # written on this very node: trusted
    replid = seeded.info("replication")["master_replid"]
    seeded.hset(KEYS.health, "primary_replid", replid)
    code, _, _ = _run(capsys, redis_server.url, "servers")
    assert code == 0


def test_servers_lists_and_filters_by_user(seeded, redis_server, capsys) -> None:
    code, out, _ = _run(capsys, redis_server.url, "servers")
    assert code == 0
    assert "alice" in out and "bob" in out and "gpu" in out
    code, out, _ = _run(capsys, redis_server.url, "servers", "--user", "bob", "--json")
    rows = json.loads(out)
    assert [(r["user"], r["server"], r["phase"], r["ready"]) for r in rows] == [
        ("bob", "gpu", "Pending", False)
    ]


def test_servers_skips_and_reports_malformed_records(seeded, redis_server, capsys) -> None:
    seeded.hset(KEYS.pods, "jhub/broken", b"{not json")
    code, out, err = _run(capsys, redis_server.url, "servers")
    assert code == 1
    assert "alice" in out and "jhub/broken" in err


def test_events_show_only_the_current_pods_events(seeded, redis_server, capsys) -> None:
    code, out, _ = _run(capsys, redis_server.url, "events", "alice")
    assert code == 0
    assert out.strip() == "2026-11-23T10:00:00Z [Normal] Started: Started container notebook"


def test_events_of_an_unknown_user_fail_with_a_hint(seeded, redis_server, capsys) -> None:
    code, _, err = _run(capsys, redis_server.url, "events", "carol")
    assert code == 1
    assert "kubecache servers --user carol" in err


def test_events_follow_prints_new_events_until_the_pod_is_gone(
    seeded, redis_server, capsys
) -> None:
    follower_done = threading.Event()
    result: dict[str, int] = {}

    def follow() -> None:
        result["code"] = main(["--redis-url", redis_server.url, "events", "alice", "-f"])
        follower_done.set()

    thread = threading.Thread(target=follow)
    thread.start()
    # The follower reads the log first; wait until it blocks on the feed (a client in XREAD).
    for _ in range(500):
        if any(c.get("cmd") == "xread" for c in seeded.client_list()):
            break
        threading.Event().wait(0.01)
    new: contract.EventRecord = {
        "uid": "e2",
        "rv": 12,
        "pod_uid": "uid-jupyter-alice",
        "type": "Warning",
        "reason": "Unhealthy",
        "message": "Readiness probe failed",
        "count": 2,
        "last": "2026-11-23T10:01:00Z",
    }
    seeded.rpush(KEYS.events("jhub/jupyter-alice"), contract.encode_event_record(new))
    seeded.xadd(KEYS.feed, {"kind": "event", "key": "jhub/jupyter-alice", "rv": "12", "epoch": "7"})
    seeded.xadd(KEYS.feed, {"kind": "gone", "key": "jhub/jupyter-alice", "rv": "13", "epoch": "7"})
    assert follower_done.wait(10), "events -f did not end when the pod was gone"
    thread.join()
    out, err = capsys.readouterr()
    assert result["code"] == 0
    assert "Readiness probe failed (x2)" in out and "is gone" in err


def test_doctor_passes_on_a_fresh_cache(seeded, redis_server, capsys) -> None:
    code, out, _ = _run(capsys, redis_server.url, "doctor", "--json")
    assert code == 0
    assert all(check["ok"] for check in json.loads(out))


def test_doctor_names_the_prefix_it_found_when_ours_is_missing(
    seeded, redis_server, capsys
) -> None:
    code, out, _ = _run(capsys, redis_server.url, "--key-prefix", "other:v1:", "doctor")
    assert code == 1
    assert "kubecache:v1:" in out and "--key-prefix" in out


def test_doctor_reports_acl_denials_with_the_grant_to_make(seeded, redis_server, capsys) -> None:
    seeded.acl_setuser(
        "reader", enabled=True, passwords=["+pw"], keys=["kubecache:v1:health"], commands=["+@all"]
    )
    try:
        url = redis_server.url.replace("redis://", "redis://reader:pw@")
        code, out, _ = _run(capsys, url, "doctor")
    finally:
        seeded.acl_deluser("reader")
    assert code == 1
    assert "FAIL  credentials and ACL" in out and "ACL SETUSER" in out


def test_doctor_says_what_to_check_when_redis_is_unreachable(capsys) -> None:
    code, out, _ = _run(capsys, "redis://127.0.0.1:1/0", "doctor")
    assert code == 1
    assert "FAIL  redis reachable" in out and "--redis-url" in out


def test_a_bad_prefix_is_a_usage_error(capsys) -> None:
    code, _, err = _run(capsys, "redis://127.0.0.1:1/0", "--key-prefix", "nocolon", "status")
    assert code == 2 and "must end with ':'" in err


@pytest.mark.parametrize("command", [["servers"], ["--json", "servers"], ["status"]])
def test_a_reader_that_stops_reading_is_not_reported_as_a_redis_error(
    seeded, redis_server, command: list[str]
) -> None:
    """``kubecache servers | head -1``: the closed pipe ends the command quietly."""
    process = subprocess.Popen(
        [sys.executable, "-m", "kubecache.cli", "--redis-url", redis_server.url, *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert process.stdout is not None
    process.stdout.close()  # before the command has written anything: its writes fail
    _, stderr = process.communicate(timeout=60)
    assert stderr.decode() == ""
    assert process.returncode == EXIT_FAILED
