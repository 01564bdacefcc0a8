"""Redis settings: URL forms, credentials precedence, clear errors."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from kubecache.redis_connection import RedisConfigError, RedisSettings, connect, redacted


def test_password_files_win_over_the_url(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("from-file\n")
    settings = RedisSettings(url="redis://u:inline@h:6379/0", password_file=str(secret))
    assert settings.credentials() == ("u", "from-file")


def test_passwords_never_reach_logs() -> None:
    assert redacted("redis://u:s3cret@h:6379/0") == "redis://u:***@h:6379/0"
    assert "s3cret" not in repr(RedisSettings(password="s3cret"))


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        (RedisSettings(url="http://h"), "scheme"),
        (RedisSettings(url="redis+sentinel:///svc"), "Sentinel URL"),
        (RedisSettings(url="redis+sentinel://h:x/svc"), "Sentinel address"),
        (RedisSettings(password_file="/nonexistent/pw"), "password_file"),
        (RedisSettings(socket_timeout=0), "timeouts"),
    ],
)
def test_unworkable_settings_fail_before_connecting(settings: RedisSettings, problem: str) -> None:
    with pytest.raises(RedisConfigError, match=problem):
        settings.validate()


async def test_connects_with_credentials_from_a_file(redis_server, tmp_path: Path) -> None:
    client = connect(RedisSettings(url=redis_server.url))
    assert await client.ping()
    await client.aclose()


def test_sentinel_urls_build_a_master_client() -> None:
    client = connect(RedisSettings(url="redis+sentinel://s1:26379,s2:26380/mymaster/2"))
    assert client.connection_pool.service_name == "mymaster"  # type: ignore[attr-defined]


async def _cancel_mid(call: Callable[[], Awaitable[object]], *, rounds: int) -> tuple[int, int]:
    """Cancel ``call()`` after 0-7 loop iterations, ``rounds`` times each: (how many
    returned their reply although cancelled, how many raised CancelledError)."""
    lost = raised = 0
    for _ in range(rounds):
        for iterations in range(8):
            command = asyncio.create_task(call())
            for _ in range(iterations):
                await asyncio.sleep(0)
            if command.done():
                continue
            command.cancel()
            try:
                await command
            except asyncio.CancelledError:
                raised += 1
            else:
                lost += 1
    return lost, raised


async def _cancel_mid_lrange(client: aioredis.Redis) -> tuple[int, int]:
    await client.delete("list")
    await client.rpush("list", *[b"x" * 50] * 20)
    return await _cancel_mid(lambda: client.lrange("list", 0, -1), rounds=25)


async def test_a_cancelled_command_raises_cancelled_error_even_when_its_reply_came(
    redis_server,
) -> None:
    client = connect(RedisSettings(url=redis_server.url))
    try:
        lost, raised = await _cancel_mid_lrange(client)
    finally:
        await client.aclose()
    assert (lost, raised > 0) == (0, True)


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="asyncio.wait_for keeps cancellations")
async def test_control_redis_pys_own_client_loses_some_of_those_cancellations(
    redis_server,
) -> None:
    # the race the test above relies on happens here: redis-py's send under wait_for
    client = aioredis.Redis.from_url(redis_server.url, socket_timeout=5)
    try:
        lost, _ = await _cancel_mid_lrange(client)
    finally:
        await client.aclose()
    assert lost > 0


async def test_a_pipeline_cancelled_mid_execute_raises_cancelled_error(redis_server) -> None:
    client = connect(RedisSettings(url=redis_server.url))

    async def piped() -> list[object]:
        async with client.pipeline(transaction=False) as pipe:
            pipe.set("a", "1").get("a")
            return await pipe.execute()

    try:
        lost, raised = await _cancel_mid(piped, rounds=25)
    finally:
        await client.aclose()
    assert (lost, raised > 0) == (0, True)


async def test_a_command_in_the_cleanup_of_a_cancelled_task_still_answers(redis_server) -> None:
    # a cancellation delivered before the command (the task cleans up after it) is not
    # raised again by the command
    client = connect(RedisSettings(url=redis_server.url))
    started = asyncio.Event()

    async def clean_up_when_cancelled() -> object:
        try:
            started.set()
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            return await client.set("cleaned", "1")
        return None

    task = asyncio.create_task(clean_up_when_cancelled())
    await started.wait()
    task.cancel()
    try:
        assert await task is True
        assert await client.get("cleaned") == b"1"
    finally:
        await client.aclose()


async def test_a_timeout_that_expires_during_a_command_is_a_timeout_error(redis_server) -> None:
    client = connect(RedisSettings(url=redis_server.url))
    await client.set("k", "v")
    outcomes: set[str] = set()
    try:
        for _ in range(200):
            try:
                async with asyncio.timeout(0):
                    await client.get("k")
                outcomes.add("answered")
            except TimeoutError:
                outcomes.add("timeout")
    finally:
        await client.aclose()
    assert outcomes == {"timeout"}
