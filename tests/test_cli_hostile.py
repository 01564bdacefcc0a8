"""The kubecache CLI treats Redis content as untrusted.

Hostile bytes are written the way an attacker with a Redis grant would: raw,
with the real ``redis-cli`` (arguments and stdin as bytes), into a real
redis-server, bypassing every encoder. Every output must keep control
characters inert, report each malformed record on its own line while still
showing the others, never print a traceback, and match full names exactly.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess

import pytest
import redis as syncredis

from kubecache import contract
from kubecache.cli import EXIT_FAILED, EXIT_UNTRUSTED
from kubecache.contract import MAX_META_VALUE, SERVERNAME_KEY, USERNAME_KEY
from tests.cacher.unit import pods
from tests.support.redis_server import RedisServer
from tests.test_cli import KEYS, _record, _run, seeded

__all__ = ["seeded"]  # the fixture, re-used from test_cli

#: What must never reach a terminal raw: ESC (CSI, OSC title), BEL, C1 CSI,
#: a right-to-left override, a line separator, DEL.
HOSTILE = "\x1b[2J\x1b]0;pwned\x07\x9b31m\u202eevil\u2028\x7f"
RAW_FORBIDDEN = ("\x1b", "\x07", "\x9b", "\u202e", "\u2028", "\x7f")

pytestmark = pytest.mark.skipif(shutil.which("redis-cli") is None, reason="needs redis-cli")


def redis_cli(server: RedisServer, *args: bytes | str, stdin: bytes | None = None) -> str:
    """Run the real redis-cli; with ``stdin`` its bytes are the last argument (-x)."""
    command: list[bytes | str] = ["redis-cli", "-h", server.host, "-p", str(server.port)]
    if stdin is not None:
        command.append("-x")
    result = subprocess.run(
        [*command, *args], input=stdin, capture_output=True, check=True, timeout=10
    )
    assert b"ERR" not in result.stdout, result.stdout
    return result.stdout.decode(errors="replace")


def _assert_inert(text: str) -> None:
    for char in RAW_FORBIDDEN:
        assert char not in text, f"{char!r} reached the terminal raw"
    assert "Traceback" not in text


def _hostile_event(pod_uid: str) -> bytes:
    return json.dumps(
        {
            "uid": "evil",
            "rv": 12,
            "pod_uid": pod_uid,
            "type": "Warning",
            "reason": "Bad" + HOSTILE,
            "message": "pulled" + HOSTILE,
            "last": "2026-11-23T10:01:00Z" + HOSTILE,
            "count": 1,
        }
    ).encode()


def test_event_reasons_and_messages_are_printed_escaped(seeded, redis_server, capsys) -> None:
    redis_cli(
        redis_server,
        "RPUSH",
        KEYS.events("jhub/jupyter-alice"),
        stdin=_hostile_event("uid-jupyter-alice"),
    )
    code, out, err = _run(capsys, redis_server.url, "events", "alice")
    assert code == 0
    _assert_inert(out + err)
    assert "Bad\\x1b[2J\\x1b]0;pwned\\x07\\x9b31m\\u202eevil\\u2028\\x7f" in out
    code, out, err = _run(capsys, redis_server.url, "events", "alice", "--json")
    _assert_inert(out + err)
    entries = [json.loads(line) for line in out.splitlines()]
    assert entries[-1]["message"] == "pulled" + HOSTILE  # the data survives, escaped as JSON


def test_names_labels_keys_and_health_are_printed_escaped(seeded, redis_server, capsys) -> None:
    record = _record("mallory" + HOSTILE, "srv" + HOSTILE)
    record["labels"]["component"] = HOSTILE
    record["node"] = "node" + HOSTILE
    field = f"jhub/{record['name']}"
    redis_cli(redis_server, "HSET", KEYS.pods, field, stdin=contract.encode_pod_record(record))
    redis_cli(redis_server, "HSET", KEYS.health, "leader", stdin=f"cacher{HOSTILE}".encode())
    redis_cli(redis_server, "HSET", KEYS.health, "pods_watch", stdin=f"ok{HOSTILE}".encode())
    for argv in (("servers",), ("servers", "--json"), ("status",), ("status", "--json")):
        code, out, err = _run(capsys, redis_server.url, *argv)
        _assert_inert(out + err)
    assert "mallory\\x1b[2J" in _run(capsys, redis_server.url, "servers")[1]
    code, out, err = _run(capsys, redis_server.url, "servers", "--user", "mallory" + HOSTILE)
    assert code == 0 and "srv\\x1b" in out
    _assert_inert(out + err)
    code, out, err = _run(capsys, redis_server.url, "doctor")
    _assert_inert(out + err)
    assert "cacher\\x1b" in out


MALFORMED: dict[str, bytes] = {
    "annotations-as-list": b'{"uid":"u1","rv":5,"phase":"Running","ready":true,'
    b'"annotations":["hub.jupyter.org/username","x"]}',
    "container-without-state": b'{"uid":"u2","rv":5,"phase":"Running","ready":true,'
    b'"containers":[{"name":"notebook","ready":true}]}',
    "container-unknown-state": b'{"uid":"u3","rv":5,"phase":"Running","ready":true,'
    b'"containers":[{"name":"notebook","ready":true,"state":"\\u001b[31mhacked"}]}',
    "label-not-a-string": b'{"uid":"u4","rv":5,"phase":"Running","ready":true,'
    b'"labels":{"hub.jupyter.org/username":["alice"]}}',
    "rv-as-string": b'{"uid":"u5","rv":"5","phase":"Running","ready":true}',
    "created-as-string": b'{"uid":"u6","rv":5,"phase":"Running","ready":true,"created":"x"}',
    "not-utf8": b'{"uid":"u7","rv":5,"phase":"Running\xff\xfe","ready":true}',
    "not-an-object": b"[1, 2, 3]",
    "not-json": b"\x1b]0;title\x07{",
}


def test_each_malformed_record_is_reported_on_its_own_line_and_the_rest_shown(
    seeded, redis_server, capsys
) -> None:
    for name, raw in MALFORMED.items():
        redis_cli(redis_server, "HSET", KEYS.pods, f"jhub/{name}", stdin=raw)
    redis_cli(redis_server, "HSET", KEYS.pods, b"jhub/field-\xff\x1b[2J", stdin=b"{}")
    code, out, err = _run(capsys, redis_server.url, "servers")
    assert code == EXIT_FAILED
    assert "alice" in out and "bob" in out
    _assert_inert(out + err)
    lines = err.splitlines()
    for name in MALFORMED:
        assert len([line for line in lines if f"jhub/{name}" in line]) == 1, name
    assert len([line for line in lines if "field-\\xff\\x1b[2J" in line]) == 1
    assert len(lines) == len(MALFORMED) + 1
    # The same damage does not stop `events` of a healthy user nor `status`.
    code, out, err = _run(capsys, redis_server.url, "events", "alice")
    assert code == 0 and "Started container notebook" in out
    _assert_inert(out + err)
    code, out, err = _run(capsys, redis_server.url, "servers", "--json")
    _assert_inert(out + err)
    assert {row["user"] for row in json.loads(out)} == {"alice", "bob"}
    assert all(json.loads(line)["level"] == "warning" for line in err.splitlines())


def test_malformed_events_are_skipped_one_line_each(seeded, redis_server, capsys) -> None:
    key = KEYS.events("jhub/jupyter-alice")
    redis_cli(redis_server, "RPUSH", key, stdin=b'{"uid":"e9","rv":"x"}')
    redis_cli(
        redis_server,
        "RPUSH",
        key,
        stdin=b'{"uid":"e8","rv":3,"pod_uid":"uid-jupyter-alice",'
        b'"type":"Normal","reason":"R","message":"m","count":1,"last":17}',
    )
    redis_cli(redis_server, "RPUSH", key, stdin=b"\xff\xfe")
    code, out, err = _run(capsys, redis_server.url, "events", "alice")
    assert code == 0 and "Started container notebook" in out
    lines = err.splitlines()
    assert len(lines) == 3 and all("skipping an event" in line for line in lines)
    _assert_inert(out + err)


@pytest.mark.parametrize(
    ("field", "value"),
    [("epoch", b"not-a-number"), ("heartbeat_ms", b"1e9"), ("leader", b"\xff\xfe\x1b[2J")],
)
def test_a_malformed_health_record_marks_the_cache_unknown_without_a_traceback(
    seeded, redis_server, capsys, field: str, value: bytes
) -> None:
    redis_cli(redis_server, "HSET", KEYS.health, field, stdin=value)
    code, out, err = _run(capsys, redis_server.url, "status")
    assert code == EXIT_UNTRUSTED
    assert "unreadable" in out
    _assert_inert(out + err)
    code, out, err = _run(capsys, redis_server.url, "servers")
    assert code == EXIT_UNTRUSTED
    assert "alice" in out and "CACHE UNKNOWN" in err and "unreadable" in err
    _assert_inert(out + err)
    code, out, err = _run(capsys, redis_server.url, "doctor")
    assert code == EXIT_FAILED
    _assert_inert(out + err)


def _long_name_pod(user: str, uid: str) -> bytes:
    """A pod as KubeSpawner makes it for ``user``, reduced by the cacher's own code."""
    raw = copy.deepcopy(pods.ready())
    raw["metadata"]["uid"] = uid
    raw["metadata"]["name"] = f"jupyter-{uid}"
    raw["metadata"]["annotations"][USERNAME_KEY] = user
    raw["metadata"]["annotations"][SERVERNAME_KEY] = ""
    return contract.encode_pod_record(contract.pod_record(raw))


