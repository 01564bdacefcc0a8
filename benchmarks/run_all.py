"""Run the benchmarks, then print one side-by-side table (KubeSpawner 7.1 / kubecache).

    python -m benchmarks [--quick] [--only compare,cacher,...]
    python benchmarks/run_all.py --no-run      # the table again, from existing results

``compare`` runs KubeSpawner 7.1 and kubecache on one kubesim in one run
(readiness, fresh hub, idle hubs, degraded); ``cacher`` and ``record_size``
measure what only kubecache has (the cacher, Redis); ``kubesim`` checks that
the emulator is not the bottleneck (not in the default set). Each benchmark
runs in its own process and writes ``benchmarks/results/NAME.json``;
``benchmarks/report.py`` turns them into the table, ``summary.json``,
``table.md`` and the PNG plots. Results depend on the machine and its load:
the table's footer states both.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import report  # noqa: E402

BENCHMARKS = {
    "compare": "compare.py",
    "cacher": "cacher_bench.py",
    "record_size": "record_size.py",
    "kubesim": "kubesim_bench.py",
    # kubecache alone, not in the default set: the degraded path at 3,000 servers through the
    # spawner's own poll(), and the cost of KubeSpawner's client models at the public boundary
    "degraded": "degraded_bench.py",
    "manifest_models": "manifest_models.py",
    # kubecache alone, not in the default set: hub REST/page latency, spawn and stop time with
    # a healthy and a frozen (SIGSTOP) Redis, side by side (a real JupyterHub)
    "frozen_redis": "frozen_redis_bench.py",
}
DEFAULT = ("compare", "cacher", "record_size")
QUICK_FLAGS = {
    "compare": ["--quick"],
    "kubesim": ["--pods", "2000", "--events", "5000"],
    "cacher": ["--quick"],
    "record_size": ["--pods", "2000"],
    "degraded": ["--servers", "1000", "--rounds", "2"],
    "manifest_models": ["--quick"],
    "frozen_redis": ["--rounds", "2", "--requests", "5"],
}


def run(names: list[str], quick: bool, failed: list[str]) -> dict[str, float]:
    seconds: dict[str, float] = {}
    for name in names:
        argv = [sys.executable, str(HERE / BENCHMARKS[name]), *(QUICK_FLAGS[name] if quick else [])]
        print(f"\n### {name}: {' '.join(argv[1:])}", flush=True)
        started = time.monotonic()
        result = subprocess.run(argv, cwd=HERE.parent, check=False)
        seconds[name] = round(time.monotonic() - started, 1)
        if result.returncode != 0:
            failed.append(name)
            print(f"!!! {name} exited with {result.returncode}", flush=True)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (15 min at load 5-12)")
    parser.add_argument("--only", default=",".join(DEFAULT), help="comma-separated names")
    parser.add_argument("--no-run", action="store_true", help="report existing results only")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n]
    unknown = set(names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmarks {sorted(unknown)}; choose from {sorted(BENCHMARKS)}")
    RESULTS.mkdir(exist_ok=True)
    began = time.monotonic()
    failed: list[str] = []
    seconds = {} if args.no_run else run(names, args.quick, failed)
    print()
    report.main()
    if seconds:
        total = round(time.monotonic() - began)
        print(f"seconds per benchmark: {seconds}; total {total} s")
    if failed:
        # the table holds what the others measured, and earlier results of these
        print(f"!!! failed: {', '.join(failed)} (their rows, if any, are from an earlier run)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
