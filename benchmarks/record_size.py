"""Redis bytes per pod, for realistic KubeSpawner (zero-to-jupyterhub) pods.

Starts its own redis-server on loopback, writes N pods in a realistic mix of
states through :class:`kubecache.cacher.writer.CacheWriter` (a full list, as after a
start or relist), and measures with ``MEMORY USAGE ... SAMPLES 0`` (exact):

- ``P pods`` + ``P pod-rv`` divided by the live pods: what one pod costs
  (record value, field name, hash entry, bucket array, allocator rounding;
  ``P pod-rv`` holds deletion tombstones only, none right after a list);
- the per-pod breakdown: mean stored JSON, mean field name, and the rest
  (hash overhead: entry, buckets, jemalloc size-class rounding);
- per pod state: the stored JSON length and the Redis bytes per pod of a
  hash of N pods all in that state;
- churn: 10% of the pods deleted since the last list (their tombstones
  counted), then the relist that trims the tombstones;
- the same mix with production-like names (e-mail user names, long node
  names, 9-digit resourceVersions), written by the writer too;
- what-ifs for the contract owner, NOT what the cacher writes: records
  without ``namespace``/``name`` (derivable from the field), without the
  ``component`` label, without both (for both name sets);
- one event log of 10 entries.

Goal (cacher issue): <= 512 bytes per pod record. Run from the repository root::

    python benchmarks/record_size.py [--pods 10000]

Prints a table and writes ``benchmarks/results/record_size.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402

from kubecache.cacher.writer import CacheWriter  # noqa: E402
from kubecache.contract import (  # noqa: E402
    USERNAME_KEY,
    Keys,
    PodRecord,
    encode_pod_record,
    pod_key,
    pod_record,
)
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
CHURN = 0.10  # share of pods deleted between two lists
FIRST_RV = 10_000
LONG_FIRST_RV = 123_456_789
LONG_NODE = "gke-hub-user-pool-4c8f1e2a-x7k2"


def realistic_pods(n: int, *, long_names: bool = False) -> list[dict[str, Any]]:
    """N raw pods in the :data:`MIX` of states, each with its own name, uid and rv."""
    out: list[dict[str, Any]] = []
    rv = LONG_FIRST_RV if long_names else FIRST_RV
    for state, share in MIX.items():
        for _ in range(max(1, round(n * share))):
            rv += 1
            i = len(out)
            if long_names:
                # KubeSpawner 7: raw name in the annotation, escaped in label and pod name.
                name = f"jupyter-firstname-2elastname{i:06d}-40example-2eorg"
                raw = pods.named(pods.ALL_STATES[state](), name, uid=str(uuid.uuid4()), rv=rv)
                meta = raw["metadata"]
                meta["annotations"][USERNAME_KEY] = f"firstname.lastname{i:06d}@example.org"
                meta["labels"][USERNAME_KEY] = name.removeprefix("jupyter-")
                if raw["spec"].get("nodeName"):
                    raw["spec"]["nodeName"] = LONG_NODE
            else:
                name = f"jupyter-user{i:06d}"
                raw = pods.named(pods.ALL_STATES[state](), name, uid=str(uuid.uuid4()), rv=rv)
            out.append(raw)
    return out[:n]


async def memory_usage(client: aioredis.Redis, key: str) -> int:
    return int(await client.memory_usage(key, samples=0) or 0)


async def scratch_bytes_per_entry(
    client: aioredis.Redis, name: str, entries: dict[str, bytes]
) -> float:
    """MEMORY USAGE per field of a scratch hash holding ``entries``, then deleted."""
    items = list(entries.items())
    for start in range(0, len(items), 1000):
        await client.hset(name, mapping=dict(items[start : start + 1000]))
    size = await memory_usage(client, name)
    await client.delete(name)
    return size / len(entries)


def _key(record: PodRecord) -> str:
    return pod_key(record["namespace"], record["name"])


def what_if(record: PodRecord, *, component: bool = True) -> bytes:
    """The stored JSON, optionally without the component label (the pod
    selector implies it). Not what the cacher writes: measured for the
    contract owner."""
    value = orjson.loads(encode_pod_record(record))
    if not component:
        labels = value.get("labels", {})
        labels.pop("component", None)
        if not labels:
            value.pop("labels", None)
    return orjson.dumps(value)


async def write_list(
    client: aioredis.Redis, keys: Keys, listed: list[dict[str, Any]], list_rv: int
) -> CacheWriter:
    writer = CacheWriter(client, keys, identity="bench")
    await writer.take_over()
    await writer.reconcile_pods(listed, list_rv=str(list_rv))
    return writer


async def hash_cost(client: aioredis.Redis, keys: Keys) -> dict[str, Any]:
    """Bytes per live pod of ``P pods`` + ``P pod-rv``, with its breakdown."""
    live = await client.hlen(keys.pods)
    pods_bytes = await memory_usage(client, keys.pods)
    rv_bytes = await memory_usage(client, keys.pod_rv)
    values = [len(v) for v in await client.hvals(keys.pods)]
    fields = [len(k) for k in await client.hkeys(keys.pods)]
    per_pod = (pods_bytes + rv_bytes) / live
    value_mean = statistics.fmean(values)
    field_mean = statistics.fmean(fields)
    return {
        "live_pods": live,
        "tombstones": await client.hlen(keys.pod_rv),
        "pods_hash_bytes": pods_bytes,
        "pod_rv_hash_bytes": rv_bytes,
        "bytes_per_pod": round(per_pod, 1),
        "breakdown": {
            "record_json": round(value_mean, 1),
            "field_name": round(field_mean, 1),
            "hash_overhead": round(pods_bytes / live - value_mean - field_mean, 1),
            "pod_rv": round(rv_bytes / live, 1),
        },
    }


async def measure(n: int) -> dict[str, Any]:
    server = RedisServer()
    server.start()
    client = aioredis.Redis.from_url(server.url)
    try:
        keys = Keys()
        listed = realistic_pods(n)
        list_rv = FIRST_RV + len(listed) + 1
        writer = await write_list(client, keys, listed, list_rv)
        after_list = await hash_cost(client, keys)
        records = [pod_record(raw) for raw in listed]

        per_state: dict[str, dict[str, float]] = {}
        for state, make in pods.ALL_STATES.items():
            # As many pods as the mix, so the hash's bucket array is the same size.
            sample = [
                pod_record(pods.named(make(), f"jupyter-user{i:06d}", uid=str(uuid.uuid4())))
                for i in range(len(listed))
            ]
            per_state[state] = {
                "json_bytes": statistics.fmean(len(encode_pod_record(r)) for r in sample),
                "redis_bytes_per_pod": await scratch_bytes_per_entry(
                    client, "bench:state", {_key(r): encode_pod_record(r) for r in sample}
                ),
            }

        # Churn: pods stopped since the last list leave tombstones until the next one.
        gone = listed[: int(len(listed) * CHURN)]
        rv = list_rv
        deletions = []
        for raw in gone:
            rv += 1
            deleted = orjson.loads(orjson.dumps(raw))
            deleted["metadata"]["resourceVersion"] = str(rv)
            deletions.append(("DELETED", deleted))
        for start in range(0, len(deletions), 1000):
            await writer.apply_pods(deletions[start : start + 1000])
        after_churn = await hash_cost(client, keys)
        tombstone_bytes = after_churn["pod_rv_hash_bytes"] / max(1, after_churn["tombstones"])
        await writer.reconcile_pods(listed[len(gone) :], list_rv=str(rv + 1))
        after_relist = await hash_cost(client, keys)

        long_keys = Keys(prefix="bench-long:")
        long_listed = realistic_pods(n, long_names=True)
        await write_list(client, long_keys, long_listed, LONG_FIRST_RV + len(long_listed) + 1)
        long_names = await hash_cost(client, long_keys)
        long_ready = pod_record(long_listed[0])

        variants = {"no component label": {"component": False}}
        long_records = [pod_record(raw) for raw in long_listed]
        what_ifs = {
            f"{names}: {name}": await scratch_bytes_per_entry(
                client, "bench:what-if", {_key(r): what_if(r, **flags) for r in sample}
            )
            for names, sample in (("fixture names", records), ("production-like", long_records))
            for name, flags in variants.items()
        }

        # One pod's event log of 10 entries.
        first = listed[len(gone)]
        await writer.apply_events(
            [
                (
                    "ADDED",
                    pods.event(
                        f"Reason{i}",
                        'Pulling image "quay.io/jupyterhub/k8s-singleuser-sample:3.3.7"',
                        pod=first["metadata"]["name"],
                        pod_uid=first["metadata"]["uid"],
                        uid=str(uuid.uuid4()),
                        rv=rv + 100 + i,
                    ),
                )
                for i in range(10)
            ]
        )
        events_bytes = await memory_usage(
            client, keys.events(pod_key(pods.NAMESPACE, first["metadata"]["name"]))
        )
        info = await client.info("server")
        per_pod = after_list["bytes_per_pod"]
        return {
            "pods": after_list["live_pods"],
            "bytes_per_record": per_pod,
            "goal_bytes": GOAL_BYTES,
            "goal_met": per_pod <= GOAL_BYTES,
            "after_list": after_list,
            "after_churn": {**after_churn, "bytes_per_tombstone": round(tombstone_bytes, 1)},
            "after_relist": after_relist,
            "per_state": {
                state: {k: round(v, 1) for k, v in sizes.items()}
                for state, sizes in per_state.items()
            },
            "production_like_names": {
                **long_names,
                "goal_met": long_names["bytes_per_pod"] <= GOAL_BYTES,
                "ready_json_bytes": len(encode_pod_record(long_ready)),
            },
            "what_if_bytes_per_pod": {k: round(v, 1) for k, v in what_ifs.items()},
            "event_log_10_entries_bytes": events_bytes,
            "example_ready_record": encode_pod_record(records[0]).decode(),
            "mix": MIX,
            "redis_version": info.get("redis_version"),
            "python": platform.python_version(),
            "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count() or 0} cores",
        }
    finally:
        await client.aclose()
        server.close()


def print_table(result: dict[str, Any]) -> None:
    n = result["pods"]
    print(f"Redis bytes per pod ({n} pods, redis {result['redis_version']}, MEMORY USAGE exact)")
    row: Callable[[str, object], None] = lambda label, value: print(f"{label:<58}{value:>10}")  # noqa: E731
    after = result["after_list"]
    row("P pods + P pod-rv per pod, after a list", after["bytes_per_pod"])
    for part, value in after["breakdown"].items():
        row(f"  {part.replace('_', ' ')}", value)
    churn = result["after_churn"]
    row(
        f"  after {churn['tombstones']} deletions since the list (per live pod)",
        churn["bytes_per_pod"],
    )
    row("  bytes per deletion tombstone in P pod-rv", churn["bytes_per_tombstone"])
    row("  after the next relist (tombstones trimmed)", result["after_relist"]["bytes_per_pod"])
    long = result["production_like_names"]
    row("production-like names (e-mail users, long nodes, 9-digit rv)", long["bytes_per_pod"])
    row("  its ready record JSON", long["ready_json_bytes"])
    for what, value in result["what_if_bytes_per_pod"].items():
        row(f"what-if (not written), {what}", value)
    row("event log, 10 entries (one pod)", result["event_log_10_entries_bytes"])
    print(f"\n{'state':<28}{'stored JSON':>14}{'Redis bytes/pod':>18}")
    for state, sizes in result["per_state"].items():
        print(f"{state:<28}{sizes['json_bytes']:>14}{sizes['redis_bytes_per_pod']:>18}")
    verdict = "met" if result["goal_met"] else "NOT met"
    print(f"\nexample ready record: {result['example_ready_record']}")
    print(f"goal <= {result['goal_bytes']} bytes per pod record: {verdict}")


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
