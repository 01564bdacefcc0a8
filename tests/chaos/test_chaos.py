"""Chaos: many users start and stop servers while the cache is attacked; nothing unsafe happens.

Real redis-server, two cachers (``python3 -m cacher``, leader election),
kubesim with its fake kubelet, and KubeCacheSpawners of one hub: steady
servers that run throughout, and churning users that start, hold and stop
theirs. While that goes on, one fault after another: kill -9 and SIGSTOP of
the leader cacher, Redis restarted empty or frozen (SIGSTOP), FLUSHALL, stalled watches,
expired watches (410), 429/5xx bursts with latency, HDEL of records and DEL
of the pod hash. ``poll()`` of every server Running in the API is sampled
every 0.3 s throughout (tests/support/safety.py).

Asserted: false "stopped" verdicts = 0, failed starts of pods that were Ready
in the API = 0, unhandled exceptions in the hub = 0. Reported (not asserted,
since the cacher heals some faults only with issue 9 item 2): time to
converge after each fault (Redis records equal to the API), records
missing or stale at the end, cacher tracebacks.

    python3 -m pytest -q -p no:cacheprovider tests/chaos -s          # ~2-3 min
    KUBECACHE_CHAOS_SECONDS=900 python3 -m pytest -q tests/chaos -s  # longer
    KUBECACHE_CHAOS_REPORT=docs/chaos.md ...                         # write the report
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from kubesim.testing import KubeSim, running_kubesim
from spawner import KubeCacheSpawner
from spawner.cache_client import CacheClient
from spawner.kube_api import KubeApi
from tests.cacher.integration.checker import Checker
from tests.chaos.cluster import CacherProcess, ChaosCluster
from tests.support.fleet import NAMESPACE, make_spawners
from tests.support.redis_server import RedisServer
from tests.support.safety import KubesimTruth, SafetySampler, running_pods
from tests.support.waiting import wait_for

#: Seconds of faults; the fault cycle (about 90 s) runs at least once.
DURATION = float(os.environ.get("KUBECACHE_CHAOS_SECONDS", "60"))
REPORT = os.environ.get("KUBECACHE_CHAOS_REPORT", "")
STEADY = int(os.environ.get("KUBECACHE_CHAOS_STEADY", "24"))
CHURNING = int(os.environ.get("KUBECACHE_CHAOS_CHURNING", "8"))
CONVERGE_WITHIN = 30.0
SAMPLE_EVERY = 0.3

pytestmark = pytest.mark.timeout(DURATION + 420)


@dataclass
class FaultResult:
    fault: str
    held_s: float
    converged_s: float | None  # from the injection on, the hold included
    left: list[str]


Heal = Callable[[], Awaitable[None]] | None


@dataclass
class Fault:
    """One injection: ``inject`` starts it, it is held ``hold`` seconds, ``heal`` ends it."""

    inject: Callable[[ChaosCluster], Awaitable[tuple[str, Heal]]]
    hold: float = 0.0


async def _kill_leader(cluster: ChaosCluster) -> tuple[str, Heal]:
    what = await cluster.kill_leader()

    async def heal() -> None:
        cluster.ensure_cachers_running()  # the replica is replaced, as a Deployment would

    return what, heal


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
    Fault(_kill_leader),
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


async def _run_fault(cluster: ChaosCluster, checker: Checker, fault: Fault) -> FaultResult:
    """Inject, change a pod while it is on, hold it, heal it; converged counts from injection."""
    began = time.monotonic()
    what, heal = await fault.inject(cluster)
    _touch_probe(cluster.sim)
    converged: float | None = None
    left: list[str] = []
    while time.monotonic() - began < fault.hold:  # converging while the fault is held?
        converged, left = await _converge(checker, fault.hold - (time.monotonic() - began))
        if converged is not None:
            converged = time.monotonic() - began
            break
    if fault.hold:
        # the fault lasts its full time (a duration of the scenario, not a synchronisation)
        await asyncio.sleep(max(0.0, fault.hold - (time.monotonic() - began)))
    if heal is not None:
        await heal()
    if converged is None:
        after, left = await _converge(checker, CONVERGE_WITHIN)
        converged = None if after is None else time.monotonic() - began
    return FaultResult(what, fault.hold, converged, left[:3])


async def _churn(sampler: SafetySampler, spawner: KubeCacheSpawner, stop: asyncio.Event) -> None:
    rng = random.Random(spawner.user.name)
    while not stop.is_set():
        await sampler.start(spawner)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(rng.uniform(0.5, 2.5)):
                await stop.wait()  # hold the server a while (or until the run ends)
        await sampler.stop(spawner)


async def _sample(
    sampler: SafetySampler, spawners: list[KubeCacheSpawner], stop: asyncio.Event
) -> None:
    while not stop.is_set():
        await sampler.sample_polls(spawners)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SAMPLE_EVERY):
                await stop.wait()


PROBE = "chaos-probe"


def _touch_probe(sim: KubeSim) -> None:
    """A change the cache must reflect: convergence includes it (a takeover, a resync)."""
    stamp = str(time.monotonic())

    def touch(pod: dict[str, Any]) -> None:
        pod["metadata"].setdefault("annotations", {})["hub.jupyter.org/chaos-probe"] = stamp

    sim.store.mutate("pods", NAMESPACE, PROBE, touch)


def _create_probe(sim: KubeSim) -> None:
    sim.store.create(
        "pods",
        NAMESPACE,
        {
            "metadata": {"name": PROBE, "labels": {"component": "singleuser-server"}},
            "spec": {"containers": [{"name": "notebook", "image": "probe"}]},
        },
    )


async def _converge(checker: Checker, within: float) -> tuple[float | None, list[str]]:
    began = time.monotonic()
    left: list[str] = []
    while time.monotonic() - began < within:
        try:
            left = await checker.differences()
        except Exception as e:  # Redis restarting: not converged yet
            left = [f"cannot read Redis: {e}"]
        if not left:
            return time.monotonic() - began, []
        await asyncio.sleep(0.2)  # re-check pacing, bounded by ``within``
    return None, left


@contextlib.asynccontextmanager
async def chaos_cluster(tmp_path: Path) -> AsyncIterator[ChaosCluster]:
    async with running_kubesim(kubelet="fake", fake_step_delay=0.02) as sim:
        os.environ["KUBECONFIG"] = str(sim.kubeconfig_path)
        sim.store.create("namespaces", None, {"metadata": {"name": NAMESPACE}})
        redis_server = RedisServer()
        redis_server.start()
        # bounded commands: the suite's own reads must not hang on a frozen redis-server
        redis = aioredis.Redis.from_url(redis_server.url, socket_timeout=2)
        cluster = ChaosCluster(sim, redis_server, redis)
        for identity in ("chaos-a", "chaos-b"):
            cluster.cachers.append(
                CacherProcess(identity, sim.kubeconfig_path, redis_server.url, tmp_path)
            )
        cluster.ensure_cachers_running()
        try:
            yield cluster
        finally:
            await CacheClient.close_all()
            await KubeApi.close_all()
            cluster.close()
            await redis.aclose()
            redis_server.close()


async def test_chaos_never_stops_a_running_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", "")  # set to kubesim's below; restored after
    async with chaos_cluster(tmp_path) as cluster:
        sim: KubeSim = cluster.sim
        redis_url = cluster.redis_server.url
        checker = Checker(cluster.redis, sim.store, namespaces=[NAMESPACE], check_events=False)
        _create_probe(sim)
        await wait_for(cluster.leader, timeout=30, message="a leader cacher")
        await _converge(checker, 30)
        options = {
            "cache_stale_after": 3.0,
            "start_timeout": 30,
            "delete_stopped_pods": True,
            "delete_grace_period": 1,
            "extra_annotations": {"kubesim.dev/ready-after": "0.3"},
        }
        steady = make_spawners(redis_url, STEADY, prefix="steady", **options)
        churning = make_spawners(redis_url, CHURNING, prefix="churn", **options)
        truth = KubesimTruth(sim.store)
        results: list[FaultResult] = []
        began = time.monotonic()
        with SafetySampler(truth) as sampler:
            await asyncio.gather(*(sampler.start(s) for s in steady))
            steady_running = running_pods(sim.store, steady)
            stop = asyncio.Event()
            workers = [asyncio.create_task(_churn(sampler, s, stop)) for s in churning]
            workers.append(asyncio.create_task(_sample(sampler, steady + churning, stop)))
            cycle = 0
            while cycle == 0 or time.monotonic() - began < DURATION:
                cycle += 1
                for fault in FAULTS:
                    result = await _run_fault(cluster, checker, fault)
                    results.append(result)
                    if result.converged_s is None:
                        # not healed by the cacher (yet): resync so later faults measure alone
                        await cluster.flushall()
                        await _converge(checker, CONVERGE_WITHIN)
                    cluster.ensure_cachers_running()
            stop.set()
            await asyncio.gather(*workers)
            await cluster.clear_api_faults()
            cluster.ensure_cachers_running()
            _, final_left = await _converge(checker, 60)
            polls_of_steady_at_end = await sampler.sample_polls(steady)
            await asyncio.gather(*(sampler.stop(s, now=True) for s in steady))
        truth.close()
        figures = sampler.figures
        report = {
            "command": "KUBECACHE_CHAOS_REPORT=docs/chaos.md python3 -m pytest -q "
            "-p no:cacheprovider tests/chaos -s",
            "seconds": round(time.monotonic() - began, 1),
            "steady_servers": STEADY,
            "steady_running_after_start": steady_running,
            "churning_users": CHURNING,
            **figures.summary(),
            "steady_polled_running_at_end": sum(1 for a in polls_of_steady_at_end if a is None),
            "records_missing_or_stale_at_end": len(final_left),
            "left_at_end": final_left[:5],
            "cacher_tracebacks": sum(c.tracebacks() for c in cluster.cachers),
            "other_tracebacks_in_process": sampler.tracebacks.others[:5],
            "cacher_starts": {c.identity: c.starts for c in cluster.cachers},
            "faults": [
                {
                    "fault": r.fault,
                    "held_s": r.held_s,
                    "converged_s": None if r.converged_s is None else round(r.converged_s, 1),
                    "left": r.left,
                }
                for r in results
            ],
            "details": figures.details[:20],
        }
        print(json.dumps(report, indent=2))
        if REPORT:
            write_report(Path(REPORT), report)
        assert figures.polls > 0 and figures.starts > STEADY
        assert steady_running == STEADY, "the steady servers did not all start"
        assert figures.false_stopped == 0, figures.details
        assert figures.failed_starts_of_ready_pods == 0, figures.details
        assert figures.unhandled_exceptions == 0, figures.details


def write_report(path: Path, report: dict[str, Any]) -> None:
    rows = "\n".join(
        f"| {f['fault']} | {f['held_s']:g} s | "
        + (f"{f['converged_s']} s" if f["converged_s"] is not None else
           f"not within {CONVERGE_WITHIN:g} s ({'; '.join(f['left'][:2])})")
        + " |"
        for f in report["faults"]
    )
    path.write_text(
        f"""# Chaos: the latest figures

