"""Cache health: the ``P health`` hash, and how far a reader may trust the cache."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from kubecache.contract.encoding import as_text
from kubecache.contract.errors import ContractError
from kubecache.contract.keys import SCHEMA_VERSION
from kubecache.selector import SelectorError, parsed_selector


class Freshness(enum.Enum):
    """How far a reader may trust the cache right now."""

    FRESH = "fresh"  # synced, heartbeat recent, watches healthy
    NOT_SYNCED = "not-synced"  # a (re)sync is running: records may be missing
    STALE = "stale"  # no recent heartbeat, or a watch cannot recover
    UNKNOWN = "unknown"  # no health record: no cacher ever wrote, or Redis was flushed
    INCOMPATIBLE = "incompatible"  # written by another schema version
    UNCOVERED = "uncovered"  # the cacher's namespaces or pod selector leave this pod out
    FAILED_OVER = "failed-over"  # health was written on another Redis primary (a promoted replica)

    @property
    def trusted(self) -> bool:
        """Whether an absent record means the pod is absent."""
        return self is Freshness.FRESH


WatchState = Literal["ok", "retrying", "failed"]

#: Health hash fields (all strings in Redis).
HEALTH_FIELDS = (
    "schema",  # SCHEMA_VERSION
    "leader",  # identity of the cacher replica that writes
    "epoch",  # int, see the docstring of kubecache.contract
    "synced",  # "1" once the epoch's initial list of pods is complete
    "heartbeat_ms",  # Redis TIME of the leader's last heartbeat, ms
    "pods_rv",  # last pod resourceVersion applied
    "events_rv",  # last event resourceVersion applied
    "pods_watch",  # ok | retrying | failed, with the reason after a space
    "events_watch",
    "namespaces",  # comma-separated, empty for all
    "pod_selector",  # label selector of the pods the cacher tracks
    "lag_ms",  # recent event->Redis lag (p99 over the last heartbeat period), ms
    "records",  # number of pod records the leader holds
    # Redis time of the pods watch's last sign of progress: a line, a bookmark, a list, a
    # watch the API server ended cleanly at its timeout (docs/cache-freshness.md)
    "pods_progress_ms",
    "events_progress_ms",  # the same for the events watch
    "progress_stale_ms",  # promise: a progressing watch shows a sign at least this often
    "primary_replid",  # master_replid of the Redis primary this epoch writes to ('' if unknown)
    "primary_addr",  # host:port of that primary, for operators
    "failovers",  # Redis failovers this cacher noticed (each one started a new epoch)
    "last_failover_ms",  # Redis time of the last one, 0 if none
    "lease",  # namespace/name of the writing deployment's Lease (kubecache.cacher.prefix_owner)
    "contender",  # JSON: a leader of another deployment refused to take this prefix over
)


@dataclass(frozen=True)
class CacheHealth:
    schema: int
    leader: str
    epoch: int
    synced: bool
    heartbeat_ms: int
    pods_rv: str = ""
    events_rv: str = ""
    pods_watch: str = "ok"
    events_watch: str = "ok"
    namespaces: str = ""
    pod_selector: str = ""
    lag_ms: int = 0
    records: int = 0
    pods_progress_ms: int = 0
    events_progress_ms: int = 0
    progress_stale_ms: int = 0
    primary_replid: str = ""
    primary_addr: str = ""
    failovers: int = 0
    last_failover_ms: int = 0

    def to_redis(self) -> dict[str, str]:
        return {
            "schema": str(self.schema),
            "leader": self.leader,
            "epoch": str(self.epoch),
            "synced": "1" if self.synced else "0",
            "heartbeat_ms": str(self.heartbeat_ms),
            "pods_rv": self.pods_rv,
            "events_rv": self.events_rv,
            "pods_watch": self.pods_watch,
            "events_watch": self.events_watch,
            "namespaces": self.namespaces,
            "pod_selector": self.pod_selector,
            "lag_ms": str(self.lag_ms),
            "records": str(self.records),
            "pods_progress_ms": str(self.pods_progress_ms),
            "events_progress_ms": str(self.events_progress_ms),
            "progress_stale_ms": str(self.progress_stale_ms),
            "primary_replid": self.primary_replid,
            "primary_addr": self.primary_addr,
            "failovers": str(self.failovers),
            "last_failover_ms": str(self.last_failover_ms),
        }

    @classmethod
    def from_redis(cls, fields: Mapping[Any, Any]) -> CacheHealth | None:
        """Parse ``P health``; None when the hash is empty (no cacher wrote)."""
        if not fields:
            return None
        try:
            text = {as_text(k): as_text(v) for k, v in fields.items()}
            return cls(
                schema=int(text.get("schema", "0")),
                leader=text.get("leader", ""),
                epoch=int(text.get("epoch", "0")),
                synced=text.get("synced") == "1",
                heartbeat_ms=int(text.get("heartbeat_ms", "0")),
                pods_rv=text.get("pods_rv", ""),
                events_rv=text.get("events_rv", ""),
                pods_watch=text.get("pods_watch", "ok"),
                events_watch=text.get("events_watch", "ok"),
                namespaces=text.get("namespaces", ""),
                pod_selector=text.get("pod_selector", ""),
                lag_ms=int(text.get("lag_ms") or 0),
                records=int(text.get("records") or 0),
                pods_progress_ms=int(text.get("pods_progress_ms") or 0),
                events_progress_ms=int(text.get("events_progress_ms") or 0),
                progress_stale_ms=int(text.get("progress_stale_ms") or 0),
                primary_replid=text.get("primary_replid", ""),
                primary_addr=text.get("primary_addr", ""),
                failovers=int(text.get("failovers") or 0),
                last_failover_ms=int(text.get("last_failover_ms") or 0),
            )
        except ValueError as e:
            raise ContractError(f"malformed cache health record in Redis: {e}") from e

    def covers(self, namespace: str, labels: Mapping[str, str]) -> bool:
        """Whether the cacher watches pods in ``namespace`` with ``labels``.

        An absent record only means an absent pod for pods the cacher
        watches; an unparsable selector covers nothing (never trusted).
        """
        watched = [n for n in self.namespaces.split(",") if n]
        if watched and namespace not in watched:
            return False
        try:
            return parsed_selector(self.pod_selector).matches(labels)
        except SelectorError:
            return False

    def heartbeat_age_ms(self, now_ms: int) -> int:
        return max(0, now_ms - self.heartbeat_ms)

    def pods_progress_age_ms(self, now_ms: int) -> int | None:
        """How long ago the pods watch last showed progress; None when not reported."""
        if not self.pods_progress_ms:
            return None
        return max(0, now_ms - self.pods_progress_ms)

    def freshness(
        self, *, now_ms: int, stale_after_ms: int, node_replid: str | None = None
    ) -> Freshness:
        """Whether the pod records can be trusted at Redis time ``now_ms``.

        ``node_replid`` is the ``master_replid`` of the Redis node the reader
        reads from (``INFO replication``); when it differs from the primary
        this health was written on, the node is a promoted replica that may
        miss the last writes: :data:`Freshness.FAILED_OVER` until the cacher
        has taken over there (and written its own ``primary_replid``).

        Fresh means the watches progress, not only that the cacher is alive:
        a pods watch without a sign of progress for ``progress_stale_ms``
        (the cacher's promise; bookmarks and bounded watch durations keep an
        idle but healthy watch within it) is stale although the heartbeat is
        recent. A failed pod watch makes the cache stale; a failed event
        watch only costs progress messages, so it does not.
        """
        if self.schema != SCHEMA_VERSION:
            return Freshness.INCOMPATIBLE
        if node_replid and self.primary_replid and node_replid != self.primary_replid:
            return Freshness.FAILED_OVER
        if self.heartbeat_age_ms(now_ms) > stale_after_ms:
            return Freshness.STALE
        if self.pods_watch.startswith("failed"):
            return Freshness.STALE
        progress_age = self.pods_progress_age_ms(now_ms)
        if progress_age is not None and 0 < self.progress_stale_ms < progress_age:
            return Freshness.STALE
        if not self.synced:
            return Freshness.NOT_SYNCED
        return Freshness.FRESH


def health_freshness(
    health: CacheHealth | None,
    *,
    now_ms: int,
    stale_after_ms: int,
    node_replid: str | None = None,
) -> Freshness:
    """:meth:`CacheHealth.freshness`, with UNKNOWN for a missing record."""
    if health is None:
        return Freshness.UNKNOWN
    return health.freshness(now_ms=now_ms, stale_after_ms=stale_after_ms, node_replid=node_replid)


def redis_time_ms(time_reply: tuple[int, int] | list[int] | list[bytes]) -> int:
    """Milliseconds from a Redis ``TIME`` reply (seconds, microseconds)."""
    seconds, micros = (int(x) for x in time_reply)
    return seconds * 1000 + micros // 1000
