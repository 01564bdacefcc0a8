"""What the writer reports, without depending on a metrics library.

:class:`WriterMetrics` is the interface; the cacher's Prometheus module
implements it. :class:`CountingMetrics` keeps plain counters (tests,
benchmarks, ``--once``); :data:`NO_METRICS` discards everything.

Kinds are ``pod`` (record written), ``gone`` (record deleted), ``event``
(event log entry) and ``health``; resources are ``pods`` and ``events``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol


class WriterMetrics(Protocol):
    def records_written(self, kind: str, n: int) -> None:
        """``n`` writes of ``kind`` reached Redis."""

    def writes_stale(self, kind: str, n: int) -> None:
        """``n`` writes skipped because Redis (or the last relist) holds newer data."""

    def writes_fenced(self) -> None:
        """A write was refused: another writer's epoch, or Redis lost the cache."""

    def malformed_object(self, resource: str) -> None:
        """An object of ``resource`` could not be reduced and was skipped."""

    def list_reconciled(self, outcome: str, n: int) -> None:
        """A full pod LIST found ``n`` records ``unchanged``, ``written`` (new or different),
        ``deleted`` (not listed) or a ``tombstone_removed``."""

    def tombstones_removed(self, n: int) -> None:
        """``n`` deletion tombstones expired by age or count."""

    def events_dropped(self, reason: str, n: int) -> None:
        """``n`` events never reached Redis (``untracked pod``, ``pending full``)."""

    def write_seconds(self, kind: str, seconds: float) -> None:
        """Duration of one pipelined round trip writing ``kind``."""

    def redis_error(self, op: str) -> None:
        """A Redis command of operation ``op`` failed (the error propagates)."""


class _NoMetrics:
    def records_written(self, kind: str, n: int) -> None:
        pass

    def writes_stale(self, kind: str, n: int) -> None:
        pass

    def writes_fenced(self) -> None:
        pass

    def malformed_object(self, resource: str) -> None:
        pass

    def list_reconciled(self, outcome: str, n: int) -> None:
        pass

    def tombstones_removed(self, n: int) -> None:
        pass

    def events_dropped(self, reason: str, n: int) -> None:
        pass

    def write_seconds(self, kind: str, seconds: float) -> None:
        pass

    def redis_error(self, op: str) -> None:
        pass


NO_METRICS: WriterMetrics = _NoMetrics()


@dataclass
class CountingMetrics:
    """Plain counters of everything the writer reports."""

    written: Counter[str] = field(default_factory=Counter)
    stale: Counter[str] = field(default_factory=Counter)
    fenced: int = 0
    malformed: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    round_trips: Counter[str] = field(default_factory=Counter)
    seconds: dict[str, float] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    reconciled: Counter[str] = field(default_factory=Counter)
    tombstones_expired: int = 0

    def records_written(self, kind: str, n: int) -> None:
        self.written[kind] += n

    def writes_stale(self, kind: str, n: int) -> None:
        self.stale[kind] += n

    def writes_fenced(self) -> None:
        self.fenced += 1

    def malformed_object(self, resource: str) -> None:
        self.malformed[resource] += 1

    def list_reconciled(self, outcome: str, n: int) -> None:
        self.reconciled[outcome] += n

    def tombstones_removed(self, n: int) -> None:
        self.tombstones_expired += n

    def events_dropped(self, reason: str, n: int) -> None:
        self.dropped[reason] += n

    def write_seconds(self, kind: str, seconds: float) -> None:
        self.round_trips[kind] += 1
        self.seconds[kind] = self.seconds.get(kind, 0.0) + seconds

    def redis_error(self, op: str) -> None:
        self.errors[op] += 1


__all__ = ["NO_METRICS", "CountingMetrics", "WriterMetrics"]
