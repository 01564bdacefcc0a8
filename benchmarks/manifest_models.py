"""What KubeSpawner's model objects would cost on the spawner's hot path.

The spawner builds the pod it creates as API JSON (``pod_request_body``) and converts it to a
``V1Pod`` only for KubeSpawner-style code (``get_pod_manifest()``, ``modify_pod_hook``, a
subclass). This measures, for the pod of zero-to-jupyterhub's default hub configuration
(tests/spawner/unit/test_z2jh_config.py), per pod:

- build time (median of batches) of: the JSON (hot path); the JSON plus the ``V1Pod``
  (public boundary); the conversion alone; serialising a ``V1Pod`` back (a hook or subclass
  is set); KubeSpawner 7.1's own ``get_pod_manifest()`` for comparison;
- memory: bytes allocated while building one (tracemalloc peak) and bytes one finished
  manifest keeps alive (1,000 kept, divided).

Run from the repository root::

    python benchmarks/manifest_models.py [--pods 2000]

Prints a table and writes ``benchmarks/results/manifest_models.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kubernetes_asyncio.config import kube_config  # noqa: E402

from kubecache.spawner import models  # noqa: E402
from kubecache.spawner.models import to_api_json  # noqa: E402
from tests.spawner.unit.golden import write_kubeconfig  # noqa: E402
from tests.spawner.unit.test_z2jh_config import CHART_DEFAULTS, hub_config, spawners  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


async def _timed(make: Callable[[], Awaitable[Any]], count: int) -> float:
    """Median microseconds per call over batches of ``count`` // 10 calls."""
    batch = max(count // 10, 1)
    samples = []
    for _ in range(10):
        began = time.perf_counter()
        for _ in range(batch):
            await make()
        samples.append((time.perf_counter() - began) / batch * 1e6)
    return statistics.median(samples)


async def _memory(make: Callable[[], Awaitable[Any]]) -> tuple[int, int]:
    """(peak bytes allocated building one, bytes one result keeps alive)."""
    await make()  # caches warm
    tracemalloc.start()
    tracemalloc.reset_peak()
    base, _ = tracemalloc.get_traced_memory()
    await make()
    _, peak = tracemalloc.get_traced_memory()
    kept = []
    before, _ = tracemalloc.get_traced_memory()
    for _ in range(1000):
        kept.append(await make())
    after, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak - base, (after - before) // len(kept)


async def measure(count: int) -> dict[str, Any]:
    config = hub_config(CHART_DEFAULTS)
    reference, ours = spawners(config, "alice", "", {})
    pod_json = await ours.pod_request_body()
    pod_model = await ours.get_pod_manifest()

    async def hot_path() -> Any:
        return await ours.pod_request_body()

    async def public() -> Any:
        return await ours.get_pod_manifest()

    async def convert_only() -> Any:
        return models.pod(pod_json)

    async def serialise_back() -> Any:
        return to_api_json(pod_model)

    async def kubespawner() -> Any:
        return await reference.get_pod_manifest()

    rows = {}
    for name, make in {
        "JSON (hot path)": hot_path,
        "JSON + V1Pod (get_pod_manifest)": public,
        "JSON -> V1Pod conversion alone": convert_only,
        "V1Pod -> JSON (hook or subclass set)": serialise_back,
        "KubeSpawner 7.1 get_pod_manifest": kubespawner,
    }.items():
        micros = await _timed(make, count)
        peak, kept = await _memory(make)
        rows[name] = {"us_per_pod": round(micros, 1), "alloc_peak_bytes": peak, "kept_bytes": kept}
    return {"pods_per_measure": count, "rows": rows, "cpus": os.cpu_count()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=2000, help="manifests built per timing")
    parser.add_argument("--quick", action="store_true", help="fewer manifests")
    args = parser.parse_args()
    count = 200 if args.quick else args.pods
    with tempfile.TemporaryDirectory() as tmp:
        # KubeSpawner 7.1 builds an API client in __init__: a kubeconfig it never uses
        path = str(write_kubeconfig(Path(tmp)))
        os.environ["KUBECONFIG"] = path
        kube_config.KUBE_CONFIG_DEFAULT_LOCATION = path
        result = asyncio.run(measure(count))
    print(f"{'pod manifest of z2jh defaults':42} {'us/pod':>9} {'alloc peak':>11} {'kept':>9}")
    for name, row in result["rows"].items():
        print(
            f"{name:42} {row['us_per_pod']:9.1f} {row['alloc_peak_bytes']:11,d}"
            f" {row['kept_bytes']:9,d}"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "manifest_models.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
