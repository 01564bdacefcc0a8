"""Redis bytes per pod record, for realistic KubeSpawner (zero-to-jupyterhub) pods.

Starts its own redis-server on loopback, writes N pods in a realistic mix of
states through :class:`cacher.writer.CacheWriter`, and measures:

- ``MEMORY USAGE`` (all samples) of ``P pods`` and ``P pod-rv`` divided by N:
  what one pod costs in Redis (record, field name, hash overhead, rv entry);
- ``HSTRLEN`` of the record per pod state (the orjson value alone);
- the same with the record's labels cut to the per-pod ones
  (``hub.jupyter.org/username``, ``hub.jupyter.org/servername``,
  ``component``): what the deployment-constant labels cost;
- one event log of 10 entries (``MEMORY USAGE`` of the list).

Goal (cacher issue): <= 512 bytes per pod record. Run from the repository root::

    python benchmarks/record_size.py [--pods 10000]

Prints a table and writes ``benchmarks/results/record_size.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402

from cacher.reduce import pod_record  # noqa: E402
from cacher.writer import CacheWriter  # noqa: E402
from kubecache.contract import Keys, encode  # noqa: E402
from tests.cacher.unit import pods  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402

GOAL_BYTES = 512
#: Share of each state in a busy hub: mostly ready servers, a few in every other state.
MIX = {
    "ready": 0.80,
    "running not ready": 0.03,
    "pulling": 0.03,
    "pending unschedulable": 0.03,
    "terminating": 0.03,
    "crash loop": 0.02,
    "image pull back-off": 0.02,
    "succeeded": 0.01,
    "failed": 0.01,
    "OOMKilled": 0.01,
    "evicted": 0.01,
}
PER_POD_LABELS = ("hub.jupyter.org/username", "hub.jupyter.org/servername", "component")


def realistic_pods(n: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    rv = 10_000
    for state, share in MIX.items():
        for _ in range(max(1, round(n * share))):
            rv += 1
            name = f"jupyter-user{len(out):06d}"
            out.append(pods.named(pods.ALL_STATES[state](), name, uid=str(uuid.uuid4()), rv=rv))
    return out[:n] if len(out) > n else out


async def memory_usage(client: aioredis.Redis, key: str) -> int:
    return int(await client.memory_usage(key, samples=0) or 0)


def trimmed(record: dict[str, Any]) -> bytes:
    labels = {k: v for k, v in record["labels"].items() if k in PER_POD_LABELS}
    return orjson.dumps({**record, "labels": labels})


async def measure(n: int) -> dict[str, Any]:
    server = RedisServer()
    server.start()
    client = aioredis.Redis.from_url(server.url)
    try:
        keys = Keys()
        writer = CacheWriter(client, keys, identity="bench")
        await writer.take_over()
        listed = realistic_pods(n)
        await writer.reconcile_pods(listed, list_rv=str(10_000 + len(listed) + 1))
        count = await client.hlen(keys.pods)
        pods_bytes = await memory_usage(client, keys.pods)
        rv_bytes = await memory_usage(client, keys.pod_rv)

        # The same records with per-pod labels only, in a scratch hash.
        scratch = "bench:trimmed"
        records = [pod_record(raw) for raw in listed]
        for start in range(0, len(records), 1000):
            chunk = records[start : start + 1000]
            await client.hset(
                scratch,
                mapping={f"{r['namespace']}/{r['name']}": trimmed(dict(r)) for r in chunk},
            )
        trimmed_bytes = await memory_usage(client, scratch)

        per_state: dict[str, dict[str, int]] = {}
        for state, make in pods.ALL_STATES.items():
            record = pod_record(make())
            per_state[state] = {
                "record": len(encode(record)),
                "labels_trimmed": len(trimmed(dict(record))),
            }
        # One pod's event log of 10 entries.
        await writer.apply_events(
            [
                (
                    "ADDED",
                    pods.event(
                        f"Reason{i}",
                        'Pulling image "quay.io/jupyterhub/k8s-singleuser-sample:3.3.7"',
                        pod="jupyter-user000000",
                        pod_uid=listed[0]["metadata"]["uid"],
                        uid=str(uuid.uuid4()),
                        rv=50_000 + i,
                    ),
                )
                for i in range(10)
            ]
        )
        events_bytes = await memory_usage(client, keys.events("jhub/jupyter-user000000"))
        info = await client.info("server")
        per_record = (pods_bytes + rv_bytes) / count
        return {
            "pods": count,
            "bytes_per_record": round(per_record, 1),
            "bytes_per_record_value_only": round(
                sum(len(encode(r)) for r in records) / len(records), 1
            ),
            "pods_hash_bytes": pods_bytes,
            "pod_rv_hash_bytes": rv_bytes,
            "bytes_per_record_labels_trimmed": round((trimmed_bytes + rv_bytes) / count, 1),
            "event_log_10_entries_bytes": events_bytes,
            "per_state_value_bytes": per_state,
            "goal_bytes": GOAL_BYTES,
            "goal_met": per_record <= GOAL_BYTES,
            "mix": MIX,
            "redis_version": info.get("redis_version"),
            "python": platform.python_version(),
            "machine": f"{platform.system()} {platform.machine()}, {_cpu_count()} cores",
        }
    finally:
        await client.aclose()
        server.close()


def _cpu_count() -> int:
    import os

    return os.cpu_count() or 0


def print_table(result: dict[str, Any]) -> None:
    print(f"Redis bytes per pod record ({result['pods']} pods, redis {result['redis_version']})")
    print(f"{'measure':<48}{'bytes':>10}")
    rows = [
        ("P pods + P pod-rv MEMORY USAGE / pods", result["bytes_per_record"]),
        ("  record value only (mean HSTRLEN)", result["bytes_per_record_value_only"]),
        ("  with per-pod labels only", result["bytes_per_record_labels_trimmed"]),
        ("event log, 10 entries (one pod)", result["event_log_10_entries_bytes"]),
    ]
    for label, value in rows:
        print(f"{label:<48}{value:>10}")
    print(f"\n{'state':<28}{'record':>10}{'per-pod labels':>16}")
    for state, sizes in result["per_state_value_bytes"].items():
        print(f"{state:<28}{sizes['record']:>10}{sizes['labels_trimmed']:>16}")
    verdict = "met" if result["goal_met"] else "NOT met"
    print(f"\ngoal <= {result['goal_bytes']} bytes per record: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/record_size.json")
    args = parser.parse_args()
    result = asyncio.run(measure(args.pods))
    print_table(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")


__all__ = ["measure", "realistic_pods"]

if __name__ == "__main__":
    main()
