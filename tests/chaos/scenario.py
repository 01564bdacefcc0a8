"""The chaos scenarios' shared run: users churn, polls are sampled, faults follow one another.

A scenario is a :class:`~tests.chaos.cluster.ChaosCluster` and a list of
:class:`Fault`. :func:`run_scenario` starts steady servers and churning users
through one hub's KubeCacheSpawners, samples ``poll()`` of every server
Running in the API (tests/support/safety.py), injects each fault in turn
(the whole list at least once, more cycles until ``KUBECACHE_CHAOS_SECONDS``),
measures the time until the Redis records equal the API after each, and
returns the report. :func:`assert_safe` is what every scenario asserts;
:func:`write_report` puts a scenario's figures into its section of
docs/chaos.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubecache.spawner import KubeCacheSpawner
from kubesim.testing import KubeSim
from tests.chaos.cluster import ChaosCluster
from tests.support.fleet import NAMESPACE, make_spawners
from tests.support.safety import KubesimTruth, SafetySampler, running_pods
from tests.support.waiting import wait_for

#: Seconds of faults per scenario; the fault list runs at least once (by default the
#: one-server list twice, the Sentinel list once: about 3 minutes in all).
DURATION = float(os.environ.get("KUBECACHE_CHAOS_SECONDS", "40"))
REPORT = os.environ.get("KUBECACHE_CHAOS_REPORT", "")
STEADY = int(os.environ.get("KUBECACHE_CHAOS_STEADY", "24"))
CHURNING = int(os.environ.get("KUBECACHE_CHAOS_CHURNING", "8"))
#: After a fault ends, the records must equal the API's within this (asserted).
CONVERGE_WITHIN = 30.0
SAMPLE_EVERY = 0.3
#: Where the cachers write their logs (default: the test's tmp_path), to keep them.
LOG_DIR = os.environ.get("KUBECACHE_CHAOS_LOG_DIR", "")
COMMAND = (
    "KUBECACHE_CHAOS_REPORT=docs/chaos.md python3 -m pytest -q -p no:cacheprovider tests/chaos -s"
)


@dataclass
class FaultResult:
    fault: str
    held_s: float
    converged_s: float | None  # from the injection on, the hold included
    left: list[str]
    at: str = ""  # wall-clock time of the injection (UTC), to find it in the cachers' logs


Heal = Callable[[], Awaitable[None]] | None


@dataclass
class Fault:
    """One injection: ``inject`` starts it, it is held ``hold`` seconds, ``heal`` ends it.

    ``prepare`` (not timed) first brings the cluster to where the fault can
    happen, e.g. a synced replica for Sentinel to fail over to.
    """

    inject: Callable[[ChaosCluster], Awaitable[tuple[str, Heal]]]
    hold: float = 0.0
    prepare: Callable[[ChaosCluster], Awaitable[None]] | None = None


async def kill_leader(cluster: ChaosCluster) -> tuple[str, Heal]:
    """kill -9 of the leader cacher; healed by starting it again, as a Deployment would."""
    what = await cluster.kill_leader()

    async def heal() -> None:
        cluster.ensure_cachers_running()

    return what, heal


PROBE = "chaos-probe"


def touch_probe(sim: KubeSim) -> None:
    """A change the cache must reflect: convergence includes it (a takeover, a resync)."""
    stamp = str(time.monotonic())

    def touch(pod: dict[str, Any]) -> None:
        pod["metadata"].setdefault("annotations", {})["hub.jupyter.org/chaos-probe"] = stamp

    sim.store.mutate("pods", NAMESPACE, PROBE, touch)


def create_probe(sim: KubeSim) -> None:
    sim.store.create(
        "pods",
        NAMESPACE,
        {
            "metadata": {"name": PROBE, "labels": {"component": "singleuser-server"}},
            "spec": {"containers": [{"name": "notebook", "image": "probe"}]},
        },
    )


async def converge(cluster: ChaosCluster, within: float) -> tuple[float | None, list[str]]:
    """Seconds until the records on the primary equal the API's, or None and what is left."""
    began = time.monotonic()
    left: list[str] = []
    while time.monotonic() - began < within:
        try:
            # a read hanging on a frozen node must not hold a fault longer than its time
            async with asyncio.timeout(max(0.2, within - (time.monotonic() - began))):
                left = await cluster.differences()
        except Exception as e:  # Redis restarting, failing over: not converged yet
            left = [f"cannot read Redis: {type(e).__name__}: {e}"]
        if not left:
            return time.monotonic() - began, []
        await asyncio.sleep(0.2)  # re-check pacing, bounded by ``within``
    return None, left


