"""/healthz, /readyz and /metrics of the cacher."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from kubecache.cacher.health_server import HealthServer, Readiness
from kubecache.cacher.metrics import CacherMetrics


class Switch:
    def __init__(self) -> None:
        self.state = Readiness(False, "starting")

    def __call__(self) -> Readiness:
        return self.state


@pytest.fixture
async def server() -> AsyncIterator[tuple[HealthServer, Switch, str]]:
    switch = Switch()
    metrics = CacherMetrics()
    health = HealthServer(metrics=metrics, readiness=switch, host="127.0.0.1", port=0)
    await health.start()
    yield health, switch, f"http://127.0.0.1:{health.port}"
    await health.close()


async def test_readyz_says_why_it_is_not_ready_and_turns_ready(
    server: tuple[HealthServer, Switch, str],
) -> None:
    _, switch, url = server
    async with aiohttp.ClientSession() as session:
        async with session.get(url + "/readyz") as response:
            assert response.status == 503
            assert (await response.json())["reason"] == "starting"
        switch.state = Readiness(True, "leader, synced and writing", {"role": "leader"})
        async with session.get(url + "/readyz") as response:
            assert response.status == 200
            assert (await response.json())["role"] == "leader"


async def test_healthz_fails_when_the_loop_stopped_ticking(
    server: tuple[HealthServer, Switch, str],
) -> None:
    health, _, url = server
    async with aiohttp.ClientSession() as session:
        async with session.get(url + "/healthz") as response:
            assert response.status == 200
        assert health._ticker is not None
        health._ticker.cancel()  # the loop "stops ticking"
        health.last_tick -= 60
        async with session.get(url + "/healthz") as response:
            assert response.status == 503
            assert "stalled" in (await response.json())["reason"]


async def test_metrics_are_exposed_in_prometheus_format(
    server: tuple[HealthServer, Switch, str],
) -> None:
    health, _, url = server
    health.metrics.relists.labels("pods", "expired").inc()
    health.metrics.observe_lag("pods", 0.0, now=0.002)
    async with aiohttp.ClientSession() as session, session.get(url + "/metrics") as response:
        text = await response.text()
    assert 'kubecache_cacher_relists_total{reason="expired",resource="pods"} 1.0' in text
    assert "kubecache_cacher_event_lag_seconds_bucket" in text
    assert health.metrics.recent_lag_p99_ms() == 2


async def test_healthz_fails_when_the_liveness_check_says_the_process_is_wedged() -> None:
    alive = Switch()
    alive.state = Readiness(True, "alive")
    health = HealthServer(
        metrics=CacherMetrics(),
        readiness=Switch(),
        liveness=alive,
        host="127.0.0.1",
        port=0,
    )
    await health.start()
    url = f"http://127.0.0.1:{health.port}/healthz"
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(url) as response:
                assert response.status == 200  # not ready is not dead
            alive.state = Readiness(False, "leader holds the lease but no Redis write succeeded")
            async with session.get(url) as response:
                assert response.status == 503
                assert "no Redis write" in (await response.json())["reason"]
    finally:
        await health.close()
