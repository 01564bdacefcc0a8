"""A cacher configured for tests: short lease, fast heartbeat, health on a free port;
and one running as a task of the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

from kubecache.cacher.app import Cacher
from kubecache.cacher.settings import Settings
from kubecache.redis_connection import RedisSettings


def cacher_settings(kubesim: Any, redis_url: str, **overrides: Any) -> Settings:
    """Settings for a cacher of ``kubesim`` writing to ``redis_url``; ``overrides`` win."""
    settings = Settings(
        kubeconfig=str(kubesim.kubeconfig_path),
        redis=RedisSettings(url=redis_url, client_name="kubecache-cacher-test"),
        lease_namespace="default",
        lease_duration=2.0,
        renew_deadline=1.5,
        retry_period=0.2,
        identity="cacher-a",
        health_host="127.0.0.1",
        health_port=0,
        watch_timeout=30.0,
        stall_timeout=2.0,
        request_timeout=5.0,
        heartbeat_interval=0.2,
    )
    return dataclasses.replace(settings, **overrides)


@contextlib.asynccontextmanager
async def running_cacher(settings: Settings, **kwargs: Any) -> AsyncIterator[Cacher]:
    """A cacher running as a task (tests, benchmarks); stopped gracefully on exit."""
    cacher = Cacher(settings, **kwargs)
    task = asyncio.create_task(cacher.run())
    try:
        yield cacher
    finally:
        cacher.stop()
        await asyncio.wait([task])
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
