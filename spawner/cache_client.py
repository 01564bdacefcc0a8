"""The hub side of the Redis contract: one cache client per hub process.

Every spawner of a hub shares one :class:`CacheClient` (keyed by event loop,
Redis settings and key prefix, like KubeSpawner's shared reflectors):

- one background task follows the change feed (``P feed``) with blocking
  XREAD from the last entry id seen, on a connection of its own whose
  socket timeout exceeds the block time (redis-py's default of 5 s would
  cut a longer block). Reading from an id, not pub/sub, means nothing is
  missed across a reconnect; a feed trimmed past that id (a gap) or gone
  (Redis restarted empty) wakes every waiter, as do ``health`` entries.
  The feed's head is looked at (XINFO STREAM) only when that can have
  happened: on (re)connecting, after a quiet block and after a read of at
  least ``MIN_FEED_MAXLEN`` entries; not before every read, which cost a
  round trip on each wake-up;
- a waiter woken by its pod's entry gets the pod's snapshot with the
  wake-up: while up to ``PREFETCH_KEYS`` pods have waiters, the blocking
  XREAD is pipelined with ``HMGET P pods <their keys>``, ``HGETALL P
  health`` and ``TIME``, which Redis runs as soon as the XREAD returns, in
  the same round trip. The snapshot is what :meth:`CacheClient.get_pod`
  would read right after the entry (every entry's record was written with
  it, in one step), without a second round trip after the wake-up;
- waiters (:class:`Watch`, one asyncio.Event each) are keyed by pod key;
- concurrent :meth:`CacheClient.get_pod` calls of one loop tick become one
  pipelined read: ``HMGET P pods k1 k2 ...``, ``HGETALL P health``, ``TIME``,
  ``INFO replication`` (the node's ``master_replid``: health written on
  another primary is not trusted, see :class:`ReplidProbe`).

Redis commands the hub's user needs: HMGET, HGETALL, TIME, INFO (replication
section; without it failovers go unnoticed, logged once), LRANGE (events),
XREAD and XINFO STREAM (the feed), CLIENT SETNAME (redis-py names its
connections), PING (health checks), on the keys ``<prefix>*``.

No spawner holds a connection or runs a polling loop of its own.

Degraded stays fast: reads use a short timeout (``READ_TIMEOUT``, no
retries), and the first one that fails opens a circuit breaker
(:mod:`kubecache.spawner.cache_breaker`): until a background probe gets an answer from
Redis again (or the feed reader does), every cache read fails at once with
:class:`CacheUnavailable` and the spawners read the Kubernetes API. A frozen
Redis costs the hub one timeout, not one per call.

Logging goes through the hub's logger (the ``log`` of the spawner that made
the client, see :mod:`kubecache.spawner.hub_log`). A prefix that no cacher writes (no
health record) is logged once per ``UNUSED_PREFIX_LOG_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from kubecache.backoff import Backoff
from kubecache.contract import (
    MIN_FEED_MAXLEN,
    CacheHealth,
    ContractError,
    EventRecord,
    FeedEntry,
    Freshness,
    Keys,
    PodRecord,
    decode_event_record,
    decode_feed_entry,
    decode_pod_record,
    health_freshness,
    redis_time_ms,
)
from kubecache.redis_connection import RedisSettings, connect, redacted
from kubecache.spawner.cache_breaker import Breaker
from kubecache.spawner.hub_log import EveryInterval, Logger, hub_logger
from kubecache.spawner.replid_probe import ReplidProbe

#: XREAD BLOCK time; the feed connection's socket timeout is this plus a margin.
DEFAULT_BLOCK_SECONDS = 5.0
_SOCKET_MARGIN_SECONDS = 5.0
#: Entries read per XREAD.
READ_COUNT = 1000
#: Seconds a cache read (or connecting for one) may take before the hub reads the API.
READ_TIMEOUT = 1.0
#: A key prefix without a health record (no cacher writes it) is logged once per this.
UNUSED_PREFIX_LOG_SECONDS = 300.0
#: Most pods whose records are read along with each XREAD (the pods with waiters: starts
#: and stops in progress); with more waiters they read after waking, as before.
PREFETCH_KEYS = 64
#: The feed entry kinds that tell of a change of a pod's record (its ``event`` entries
#: tell of its event log): what wakes a waiter that judges the record only.
RECORD_CHANGES: frozenset[str] = frozenset({"pod", "gone"})


class CacheUnavailable(Exception):
    """Redis cannot be read right now, or holds data that breaks the contract."""


@dataclass(frozen=True)
class PodSnapshot:
    """One pod's record with the cache health and Redis time of the same read."""

    key: str
    record: PodRecord | None
    health: CacheHealth | None
    now_ms: int
    #: ``master_replid`` of the node that answered (None: not known, see ReplidProbe)
    node_replid: str | None = None

    def freshness(self, *, stale_after_ms: int) -> Freshness:
        return health_freshness(
            self.health,
            now_ms=self.now_ms,
            stale_after_ms=stale_after_ms,
            node_replid=self.node_replid,
        )


