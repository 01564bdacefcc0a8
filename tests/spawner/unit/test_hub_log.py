"""Recurring hub log lines are rate-limited, and shared objects log through the hub's logger."""

from __future__ import annotations

import logging

from kubecache.redis_connection import RedisSettings
from kubecache.spawner.cache_client import CacheClient
from kubecache.spawner.hub_log import EveryInterval, hub_logger
from kubecache.spawner.pod_reads import PodReads
from kubecache.spawner.replid_probe import ReplidProbe


def test_a_recurring_line_is_logged_first_then_once_per_interval_with_what_was_held_back() -> None:
    limit = EveryInterval(60.0)
    assert limit.due(now=0.0) == 0
    assert limit.due(now=10.0) is None
    assert limit.due(now=59.0) is None
    assert limit.due(now=61.0) == 2
    assert limit.count == 4


def test_shared_objects_take_the_hubs_logger_and_fall_back_to_their_modules() -> None:
    hub = logging.getLogger("JupyterHub")
    assert hub_logger(hub, "spawner.x") is hub
    assert hub_logger(None, "spawner.x").name == "spawner.x"
    assert ReplidProbe(log=hub).log is hub
    assert PodReads(object(), log=hub).log is hub  # type: ignore[arg-type]


async def test_the_cache_client_logs_through_the_logger_it_was_made_with() -> None:
    hub = logging.getLogger("JupyterHub")
    client = CacheClient(RedisSettings(url="redis://127.0.0.1:1/0"), prefix="p:", log=hub)
    try:
        assert client.log is hub
        assert client.feed.log is hub
        assert client.replid_probe.log is hub
    finally:
        await client.close()
