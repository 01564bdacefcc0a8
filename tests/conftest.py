"""Fixtures shared by every test tier."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from kubesim.testing import kubesim  # noqa: F401  (the ``kubesim`` fixture)
from tests.support.redis_server import RedisServer

# every test bounded; a hang prints threads and pending tasks (tests/hang_watchdog.py)
pytest_plugins = ["tests.hang_watchdog"]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real redis-server for the session (tests flush it via ``redis``)."""
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of the test's own, for tests that stop or restart it."""
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    """A client of the session's redis-server, flushed before the test."""
    if redis_server.process is None or redis_server.process.poll() is not None:
        redis_server.start()
    client = aioredis.Redis.from_url(redis_server.url)
    await client.flushall()
    yield client
    await client.aclose()
