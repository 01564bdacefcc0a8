"""Pure translation of cache contents into what the CLI shows: rows and tables.

Every text made here for a terminal passes Redis values through
:func:`kubecache.terminal.printable` (they are untrusted).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from kubecache.contract import (
    SERVERNAME_KEY,
    USERNAME_KEY,
    CacheHealth,
    EventRecord,
    Freshness,
    PodRecord,
    name_was_cut,
    user_and_server,
)
from kubecache.hub_standby_state import LeaseRecord
from kubecache.terminal import display_width, pad, printable

#: Shown after a name the record keeps only the start of (the match is still exact).
CUT_MARK = "…"


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
    names_cut: bool = False

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
        names_cut=name_was_cut(record, USERNAME_KEY) or name_was_cut(record, SERVERNAME_KEY),
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
    """Left-aligned columns separated by two spaces, like kubectl (cells made printable)."""
    cells = [[str(h) for h in headers]] + [
        ["" if c is None else printable(str(c)) for c in r] for r in rows
    ]
    widths = [max(display_width(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(pad(cell, width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )


def servers_table(rows: Sequence[ServerRow]) -> str:
    return table(
        ["USER", "SERVER", "NAMESPACE", "POD", "PHASE", "READY", "NODE", "IP", "AGE"],
        (
            [
                r.user + (CUT_MARK if r.names_cut else ""),
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


def hub_lease_summary(
    name: str, record: LeaseRecord | None, *, ttl_ms: int, now_ms: int
) -> dict[str, Any]:
    """The hub-standby lease ``name``: which replica runs the hub, since when, after whom."""
    if record is None:
        return {"name": name, "active": None}
    return {
        "name": name,
        "active": record.holder,
        "since_s_ago": None
        if record.since_ms is None
        else round(max(0, now_ms - record.since_ms) / 1000, 1),
        "took_over_from": record.previous,
        "expires_in_s": round(ttl_ms / 1000, 1) if ttl_ms >= 0 else None,
    }


def hub_lease_text(lease: dict[str, Any]) -> str:
    """One line: ``hub-a since 2m (took over from hub-b), lease expires in 12.9 s``."""
    if lease.get("active") is None:
        return (
            f"none holds lease {lease['name']!r} (no `kubecache hub-standby` replica runs "
            "the hub under this name)"
        )
    since = lease.get("since_s_ago")
    text = str(lease["active"])
    if since is not None:
        text += f", active for {human_age(int(since))}"
    previous = lease.get("took_over_from")
    text += f", took over from {previous}" if previous else ", took a free lease"
    if lease.get("expires_in_s") is not None:
        text += f"; lease expires in {lease['expires_in_s']} s unless renewed"
    return text


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
        ("hub_lease", "active hub"),
        ("reason", "why not fresh"),
    ]
    width = max(len(label) for _, label in labels)
    shown = dict(summary)
    if isinstance(shown.get("hub_lease"), dict):
        shown["hub_lease"] = hub_lease_text(shown["hub_lease"])
    return "\n".join(
        f"{label.ljust(width)}  {printable(str(shown[key]))}"
        for key, label in labels
        if key in shown
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
    last, kind = printable(entry.get("last", "-")), printable(entry["type"])
    return f"{last} [{kind}] {printable(entry['reason'])}: {printable(entry['message'])}{count}"


def freshness_reason(
    health: CacheHealth | None,
    freshness: Freshness,
    *,
    now_ms: int,
    stale_after_ms: int,
    prefix: str,
    health_problem: str | None = None,
) -> str:
    """Why the cache is not fresh, in the operator's terms."""
    if health_problem:
        return f"the cache health record is unreadable ({health_problem})"
    if health is None:
        return (
            f"no cacher has written under the key prefix {prefix!r} in this Redis "
            "(or Redis was flushed); check --key-prefix / KUBECACHE_KEY_PREFIX"
        )
    age_s = health.heartbeat_age_ms(now_ms) / 1000
    if freshness is Freshness.INCOMPATIBLE:
        return f"written by schema version {health.schema}, which this kubecache cannot read"
    if freshness is Freshness.FAILED_OVER:
        return "Redis failed over; the cacher has not yet rewritten the cache on the new primary"
    if freshness is Freshness.NOT_SYNCED:
        return f"the cacher is still listing pods (epoch {health.epoch}): records may be missing"
    if age_s * 1000 > stale_after_ms:
        return (
            f"the last cacher heartbeat was {age_s:.1f} s ago (limit {stale_after_ms / 1000:g} s, "
            f"from {health.leader!r})"
        )
    if health.pods_watch.startswith("failed"):
        return f"the cacher's pods watch cannot recover: {health.pods_watch}"
    progress = health.pods_progress_age_ms(now_ms)
    if progress is not None:
        return (
            f"the cacher's pods watch has shown no progress for {progress / 1000:.1f} s "
            f"(limit {health.progress_stale_ms / 1000:g} s: no change, bookmark, list or "
            "watch ended by the API server on time; a frozen or lost connection to the API?)"
        )
    return freshness.value


def empty_reason(
    health: CacheHealth | None,
    *,
    records: int,
    malformed: int,
    filters: dict[str, str | None],
    prefix: str,
) -> str:
    """Why ``kubecache servers`` found nothing to show."""
    given = ", ".join(f"{flag} {value!r}" for flag, value in filters.items() if value is not None)
    if records and given:
        return f"none of the {records} pods in the cache match {given}"
    if malformed and not records:
        return f"all {malformed} pod records under {prefix!r} are malformed (see above)"
    if health is None:
        return (
            f"no cacher has ever written under the key prefix {prefix!r} in this Redis: "
            "check --key-prefix / KUBECACHE_KEY_PREFIX, or run `kubecache doctor`"
        )
    return f"the cache under {prefix!r} holds no pods (the cacher watches: " + (
        f"namespaces {health.namespaces or '(all)'}, pod selector {health.pod_selector!r})"
    )