Written by `tests/chaos/test_chaos.py` (see its docstring). Command:

```sh
{report['command']}
# longer: KUBECACHE_CHAOS_SECONDS=900 ...
```

{report['seconds']} s on a 2-core machine shared with other work; {report['steady_servers']}
steady servers and {report['churning_users']} users starting and stopping theirs through
one hub's KubeCacheSpawners; real redis-server, two `python3 -m cacher` replicas,
kubesim with its fake kubelet. `poll()` of every server Running in the API sampled
every {SAMPLE_EVERY} s throughout.

| figure | value | must be |
| --- | --- | --- |
| polls sampled | {report['polls']} | |
| false "stopped" verdicts | {report['false_stopped']} | 0 |
| starts / failed starts | {report['starts']} / {report['failed_starts']} | |
| failed starts of pods Ready in the API | {report['failed_starts_of_ready_pods']} | 0 |
| unhandled exceptions in the hub | {report['unhandled_exceptions']} | 0 |
| records missing or stale at the end | {report['records_missing_or_stale_at_end']} | 0 |
| cacher tracebacks | {report['cacher_tracebacks']} | |
| other tracebacks in the test process (kubesim) | {len(report['other_tracebacks_in_process'])} | |

A failed start, if any, is a deliberate error (a start the API could not serve), never
one of a pod that became Ready.

## Time to converge after each fault

From the injection until the pod records in Redis equal the API's, including a probe
pod changed right after the injection (checked every 0.2 s; during a held fault, and
at most {CONVERGE_WITHIN:g} s after its end: SIGCONT, watches unstalled, API errors
cleared). A converged time shorter than the hold means the cache caught up while the
fault was still on (the other cacher took over; the stalled watch was restarted). A
fault the cacher does not heal by itself is followed by a FLUSHALL so the next fault
is measured alone: HDEL and DEL of records are healed only once the cacher checks
its records against its own state (issue 9 item 2, another branch); the spawner
stays safe meanwhile (no false "stopped" above).

| fault | held | converged |
| --- | --- | --- |
{rows}
"""
    )
