"""A running cacher's /metrics: standard collectors, build info, timestamps, labels.

Scraped over HTTP from a real cacher against kubesim and redis-server, and
parsed with prometheus_client's own text parser; the shipped alert rules and
dashboard may only name metrics found here.
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families

from kubecache import __version__
from tests.cacher.integration.conftest import create_pods
from tests.charts.monitoring import (
    alert_expressions,
    dashboard_expressions,
    family_of,
    metric_names,
)
from tests.support.cacher import cacher_settings, running_cacher
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_for

pytest.importorskip("promql_parser", reason="pip install promql-parser (test extra)")

Samples = dict[str, list[tuple[dict[str, str], float]]]


async def scrape(port: int) -> tuple[set[str], Samples]:
    """Family names and samples (name -> [(labels, value)]) of the cacher's /metrics."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as response,
    ):
        assert response.status == 200
        text = await response.text()
    families: set[str] = set()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        families.add(family.name)
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return families, samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    for got, number in samples.get(name, []):
        if all(got.get(k) == v for k, v in labels.items()):
            return number
    return None


async def test_a_leader_exports_what_operators_alert_on(
    kubesim: Any, redis_server: RedisServer, redis: aioredis.Redis
) -> None:
    # ``redis`` flushes the session's Redis: records of an earlier test's kubesim (another
    # cluster history, higher resourceVersions) would survive the list and diverge
    create_pods(kubesim.store, ["metrics-a", "metrics-b"])
    started = time.time()
    async with running_cacher(cacher_settings(kubesim, redis_server.url)) as cacher:
        port: int = await wait_for(
            lambda: cacher.health is not None and cacher.health.port,
            timeout=10,
            message="the health server to listen",
        )

        async def timestamps_set() -> Samples | None:
            _, samples = await scrape(port)
            prefix = "kubecache_cacher_last_"
            wanted = (
                value(samples, prefix + "heartbeat_timestamp_seconds"),
                value(samples, prefix + "full_sync_timestamp_seconds", resource="pods"),
                value(samples, prefix + "event_timestamp_seconds", resource="pods"),
            )
            return samples if all(v and v >= started - 1 for v in wanted) else None

        # after the initial list (a pod created before it is listed, not watched)
        await wait_for(
            lambda: cacher.readiness().reason == "leader, synced and writing",
            timeout=20,
            message="the leader synced",
        )
        create_pods(kubesim.store, ["metrics-c"])  # a change the pods watch delivers
        samples = await wait_for(timestamps_set, timeout=20, message="timestamp gauges")
        families, samples = await scrape(port)

    for standard in (
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "python_info",
        "python_gc_collections_total",
    ):
        assert samples.get(standard), f"{standard} missing"
    assert value(samples, "kubecache_build_info", component="cacher", version=__version__) == 1
    assert value(samples, "kubecache_cacher_watch_up", resource="pods") == 1
    assert value(samples, "kubecache_cacher_leader") == 1
    # One vocabulary for the kind label across write counters and write latency.
    kinds = {
        labels["kind"]
        for name in ("kubecache_cacher_writes_total", "kubecache_cacher_write_seconds_count")
        for labels, _ in samples.get(name, [])
    }
    assert kinds and kinds <= {"pod", "gone", "event", "health"}, kinds
    assert {labels["kind"] for labels, _ in samples["kubecache_cacher_write_seconds_count"]} <= {
        labels["kind"] for labels, _ in samples["kubecache_cacher_writes_total"]
    } | {"gone"}

    named = {n for expr in alert_expressions().values() for n in metric_names(expr)}
    named |= {n for _, expr in dashboard_expressions() for n in metric_names(expr)}
    unknown = sorted(n for n in named if family_of(n, families) is None)
    assert not unknown, f"rules or dashboard name metrics the cacher does not export: {unknown}"
