"""Chaos: many users start and stop servers while the cache is attacked; nothing unsafe happens.

Real redis-server, two cachers (``python3 -m kubecache.cacher``, leader election),
kubesim with its fake kubelet, and KubeCacheSpawners of one hub: steady
servers that run throughout, and churning users that start, hold and stop
theirs. While that goes on, one fault after another: kill -9 and SIGSTOP of
the leader cacher, Redis restarted empty or frozen (SIGSTOP), FLUSHALL, stalled watches,
expired watches (410), 429/5xx bursts with latency, HDEL of records and DEL
of the pod hash, the leader cut off from Redis (connections reset, packets
dropped) while the standby reaches it, allkeys-lru eviction pressure, and a
second deployment on the same prefix. ``poll()`` of every server Running in the API is sampled
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

import asyncio
import json
import signal
from collections.abc import Awaitable, Callable
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


def _cut_leader(how: str) -> Callable[[ChaosCluster], Awaitable[tuple[str, Heal]]]:
    async def inject(cluster: ChaosCluster) -> tuple[str, Heal]:
        what, leader = await cluster.cut_leader_from_redis(how)
        gave_way = leader.log_count("giving up lease") if leader is not None else 0

        async def heal() -> None:
            if leader is not None:
                health = await cluster.health()
                new = health.leader if health is not None else "?"
                gave = leader.log_count("giving up lease") - gave_way
                cluster.notes.append(
                    f"{what}: the cut-off leader gave the Lease up {gave} time(s); "
                    f"{'the standby' if new != leader.identity else 'still the cut-off one'} "
                    "led at the end of the cut"
                )
            cluster.heal_links()

        return what, heal

    return inject


async def _eviction_pressure(cluster: ChaosCluster) -> tuple[str, Heal]:
    relists = _relists(cluster)
    before, pressure = await cluster.eviction_pressure()
    what = "allkeys-lru eviction pressure (maxmemory just above the data, junk written)"

    async def heal() -> None:
        evicted = await cluster.end_eviction_pressure(pressure, before)
        cluster.notes.append(
            f"{what}: {evicted} keys evicted, {_relists(cluster) - relists} take-overs "
            "(each a full relist) by the cachers"
        )

    return what, heal


def _relists(cluster: ChaosCluster) -> int:
    return sum(c.log_count("took the cache over with epoch") for c in cluster.cachers)


async def _two_deployments(cluster: ChaosCluster) -> tuple[str, Heal]:
    before = await cluster.health()
    epoch = before.epoch if before is not None else 0
    other = cluster.start_other_deployment()
    what = "a second deployment (another Lease and namespace) on the same prefix"

    async def heal() -> None:
        after = await cluster.health()
        refused = other.log_count("two kubecache deployments use key prefix")
        named = sum(
            c.log_count("two kubecache deployments use key prefix") for c in cluster.cachers
        )
        taken = other.log_count("took the cache over with epoch")
        await asyncio.to_thread(other.stop)  # a graceful stop needs kubesim: off the loop
        kept = after is not None and after.leader != other.identity
        own = "" if after is None or after.epoch == epoch else ", after a restart of its own"
        cluster.notes.append(
            f"{what}: {taken} take-overs by it, the cache kept by "
            f"{'the first deployment' if kept else 'the newcomer'}{own}; "
            f"the collision named {refused} times by the newcomer and {named} by the owner"
        )

    return what, heal


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
    Fault(_cut_leader("reset"), hold=6.0),  # longer than the write deadline (1.5 s)
    Fault(_cut_leader("drop"), hold=8.0),  # + the socket timeout of a hung write
    Fault(_eviction_pressure, hold=10.0),
    Fault(_two_deployments, hold=10.0),
]


async def test_chaos_never_stops_a_running_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", "")  # set to kubesim's by chaos_cluster; restored after
    async with chaos_cluster(Path(LOG_DIR, "redis") if LOG_DIR else tmp_path) as cluster:
        report = await run_scenario(cluster, FAULTS)
    print(json.dumps(report, indent=2))
    if REPORT:
        setup = "One real redis-server, two `python3 -m kubecache.cacher` replicas"
        write_report(Path(REPORT), "redis", report_section("One redis-server", setup, report))
    assert_safe(report)