async def run_fault(cluster: ChaosCluster, fault: Fault) -> FaultResult:
    """Inject, change a pod while it is on, hold it, heal it; converged counts from injection."""
    if fault.prepare is not None:
        await fault.prepare(cluster)
    began = time.monotonic()
    at = datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]
    what, heal = await fault.inject(cluster)
    touch_probe(cluster.sim)
    converged: float | None = None
    left: list[str] = []
    while time.monotonic() - began < fault.hold:  # converging while the fault is held?
        converged, left = await converge(cluster, fault.hold - (time.monotonic() - began))
        if converged is not None:
            converged = time.monotonic() - began
            break
    if fault.hold:
        # the fault lasts its full time (a duration of the scenario, not a synchronisation)
        await asyncio.sleep(max(0.0, fault.hold - (time.monotonic() - began)))
    if heal is not None:
        await heal()
    if converged is None:
        after, left = await converge(cluster, CONVERGE_WITHIN)
        converged = None if after is None else time.monotonic() - began
    return FaultResult(what, fault.hold, converged, left[:3], at)


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


async def run_scenario(cluster: ChaosCluster, faults: list[Fault]) -> dict[str, Any]:
    """The whole scenario on a started cluster; returns the report (see :func:`assert_safe`)."""
    sim = cluster.sim
    create_probe(sim)

    async def has_leader() -> bool:
        return await cluster.leader() is not None

    await wait_for(has_leader, timeout=30, message="a leader cacher")
    await converge(cluster, 30)
    options = {
        "cache_stale_after": 3.0,
        "start_timeout": 30,
        "delete_stopped_pods": True,
        "delete_grace_period": 1,
        "extra_annotations": {"kubesim.dev/ready-after": "0.3"},
    }
    steady = make_spawners(cluster.redis_url, STEADY, prefix="steady", **options)
    churning = make_spawners(cluster.redis_url, CHURNING, prefix="churn", **options)
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
            for fault in faults:
                results.append(await run_fault(cluster, fault))
                cluster.ensure_cachers_running()
        stop.set()
        await asyncio.gather(*workers)
        await cluster.clear_api_faults()
        cluster.ensure_cachers_running()
        _, final_left = await converge(cluster, 60)
        polls_of_steady_at_end = await sampler.sample_polls(steady)
        await asyncio.gather(*(sampler.stop(s, now=True) for s in steady))
    truth.close()
    figures = sampler.figures
    return {
        "command": COMMAND,
        "seconds": round(time.monotonic() - began, 1),
        "steady_servers": STEADY,
        "steady_running_after_start": steady_running,
        "churning_users": CHURNING,
        **figures.summary(),
        "steady_polled_running_at_end": sum(1 for a in polls_of_steady_at_end if a is None),
        "records_missing_or_stale_at_end": len(final_left),
        "left_at_end": final_left[:5],
        "cacher_tracebacks": sum(c.tracebacks() for c in cluster.cachers),
        "cacher_traceback_excerpts": [t for c in cluster.cachers for t in c.traceback_excerpts()],
        "other_tracebacks_in_process": sampler.tracebacks.others[:5],
        "cacher_starts": {c.identity: c.starts for c in cluster.cachers},
        "faults": [
            {
                "fault": r.fault,
                "held_s": r.held_s,
                "converged_s": None if r.converged_s is None else round(r.converged_s, 1),
                "left": r.left,
                "at": r.at,
            }
            for r in results
        ],
        "details": figures.details[:20],
        "notes": cluster.notes,
    }