@dataclass(frozen=True)
class CacheRead:
    """What one pipelined read says about every pod it read: the health, Redis time and
    node of the read, and each pod's raw record by key (absent: no record).

    One per batch, shared by every question of it: a question's future holds this, not
    a tuple of its own (a hub polling 10,000 servers at once keeps 10,000 such futures
    waiting; every object each holds is one more for the garbage collector to walk).
    """

    health: CacheHealth | None
    now_ms: int
    node_replid: str | None
    raw: Mapping[str, bytes | None]

    def freshness(self, *, stale_after_ms: int) -> Freshness:
        """The health's verdict for this read (as :meth:`PodSnapshot.freshness`), before
        any record is decoded: a poll of an untrusted cache decodes none."""
        return health_freshness(
            self.health,
            now_ms=self.now_ms,
            stale_after_ms=stale_after_ms,
            node_replid=self.node_replid,
        )


class Watch:
    """A waiter woken when the feed mentions its pod (or every pod).

    ``kinds``: the feed entry kinds of its pod that wake it (None: every kind). A
    start or stop judges the pod's record only, so it is not woken by the pod's
    ``event`` entries: each such wake-up re-read the pod for nothing, and the
    read could still be in flight when the entry it waits for arrived. Entries
    that wake every waiter (health, a gap, a lost feed) wake it whatever ``kinds``.

    ``snapshot``: the pod as read with the feed entry that woke it (see
    :data:`PREFETCH_KEYS`), None when it must read the pod itself; take it
    with :meth:`take_snapshot`.
    """

    def __init__(self, key: str, kinds: frozenset[str] | None = None) -> None:
        self.key = key
        self.kinds = kinds
        self._event = asyncio.Event()
        self.why: str = ""
        self.snapshot: PodSnapshot | None = None

    def wake(self, why: str, snapshot: PodSnapshot | None = None) -> None:
        self.why = why
        self.snapshot = snapshot
        self._event.set()

    def take_snapshot(self) -> PodSnapshot | None:
        snapshot, self.snapshot = self.snapshot, None
        return snapshot

    async def wait(self, timeout: float | None) -> bool:
        """True when woken since the last wait, False after ``timeout`` seconds."""
        try:
            async with asyncio.timeout(None if timeout is None else max(0.0, timeout)):
                await self._event.wait()
        except TimeoutError:
            return False
        self._event.clear()
        return True


# --------------------------------------------------------------------------
# Stream ids


def _parse_id(value: bytes | str) -> tuple[int, int]:
    text = value.decode() if isinstance(value, bytes) else value
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def _format_id(value: tuple[int, int]) -> str:
    return f"{value[0]}-{value[1]}"


def _before(value: tuple[int, int]) -> tuple[int, int]:
    ms, seq = value
    if seq > 0:
        return ms, seq - 1
    return max(ms - 1, 0), 2**64 - 1 if ms > 0 else 0


