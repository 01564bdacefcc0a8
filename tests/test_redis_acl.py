"""The Redis ACL users of kubecache.acl against a real redis-server (issue 10, item 3).

Each party works with exactly its grants (Redis' ``ACL LOG`` stays empty through a whole
start/progress/poll/stop, every CLI command and hub-standby), and what it must not do is
refused: a hub cannot write, delete, script, flush, configure or read outside its prefix.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as syncredis
from redis.exceptions import NoPermissionError, ResponseError

from kubecache import acl
from kubecache.cli import main as cli_main
from kubecache.contract import Keys
from kubecache.hub_standby import LeaseTiming, RedisLease
from kubecache.redis_connection import RedisSettings, connect
from kubecache.spawner import KubeCacheSpawner
from kubecache.spawner.cache_client import CacheClient
from kubecache.spawner.kube_api import KubeApi
from tests.spawner.support import mock_hub, mock_user
from tests.support.cacher import cacher_settings, running_cacher
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_for, wait_until

KEYS = Keys()
PASSWORD = "s3cret-for-tests"
NAMESPACE = "jhub"
REFUSED = r"NOPERM|no permissions|can't access"
FAKE_HUB = str(Path(__file__).parent / "support" / "fake_hub.py")


def user_url(server: RedisServer, role: acl.Role) -> str:
    return f"redis://kubecache-{role}:{PASSWORD}@{server.host}:{server.port}/0"


@pytest.fixture(scope="module")
def acl_redis() -> Iterator[RedisServer]:
    """A redis-server with the three users; the default user stays for seeding and ACL LOG."""
    server = RedisServer()
    server.start()
    admin = syncredis.Redis.from_url(server.url)
    for role in acl.ROLES:
        grants = acl.rules(role)
        admin.execute_command(
            "ACL", "SETUSER", f"kubecache-{role}", "reset", "on", f">{PASSWORD}", *grants
        )
    admin.close()
    yield server
    server.close()


@pytest.fixture
def admin(acl_redis: RedisServer) -> Iterator[syncredis.Redis]:
    client = syncredis.Redis.from_url(acl_redis.url)
    client.flushall()
    client.execute_command("ACL", "LOG", "RESET")
    client.set("other-app:secret", "not yours")
    client.hset("other:v1:health", "leader", "x")
    yield client
    client.close()


def refused_commands(admin: syncredis.Redis) -> list[str]:
    """What Redis refused since the test began (``ACL LOG``), as 'user: command key'."""
    return [
        f"{entry['username']}: {entry['reason']} {entry['object']}" for entry in admin.acl_log()
    ]


# ------------------------------------------------------------------ what is refused

HUB_FORBIDDEN: list[tuple[str, ...]] = [
    ("SET", KEYS.health, "x"),
    ("HSET", KEYS.pods, "jhub/jupyter-alice", "{}"),
    ("HDEL", KEYS.pods, "jhub/jupyter-alice"),
    ("DEL", KEYS.pods),
    ("DEL", KEYS.health),
    ("UNLINK", KEYS.feed),
    ("EXPIRE", KEYS.pods, "1"),
    ("XADD", KEYS.feed, "*", "kind", "gone", "key", "jhub/jupyter-alice"),
    ("XTRIM", KEYS.feed, "MAXLEN", "0"),
    ("RPUSH", KEYS.events("jhub/jupyter-alice"), "x"),
    ("RENAME", KEYS.pods, KEYS.prefix + "hub-lease:jupyterhub"),
    ("EVAL", "return 1", "0"),
    ("EVALSHA", "0" * 40, "0"),
    ("FCALL", "f", "0"),
    ("FUNCTION", "FLUSH"),
    ("SCRIPT", "FLUSH"),
    ("FLUSHALL",),
    ("FLUSHDB",),
    ("CONFIG", "GET", "requirepass"),
    ("CONFIG", "SET", "save", ""),
    ("ACL", "LIST"),
    ("SHUTDOWN",),
    ("KEYS", "*"),
    ("SCAN", "0"),
    ("RANDOMKEY",),
    ("MONITOR",),
    ("CLIENT", "KILL", "TYPE", "normal"),
    ("SUBSCRIBE", "x"),
    ("GET", "other-app:secret"),
    ("HGETALL", "other:v1:health"),
    ("SET", KEYS.prefix + "hub-lease:other-shard", "me"),
    ("SET", KEYS.prefix + "hub-lease:jupyterhub-extra", "me"),
]


@pytest.mark.parametrize("command", HUB_FORBIDDEN, ids=lambda c: " ".join(c)[:40])
@pytest.mark.parametrize("role", ["hub", "cli"])
def test_readers_cannot_write_delete_script_flush_configure_or_leave_the_prefix(
    acl_redis: RedisServer, admin: syncredis.Redis, role: acl.Role, command: tuple[str, ...]
) -> None:
    client = syncredis.Redis.from_url(user_url(acl_redis, role))
    try:
        with pytest.raises((NoPermissionError, ResponseError), match=REFUSED):
            client.execute_command(*command)
    finally:
        client.close()
    assert admin.get("other-app:secret") == b"not yours"


@pytest.mark.parametrize(
    "command",
    [
        ("FLUSHALL",),
        ("FLUSHDB",),
        ("CONFIG", "GET", "requirepass"),
        ("ACL", "LIST"),
        ("KEYS", "*"),
        ("SCAN", "0"),
        ("FUNCTION", "FLUSH"),
        ("SHUTDOWN",),
        ("CLIENT", "LIST"),
        ("CLIENT", "KILL", "TYPE", "normal"),
        ("MONITOR",),
        ("MIGRATE", "127.0.0.1", "1", "", "0", "10", "KEYS", "kubecache:v1:health"),
        ("GET", "other-app:secret"),
        ("DEL", "other-app:secret"),
        ("EVAL", "return redis.call('GET', 'other-app:secret')", "0"),
    ],
    ids=lambda c: " ".join(c)[:40],
)
def test_the_cacher_stays_inside_its_prefix_and_off_the_server_admin(
    acl_redis: RedisServer, admin: syncredis.Redis, command: tuple[str, ...]
) -> None:
    client = syncredis.Redis.from_url(user_url(acl_redis, "cacher"))
    try:
        with pytest.raises((NoPermissionError, ResponseError), match=REFUSED):
            client.execute_command(*command)
    finally:
        client.close()
    assert admin.get("other-app:secret") == b"not yours"


# ------------------------------------------------------------------ what works


async def test_hub_standby_takes_renews_and_releases_its_lease_as_the_hub_user(
    acl_redis: RedisServer, admin: syncredis.Redis
) -> None:
    timing = LeaseTiming(duration=5.0, renew_deadline=3.0, retry_period=1.0)
    key = KEYS.hub_lease(acl.DEFAULT_LEASE_NAME)
    clients = [connect(RedisSettings(url=user_url(acl_redis, "hub"))) for _ in range(2)]
    try:
        first = RedisLease(clients[0], key, "a", timing)
        second = RedisLease(clients[1], key, "b", timing)
        assert await first.try_acquire()
        assert not await second.try_acquire()
        assert await first.renew()
        assert not await second.renew()
        await second.release()  # not the holder: nothing happens
        assert await second.holder() == "a"
        await first.release()
        assert admin.get(key) is None
        assert await second.try_acquire()
    finally:
        for client in clients:
            await client.aclose()
    assert refused_commands(admin) == []


def test_the_hub_standby_command_runs_the_hub_with_the_hub_user(
    acl_redis: RedisServer, admin: syncredis.Redis, tmp_path: Path
) -> None:
    marker = tmp_path / "hub-running"
    argv = ["--redis-url", user_url(acl_redis, "hub"), "hub-standby", "--identity", "hub-a"]
    timing = ["--lease-duration", "3", "--renew-deadline", "2", "--retry-period", "0.25"]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kubecache.cli",
            *argv,
            *timing,
            "--",
            sys.executable,
            FAKE_HUB,
            str(marker),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(marker.exists, timeout=15, message="the hub to start under the lease")
        key = KEYS.hub_lease(acl.DEFAULT_LEASE_NAME)
        ttl_before = admin.pttl(key)
        wait_until(lambda: admin.pttl(key) > ttl_before, timeout=10, message="a lease renewal")
        process.terminate()
        process.wait(15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert admin.get(KEYS.hub_lease(acl.DEFAULT_LEASE_NAME)) is None, "released on SIGTERM"
    assert refused_commands(admin) == []


@pytest.fixture
async def cluster_with_acl_users(
    kubesim: Any, acl_redis: RedisServer, admin: syncredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Any]:
    """kubesim, and a cacher writing as the cacher user until the cache is fresh."""
    monkeypatch.setenv("KUBECONFIG", str(kubesim.kubeconfig_path))
    if kubesim.store.get("namespaces", None, NAMESPACE) is None:
        kubesim.store.create("namespaces", None, {"metadata": {"name": NAMESPACE}})
    settings = cacher_settings(
        kubesim, user_url(acl_redis, "cacher"), identity="cacher-with-acl-user"
    )
    async with running_cacher(settings):
        await wait_for(
            lambda: asyncio.to_thread(lambda: admin.hget(KEYS.health, "synced") in (b"1", "1")),
            timeout=20,
            message="the cacher (as its ACL user) to sync",
        )
        yield kubesim
    await CacheClient.close_all()
    await KubeApi.close_all()


def run_cli(url: str, *argv: str) -> tuple[int, str]:
    result = subprocess.run(
        [sys.executable, "-m", "kubecache.cli", "--redis-url", url, *argv],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


async def test_start_progress_poll_stop_and_every_cli_command_work_with_exactly_these_grants(
    cluster_with_acl_users: Any, acl_redis: RedisServer, admin: syncredis.Redis
) -> None:
    spawner = KubeCacheSpawner(
        user=mock_user("alice"),
        hub=mock_hub(),
        redis_url=f"redis://{acl_redis.host}:{acl_redis.port}/0",
        redis_username="kubecache-hub",
        redis_password=PASSWORD,
        namespace=NAMESPACE,
        image="quay.io/jupyter/base-notebook:latest",
        start_timeout=20,
        cache_stale_after=2.0,
        storage_pvc_ensure=False,
    )
    spawner.api_token = "token-alice"
    start = spawner.start()
    events = [event async for event in spawner.progress()]
    await asyncio.wait_for(start, 30)
    assert events, "progress streamed from the cache"
    assert await spawner.poll() is None

    cli = user_url(acl_redis, "cli")
    for argv in (
        ("status",),
        ("servers",),
        ("servers", "--user", "alice", "--json"),
        ("events", "alice"),
        ("doctor",),
    ):
        code, output = await asyncio.to_thread(run_cli, cli, *argv)
        assert code == 0, (argv, output)
        if argv[0] == "servers":
            assert "alice" in output

    followed: dict[str, int] = {}

    def follow() -> None:
        followed["code"] = cli_main(["--redis-url", cli, "events", "alice", "--follow"])

    follower = threading.Thread(target=follow)
    follower.start()
    await wait_for(
        lambda: any(
            c.get("cmd") == "xread" and c.get("user") == "kubecache-cli"
            for c in admin.client_list()
        ),
        timeout=10,
        message="events --follow to block on the feed",
    )
    await spawner.stop()
    assert await spawner.poll() == 1
    await asyncio.to_thread(follower.join, 15)
    assert followed.get("code") == 0, "events --follow ended when the pod was gone"
    assert refused_commands(admin) == []

    # another deployment's prefix is out of reach: doctor says so instead of failing
    code, output = await asyncio.to_thread(run_cli, cli, "--key-prefix", "other:v1:", "doctor")
    assert code == 1
    assert "no permissions" in output and "Traceback" not in output