def assert_safe(report: dict[str, Any]) -> None:
    """What must hold after every scenario (the report is printed before, for the figures)."""
    assert report["polls"] > 0 and report["starts"] > report["steady_servers"]
    assert report["steady_running_after_start"] == report["steady_servers"], (
        "the steady servers did not all start"
    )
    assert report["false_stopped"] == 0, report["details"]
    assert report["failed_starts_of_ready_pods"] == 0, report["details"]
    assert report["unhandled_exceptions"] == 0, report["details"]
    not_converged = [f for f in report["faults"] if f["converged_s"] is None]
    assert not not_converged, f"faults not healed within {CONVERGE_WITHIN:g} s: {not_converged}"
    assert report["records_missing_or_stale_at_end"] == 0, report["left_at_end"]
    assert report["steady_polled_running_at_end"] == report["steady_servers"]
    assert report["cacher_tracebacks"] == 0, report["cacher_traceback_excerpts"]


def _seconds(value: float | None) -> str:
    return "not converged" if value is None else f"{value:g} s"


def report_section(title: str, setup: str, report: dict[str, Any]) -> str:
    """One scenario's figures as Markdown: the totals, then each fault's time to converge."""
    per_fault: dict[str, list[float | None]] = {}
    held: dict[str, float] = {}
    for f in report["faults"]:
        # one row per kind of fault: which cacher led, which port was primary aside
        name = re.sub(r"chaos-[ab]", "the leader cacher", f["fault"])
        name = re.sub(r" \([^)]*\d{4,}[^)]*\)", "", name)
        per_fault.setdefault(name, []).append(f["converged_s"])
        held[name] = f["held_s"]
    rows = "\n".join(
        f"| {name} | {held[name]:g} s | {len(times)} | "
        + ", ".join(_seconds(t) for t in times)
        + " |"
        for name, times in per_fault.items()
    )
    notes = "".join(f"\n- {note}" for note in report.get("notes", []))
    notes = f"\nMeasured during these faults:\n{notes}\n" if notes else ""
    return f"""## {title}

{setup}.

{report["seconds"]} s of faults on a 2-core machine shared with other work;
{report["steady_servers"]} steady servers and {report["churning_users"]} users starting
and stopping theirs through one hub's KubeCacheSpawners; kubesim with its fake kubelet.
`poll()` of every server Running in the API sampled every {SAMPLE_EVERY} s throughout.

| figure | value | must be |
| --- | --- | --- |
| polls sampled | {report["polls"]} | |
| false "stopped" verdicts | {report["false_stopped"]} | 0 |
| starts / failed starts | {report["starts"]} / {report["failed_starts"]} | |
| failed starts of pods Ready in the API | {report["failed_starts_of_ready_pods"]} | 0 |
| unhandled exceptions in the hub | {report["unhandled_exceptions"]} | 0 |
| faults not converged within {CONVERGE_WITHIN:g} s of their end | \
{sum(1 for f in report["faults"] if f["converged_s"] is None)} | 0 |
| records missing or stale at the end | {report["records_missing_or_stale_at_end"]} | 0 |
| cacher tracebacks | {report["cacher_tracebacks"]} | 0 |
| other tracebacks in the test process (kubesim) | \
{len(report["other_tracebacks_in_process"])} | |

| fault | held | injected | converged after injection |
| --- | --- | --- | --- |
{rows}
{notes}"""


def write_report(path: Path, key: str, section: str) -> None:
    """Replace the ``key`` section of the report file (between markers), keeping the rest."""
    begin, end = f"<!-- chaos:{key} -->", f"<!-- /chaos:{key} -->"
    block = f"{begin}\n{section}{end}"
    text = path.read_text() if path.exists() else ""
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + block + "\n"
    path.write_text(text)


__all__ = [
    "CONVERGE_WITHIN",
    "DURATION",
    "LOG_DIR",
    "REPORT",
    "Fault",
    "FaultResult",
    "Heal",
    "assert_safe",
    "converge",
    "kill_leader",
    "report_section",
    "run_fault",
    "run_scenario",
    "write_report",
]