_START = (0, 0)


@dataclass
class FeedBatch:
    entries: list[FeedEntry]
    wake_all: str | None = None  # why every waiter must re-read, if it must
    #: the prefetched pods the entries mention (read right after them)
    snapshots: dict[str, PodSnapshot] = dataclasses.field(default_factory=dict)


class FeedReader:
    """A position in the change feed and one read step (the loop body).

    ``position`` is the id of the last entry handled; ``(0, 0)`` reads
    the feed from its first entry.

    When the feed's head is looked at (:meth:`check`, one XINFO STREAM): before
    the first read and after a failed one (Redis may have restarted or
    flushed), after a read that found nothing in the block time (a feed
    recreated with smaller ids, or gone, shows only this way), and after a
    read of at least :data:`~kubecache.contract.MIN_FEED_MAXLEN` entries (the
    reader lags: the trim may have passed the position it read from). A
    shorter read cannot have raced a trim: the writer keeps at least that
    many entries, so entries trimmed after the position would leave at least
    that many to read.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        *,
        block_seconds: float = DEFAULT_BLOCK_SECONDS,
        count: int = READ_COUNT,
        log: Logger | None = None,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.log = hub_logger(log, __name__)
        self.block_ms = int(block_seconds * 1000)
        self.count = count
        self.position: tuple[int, int] | None = None
        #: look at the feed's head before the next read
        self.recheck = True
        #: XINFO STREAM sent (tests, benchmarks)
        self.checks = 0

    async def _stream_info(self) -> dict[str, Any] | None:
        try:
            info = await self.redis.xinfo_stream(self.keys.feed)
        except ResponseError as e:
            if "no such key" in str(e).lower():
                return None
            raise
        return {(k.decode() if isinstance(k, bytes) else k): v for k, v in info.items()}

    async def check(self) -> str | None:
        """Place or re-check the position without blocking.

        Returns why every waiter must re-read (first connect, feed gone or
        reset, gap), or None when reading on from the position misses nothing.
        """
        info = await self._stream_info()
        self.checks += 1
        self.recheck = False
        if self.position is None:
            self.position = _parse_id(info["last-generated-id"]) if info else _START
            return "connected to the change feed"
        if info is None:
            if self.position == _START:
                return None
            self.position = _START
            return "the change feed is gone (Redis restarted or flushed)"
        last = _parse_id(info["last-generated-id"])
        if last < self.position:
            self.position = _START
            return "the change feed was recreated (its ids went back)"
        first_raw = info.get("recorded-first-entry-id")
        if first_raw is None and info.get("first-entry"):
            first_raw = info["first-entry"][0]
        if first_raw is None or self.position == _START:
            return None
        first = _parse_id(first_raw)
        if _before(first) > self.position and info.get("length", 0):
            # entries between the one read last and the feed's first are trimmed
            # away (false positives only when the reader lags by the feed's length)
            self.position = _before(first)
            return "the change feed was trimmed past the last entry read (gap)"
        return None

    async def step(self, prefetch: list[str] | None = None) -> FeedBatch:
        """Block up to the block time for new entries; check for a gap when one may be.

        ``prefetch``: pod keys whose records (with the health and Redis time) are
        read in the same round trip, right after the XREAD returns.
        """
        if self.position is None or self.recheck:
            why = await self.check()
            if why:
                return FeedBatch([], why)
        assert self.position is not None
        read_from = self.position
        self.recheck = True  # until this read has succeeded
        streams: dict[Any, Any] = {self.keys.feed: _format_id(read_from)}
        prefetched: list[Any] | None = None
        if prefetch:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.xread(streams, count=self.count, block=self.block_ms)
                pipe.hmget(self.keys.pods, prefetch)
                pipe.hgetall(self.keys.health)
                pipe.time()
                replies = await pipe.execute(raise_on_error=False)
            if isinstance(replies[0], Exception):
                raise replies[0]
            reply, prefetched = replies[0], replies[1:]
        else:
            reply = await self.redis.xread(streams, count=self.count, block=self.block_ms)
        raw = _stream_entries(reply)
        entries: list[FeedEntry] = []
        for entry_id, fields in raw:
            self.position = _parse_id(entry_id)
            try:
                entries.append(decode_feed_entry(fields))
            except ContractError as e:
                self.log.warning("kubecache: skipping feed entry %s: %s", entry_id, e)
        # quiet: look before blocking again; long: the trim may have passed read_from
        self.recheck = not raw
        snapshots = _snapshots(prefetch, prefetched, entries, self.log) if prefetched else {}
        if len(raw) >= min(self.count, MIN_FEED_MAXLEN) and read_from != _START:
            why = await self._trimmed_past(read_from)
            if why:
                return FeedBatch(entries, why)
        return FeedBatch(entries, snapshots=snapshots)

    async def _trimmed_past(self, read_from: tuple[int, int]) -> str | None:
        """Why every waiter must re-read when the feed's first entry is now past
        ``read_from`` (entries after it may have been trimmed before the read)."""
        info = await self._stream_info()
        self.checks += 1
        if info is None:
            self.position = _START
            return "the change feed is gone (Redis restarted or flushed)"
        first_raw = info.get("recorded-first-entry-id")
        if first_raw is None and info.get("first-entry"):
            first_raw = info["first-entry"][0]
        if first_raw is not None and _parse_id(first_raw) > read_from:
            # false positives only when the reader lags by the feed's length
            return "the change feed was trimmed past the last entry read (gap)"
        return None


def _snapshots(
    keys: list[str] | None, replies: list[Any], entries: list[FeedEntry], log: Logger
) -> dict[str, PodSnapshot]:
    """Snapshots of the prefetched pods the entries mention; none when a part of the read
    failed or breaks the contract (their waiters then read the pod themselves)."""
    mentioned = {e["key"] for e in entries if e["kind"] in ("pod", "gone")}
    if not keys or not mentioned.intersection(keys):
        return {}
    raw_records, raw_health, time_reply = replies
    if any(isinstance(r, Exception) for r in replies):
        return {}
    try:
        health = CacheHealth.from_redis(raw_health)
        now_ms = redis_time_ms(time_reply)
        out: dict[str, PodSnapshot] = {}
        for key, raw in zip(keys, raw_records, strict=True):
            if key in mentioned:
                record = decode_pod_record(raw, key=key) if raw is not None else None
                out[key] = PodSnapshot(key, record, health, now_ms)
        return out
    except (ContractError, ValueError, TypeError) as e:
        log.debug("kubecache: not using the records read with the feed: %s", e)
        return {}


def _stream_entries(reply: Any) -> list[tuple[bytes | str, Mapping[Any, Any]]]:
    """Entries of a one-stream XREAD reply (RESP2 list or RESP3 map)."""
    if not reply:
        return []
    if isinstance(reply, Mapping):
        streams: Iterable[Any] = reply.values()
    else:
        streams = (item[1] for item in reply)
    out: list[tuple[bytes | str, Mapping[Any, Any]]] = []
    for entries in streams:
        for entry in entries:
            out.append((entry[0], entry[1]))
    return out


# --------------------------------------------------------------------------
# The client


@dataclass
class ClientStats:
    """Counters tests and metrics read."""

    pipelines: int = 0
    feed_entries: int = 0
    reconnects: int = 0
    wake_all: int = 0
    #: reads answered at once with CacheUnavailable while the breaker was open
    fast_failures: int = 0


class CacheClient:
    """Shared per hub process; use :meth:`shared`, not the constructor."""

    _shared: ClassVar[dict[tuple[Any, ...], CacheClient]] = {}

    def __init__(
        self,
        settings: RedisSettings,
        *,
        prefix: str,
        block_seconds: float = DEFAULT_BLOCK_SECONDS,
        read_timeout: float = READ_TIMEOUT,
        log: Logger | None = None,
    ) -> None:
        self.settings = settings
        #: the event loop the client was made in (its tasks and connections live there)
        self.loop: asyncio.AbstractEventLoop | None
        try:
            self.loop = asyncio.get_running_loop()
        except RuntimeError:  # made outside a loop (tests): shared() never returns such
            self.loop = None
        self.keys = Keys(prefix)
        self.block_seconds = block_seconds
        self.log = hub_logger(log, __name__)
        # reads fail fast and are not retried: the breaker and the API take over
        read_settings = dataclasses.replace(
            settings,
            socket_timeout=min(settings.socket_timeout, read_timeout),
            connect_timeout=min(settings.connect_timeout, read_timeout),
        )
        self.redis = connect(read_settings)
        self.redis.set_retry(Retry(NoBackoff(), 0))
        self.breaker = Breaker()
        self._probe: asyncio.Task[None] | None = None
        self._unused_prefix = EveryInterval(UNUSED_PREFIX_LOG_SECONDS)
        feed_settings = dataclasses.replace(
            settings,
            socket_timeout=block_seconds + _SOCKET_MARGIN_SECONDS,
            client_name=settings.client_name + "-feed",
        )
        self._feed_redis = connect(feed_settings)
        self.feed = FeedReader(
            self._feed_redis, self.keys, block_seconds=block_seconds, log=self.log
        )
        self.stats = ClientStats()
        self.replid_probe = ReplidProbe(log=self.log)
        self.connected = False
        self._watches: dict[str, set[Watch]] = {}
        #: questions of this loop tick: one future per pod key (the first question), and
        #: the rare further questions about a key already asked in the same tick
        self._pending: dict[str, asyncio.Future[CacheRead]] = {}
        self._pending_more: list[asyncio.Future[CacheRead]] = []
        self._flush_scheduled = False
        self._flushes: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._positioned = asyncio.Event()
        self._closed = False
        self._registry_key: tuple[Any, ...] | None = None

    # ---- lifecycle

    @classmethod
    def shared(
        cls,
        settings: RedisSettings,
        *,
        prefix: str,
        block_seconds: float = DEFAULT_BLOCK_SECONDS,
        log: Logger | None = None,
    ) -> CacheClient:
        """The client of this event loop for these settings, started on first use.

        ``log``: the hub's logger (a spawner's ``self.log``), used by the client made now.
        """
        loop = asyncio.get_running_loop()
        key = (loop, settings, prefix)
        client = cls._shared.get(key)
        if client is None or client._closed:
            client = cls(settings, prefix=prefix, block_seconds=block_seconds, log=log)
            client._registry_key = key
            cls._shared[key] = client
            client.start()
            client.log.info(
                "kubecache: following the change feed %s at %s",
                client.keys.feed,
                redacted(settings.url),
            )
        return client

    @property
    def closed(self) -> bool:
        return self._closed

    @classmethod
    async def close_all(cls) -> None:
        """Close every shared client of the running loop (hub shutdown, tests)."""
        loop = asyncio.get_running_loop()
        for key, client in list(cls._shared.items()):
            if key[0] is loop:
                await client.close()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._follow(), name="kubecache-change-feed")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._registry_key is not None:
            self._shared.pop(self._registry_key, None)
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
        if self._task is not None:
            self._task.cancel()
            # redis-py shields a running command from cancellation, so a blocked
            # XREAD would hold the task for the whole block time: cut its socket
            await self._feed_redis.connection_pool.disconnect(inuse_connections=True)
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for future in (*self._pending.values(), *self._pending_more):
            if not future.done():
                future.set_exception(CacheUnavailable("the cache client was closed"))
        self._pending.clear()
        self._pending_more.clear()
        self._wake_all("the cache client was closed")
        await self.redis.aclose()
        await self._feed_redis.aclose()

    async def wait_positioned(self, timeout: float) -> bool:
        """Whether the feed reader holds a position (tests; start-up ordering)."""
        try:
            async with asyncio.timeout(timeout):
                await self._positioned.wait()
        except TimeoutError:
            return False
        return True

    # ---- waiting

    @contextlib.asynccontextmanager
    async def watch(
        self, pod_key: str, kinds: frozenset[str] | None = None
    ) -> AsyncIterator[Watch]:
        """Register a waiter for ``pod_key`` before reading, so no change slips between.

        ``kinds``: the feed entry kinds of the pod that wake it (see :class:`Watch`).
        """
        watch = Watch(pod_key, kinds)
        self._watches.setdefault(pod_key, set()).add(watch)
        try:
            yield watch
        finally:
            watches = self._watches.get(pod_key)
            if watches is not None:
                watches.discard(watch)
                if not watches:
                    del self._watches[pod_key]

    def _wake_key(self, key: str, why: str, snapshot: PodSnapshot | None = None) -> int:
        """Wake the waiters of ``key`` that ``why`` concerns; how many."""
        woken = 0
        for watch in self._watches.get(key, ()):
            if watch.kinds is None or why in watch.kinds:
                watch.wake(why, snapshot)
                woken += 1
        return woken

    def _prefetch_keys(self) -> list[str] | None:
        """The pods to read along with the next XREAD: those with waiters, if few."""
        if not self._watches or len(self._watches) > PREFETCH_KEYS:
            return None
        return list(self._watches)

    def _wake_all(self, why: str) -> int:
        """Wake every waiter; how many."""
        self.stats.wake_all += 1
        woken = 0
        for watches in self._watches.values():
            for watch in watches:
                watch.wake(why)
                woken += 1
        return woken

    async def _follow(self) -> None:
        backoff = Backoff(initial=0.1, maximum=10.0)
        while not self._closed:
            try:
                batch = await self.feed.step(self._prefetch_keys())
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, ContractError, KeyError, ValueError) as e:
                if self._closed:
                    return
                delay = backoff.next_delay()
                if self.connected or backoff.attempts == 1:
                    self.log.warning(
                        "kubecache: lost the change feed at %s (%s: %s); retrying in %.1f s",
                        redacted(self.settings.url),
                        type(e).__name__,
                        e,
                        delay,
                    )
                else:
                    self.log.debug("kubecache: change feed still unreachable: %s", e)
                if self.connected:
                    self.connected = False
                    self.stats.reconnects += 1
                    # waiters re-read now and find Redis unreachable: they fall back
                    self._wake_all(f"lost Redis: {e}")
                await asyncio.sleep(delay)
                continue
            if not self.connected:
                self.connected = True
                self._close_breaker("the change feed answered")
                if backoff.attempts:
                    self.log.info(
                        "kubecache: change feed reachable again at %s", redacted(self.settings.url)
                    )
                    # waiters that fell back to the API go back to the cache now
                    self._wake_all("Redis reachable again")
            backoff.reset()
            self._positioned.set()
            if batch.wake_all:
                self.log.debug("kubecache: waking every waiter: %s", batch.wake_all)
                self._wake_all(batch.wake_all)
            self.stats.feed_entries += len(batch.entries)
            woken = 0
            for entry in batch.entries:
                if entry["kind"] == "health":
                    woken += self._wake_all("cache health changed")
                else:
                    key = entry["key"]
                    woken += self._wake_key(key, entry["kind"], batch.snapshots.get(key))
            if woken or batch.wake_all:
                # the woken waiters run before the next read is packed and sent: a start
                # whose pod is ready returns now, not after this loop's next step. Not more
                # iterations: yielding until JupyterHub's await of start() resumed too (3)
                # took 0.25 ms off a sequential readiness but, with 50 spawns at once,
                # delayed the next batch's waiters (p90 12-28 ms against 12-15, 7 Dec)
                await asyncio.sleep(0)

    # ---- reads

    async def get_pod(self, pod_key: str) -> PodSnapshot:
        """The pod's record, with health and Redis time; coalesced per loop tick.

        Raises :class:`CacheUnavailable` when Redis cannot be read (at once while the
        breaker is open).
        """
        return self.snapshot(pod_key, await self.read_pod(pod_key))

    def read_pod(self, pod_key: str) -> asyncio.Future[CacheRead]:
        """:meth:`get_pod` in two steps, for the poll path: this future (the coalesced
        read of this loop tick), then :meth:`snapshot` of its result.

        A plain function, not a coroutine: a poll awaits the future itself (one object
        less per poll in flight). Raises :class:`CacheUnavailable` at once while the
        breaker is open or the client is closed.
        """
        if self._closed:
            raise CacheUnavailable("the cache client is closed")
        self._check_breaker()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[CacheRead] = loop.create_future()
        if pod_key in self._pending:
            self._pending_more.append(future)
        else:
            self._pending[pod_key] = future
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._start_flush)
        return future

    def snapshot(self, pod_key: str, read: CacheRead) -> PodSnapshot:
        """The pod's snapshot from the read that answered :meth:`read_pod`.

        Decoded here, by the caller, not for the whole batch in _flush: a hub polling
        10,000 servers at once would otherwise hold 10,000 decoded records at a time,
        and the garbage collector would walk them over and over.
        """
        raw = read.raw.get(pod_key)
        record = None
        if raw is not None:
            try:
                record = decode_pod_record(raw, key=pod_key)
            except ContractError as e:
                self.log.warning(
                    "kubecache: the cached record of pod %s is unusable: %s", pod_key, e
                )
                raise CacheUnavailable(
                    f"the cached record of pod {pod_key} is unusable: {e}"
                ) from e
        return PodSnapshot(pod_key, record, read.health, read.now_ms, read.node_replid)

    def _start_flush(self) -> None:
        self._flush_scheduled = False
        batch, self._pending = self._pending, {}
        more, self._pending_more = self._pending_more, []
        if batch:
            task = asyncio.create_task(self._flush(batch, more))
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)

    async def _flush(
        self, batch: dict[str, asyncio.Future[CacheRead]], more: list[asyncio.Future[CacheRead]]
    ) -> None:
        keys = list(batch)
        self.stats.pipelines += 1
        ask_replid = self.replid_probe.due(time.monotonic())
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hmget(self.keys.pods, keys)
                pipe.hgetall(self.keys.health)
                pipe.time()
                if ask_replid:
                    pipe.info("replication")
                replies = await pipe.execute(raise_on_error=False)
            for reply in replies[:3]:
                if isinstance(reply, Exception):
                    raise reply
            raw_records, raw_health, time_reply = replies[:3]
            health = CacheHealth.from_redis(raw_health)
            now_ms = redis_time_ms(time_reply)
        except (RedisError, OSError, ContractError) as e:
            self._trip_breaker(e)
            error = CacheUnavailable(f"cannot read the cache at {redacted(self.settings.url)}: {e}")
            for future in (*batch.values(), *more):
                if not future.done():
                    future.set_exception(error)
            return
        if health is None:
            self._note_unused_prefix()
        node_replid = (
            self.replid_probe.answer(replies[3], time.monotonic(), redacted(self.settings.url))
            if ask_replid
            else None
        )
        if len(raw_records) != len(keys):
            error = CacheUnavailable(
                f"the cache at {redacted(self.settings.url)} answered {len(raw_records)} "
                f"records for {len(keys)} keys"
            )
            for future in (*batch.values(), *more):
                if not future.done():
                    future.set_exception(error)
            return
        read = CacheRead(health, now_ms, node_replid, dict(zip(keys, raw_records, strict=True)))
        for future in batch.values():
            if not future.done():
                future.set_result(read)
        for future in more:
            if not future.done():
                future.set_result(read)

    async def events(self, pod_key: str, pod_uid: str) -> list[EventRecord]:
        """The pod's event log, oldest first, only entries of the pod with ``pod_uid``.

        Raises :class:`CacheUnavailable` when Redis cannot be read (at once while the
        breaker is open).
        """
        self._check_breaker()
        try:
            raw = await self.redis.lrange(self.keys.events(pod_key), 0, -1)
        except (RedisError, OSError) as e:
            self._trip_breaker(e)
            raise CacheUnavailable(
                f"cannot read the events of {pod_key} at {redacted(self.settings.url)}: {e}"
            ) from e
        events: list[EventRecord] = []
        for item in raw:
            try:
                event = decode_event_record(item)
            except ContractError as e:
                self.log.warning("kubecache: skipping an event of pod %s: %s", pod_key, e)
                continue
            if event["pod_uid"] == pod_uid:
                events.append(event)
        return events

    # ---- the breaker

    @property
    def available(self) -> bool:
        """False while the breaker is open (reads fail at once, the API answers)."""
        return not self.breaker.open

    def _check_breaker(self) -> None:
        state = self.breaker.state
        if state is not None:
            self.stats.fast_failures += 1
            raise CacheUnavailable(
                f"the cache at {redacted(self.settings.url)} did not answer "
                f"{time.monotonic() - state.opened:.1f} s ago ({state.why}); "
                "reading the Kubernetes API until it does"
            )

    def _trip_breaker(self, error: BaseException) -> None:
        """Open the breaker when Redis did not answer (a refused command, e.g. NOPERM, or an
        unusable record is an answer: those reads fail alone)."""
        if not isinstance(error, (RedisConnectionError, RedisTimeoutError, OSError)):
            return
        why = f"{type(error).__name__}: {error}"
        if not self.breaker.trip(why, time.monotonic()) or self._closed:
            return
        self.log.warning(
            "kubecache: the cache at %s did not answer (%s): polls, starts, stops and "
            "progress read the Kubernetes API until it does (asked again in the background)",
            redacted(self.settings.url),
            why,
        )
        self._probe = asyncio.create_task(self._probe_until_answered(), name="kubecache-probe")

    def _close_breaker(self, how: str) -> None:
        state = self.breaker.close()
        if state is None:
            return
        if self._probe is not None and self._probe is not asyncio.current_task():
            self._probe.cancel()
        self._probe = None
        self.log.info(
            "kubecache: the cache at %s answers again (%s) after %.1f s; reading it again",
            redacted(self.settings.url),
            how,
            time.monotonic() - state.opened,
        )
        # waiters that fell back to the API go back to the cache now
        self._wake_all("Redis answers again")

    async def _probe_until_answered(self) -> None:
        """PING (with the short read timeout) after a growing pause until Redis answers."""
        while self.breaker.open and not self._closed:
            await asyncio.sleep(self.breaker.next_probe_delay())
            try:
                await self.redis.ping()
            except (RedisError, OSError) as e:
                if self.breaker.state is not None:
                    self.breaker.state.why = f"{type(e).__name__}: {e}"
                continue
            self._close_breaker("a probe was answered")
            return

    def _note_unused_prefix(self) -> None:
        held_back = self._unused_prefix.due()
        if held_back is None:
            return
        self.log.warning(
            "kubecache: no cacher writes under the key prefix %r at %s (no %s record): every "
            "poll, start and stop reads the Kubernetes API and progress shows the API's events. "
            "Start the cacher, or give it and the hub the same prefix (cacher --key-prefix or "
            "$KUBECACHE_KEY_PREFIX; c.KubeCacheSpawner.redis_key_prefix); `kubecache doctor` "
            "names the prefixes it finds. (%d reads since the last such line.)",
            self.keys.prefix,
            redacted(self.settings.url),
            self.keys.health,
            held_back,
        )


__all__ = [
    "DEFAULT_BLOCK_SECONDS",
    "READ_TIMEOUT",
    "RECORD_CHANGES",
    "CacheClient",
    "CacheRead",
    "CacheUnavailable",
    "ClientStats",
    "FeedBatch",
    "FeedReader",
    "PodSnapshot",
    "Watch",
]
