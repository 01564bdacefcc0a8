"""The cacher's only code that writes Redis.

Every write is a Lua script (:mod:`kubecache.cacher.lua_scripts`) sent with EVALSHA, one
call per batch of at most ``batch_size`` pods or events; a record and the
feed entry that announces it are written by the same script, atomically, and
every script is
fenced by the writer's epoch (``P health`` epoch) and, for pods, by
resourceVersion (the ``rv`` of the stored record, and the deletion tombstone in
``P pod-rv``).

Memory stays bounded: the writer keeps no objects, only ``pod key -> uid`` of
the pods it tracks (to route their events), ``pod key -> fingerprint`` (32
bits of the SHA-1) of every record it knows in ``P pods``, the newest event
resourceVersion per pod it wrote, and a bounded buffer of events whose pod is
not written yet.

Self-check (:meth:`CacheWriter.heartbeat`, :mod:`kubecache.cacher.record_mirror`):
every heartbeat compares ``P pods`` with what the writer wrote; a deleted
hash, a missing, extra or altered record raises :class:`CacheDiverged`
naming what was found.

Errors (:mod:`kubecache.cacher.write_errors`): :class:`Fenced`, :class:`CacheLost`,
:class:`FailedOver` and :class:`CacheDiverged` stop the writer until it takes
the cache over again; Redis errors propagate unchanged after being counted.

A malformed API object is logged (named, payload truncated), counted and
skipped; it never raises out of the writer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from redis.asyncio import Redis

from kubecache.cacher import lua_scripts as scripts
from kubecache.cacher.coalesce import PodChange, coalesce_events, coalesce_pods
from kubecache.cacher.lua_calls import (
    FencedScripts,
    ScriptArg,
    ScriptItem,
    count_outcome,
    retire_epoch,
)
from kubecache.cacher.metrics_interface import NO_METRICS, CountingMetrics, WriterMetrics
from kubecache.cacher.pending import PendingEvents
from kubecache.cacher.record_mirror import RecordMirror, fingerprint
from kubecache.cacher.write_errors import (
    CacheDiverged,
    CacheLost,
    FailedOver,
    Fenced,
    WriterStopped,
)
from kubecache.contract import (
    DEFAULT_EVENT_LOG_CAP,
    DEFAULT_FEED_MAXLEN,
    SCHEMA_VERSION,
    EventRecord,
    Keys,
    MalformedObject,
    describe,
    encode_event_record,
    encode_pod_record,
    event_entry,
    object_key,
    pod_record,
)

log = logging.getLogger(__name__)

_POD_TYPES = frozenset({"ADDED", "MODIFIED", "DELETED"})
_PAYLOAD_LOG_LIMIT = 300


@dataclass(frozen=True)
class HeartbeatResult:
    now_ms: int  # Redis TIME of the heartbeat, ms
    epoch: int
    records: int  # pod records this writer tracks


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
        progress_stale_ms: int = 0,
        audit_page: int = 1000,
        tombstone_ttl: float = 600.0,
        tombstone_cap: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
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
        #: Deletion tombstones this epoch wrote in ``P pod-rv``: key -> (rv, when), oldest
        #: first. Expired after ``tombstone_ttl`` seconds, or beyond ``tombstone_cap``.
        self._tombstones: dict[str, tuple[str, float]] = {}
        self.tombstone_ttl = tombstone_ttl
        self.tombstone_cap = tombstone_cap
        self._clock = clock
        self.progress_stale_ms = progress_stale_ms
        #: master_replid of the primary the epoch was taken on.
        self.primary_replid = ""
        self.taken_over_ms = 0  # Redis time of the take-over
        self.taken_epoch: int | None = None  # the epoch taken, kept once stopped
        #: The next full list rewrites every record (after a divergence or failover).
        self.rewrite_next_list = False
        self._mirror = RecordMirror(page=audit_page)  # what P pods holds
        self._scripts = FencedScripts(redis, self.metrics)

    # ------------------------------------------------------------------ state

    @property
    def records(self) -> int:
        """Number of pods this writer tracks (its records in Redis)."""
        return len(self._tracked)

    def tracked_uid(self, key: str) -> str | None:
        return self._tracked.get(key)

    def logged_pods(self) -> list[str]:
        """Keys of the tracked pods whose event log this writer wrote (eviction checks)."""
        return [key for key in self._event_rv if key in self._tracked]

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
        if code == scripts.FAILED_OVER:
            raise self._stop(
                FailedOver(
                    f"{what}: the Redis node is no longer primary {self.primary_replid} "
                    "of this epoch (a failover, or a reconnect to another node)"
                )
            )
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
        return await self._scripts.run(name, keys, args)

    async def _batches(
        self,
        name: str,
        kind: str,
        head_keys: Sequence[str],
        head_args: Sequence[ScriptArg],
        items: Sequence[ScriptItem],
    ) -> tuple[list[Any], int | None]:
        return await self._scripts.run_batches(
            name, kind, head_keys, head_args, items, batch_size=self.batch_size
        )

    def _finish(self, kind: str, codes: Sequence[int], stop: int | None, what: str) -> None:
        """Count the outcome of a batch; raise when it was fenced."""
        count_outcome(self.metrics, kind, codes)
        if stop is not None:
            self._check(stop, what)

    # -------------------------------------------------------------- take over

    async def take_over(
        self,
        *,
        primary_addr: str = "",
        failovers: int = 0,
        last_failover_ms: int | None = 0,
    ) -> int:
        """Become the writer: a new epoch (>= Redis time ms, > previous), synced=0.

        Records the node's replication ID (every later script refuses to run
        on another node), ``primary_addr`` and the failover count;
        ``last_failover_ms`` None stamps this take-over's Redis time as the
        last failover. Forgets what this writer tracked: the caller lists and
        reconciles next.
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
                str(self.progress_stale_ms),
                primary_addr,
                str(failovers),
                "now" if last_failover_ms is None else str(last_failover_ms),
            ],
        )
        self.epoch = int(reply[0])
        self.taken_epoch = self.epoch
        self.primary_replid = _text(reply[1])
        self.taken_over_ms = int(reply[2])
        self._tracked.clear()
        self._event_rv.clear()
        self._mirror.clear()
        self._tombstones.clear()
        self._pods_floor = 0
        log.info(
            "cacher %s took the cache over with epoch %d on Redis primary %s (replid %s)",
            self.identity,
            self.epoch,
            primary_addr or "?",
            self.primary_replid,
        )
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

    def _pod_item(self, change: PodChange, *, force: bool = False) -> ScriptItem:
        key, record = change.key, change.record
        if change.deleted:
            return ScriptItem(self.keys.events(key), ("d", key, record["rv"], "", "", "0"))
        check_uid = "0" if self._tracked.get(key) == record["uid"] else "1"
        payload = encode_pod_record(record)  # bytes as they are sent
        return ScriptItem(
            self.keys.events(key),
            ("f" if force else "w", key, record["rv"], payload, record["uid"], check_uid),
        )

    def _note_stored(self, key: str, item: ScriptItem, code: int, left: object) -> None:
        """Mirror what the write left in ``P pods`` for ``key`` (the self-check's side)."""
        op = item.args[0]
        if op == "f" or (op == "w" and code == scripts.WRITTEN):
            payload = item.args[3]
            self._mirror.wrote(
                key, payload if isinstance(payload, bytes) else str(payload).encode()
            )
        elif code == scripts.WRITTEN:  # deleted
            self._mirror.forget(key)
        elif left:  # stale: a newer record stays
            self._mirror.found(key, _text(left))
        else:  # stale: a newer tombstone, no record
            self._mirror.forget(key)

    async def _write_pods(
        self, changes: Sequence[PodChange], *, listed: bool, force: bool = False
    ) -> list[int]:
        """Write ``changes``; the script's code of each (WRITTEN, or STALE: not written)."""
        epoch = self._require_epoch()
        items = [self._pod_item(c, force=force) for c in changes]
        async with self._mirror.gate.writing():
            replies, stop = await self._batches(
                "write_pods",
                "pods",
                (self.keys.health, self.keys.pods, self.keys.pod_rv, self.keys.feed),
                (epoch, self.feed_maxlen, self.deleted_events_ttl),
                items,
            )
            codes = [int(r) for r in replies[0::2]]
            for change, item, code, left in zip(changes, items, codes, replies[1::2], strict=False):
                self._note_stored(change.key, item, code, left)
        appeared: list[tuple[str, str]] = []
        now = self._clock()
        for change, code in zip(changes, codes, strict=False):
            key, uid = change.key, change.record["uid"]
            if change.deleted:
                if code == scripts.WRITTEN:
                    self._tracked.pop(key, None)
                    self._event_rv.pop(key, None)
                    self._tombstones.pop(key, None)  # re-inserted: newest last
                    self._tombstones[key] = (str(change.record["rv"]), now)
                continue
            if code == scripts.WRITTEN or force:
                self._tombstones.pop(key, None)  # a write removes the tombstone
            # A listed pod exists even when Redis already holds it newer.
            exists = code == scripts.WRITTEN or listed
            if exists and self._tracked.get(key) != uid:
                self._tracked[key] = uid
                self._event_rv.pop(key, None)
                if key in self.pending:
                    appeared.append((key, uid))
        self._finish("pod", codes, stop, f"writing {len(changes)} pod changes")
        if appeared:
            ready = [(key, e) for key, uid in appeared for e in self.pending.take(key, uid)]
            await self._write_events(ready)
        return codes

    async def apply_pods(self, changes: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Apply watch changes ``(type, raw pod)``: coalesced, reduced, fenced, batched."""
        self._require_epoch()
        self._expire_pending()
        coalesced = coalesce_pods(self._reduce_pods(changes))
        fresh = [c for c in coalesced.values() if c.record["rv"] > self._pods_floor]
        if len(fresh) < len(coalesced):
            self.metrics.writes_stale("pod", len(coalesced) - len(fresh))
        if fresh:
            await self._write_pods(fresh, listed=False)

    async def reconcile_pods(
        self,
        listed: Iterable[dict[str, Any]] | AsyncIterable[Sequence[dict[str, Any]]],
        *,
        list_rv: str | Callable[[], str],
    ) -> None:
        """After a full LIST at ``list_rv``: Redis holds exactly the listed pods.

        The list is the whole truth, whatever resourceVersions or tombstones Redis
        holds (resourceVersions are opaque; a cluster's history can restart below
        them: an etcd restore, a rebuilt cluster, a Redis and prefix reused for
        another cluster). Every listed pod's record is written unless Redis holds
        the same bytes; every record and tombstone of a pod not listed is removed.
        Nothing else writes pods meanwhile (the watch starts after the list).

        ``listed`` is the listed pods, or an async iterable of pages of them:
        pages are reduced and written as they come, so the raw list is never
        held whole (memory at 50,000 pods). ``list_rv`` may be a function
        called once every page is consumed (a list over several namespaces
        knows its resourceVersion only then). A listed pod is never deleted,
        even one that failed to reduce. Afterwards watch changes at ``list_rv``
        or older (of this list's history) are stale: they predate the list.

        Logs what it found, and counts it in ``list_reconciled`` (unchanged,
        written, deleted, tombstone_removed).
        """
        epoch = self._require_epoch()
        self._expire_pending()
        listed_keys: set[str] = set()
        unreduced: list[str] = []  # listed, malformed: a record of theirs stays as it is
        batch: list[PodChange] = []
        found = {"unchanged": 0, "written": 0, "deleted": 0, "tombstone_removed": 0}

        async def flush() -> None:
            codes = await self._write_pods(
                list(coalesce_pods(batch).values()), listed=True, force=True
            )
            written = codes.count(scripts.WRITTEN)
            found["written"] += written
            found["unchanged"] += len(codes) - written
            batch.clear()

        async def take(raw: dict[str, Any]) -> None:
            key = object_key(raw)
            if key is not None:
                listed_keys.add(key)
            try:
                batch.append(PodChange(False, pod_record(raw)))
            except MalformedObject as e:
                self._malformed("pods", raw, e)
                if key is not None:
                    unreduced.append(key)
            if len(batch) >= self.batch_size:
                await flush()

        if isinstance(listed, AsyncIterable):
            async for page in listed:
                for raw in page:
                    await take(raw)
        else:
            for raw in listed:
                await take(raw)
        if batch:
            await flush()
        if unreduced:
            await self._adopt_stored(unreduced)
        list_rv = list_rv if isinstance(list_rv, str) else list_rv()
        try:
            floor = int(list_rv)
        except ValueError:
            log.warning("list resourceVersion %r is not an integer: no change is filtered", list_rv)
            floor = 0
        vanished: dict[str, None] = {}  # ordered set: HSCAN may repeat a field
        for hash_key in (self.keys.pods, self.keys.pod_rv):
            # Values come along (NOVALUES needs Redis 7.4), one page at a time.
            async for field, _ in self.redis.hscan_iter(hash_key, count=1000):
                key = field.decode() if isinstance(field, bytes) else str(field)
                if key not in listed_keys:
                    vanished[key] = None
        if vanished:
            async with self._mirror.gate.writing():
                replies, stop = await self._batches(
                    "forget_pods",
                    "pods",
                    (self.keys.health, self.keys.pods, self.keys.pod_rv, self.keys.feed),
                    (epoch, self.feed_maxlen, self.deleted_events_ttl, list_rv),
                    [ScriptItem(self.keys.events(key), (key,)) for key in vanished],
                )
                codes = [int(r) for r in replies]
                for key, code in zip(vanished, codes, strict=False):
                    if code == scripts.WRITTEN:
                        self._mirror.forget(key)
            for key, code in zip(vanished, codes, strict=False):
                if code in (scripts.WRITTEN, 2):
                    self._tracked.pop(key, None)
                    self._event_rv.pop(key, None)
                    self._tombstones.pop(key, None)
            found["deleted"] = codes.count(scripts.WRITTEN)
            found["tombstone_removed"] = codes.count(2)
            if found["deleted"]:
                self.metrics.records_written("gone", found["deleted"])
            if stop is not None:
                self._check(stop, "forgetting vanished pods")
        for outcome, n in found.items():
            if n:
                self.metrics.list_reconciled(outcome, n)
        log.info(
            "pod list at resourceVersion %s (epoch %d): %d pods listed; in Redis %d records "
            "were already the same, %d written (new or different), %d records of pods not "
            "in the list deleted, %d deletion tombstones removed",
            list_rv,
            self.epoch or 0,
            len(listed_keys),
            found["unchanged"],
            found["written"],
            found["deleted"],
            found["tombstone_removed"],
        )
        # This list's history only: never max() with an earlier list's resourceVersion,
        # which may belong to another history.
        self._pods_floor = floor
        self.rewrite_next_list = False
        self._mirror.ready = True

    async def _adopt_stored(self, keys: Sequence[str]) -> None:
        """Know the records kept for listed pods that could not be reduced."""
        async with self._mirror.gate.writing():
            values = await self.redis.hmget(self.keys.pods, list(keys))
            for key, value in zip(keys, values, strict=True):
                if value is None:
                    self._mirror.forget(key)
                else:
                    self._mirror.wrote(
                        key, value if isinstance(value, bytes) else str(value).encode()
                    )

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
        items: list[ScriptItem] = []
        newest: dict[str, int | None] = dict(self._event_rv)
        for key, entry in entries:
            seen = newest.get(key)
            # Scan the log unless the entry is newer than everything in it.
            scan = seen is None or entry["rv"] <= seen
            newest[key] = None if scan else entry["rv"]
            payload = encode_event_record(entry)  # bytes as they are sent
            items.append(
                ScriptItem(
                    self.keys.events(key),
                    (key, entry["rv"], payload, entry["uid"], "1" if scan else "0"),
                )
            )
        replies, stop = await self._batches(
            "write_events",
            "events",
            (self.keys.health, self.keys.feed),
            (epoch, self.feed_maxlen, self.event_log_cap),
            items,
        )
        codes = [int(c) for c in replies[0::2]]
        for (key, _), log_newest in zip(entries, replies[1::2], strict=False):
            if key in self._tracked:
                known = int(log_newest)
                self._event_rv[key] = max(known, self._event_rv.get(key, known))
        self._finish("event", codes, stop, f"writing {len(entries)} events")

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

    async def retire(self, node: Redis, epoch: int) -> bool:
        """Mark ``epoch`` unsynced on ``node``, a primary that was replaced.

        See :func:`kubecache.cacher.lua_calls.retire_epoch`; True when the epoch still owned it.
        """
        return await retire_epoch(node, self.keys, epoch=epoch, feed_maxlen=self.feed_maxlen)

    async def heartbeat(
        self,
        *,
        lag_ms: int | None = None,
        pods_progress_age: float | None = None,
        events_progress_age: float | None = None,
    ) -> HeartbeatResult:
        """Write heartbeat_ms (Redis TIME), records, progress times and optionally lag_ms.

        ``*_progress_age`` are seconds since each watch last progressed (None:
        not yet); the script stores Redis time minus the age. Then, once the
        epoch's first list is reconciled, checks that Redis holds what this
        writer wrote (see the module docstring).

        Raises :class:`CacheLost` when the health record is gone (Redis
        flushed or restarted empty), :class:`Fenced` when another epoch
        owns it, :class:`FailedOver` when the node is another primary and
        :class:`CacheDiverged` when the records differ.
        """
        epoch = self._require_epoch()
        self._expire_pending()
        async with self._mirror.gate.checking():
            reply = await self._single(
                "heartbeat",
                [self.keys.health, self.keys.pods],
                [
                    epoch,
                    "" if lag_ms is None else str(lag_ms),
                    str(self.records),
                    _age_ms(pods_progress_age),
                    _age_ms(events_progress_age),
                ],
            )
            code = int(reply[0])
            if code == scripts.FENCED:
                other = _text(reply[1])
                leader = _text(reply[2])
                raise self._stop(
                    Fenced(f"heartbeat: epoch {other} of cacher {leader!r} owns the cache")
                )
            if code == scripts.FAILED_OVER:
                raise self._stop(
                    FailedOver(
                        f"heartbeat: the Redis node has replid {_text(reply[2])}, the epoch "
                        f"was taken on primary {_text(reply[1])} (a failover, or a "
                        "reconnect to another node)"
                    )
                )
            self._check(code, "heartbeat")
            if self._mirror.ready:
                check, findings = await self._mirror.differences(int(reply[2]), self._audit_page)
                if findings:
                    raise self._stop(CacheDiverged(check, findings))
        await self.expire_tombstones()
        return HeartbeatResult(now_ms=int(reply[1]), epoch=int(epoch), records=self.records)

    @property
    def tombstones(self) -> int:
        """Deletion tombstones this writer knows in ``P pod-rv``."""
        return len(self._tombstones)

    async def expire_tombstones(self) -> int:
        """Remove tombstones older than ``tombstone_ttl`` or beyond ``tombstone_cap``.

        A tombstone keeps a late write of an older resourceVersion from bringing a
        deleted pod back; within one epoch the watch delivers a pod's changes in order
        and resumes from the last resourceVersion seen, so one is needed only briefly.
        Without expiry they would grow with every deleted pod until the next full list,
        which a healthy leader never does. Each epoch's first list removes every
        tombstone it did not write. Returns how many were removed.
        """
        if not self._tombstones:
            return 0
        epoch = self._require_epoch()
        cutoff = self._clock() - self.tombstone_ttl
        excess = len(self._tombstones) - self.tombstone_cap
        expired: list[tuple[str, str]] = []
        for key, (rv, when) in self._tombstones.items():  # oldest first
            if when > cutoff and len(expired) >= excess:
                break
            expired.append((key, rv))
        if not expired:
            return 0
        replies, stop = await self._batches(
            "expire_tombstones",
            "pods",
            (self.keys.health, self.keys.pod_rv),
            (epoch,),
            [ScriptItem(self.keys.events(key), (key, rv)) for key, rv in expired],
        )
        done = len(replies)
        for key, rv in expired[:done]:
            tracked = self._tombstones.get(key)
            if tracked is not None and tracked[0] == rv:  # not a deletion made meanwhile
                del self._tombstones[key]
        removed = sum(1 for r in replies if int(r) == scripts.WRITTEN)
        if removed:
            self.metrics.tombstones_removed(removed)
            log.debug("expired %d pod deletion tombstones", removed)
        if stop is not None:
            self._check(stop, "expiring tombstones")
        return removed

    async def _audit_page(self, cursor: str, count: int) -> Any:
        return await self._single("audit_pods", [self.keys.pods], [cursor, count])


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _age_ms(seconds: float | None) -> str:
    return "" if seconds is None else str(int(seconds * 1000))


__all__ = [
    "CacheDiverged",
    "CacheLost",
    "CacheWriter",
    "CountingMetrics",
    "FailedOver",
    "Fenced",
    "HeartbeatResult",
    "WriterMetrics",
    "WriterStopped",
    "fingerprint",
]
