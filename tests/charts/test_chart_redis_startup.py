"""The in-chart Redis start-up, run against a real redis-server.

The StatefulSet's shell command writes the password into a config include and
starts redis-server with the chart's redis.conf. Here it runs as rendered, with
only its fixed paths moved into a temporary directory and the listener moved
to loopback.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_sync
import redis.asyncio as aioredis

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


@pytest.fixture
def chart_redis(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes], list[str]]]:
    port = free_port()
    rendered = render({"redis": {"port": port, "auth": {"existingSecret": "pw"}}})
    config = rendered.one("ConfigMap", "-redis-config")["data"]["redis.conf"]
    (container,) = rendered.one("StatefulSet")["spec"]["template"]["spec"]["containers"]
    assert container["command"][:2] == ["sh", "-c"]
    script = container["command"][2]

    etc, run, data = tmp_path / "etc", tmp_path / "run", tmp_path / "data"
    for directory in (etc, run, data):
        directory.mkdir()
    config = config.replace("/run/redis", str(run)).replace("dir /data", f"dir {data}")
    config = config.replace("bind * -::*", "bind 127.0.0.1")
    (etc / "redis.conf").write_text(config)
    script = script.replace("/run/redis", str(run)).replace("/etc/redis", str(etc))
    script = script.replace("exec redis-server", f"exec {shutil.which('redis-server')}")

    probe = container["readinessProbe"]["exec"]["command"]
    process = subprocess.Popen(
        ["sh", "-c", script],
        env={"REDIS_PASSWORD": AWKWARD_PASSWORD, "PATH": "/usr/bin:/bin", "HOME": "/nonexistent"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield port, process, probe
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_redis_starts_with_the_charts_config_and_requires_the_exact_password(
    chart_redis: tuple[int, subprocess.Popen[bytes], list[str]],
) -> None:
    port, process, _ = chart_redis
    client = aioredis.Redis(host="127.0.0.1", port=port, password=AWKWARD_PASSWORD)

    async def answers() -> bool:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        try:
            return bool(await client.ping())
        except redis_sync.ConnectionError:
            return False

    try:
        await wait_for(answers, timeout=10, message="the chart's redis-server to answer PING")
        assert await client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        assert await client.config_get("save") == {"save": ""}
        assert await client.config_get("appendonly") == {"appendonly": "no"}
        anonymous = aioredis.Redis(host="127.0.0.1", port=port)
        with pytest.raises(redis_sync.AuthenticationError):
            await anonymous.ping()
        await anonymous.aclose()
    finally:
        await client.aclose()


async def test_the_readiness_probe_passes_only_with_the_password(
    chart_redis: tuple[int, subprocess.Popen[bytes], list[str]],
) -> None:
    port, process, probe = chart_redis
    if shutil.which("redis-cli") is None:
        pytest.skip("redis-cli is not installed (it comes with redis-server)")

    def probe_exit(env: dict[str, str]) -> int:
        # The probe runs inside the container, where the port is the chart's.
        return subprocess.run(probe, env={"PATH": "/usr/bin:/bin", **env}, check=False).returncode

    client = aioredis.Redis(host="127.0.0.1", port=port, password=AWKWARD_PASSWORD)

    async def up() -> bool:
        assert process.poll() is None
        try:
            return bool(await client.ping())
        except redis_sync.ConnectionError:
            return False

    try:
        await wait_for(up, timeout=10, message="the chart's redis-server to answer PING")
    finally:
        await client.aclose()
    assert probe_exit({"REDISCLI_AUTH": AWKWARD_PASSWORD}) == 0
    assert probe_exit({}) != 0
    assert probe_exit({"REDISCLI_AUTH": "wrong"}) != 0
