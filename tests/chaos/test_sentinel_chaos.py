"""Chaos under Redis Sentinel: failovers during steady state and spawns lose nothing.

The second chaos scenario (the run is scenario.py, the cluster cluster.py):
a Sentinel deployment on loopback (a primary, a replica, three sentinels;
quorum 2, down-after 1 s: tests/support/sentinel.py), two cachers and the
hub's KubeCacheSpawners all connected through ``redis+sentinel://``, kubesim
with its fake kubelet. Steady servers run throughout while churning users
start and stop theirs; meanwhile: ``SENTINEL FAILOVER`` (a planned switch:
the old primary stays up and takes writes for some seconds before Sentinel
turns it into a replica), kill -9 of the leader cacher, kill -9 of the Redis
primary (restarted empty as a replica before the next fault), the primary
frozen (SIGSTOP) for 5 s, so Sentinel promotes the replica while the cachers'
connections hang on the old one, which takes writes again once thawed until
Sentinel demotes it, and a failover back. ``poll()`` of every server
Running in the API is sampled every 0.3 s throughout.

Asserted as in test_chaos.py (scenario.assert_safe): no false "stopped", no
failed start of a Ready pod, no unhandled exception, every failover
converged (the records on the node the sentinels name primary equal the
API, a pod changed after the switch included) within 30 s, nothing missing
or stale at the end.

    python3 -m pytest -q -p no:cacheprovider tests/chaos/test_sentinel_chaos.py -s
"""

from __future__ import annotations

import json
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


async def _failover(cluster: ChaosCluster) -> tuple[str, Heal]:
    return await cluster.sentinel_failover(), None


async def _kill_primary(cluster: ChaosCluster) -> tuple[str, Heal]:
    return await cluster.kill_primary(), None


async def _freeze_primary(cluster: ChaosCluster) -> tuple[str, Heal]:
    what, primary = await cluster.freeze_primary()

    async def heal() -> None:
        cluster.thaw_node(primary)

    return what, heal


async def _replica_ready(cluster: ChaosCluster) -> None:
    await cluster.ensure_replica()


FAULTS: list[Fault] = [
    Fault(_failover, prepare=_replica_ready),
    Fault(kill_leader),
    Fault(_kill_primary, prepare=_replica_ready),
    Fault(_freeze_primary, hold=5.0, prepare=_replica_ready),  # > down-after (1 s) + switch
    Fault(_failover, prepare=_replica_ready),
]


async def test_sentinel_failovers_never_stop_a_running_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", "")  # set to kubesim's by chaos_cluster; restored after
    log_dir = Path(LOG_DIR, "sentinel") if LOG_DIR else tmp_path
    async with chaos_cluster(log_dir, sentinel=True) as cluster:
        report = await run_scenario(cluster, FAULTS)
    print(json.dumps(report, indent=2))
    if REPORT:
        setup = (
            "A primary, a replica and three sentinels (quorum 2, down-after 1 s, "
            "tests/support/sentinel.py), reached through `redis+sentinel://` by two "
            "`python3 -m kubecache.cacher` replicas and the hub"
        )
        write_report(Path(REPORT), "sentinel", report_section("Redis Sentinel", setup, report))
    assert_safe(report)