def test_user_names_longer_than_a_record_keeps_are_matched_exactly(
    seeded, redis_server, capsys
) -> None:
    common = "u" * MAX_META_VALUE
    first, second = common + "-first", common + "-second"
    namespace = pods.ready()["metadata"]["namespace"]
    for user, uid in ((first, "long1"), (second, "long2")):
        redis_cli(
            redis_server,
            "HSET",
            KEYS.pods,
            f"{namespace}/jupyter-{uid}",
            stdin=_long_name_pod(user, uid),
        )
    for user, pod in ((first, "jupyter-long1"), (second, "jupyter-long2")):
        code, out, _ = _run(capsys, redis_server.url, "servers", "--user", user, "--json")
        assert code == 0
        assert [row["pod"] for row in json.loads(out)] == [pod]
    for near_miss in (common, common + "-third", first + "x"):
        code, out, err = _run(capsys, redis_server.url, "servers", "--user", near_miss, "--json")
        assert json.loads(out) == [] and "match" in err
    code, out, _ = _run(capsys, redis_server.url, "servers", "--user", second)
    assert "…" in out  # the table says the shown name is cut
    # A record written before digests existed (same bytes, minus cut_sha256)
    # still decodes; its cut name matches no longer name.
    old = json.loads(_long_name_pod(first, "long1"))
    del old["cut_sha256"]
    field = f"{namespace}/jupyter-long1"
    redis_cli(redis_server, "HSET", KEYS.pods, field, stdin=json.dumps(old).encode())
    code, out, _ = _run(capsys, redis_server.url, "servers", "--user", first, "--json")
    assert code == 0 and json.loads(out) == []
    code, out, _ = _run(capsys, redis_server.url, "servers", "--user", common, "--json")
    assert [row["pod"] for row in json.loads(out)] == ["jupyter-long1"]


