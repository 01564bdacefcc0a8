"""The in-chart Redis start-up, run against a real redis-server.

The StatefulSet's shell command writes kubecache's three ACL users (password hashes from the
Secret, rules from the chart) into a config include and starts the server with the chart's
redis.conf. Here it runs as rendered, with only its fixed paths moved into a temporary
directory and the listener moved to loopback.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_sync
import redis.asyncio as aioredis

from kubecache.contract import Keys
from kubecache.redis_connection import RedisSettings, connect
from tests.charts.rendering import render
from tests.support.redis_server import free_port
from tests.support.waiting import wait_for

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None or shutil.which("sh") is None,
    reason="redis-server is not installed (scripts/install.sh installs it)",
)

# Quotes, backslashes, spaces and a dollar: everything a shell or redis.conf
# could mangle.
AWKWARD_PASSWORD = "pa ss\"wo\\rd$HOME'x"
PASSWORDS = {role: f"{role}-{AWKWARD_PASSWORD}" for role in ("cacher", "hub", "cli")}
KEYS = Keys()


@pytest.fixture
def chart_redis(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes], list[str]]]:
    port = free_port()
    rendered = render({"redis": {"port": port, "auth": {"existingSecret": "pw"}}})
    config = rendered.one("ConfigMap", "-redis-config")["data"]["redis.conf"]
    (container,) = rendered.one("StatefulSet")["spec"]["template"]["spec"]["containers"]
    assert container["command"][:2] == ["sh", "-c"]
    script = container["command"][2]
    secret_keys = {
        item["name"]: item["valueFrom"]["secretKeyRef"]["key"] for item in container["env"]
    }
    assert secret_keys == {
        "CACHER_PASSWORD": "cacher-password",
        "HUB_PASSWORD": "hub-password",
        "CLI_PASSWORD": "cli-password",
        "REDISCLI_AUTH": "cli-password",
    }

    etc, run, data = tmp_path / "etc", tmp_path / "run", tmp_path / "data"
    for directory in (etc, run, data):
        directory.mkdir()
    config = config.replace("/run/redis", str(run)).replace("dir /data", f"dir {data}")
    config = config.replace("bind * -::*", "bind 127.0.0.1")
    (etc / "redis.conf").write_text(config)
    script = script.replace("/run/redis", str(run)).replace("/etc/redis", str(etc))

    probe = container["readinessProbe"]["exec"]["command"]
    process = subprocess.Popen(
        ["sh", "-c", script],
        env={
            **{f"{role.upper()}_PASSWORD": password for role, password in PASSWORDS.items()},
            "PATH": "/usr/bin:/bin",
            "HOME": "/nonexistent",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield port, process, probe
    finally:
        process.terminate()
        process.wait(timeout=10)
    written = (run / "auth.conf").read_text()
    assert "user kubecache-hub reset on #" in written
    assert not any(password in written for password in PASSWORDS.values()), "hashes only"


def client(port: int, role: str | None, password: str | None = None) -> aioredis.Redis:
    username = f"kubecache-{role}" if role else None
    url = f"redis://127.0.0.1:{port}/0"
    return connect(
        RedisSettings(
            url=url,
            username=username,
            password=password if password is not None else PASSWORDS.get(role or ""),
        )
    )


async def wait_until_up(port: int, process: subprocess.Popen[bytes]) -> None:
    probe_client = client(port, "cli")

    async def answers() -> bool:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        try:
            return bool(await probe_client.ping())
        except redis_sync.ConnectionError:
            return False

    try:
        await wait_for(answers, timeout=10, message="the chart's redis-server to answer PING")
    finally:
        await probe_client.aclose()


async def test_redis_starts_with_the_charts_config_and_the_three_acl_users(
    chart_redis: tuple[int, subprocess.Popen[bytes], list[str]],
) -> None:
    port, process, _ = chart_redis
    await wait_until_up(port, process)
    cacher, hub = client(port, "cacher"), client(port, "hub")
    try:
        assert await cacher.hset(KEYS.health, "leader", "a") == 1
        assert await hub.hgetall(KEYS.health) == {b"leader": b"a"}
        with pytest.raises(redis_sync.exceptions.NoPermissionError):
            await hub.delete(KEYS.health)
        with pytest.raises(redis_sync.exceptions.NoPermissionError):
            await cacher.flushall()
        assert await hub.set(KEYS.hub_lease("jupyterhub"), "me", nx=True, px=5000)
        for role in ("cacher", "hub", "cli"):
            wrong = client(port, role, "wrong")
            with pytest.raises(redis_sync.AuthenticationError):
                await wrong.ping()
            await wrong.aclose()
        anonymous = client(port, None)
        with pytest.raises((redis_sync.AuthenticationError, redis_sync.ResponseError)):
            await anonymous.ping()
        await anonymous.aclose()
    finally:
        await cacher.aclose()
        await hub.aclose()


async def test_the_readiness_probe_passes_only_with_the_cli_users_password(
    chart_redis: tuple[int, subprocess.Popen[bytes], list[str]],
) -> None:
    port, process, probe = chart_redis
    if shutil.which("redis-cli") is None:
        pytest.skip("redis-cli is not installed (it comes with redis-server)")

    def probe_exit(env: dict[str, str]) -> int:
        # The probe runs inside the container, where the port is the chart's.
        return subprocess.run(probe, env={"PATH": "/usr/bin:/bin", **env}, check=False).returncode

    await wait_until_up(port, process)
    assert probe_exit({"REDISCLI_AUTH": PASSWORDS["cli"]}) == 0
    assert probe_exit({}) != 0
    assert probe_exit({"REDISCLI_AUTH": "wrong"}) != 0
