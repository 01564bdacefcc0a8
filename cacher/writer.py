"""The cacher's only code that writes Redis.

Every write is a Lua script (:mod:`cacher.scripts`) sent with EVALSHA in
pipelines of at most ``batch_size`` calls; a record and the feed entry that
announces it are written by the same script, atomically, and every script is
fenced by the writer's epoch (``P health`` epoch) and, for pods, by
resourceVersion (``P pod-rv``, deletion tombstones included).

Memory stays bounded: the writer keeps no objects, only ``pod key -> uid`` of
the pods it tracks (to route their events), the newest event resourceVersion
per pod it wrote, and a bounded buffer of events whose pod is not written yet.

Errors:

- :class:`Fenced`: another writer took the cache over (or the writer has no
  epoch yet). The writer sets ``epoch`` to None and refuses every further
  write until :meth:`CacheWriter.take_over`.
- :class:`CacheLost`: ``P health`` vanished (Redis flushed, or restarted
  empty). Same effect; the caller takes over again and resyncs.
- Redis errors (``redis.exceptions.ConnectionError``, ``TimeoutError`` and
  other ``RedisError``) propagate unchanged after being counted: the caller
  reconnects with back-off and resyncs, since a failed pipeline may have
  written part of a batch (each script is still all-or-nothing).

A malformed API object is logged (named, payload truncated), counted and
skipped; it never raises out of the writer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from redis.asyncio import Redis
from redis.exceptions import NoScriptError, RedisError

from cacher import scripts
from cacher.coalesce import PodChange, coalesce_events, coalesce_pods
from cacher.pending import PendingEvents
from cacher.reduce import MalformedObject, describe, event_entry, object_key, pod_record
from cacher.write_metrics import NO_METRICS, CountingMetrics, WriterMetrics
from kubecache.contract import (
    DEFAULT_EVENT_LOG_CAP,
    DEFAULT_FEED_MAXLEN,
    SCHEMA_VERSION,
    EventRecord,
    Keys,
    encode,
)

log = logging.getLogger(__name__)

_POD_TYPES = frozenset({"ADDED", "MODIFIED", "DELETED"})
_PAYLOAD_LOG_LIMIT = 300


class WriterStopped(Exception):
    """The writer may not write any more; the caller must take over again."""


class Fenced(WriterStopped):
    """Another writer owns the cache (a newer epoch), or this one never took over."""


class CacheLost(WriterStopped):
    """Redis lost the cache (health record missing): take over and resync."""


@dataclass(frozen=True)
class HeartbeatResult:
    now_ms: int  # Redis TIME of the heartbeat, ms
    epoch: int
    records: int  # pod records this writer tracks


@dataclass(frozen=True)
class _Call:
    script: str  # name in CacheWriter._shas
    keys: tuple[str, ...]
    args: tuple[str | int, ...]


_SCRIPTS = {
    "write_pod": scripts.WRITE_POD,
    "delete_pod": scripts.DELETE_POD,
    "forget_pod": scripts.FORGET_POD,
    "write_event": scripts.WRITE_EVENT,
    "take_over": scripts.TAKE_OVER,
    "heartbeat": scripts.HEARTBEAT,
    "mark_synced": scripts.MARK_SYNCED,
    "set_watch_state": scripts.SET_WATCH_STATE,
}


class CacheWriter:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        *,
        identity: str,
        event_log_cap: int = DEFAULT_EVENT_LOG_CAP,
        feed_maxlen: int = DEFAULT_FEED_MAXLEN,
        deleted_events_ttl: int = 600,
        metrics: WriterMetrics | None = None,
        namespaces: str = "",
        pod_selector: str = "",
        batch_size: int = 500,
        pending_ttl: float = 5.0,
        pending_capacity: int = 10_000,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.identity = identity
        self.event_log_cap = event_log_cap
        self.feed_maxlen = feed_maxlen
        self.deleted_events_ttl = deleted_events_ttl
        self.metrics: WriterMetrics = metrics if metrics is not None else NO_METRICS
        self.namespaces = namespaces
        self.pod_selector = pod_selector
        self.batch_size = batch_size
        self.epoch: int | None = None
        self.pending = PendingEvents(ttl=pending_ttl, capacity=pending_capacity)
        self._tracked: dict[str, str] = {}  # pod key -> uid
        self._event_rv: dict[str, int] = {}  # pod key -> newest event rv written
        self._pods_floor = 0  # rv of the last full list: older changes are stale
        self._scripts = {name: redis.register_script(text) for name, text in _SCRIPTS.items()}

    # ------------------------------------------------------------------ state

    @property
    def records(self) -> int:
        """Number of pods this writer tracks (its records in Redis)."""
        return len(self._tracked)

    def tracked_uid(self, key: str) -> str | None:
        return self._tracked.get(key)

    def _require_epoch(self) -> str:
        if self.epoch is None:
            raise Fenced(f"cacher {self.identity} holds no epoch: call take_over() before writing")
        return str(self.epoch)

    def _stop(self, error: WriterStopped) -> WriterStopped:
        log.warning("cacher %s stops writing (epoch %s): %s", self.identity, self.epoch, error)
        self.epoch = None
        self.metrics.writes_fenced()
        return error

    def _check(self, code: int, what: str) -> None:
        if code == scripts.LOST:
            raise self._stop(CacheLost(f"{what}: the cache health record is gone (Redis empty)"))
        if code == scripts.FENCED:
            raise self._stop(Fenced(f"{what}: another cacher took the cache over"))

    def _malformed(self, resource: str, raw: object, error: Exception) -> None:
        self.metrics.malformed_object(resource)
        try:
            payload = orjson.dumps(raw)[:_PAYLOAD_LOG_LIMIT].decode(errors="replace")
        except TypeError:
            payload = repr(raw)[:_PAYLOAD_LOG_LIMIT]
        log.warning(
            "skipping malformed %s %s: %s; payload: %s", resource, describe(raw), error, payload
        )

    # ---------------------------------------------------------------- running

    async def _single(self, name: str, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        try:
            return await self._scripts[name](keys=list(keys), args=list(args))
        except RedisError:
            self.metrics.redis_error(name)
            raise

    async def _pipeline(self, calls: Sequence[_Call]) -> list[Any]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for call in calls:
                script = self._scripts[call.script]
                pipe.evalsha(script.sha, len(call.keys), *call.keys, *call.args)
            return list(await pipe.execute(raise_on_error=False))

    async def _run(self, kind: str, calls: Sequence[_Call]) -> list[Any]:
        """Run ``calls`` in pipelined chunks; the script replies in order.

        Stops at the first chunk that was fenced (the caller raises), so a
        deposed writer sends at most one more chunk.
        """
        replies: list[Any] = []
        for start in range(0, len(calls), self.batch_size):
            chunk = calls[start : start + self.batch_size]
            began = time.perf_counter()
            try:
                got = await self._pipeline(chunk)
                missing = [i for i, r in enumerate(got) if isinstance(r, NoScriptError)]
                if missing:  # Redis restarted or SCRIPT FLUSH: load and rerun those
                    for name in {chunk[i].script for i in missing}:
                        await self.redis.script_load(_SCRIPTS[name])
                    again = await self._pipeline([chunk[i] for i in missing])
                    for i, reply in zip(missing, again, strict=True):
                        got[i] = reply
            except RedisError:
                self.metrics.redis_error(kind)
                raise
            for reply in got:
                if isinstance(reply, Exception):
                    self.metrics.redis_error(kind)
                    raise reply
            self.metrics.write_seconds(kind, time.perf_counter() - began)
            replies.extend(got)
            if any(_code(r) in (scripts.LOST, scripts.FENCED) for r in got):
                break
        return replies

    def _finish(self, kind: str, codes: Sequence[int], what: str) -> None:
        """Count the outcome of a batch; raise when it was fenced."""
        written = sum(1 for c in codes if c > 0)
        stale = sum(1 for c in codes if c == scripts.STALE)
        if written:
            self.metrics.records_written(kind, written)
        if stale:
            self.metrics.writes_stale(kind, stale)
        for code in (scripts.LOST, scripts.FENCED):
            if code in codes:
                self._check(code, what)

    # -------------------------------------------------------------- take over

    async def take_over(self) -> int:
        """Become the writer: a new epoch (>= Redis time ms, > previous), synced=0.

        Forgets what this writer tracked: the caller lists and reconciles next.
        """
        reply = await self._single(
            "take_over",
            [self.keys.health, self.keys.feed, self.keys.pods],
            [
                self.identity,
                str(SCHEMA_VERSION),
                self.namespaces,
                self.pod_selector,
                self.feed_maxlen,
            ],
        )
        self.epoch = int(reply)
        self._tracked.clear()
        self._event_rv.clear()
        self._pods_floor = 0
        log.info("cacher %s took the cache over with epoch %d", self.identity, self.epoch)
        return self.epoch

    # ------------------------------------------------------------------- pods

    def _reduce_pods(self, changes: Iterable[tuple[str, dict[str, Any]]]) -> list[PodChange]:
        reduced: list[PodChange] = []
        for kind, raw in changes:
            if kind not in _POD_TYPES:
                log.debug("ignoring pod watch event of type %s", kind)
                continue
            try:
                reduced.append(PodChange(kind == "DELETED", pod_record(raw)))
            except MalformedObject as e:
                self._malformed("pods", raw, e)
        return reduced

    def _pod_call(self, epoch: str, change: PodChange) -> _Call:
        key, record = change.key, change.record
        keys = (
            self.keys.health,
            self.keys.pods,
            self.keys.pod_rv,
            self.keys.events(key),
            self.keys.feed,
        )
        if change.deleted:
            args: tuple[str | int, ...] = (
                epoch,
                key,
                record["rv"],
                self.deleted_events_ttl,
                self.feed_maxlen,
            )
            return _Call("delete_pod", keys, args)
        check_uid = "0" if self._tracked.get(key) == record["uid"] else "1"
        args = (
            epoch,
            key,
            record["rv"],
            encode(record).decode(),
            record["uid"],
            check_uid,
            self.feed_maxlen,
        )
        return _Call("write_pod", keys, args)

    async def _write_pods(self, changes: Sequence[PodChange], *, listed: bool) -> None:
        epoch = self._require_epoch()
        codes = [
            _code(r) for r in await self._run("pods", [self._pod_call(epoch, c) for c in changes])
        ]
        appeared: list[tuple[str, str]] = []
        for change, code in zip(changes, codes, strict=False):
            key, uid = change.key, change.record["uid"]
            if change.deleted:
                if code == scripts.WRITTEN:
                    self._tracked.pop(key, None)
                    self._event_rv.pop(key, None)
                continue
            if code == scripts.WRITTEN or (
                code == scripts.STALE and (listed or key not in self._tracked)
            ):
                # A stale write still proves the pod exists (Redis has it newer).
                previous = self._tracked.get(key)
                if previous != uid:
                    self._tracked[key] = uid
                    self._event_rv.pop(key, None)
                    if key in self.pending:
                        appeared.append((key, uid))
        self._finish("pod", codes, f"writing {len(changes)} pod changes")
        if appeared:
            ready = [(key, e) for key, uid in appeared for e in self.pending.take(key, uid)]
            await self._write_events(ready)

    async def apply_pods(self, changes: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Apply watch changes ``(type, raw pod)``: coalesced, reduced, fenced, pipelined."""
        self._require_epoch()
        self._expire_pending()
        coalesced = coalesce_pods(self._reduce_pods(changes))
        fresh = [c for c in coalesced.values() if c.record["rv"] > self._pods_floor]
        if len(fresh) < len(coalesced):
            self.metrics.writes_stale("pod", len(coalesced) - len(fresh))
        if fresh:
            await self._write_pods(fresh, listed=False)

    async def reconcile_pods(self, listed: Iterable[dict[str, Any]], *, list_rv: str) -> None:
        """After a full LIST at ``list_rv``: write every listed pod, forget the rest.

        Keys in ``P pod-rv`` (records and tombstones; every record has one)
        that are not listed lose their record (tombstone ``list_rv``) or, when
        already a tombstone older than the list, are pruned. A listed pod is
        never deleted, even one that failed to reduce. Afterwards changes
        older than ``list_rv`` are stale: they predate the list.
        """
        epoch = self._require_epoch()
        self._expire_pending()
        listed_keys: set[str] = set()
        changes: list[PodChange] = []
        for raw in listed:
            key = object_key(raw)
            if key is not None:
                listed_keys.add(key)
            try:
                changes.append(PodChange(False, pod_record(raw)))
            except MalformedObject as e:
                self._malformed("pods", raw, e)
        await self._write_pods(list(coalesce_pods(changes).values()), listed=True)
        try:
            floor = int(list_rv)
        except ValueError:
            log.warning("list resourceVersion %r is not an integer: no pruning", list_rv)
            floor = 0
        vanished: list[str] = []
        async for field in self.redis.hscan_iter(self.keys.pod_rv, count=1000):
            key = field[0] if isinstance(field, tuple) else field
            key = key.decode() if isinstance(key, bytes) else str(key)
            if key not in listed_keys:
                vanished.append(key)
        vanished = list(dict.fromkeys(vanished))  # HSCAN may repeat a field
        if floor and vanished:
            calls = [
                _Call(
                    "forget_pod",
                    (
                        self.keys.health,
                        self.keys.pods,
                        self.keys.pod_rv,
                        self.keys.events(key),
                        self.keys.feed,
                    ),
                    (epoch, key, floor, self.deleted_events_ttl, self.feed_maxlen),
                )
                for key in vanished
            ]
            codes = [_code(r) for r in await self._run("pods", calls)]
            for key, code in zip(vanished, codes, strict=False):
                if code in (scripts.WRITTEN, 2):
                    self._tracked.pop(key, None)
                    self._event_rv.pop(key, None)
            deleted = sum(1 for c in codes if c == scripts.WRITTEN)
            if deleted:
                self.metrics.records_written("gone", deleted)
            for code in (scripts.LOST, scripts.FENCED):
                if code in codes:
                    self._check(code, "forgetting vanished pods")
            log.info(
                "reconciled %d listed pods at rv %s: %d vanished records deleted",
                len(listed_keys),
                list_rv,
                deleted,
            )
        self._pods_floor = max(self._pods_floor, floor)

    # ----------------------------------------------------------------- events

    def _expire_pending(self) -> None:
        dropped = self.pending.expire()
        if dropped:
            self.metrics.events_dropped("untracked pod", dropped)

    async def apply_events(self, changes: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Append events of tracked pods to their logs; hold the others briefly.

        DELETED events are ignored: an Event expiring in the API says nothing
        new about its pod.
        """
        self._require_epoch()
        self._expire_pending()
        entries: list[tuple[str, EventRecord]] = []
        for kind, raw in changes:
            if kind not in ("ADDED", "MODIFIED"):
                continue
            try:
                got = event_entry(raw)
            except MalformedObject as e:
                self._malformed("events", raw, e)
                continue
            if got is not None:
                entries.append(got)
        ready: list[tuple[str, EventRecord]] = []
        overflow = 0
        for key, entry in coalesce_events(entries):
            uid = self._tracked.get(key)
            if uid is not None and entry["pod_uid"] in ("", uid):
                ready.append((key, entry))
            else:
                overflow += self.pending.add(key, entry)
        if overflow:
            self.metrics.events_dropped("pending full", overflow)
        if ready:
            await self._write_events(ready)

    async def _write_events(self, entries: Sequence[tuple[str, EventRecord]]) -> None:
        epoch = self._require_epoch()
        calls: list[_Call] = []
        newest: dict[str, int | None] = dict(self._event_rv)
        for key, entry in entries:
            seen = newest.get(key)
            # Scan the log unless the entry is newer than everything in it.
            scan = seen is None or entry["rv"] <= seen
            newest[key] = None if scan else entry["rv"]
            calls.append(
                _Call(
                    "write_event",
                    (self.keys.health, self.keys.events(key), self.keys.feed),
                    (
                        epoch,
                        key,
                        entry["rv"],
                        encode(entry).decode(),
                        entry["uid"],
                        self.event_log_cap,
                        self.feed_maxlen,
                        "1" if scan else "0",
                    ),
                )
            )
        replies = await self._run("events", calls)
        for (key, _), reply in zip(entries, replies, strict=False):
            if isinstance(reply, list) and key in self._tracked:
                log_newest = int(reply[1])
                self._event_rv[key] = max(log_newest, self._event_rv.get(key, log_newest))
        self._finish("event", [_code(r) for r in replies], f"writing {len(entries)} events")

    # ----------------------------------------------------------------- health

    async def mark_synced(self, resource: Literal["pods", "events"], rv: str) -> None:
        """Record the resourceVersion a resource is synced to; pods also set synced=1."""
        epoch = self._require_epoch()
        code = await self._single(
            "mark_synced",
            [self.keys.health, self.keys.feed],
            [epoch, f"{resource}_rv", rv, "1" if resource == "pods" else "0", self.feed_maxlen],
        )
        self._check(int(code), f"marking {resource} synced")

    async def set_watch_state(self, resource: Literal["pods", "events"], state: str) -> None:
        """``ok``, ``retrying <why>`` or ``failed <why>``; a change of kind feeds "health"."""
        epoch = self._require_epoch()
        code = await self._single(
            "set_watch_state",
            [self.keys.health, self.keys.feed],
            [epoch, f"{resource}_watch", state, self.feed_maxlen],
        )
        self._check(int(code), f"setting the {resource} watch state")

    async def heartbeat(self, *, lag_ms: int | None = None) -> HeartbeatResult:
        """Write heartbeat_ms (Redis TIME), records and optionally lag_ms.

        Raises :class:`CacheLost` when the health record is gone (Redis
        flushed or restarted empty) and :class:`Fenced` when another epoch
        owns it.
        """
        epoch = self._require_epoch()
        self._expire_pending()
        reply = await self._single(
            "heartbeat",
            [self.keys.health],
            [epoch, "" if lag_ms is None else str(lag_ms), str(self.records)],
        )
        code = int(reply[0])
        if code == scripts.FENCED:
            other = _text(reply[1])
            leader = _text(reply[2])
            raise self._stop(
                Fenced(f"heartbeat: epoch {other} of cacher {leader!r} owns the cache")
            )
        self._check(code, "heartbeat")
        return HeartbeatResult(now_ms=int(reply[1]), epoch=int(epoch), records=self.records)


def _code(reply: Any) -> int:
    """The status code of a script reply (``{code, ...}`` or a bare code)."""
    return int(reply[0]) if isinstance(reply, list) else int(reply)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


__all__ = [
    "CacheLost",
    "CacheWriter",
    "CountingMetrics",
    "Fenced",
    "HeartbeatResult",
    "WriterMetrics",
    "WriterStopped",
]