def test_events_of_a_long_named_user_find_exactly_that_users_pod(
    seeded, redis_server, capsys
) -> None:
    common = "v" * (MAX_META_VALUE + 10)
    namespace = pods.ready()["metadata"]["namespace"]
    for user, uid in ((common + "a", "longa"), (common + "b", "longb")):
        redis_cli(
            redis_server,
            "HSET",
            KEYS.pods,
            f"{namespace}/jupyter-{uid}",
            stdin=_long_name_pod(user, uid),
        )
    event = json.loads(_hostile_event("longb"))
    event.update(reason="Pulled", message="for b", last="2026-11-23T10:01:00Z")
    client = syncredis.Redis.from_url(redis_server.url)
    client.rpush(KEYS.events(f"{namespace}/jupyter-longb"), json.dumps(event))
    client.close()
    code, out, _ = _run(capsys, redis_server.url, "events", common + "b")
    assert code == 0 and "for b" in out
    code, out, _ = _run(capsys, redis_server.url, "events", common + "a")
    assert code == 0 and "for b" not in out


def test_doctor_lists_foreign_prefixes_whatever_bytes_they_hold(redis_server, capsys) -> None:
    if redis_server.process is None:
        redis_server.start()
    client = syncredis.Redis.from_url(redis_server.url)
    client.flushall()
    client.hset(b"evil\xff\x1b[2J:health", "schema", "1")
    client.close()
    code, out, err = _run(capsys, redis_server.url, "doctor")
    assert code == EXIT_FAILED
    assert "evil\\xff\\x1b[2J:" in out
    _assert_inert(out + err)
