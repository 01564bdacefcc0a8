"""A cacher configured for tests: short lease, fast heartbeat, health on a free port."""

from __future__ import annotations

import dataclasses
from typing import Any

from cacher.settings import Settings
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
