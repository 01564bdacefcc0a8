"""Prometheus metrics of one cacher process (its own registry).

Names start with ``kubecache_cacher_``, plus ``kubecache_build_info`` and the
standard ``process_*`` (RSS, CPU, open fds), ``python_info`` and
``python_gc_*`` collectors. Each process (and each test) builds its own
:class:`CacherMetrics`, so nothing is global.

Label values are the same everywhere: ``resource`` is ``pods`` or ``events``
(the watched API resource); ``kind`` is what one Redis write stores: ``pod``
(a record), ``gone`` (a record deleted), ``event`` (an event log entry) or
``health``. Timestamps are Unix seconds of this process's clock; alert on
``time() - metric``. docs/monitoring.md lists every metric and the shipped
alert rules.
"""

from __future__ import annotations

import platform
import time
from collections import deque

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from kubecache import __version__

#: Writer batch names (resources) -> the ``kind`` label the write counters use.
_KIND_OF_BATCH = {"pods": "pod", "events": "event"}

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class CacherMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        p = "kubecache_cacher_"
        self.events = Counter(
            p + "watch_events", "Watch events received", ["resource", "type"], registry=r
        )
        self.relists = Counter(
            p + "relists", "Full LISTs by reason", ["resource", "reason"], registry=r
        )
        self.watch_restarts = Counter(
            p + "watch_restarts", "Watch reconnects by reason", ["resource", "reason"], registry=r
        )
        self.watch_completions = Counter(
            p + "watch_completions",
            "Watches the API server ended cleanly at their timeout (progress on an idle cluster)",
            ["resource"],
            registry=r,
        )
        self.write_latency = Histogram(
            p + "write_seconds",
            "Duration of one Redis write batch",
            ["kind"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.lag = Histogram(
            p + "event_lag_seconds",
            "From receiving a watch event to its Redis write ack",
            ["resource"],
            buckets=_LAG_BUCKETS,
            registry=r,
        )
        self.records = Gauge(p + "records", "Pod records the leader holds", registry=r)
        self.leader = Gauge(p + "leader", "1 while this replica holds the lease", registry=r)
        self.synced = Gauge(p + "synced", "1 once the initial pod list is in Redis", registry=r)
        self.redis_errors = Counter(
            p + "redis_errors", "Failed Redis operations", ["op"], registry=r
        )
        self.malformed = Counter(
            p + "malformed_objects", "Objects skipped as malformed", ["resource"], registry=r
        )
        self.rejected_lines = Counter(
            p + "rejected_watch_lines",
            "Watch lines skipped before their resourceVersion was adopted",
            ["resource", "problem"],
            registry=r,
        )
        self.failovers = Counter(
            p + "failovers",
            "Redis failovers noticed (each starts a new epoch and a full rewrite)",
            registry=r,
        )
        self.primary = Gauge(
            p + "redis_primary_info",
            "1 for the Redis primary the leader writes to",
            ["addr", "replid"],
            registry=r,
        )
        self.heals = Counter(
            p + "heals",
            "Records in Redis found not to match what the leader wrote, by check",
            ["check"],
            registry=r,
        )
        self.api_errors = Counter(
            p + "api_errors", "Failed API requests by status", ["resource", "status"], registry=r
        )
        self.leader_transitions = Counter(
            p + "leader_transitions", "Leadership gained or lost", ["change"], registry=r
        )
        self.writes = Counter(p + "writes", "Redis writes by kind", ["kind"], registry=r)
        self.reconciled_records = Counter(
            p + "list_reconciled_records",
            "What full pod LISTs found in Redis: unchanged, written, deleted, tombstone_removed",
            ["outcome"],
            registry=r,
        )
        self.tombstones_expired = Counter(
            p + "tombstones_expired",
            "Pod deletion tombstones removed by age or count (without a full list)",
            registry=r,
        )
        self.stale_writes = Counter(
            p + "stale_writes", "Writes skipped: Redis held newer data", ["kind"], registry=r
        )
        self.fenced_writes = Counter(
            p + "fenced_writes", "Writes refused: another epoch or lost cache", registry=r
        )
        self.dropped_events = Counter(
            p + "dropped_events", "Events that never reached Redis", ["reason"], registry=r
        )
        self.build_info = Gauge(
            "kubecache_build_info",
            "Always 1; the labels say which kubecache runs",
            ["component", "version", "python"],
            registry=r,
        )
        self.build_info.labels("cacher", __version__, platform.python_version()).set(1)
        self.last_heartbeat = Gauge(
            p + "last_heartbeat_timestamp_seconds",
            "When this replica last wrote the cache heartbeat (leader only; 0 never)",
            registry=r,
        )
        self.last_event = Gauge(
            p + "last_event_timestamp_seconds",
            "When a watch last delivered a change that was written to Redis",
            ["resource"],
            registry=r,
        )
        self.last_progress = Gauge(
            p + "last_progress_timestamp_seconds",
            "When the resource's watch last showed progress (a line, a bookmark, a list, a "
            "watch the server ended at its timeout); readers distrust the cache past the "
            "promise (leader only; 0 never)",
            ["resource"],
            registry=r,
        )
        self.last_full_sync = Gauge(
            p + "last_full_sync_timestamp_seconds",
            "When the last full LIST of the resource was in Redis",
            ["resource"],
            registry=r,
        )
        self.watch_up = Gauge(
            p + "watch_up",
            "1 while the resource's watch is connected (ok), 0 while retrying or failed",
            ["resource"],
            registry=r,
        )
        self.maxmemory_policy = Gauge(
            p + "redis_maxmemory_policy",
            "1 for Redis's maxmemory-policy ('unknown' when it cannot be read); "
            "evicting is 1 for a policy that may evict kubecache's keys (allkeys-*)",
            ["policy", "evicting"],
            registry=r,
        )
        self.evicted_keys = Gauge(
            p + "redis_evicted_keys",
            "evicted_keys of Redis INFO stats at the leader's last look (server-wide)",
            registry=r,
        )
        self.prefix_conflict = Gauge(
            p + "prefix_conflict",
            "1 while another deployment (another Lease) writes or wants this key prefix",
            registry=r,
        )
        self.gave_way = Counter(
            p + "gave_way",
            "Leases given up because Redis writes failed for the write deadline",
            registry=r,
        )
        self.term_delay = Gauge(
            p + "term_restart_delay_seconds",
            "Back-off before the current restart of the leader's term after a fault",
            registry=r,
        )
        for resource in ("pods", "events"):  # present from the start, so alerts see them
            self.last_event.labels(resource)
            self.last_progress.labels(resource)
            self.last_full_sync.labels(resource)
            self.watch_up.labels(resource)
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        # Recent lags for the health record's lag_ms (p99 of a short window).
        self._recent_lags: deque[float] = deque(maxlen=2048)

    # Convenience used by the watch loops and the orchestration.

    def observe_lag(self, resource: str, received: float, *, now: float | None = None) -> None:
        """Record event→Redis lag of an event received at monotonic ``received``."""
        lag = max(0.0, (time.monotonic() if now is None else now) - received)
        self.lag.labels(resource).observe(lag)
        self._recent_lags.append(lag)
        self.last_event.labels(resource).set(time.time())

    def heartbeat_written(self) -> None:
        self.last_heartbeat.set(time.time())

    def progress_age(self, resource: str, age: float | None) -> None:
        """The resource's watch last progressed ``age`` seconds ago (None: not yet)."""
        if age is not None:
            self.last_progress.labels(resource).set(time.time() - age)

    def full_sync_done(self, resource: str) -> None:
        self.last_full_sync.labels(resource).set(time.time())

    def watch_state(self, resource: str, state: str) -> None:
        """``ok``, ``retrying <why>``, ``failed <why>`` or ``starting``."""
        self.watch_up.labels(resource).set(1 if state == "ok" else 0)

    def recent_lag_p99_ms(self) -> int:
        """p99 of the lags seen since the last call (0 with none), in ms."""
        if not self._recent_lags:
            return 0
        values = sorted(self._recent_lags)
        self._recent_lags.clear()
        return int(values[min(len(values) - 1, int(len(values) * 0.99))] * 1000)

    def set_primary(self, addr: str, replid: str) -> None:
        """Name the primary written to (the info metric holds one series)."""
        self.primary.clear()
        self.primary.labels(addr, replid).set(1)

    def set_maxmemory_policy(self, policy: str, evicting: bool) -> None:
        self.maxmemory_policy.clear()
        self.maxmemory_policy.labels(policy, "1" if evicting else "0").set(1)

    # The writer's WriterMetrics protocol (kubecache.cacher.metrics_interface).

    def records_written(self, kind: str, n: int) -> None:
        self.writes.labels(kind).inc(n)

    def writes_stale(self, kind: str, n: int) -> None:
        self.stale_writes.labels(kind).inc(n)

    def writes_fenced(self) -> None:
        self.fenced_writes.inc()

    def list_reconciled(self, outcome: str, n: int) -> None:
        self.reconciled_records.labels(outcome).inc(n)

    def tombstones_removed(self, n: int) -> None:
        self.tombstones_expired.inc(n)

    def malformed_object(self, resource: str) -> None:
        self.malformed.labels(resource).inc()

    def events_dropped(self, reason: str, n: int) -> None:
        self.dropped_events.labels(reason).inc(n)

    def write_seconds(self, kind: str, seconds: float) -> None:
        self.write_latency.labels(_KIND_OF_BATCH.get(kind, kind)).observe(seconds)

    def redis_error(self, op: str) -> None:
        self.redis_errors.labels(_KIND_OF_BATCH.get(op, op)).inc()

    def expose(self) -> bytes:
        return generate_latest(self.registry)

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """Current value of a sample (0 when absent); for tests and health."""
        got = self.registry.get_sample_value(name, labels or {})
        return 0.0 if got is None else float(got)


__all__ = ["CacherMetrics"]
