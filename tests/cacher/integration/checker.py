"""Proves that Redis holds exactly the API's state after a scenario.

For every pod the cacher tracks (namespace and label selector), the record
in Redis equals ``pod_record(api object)``, resourceVersion included; Redis
holds no other record; each tracked pod's event log holds the pod's events
(the newest ``event_log_cap`` of them); the health record is synced, its watch
states are ok. :func:`converged` waits (bounded) for the asynchronous cacher
to get there and fails with the differences.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from kubecache.contract import (
    CacheHealth,
    Keys,
    MalformedObject,
    decode_event_record,
    decode_pod_record,
    encode_pod_record,
    pod_key,
    pod_record,
)
from kubesim.selectors import LabelSelector
from kubesim.store import ObjectStore
from tests.support.waiting import wait_for


@dataclass
class Checker:
    redis: aioredis.Redis
    store: ObjectStore
    keys: Keys = field(default_factory=Keys)
    namespaces: Iterable[str] = ()
    pod_selector: str = "component=singleuser-server"
    event_log_cap: int = 50
    check_events: bool = True

    def expected_pods(self) -> tuple[dict[str, dict[str, Any]], set[str]]:
        """(key -> expected record, keys of malformed pods that may be anything)."""
        selector = LabelSelector.parse(self.pod_selector)
        namespaces = set(self.namespaces)
        expected: dict[str, dict[str, Any]] = {}
        malformed: set[str] = set()
        for pod in self.store.list("pods"):
            meta = pod.get("metadata") or {}
            if namespaces and meta.get("namespace") not in namespaces:
                continue
            if not selector.matches(meta.get("labels") or {}):
                continue
            key = pod_key(meta["namespace"], meta["name"])
            try:
                # through the stored form, as a reader sees it
                expected[key] = dict(decode_pod_record(encode_pod_record(pod_record(pod)), key=key))
            except MalformedObject:
                malformed.add(key)
        return expected, malformed

    async def differences(self) -> list[str]:
        problems: list[str] = []
        expected, malformed = self.expected_pods()
        raw = await self.redis.hgetall(self.keys.pods)
        got = {k.decode(): dict(decode_pod_record(v, key=k.decode())) for k, v in raw.items()}
        for key in sorted(set(expected) | set(got)):
            if key in malformed:
                continue
            if key not in got:
                problems.append(f"missing record {key} (rv {expected[key]['rv']})")
            elif key not in expected:
                problems.append(f"extra record {key} (rv {got[key]['rv']})")
            elif got[key] != expected[key]:
                changed = sorted(
                    f
                    for f in set(got[key]) | set(expected[key])
                    if got[key].get(f) != expected[key].get(f)
                )
                problems.append(
                    f"stale record {key}: rv {got[key]['rv']} vs API {expected[key]['rv']}, "
                    f"fields {changed}"
                )
        if self.check_events:
            problems += await self._event_differences(expected)
        health = CacheHealth.from_redis(await self.redis.hgetall(self.keys.health))
        if health is None:
            problems.append("no health record")
        else:
            if not health.synced:
                problems.append("health says not synced")
            if health.pods_watch != "ok":
                problems.append(f"pods watch state {health.pods_watch!r}")
        return problems[:20]

    async def _event_differences(self, expected: dict[str, dict[str, Any]]) -> list[str]:
        by_pod: dict[str, list[dict[str, Any]]] = {}
        for event in self.store.list("events"):
            involved = event.get("involvedObject") or {}
            if involved.get("kind") != "Pod":
                continue
            key = pod_key(str(involved.get("namespace")), str(involved.get("name")))
            record = expected.get(key)
            if record is None or involved.get("uid") not in ("", None, record["uid"]):
                continue
            by_pod.setdefault(key, []).append(event)
        problems: list[str] = []
        pipe = self.redis.pipeline(transaction=False)
        keys = sorted(by_pod)
        for key in keys:
            pipe.lrange(self.keys.events(key), 0, -1)
        logs = await pipe.execute()
        for key, entries in zip(keys, logs, strict=True):
            logged = {}
            for raw in entries:
                entry = decode_event_record(raw)
                logged[entry["uid"]] = max(entry["rv"], logged.get(entry["uid"], 0))
            events = sorted(by_pod[key], key=lambda e: int(e["metadata"]["resourceVersion"]))
            for event in events[-self.event_log_cap :]:
                uid = event["metadata"]["uid"]
                rv = int(event["metadata"]["resourceVersion"])
                if logged.get(uid, 0) < rv:
                    problems.append(
                        f"event {event.get('reason')} (rv {rv}) of {key} missing from its log"
                    )
        return problems

    async def converged(self, *, timeout: float = 30.0) -> None:
        last: list[str] = []

        async def clean() -> bool:
            nonlocal last
            try:
                last = await self.differences()
            except RedisError as e:  # e.g. our own connection died in a Redis restart
                last = [f"Redis error: {e}"]
            return not last

        try:
            await wait_for(clean, timeout=timeout, interval=0.1, message="Redis to equal the API")
        except AssertionError:
            raise AssertionError("Redis does not equal the API:\n  " + "\n  ".join(last)) from None
