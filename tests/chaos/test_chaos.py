"""Chaos: many users start and stop servers while the cache is attacked; nothing unsafe happens.

Real redis-server, two cachers (``python3 -m cacher``, leader election),
kubesim with its fake kubelet, and KubeCacheSpawners of one hub: steady
servers that run throughout, and churning users that start, hold and stop
theirs. While that goes on, one fault after another: kill -9 and SIGSTOP of
the leader cacher, Redis restarted empty or frozen (SIGSTOP), FLUSHALL, stalled watches,
expired watches (410), 429/5xx bursts with latency, HDEL of records and DEL
of the pod hash. ``poll()`` of every server Running in the API is sampled
every 0.3 s throughout (tests/support/safety.py). The Sentinel failovers are
the second scenario, test_sentinel_chaos.py; the run itself is scenario.py.

Asserted (scenario.assert_safe): false "stopped" verdicts = 0, failed starts
of pods that were Ready in the API = 0, unhandled exceptions in the hub and
cacher tracebacks = 0, every fault converged (Redis records equal to the API,
a probe pod changed after the injection included) within 30 s of its end,
records missing or stale at the end = 0. Reported: the time to converge
after each fault.

    python3 -m pytest -q -p no:cacheprovider tests/chaos -s          # ~3 min, both scenarios
    KUBECACHE_CHAOS_SECONDS=900 python3 -m pytest -q tests/chaos -s  # longer
    KUBECACHE_CHAOS_REPORT=docs/chaos.md ...                         # write the report
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.chaos.cluster import ChaosCluster, chaos_cluster
from tests.chaos.scenario import (
    DURATION,
    LOG_DIR,
    REPORT,
    Fault,
    Heal,
    assert_safe,
    kill_leader,
    report_section,
    run_scenario,
    write_report,
)

pytestmark = pytest.mark.timeout(DURATION + 420)


async def _stop_leader(cluster: ChaosCluster) -> tuple[str, Heal]:
    what, stopped = await cluster.stop_leader()

    async def heal() -> None:
        if stopped is not None:
            stopped.signal(signal.SIGCONT)

    return what, heal


async def _redis_restart(cluster: ChaosCluster) -> tuple[str, Heal]:
    return cluster.restart_redis_empty(), None


async def _freeze_redis(cluster: ChaosCluster) -> tuple[str, Heal]:
    what = cluster.freeze_redis()

    async def heal() -> None:
        cluster.thaw_redis()

    return what, heal


async def _flushall(cluster: ChaosCluster) -> tuple[str, Heal]:
    return await cluster.flushall(), None


async def _stall(cluster: ChaosCluster) -> tuple[str, Heal]:
    return await cluster.stall_watches(), cluster.clear_api_faults


async def _expire(cluster: ChaosCluster) -> tuple[str, Heal]:
    return await cluster.expire_watches(), None


async def _api_errors(cluster: ChaosCluster) -> tuple[str, Heal]:
    return await cluster.api_errors(), cluster.clear_api_faults


async def _hdel(cluster: ChaosCluster) -> tuple[str, Heal]:
    return await cluster.delete_some_records(5), None


async def _del(cluster: ChaosCluster) -> tuple[str, Heal]:
    return await cluster.delete_pod_hash(), None


FAULTS: list[Fault] = [
    Fault(kill_leader),
    Fault(_stop_leader, hold=4.0),  # longer than the lease (2 s)
    Fault(_redis_restart),
    Fault(_freeze_redis, hold=4.0),
    Fault(_flushall),
    Fault(_stall, hold=5.0),  # longer than the cacher's stall timeout (3 s)
    Fault(_expire),
    Fault(_api_errors, hold=5.0),
    Fault(_hdel),
    Fault(_del),
]


async def test_chaos_never_stops_a_running_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", "")  # set to kubesim's by chaos_cluster; restored after
    async with chaos_cluster(Path(LOG_DIR, "redis") if LOG_DIR else tmp_path) as cluster:
        report = await run_scenario(cluster, FAULTS)
    print(json.dumps(report, indent=2))
    if REPORT:
        setup = "One real redis-server, two `python3 -m cacher` replicas"
        write_report(Path(REPORT), "redis", report_section("One redis-server", setup, report))
    assert_safe(report)
