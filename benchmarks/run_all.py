"""Run every benchmark, then print one table of the goals and write a summary.

    python benchmarks/run_all.py [--quick] [--only kubesim,cacher,...]

Each benchmark runs in its own process and writes ``benchmarks/results/NAME.json``;
this runner reads those files and compares them with the project's goals.
Results depend on the machine and its load: the summary records both.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

BENCHMARKS = {
    "kubesim": "kubesim_bench.py",
    "cacher": "cacher_bench.py",
    "record_size": "record_size.py",
    "spawner": "spawner_bench.py",
    "manifest_models": "manifest_models.py",
}
QUICK_FLAGS = {
    "kubesim": ["--pods", "2000", "--events", "5000"],
    "cacher": ["--quick"],
    "record_size": ["--pods", "2000"],
    "spawner": ["--quick"],
    "manifest_models": ["--quick"],
}


def _get(data: dict[str, Any], path: str) -> Any:
    value: Any = data
    for part in path.split("."):
        if isinstance(value, list):
            value = value[int(part)] if part.isdigit() and int(part) < len(value) else None
        elif isinstance(value, dict):
            value = value.get(part)
        else:
            return None
    return value


def _rss_at(pods: int) -> Callable[[dict[str, Any]], Any]:
    def pick(data: dict[str, Any]) -> Any:
        for row in data.get("rss") or []:
            if row.get("pods") == pods:
                return row.get("rss_mb")
        return None

    return pick


# (benchmark, what, how to read it, goal text, is the goal met)
GOALS: list[tuple[str, str, Callable[[dict[str, Any]], Any], str, Callable[[Any], bool]]] = [
    (
        "kubesim",
        "watch events/s to 1 watcher",
        lambda d: _get(d, "watch_fanout.0.events_delivered_per_s"),
        ">= 5,000",
        lambda v: v >= 5000,
    ),
    (
        "kubesim",
        "watch events/s to 20 watchers (total)",
        lambda d: _get(d, "watch_fanout.1.events_delivered_per_s"),
        "-",
        lambda v: True,
    ),
    (
        "kubesim",
        "LIST of the pods (median ms)",
        lambda d: _get(d, "list.median_ms"),
        "-",
        lambda v: True,
    ),
    (
        "cacher",
        "ingest, events per cacher CPU-second",
        lambda d: _get(d, "ingest.events_per_cpu_second"),
        ">= 10,000 on one core",
        lambda v: v >= 10000,
    ),
    (
        "cacher",
        "ingest, events/s wall clock",
        lambda d: _get(d, "ingest.events_per_second"),
        "-",
        lambda v: True,
    ),
    (
        "cacher",
        "event->Redis lag p50 (ms) at 500/s",
        lambda d: _get(d, "lag.p50_ms"),
        "-",
        lambda v: True,
    ),
    (
        "cacher",
        "event->Redis lag p99 (ms) at 500/s",
        lambda d: _get(d, "lag.p99_ms"),
        "< 10",
        lambda v: v < 10,
    ),
    ("cacher", "RSS (MB) at 10,000 pods", _rss_at(10000), "-", lambda v: True),
    ("cacher", "RSS (MB) at 50,000 pods", _rss_at(50000), "<= 150", lambda v: v <= 150),
    (
        "record_size",
        "Redis bytes per pod record",
        lambda d: _get(d, "bytes_per_record"),
        "<= 512",
        lambda v: v <= 512,
    ),
    (
        "spawner",
        "polls of 2,000 servers: Redis pipelines",
        lambda d: _get(d, "poll.pipelines"),
        "1",
        lambda v: v == 1,
    ),
    (
        "spawner",
        "polls of 2,000 servers: Kubernetes requests",
        lambda d: _get(d, "poll.kubernetes_requests"),
        "0",
        lambda v: v == 0,
    ),
    ("spawner", "feed wake-up p99 (ms)", lambda d: _get(d, "wake.p99_ms"), "-", lambda v: True),
    (
        "manifest_models",
        "V1Pod conversion, us per pod (hot path sends JSON)",
        lambda d: _get(d, "rows.JSON -> V1Pod conversion alone.us_per_pod"),
        "-",
        lambda v: True,
    ),
]


def run(names: list[str], quick: bool) -> dict[str, float]:
    seconds: dict[str, float] = {}
    for name in names:
        argv = [sys.executable, str(HERE / BENCHMARKS[name]), *(QUICK_FLAGS[name] if quick else [])]
        print(f"\n### {name}: {' '.join(argv[1:])}", flush=True)
        started = time.monotonic()
        result = subprocess.run(argv, cwd=HERE.parent, check=False)
        seconds[name] = round(time.monotonic() - started, 1)
        if result.returncode != 0:
            print(f"!!! {name} exited with {result.returncode}", flush=True)
    return seconds


def summarise(names: list[str]) -> list[dict[str, Any]]:
    rows = []
    for bench, what, read, goal, met in GOALS:
        if bench not in names:
            continue
        path = RESULTS / f"{bench}.json"
        value = read(json.loads(path.read_text())) if path.exists() else None
        verdict = "n/a" if value is None or goal == "-" else ("met" if met(value) else "MISSED")
        rows.append(
            {"benchmark": bench, "measure": what, "value": value, "goal": goal, "verdict": verdict}
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated names")
    parser.add_argument("--no-run", action="store_true", help="summarise existing results only")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n]
    unknown = set(names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmarks {sorted(unknown)}; choose from {sorted(BENCHMARKS)}")
    RESULTS.mkdir(exist_ok=True)
    seconds = {} if args.no_run else run(names, args.quick)
    rows = summarise(names)
    width = max(len(r["measure"]) for r in rows) if rows else 10
    print(f"\n{'benchmark':<12} {'measure':<{width}} {'value':>12}  {'goal':<22} verdict")
    for r in rows:
        value = r["value"]
        shown = (
            "-"
            if value is None
            else (f"{value:,.1f}" if isinstance(value, float) else f"{value:,}")
        )
        bench, measure, goal = r["benchmark"], r["measure"], r["goal"]
        print(f"{bench:<12} {measure:<{width}} {shown:>12}  {goal:<22} {r['verdict']}")
    summary = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average": os.getloadavg(),
        },
        "quick": args.quick,
        "seconds": seconds,
        "goals": rows,
    }
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"\nwrote {RESULTS / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
