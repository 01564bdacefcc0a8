"""Pure translation of cache contents into what the CLI shows: rows and tables."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from kubecache.contract import CacheHealth, EventRecord, Freshness, PodRecord, user_and_server


@dataclass(frozen=True)
class ServerRow:
    user: str
    server: str
    namespace: str
    pod: str
    phase: str
    ready: bool
    node: str
    ip: str
    age_s: int | None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def user_of(record: PodRecord) -> str:
    return user_and_server(record)[0]


def server_of(record: PodRecord) -> str:
    return user_and_server(record)[1]


def display_phase(record: PodRecord) -> str:
    """Phase as `kubectl get pods` would summarise it (Terminating, waiting reasons)."""
    if "deleted" in record:
        return "Terminating"
    for container in record["containers"]:
        if container["state"] == "waiting" and container.get("reason"):
            return container["reason"]
    return record.get("reason") or record["phase"]


def server_row(record: PodRecord, *, now_s: int) -> ServerRow:
    created = record.get("created")
    return ServerRow(
        user=user_of(record),
        server=server_of(record),
        namespace=record["namespace"],
        pod=record["name"],
        phase=display_phase(record),
        ready=record["ready"],
        node=record.get("node", ""),
        ip=record.get("ip", ""),
        age_s=None if created is None else max(0, now_s - created),
    )


def matches(row: ServerRow, *, user: str | None, server: str | None, namespace: str | None) -> bool:
    return (
        (user is None or row.user == user)
        and (server is None or row.server == server)
        and (namespace is None or row.namespace == namespace)
    )


def human_age(seconds: int | None) -> str:
    """kubectl-style ages: 45s, 12m, 3h, 2d."""
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit != "m" else 1):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Left-aligned columns separated by two spaces, like kubectl."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )


def servers_table(rows: Sequence[ServerRow]) -> str:
    return table(
        ["USER", "SERVER", "NAMESPACE", "POD", "PHASE", "READY", "NODE", "IP", "AGE"],
        (
            [
                r.user,
                r.server or "-",
                r.namespace,
                r.pod,
                r.phase,
                "yes" if r.ready else "no",
                r.node or "-",
                r.ip or "-",
                human_age(r.age_s),
            ]
            for r in rows
        ),
    )


def status_summary(
    health: CacheHealth | None,
    *,
    freshness: Freshness,
    now_ms: int,
    records: int,
    feed_length: int,
    prefix: str,
) -> dict[str, Any]:
    """What `kubecache status` reports, as a JSON-ready dict."""
    summary: dict[str, Any] = {
        "prefix": prefix,
        "freshness": freshness.value,
        "records": records,
        "feed_length": feed_length,
    }
    if health is not None:
        summary.update(
            leader=health.leader,
            epoch=health.epoch,
            synced=health.synced,
            heartbeat_age_s=round(health.heartbeat_age_ms(now_ms) / 1000, 1),
            lag_ms=health.lag_ms,
            pods_rv=health.pods_rv,
            events_rv=health.events_rv,
            pods_watch=health.pods_watch,
            events_watch=health.events_watch,
            namespaces=health.namespaces or "(all)",
            pod_selector=health.pod_selector,
            redis_primary=f"{health.primary_addr or '?'}, {health.failovers} failovers"
            + (
                f", last {human_age((now_ms - health.last_failover_ms) // 1000)} ago"
                if health.last_failover_ms
                else ""
            ),
        )
    return summary


def status_text(summary: dict[str, Any]) -> str:
    labels = [
        ("freshness", "cache"),
        ("leader", "leader"),
        ("epoch", "epoch"),
        ("synced", "synced"),
        ("heartbeat_age_s", "heartbeat age (s)"),
        ("lag_ms", "event->Redis lag (ms)"),
        ("records", "pod records"),
        ("feed_length", "feed entries"),
        ("pods_watch", "pods watch"),
        ("events_watch", "events watch"),
        ("pods_rv", "pods resourceVersion"),
        ("events_rv", "events resourceVersion"),
        ("namespaces", "namespaces"),
        ("pod_selector", "pod selector"),
        ("redis_primary", "redis primary"),
        ("prefix", "key prefix"),
    ]
    width = max(len(label) for _, label in labels)
    return "\n".join(
        f"{label.ljust(width)}  {summary[key]}" for key, label in labels if key in summary
    )


def latest_events(entries: Iterable[EventRecord], *, pod_uid: str) -> list[EventRecord]:
    """The pod's events, each Event object once (its latest entry), in log order."""
    latest: dict[str, EventRecord] = {}
    for entry in entries:
        if entry["pod_uid"] == pod_uid:
            latest.pop(entry["uid"], None)
            latest[entry["uid"]] = entry
    return list(latest.values())


def event_line(entry: EventRecord) -> str:
    """KubeSpawner's progress format, plus the reason and repeat count."""
    count = f" (x{entry['count']})" if entry["count"] > 1 else ""
    return (
        f"{entry.get('last', '-')} [{entry['type']}] {entry['reason']}: {entry['message']}{count}"
    )
