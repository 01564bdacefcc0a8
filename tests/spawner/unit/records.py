"""Pod and event records in every state a spawner meets, built with the contract's types."""

from __future__ import annotations

from typing import Any

from kubecache.contract import ContainerSummary, EventRecord, PodRecord

POD_UID = "uid-of-this-spawn"


def container(name: str = "notebook", **fields: Any) -> ContainerSummary:
    summary: dict[str, Any] = {"name": name, "ready": False, "state": "waiting", "restarts": 0}
    summary.update(fields)
    return summary  # type: ignore[return-value]


def pod(
    phase: str = "Pending", *, containers: list[ContainerSummary] | None = None, **fields: Any
) -> PodRecord:
    record: dict[str, Any] = {
        "namespace": "jhub",
        "name": "jupyter-alice",
        "uid": POD_UID,
        "rv": 10,
        "phase": phase,
        "ready": False,
        "containers": containers if containers is not None else [container()],
        "labels": {},
        "annotations": {},
    }
    record.update(fields)
    return record  # type: ignore[return-value]


def running(**fields: Any) -> PodRecord:
    fields.setdefault("containers", [container(ready=True, state="running")])
    fields.setdefault("ip", "10.0.0.7")
    return pod("Running", ready=True, **fields)


def event(
    uid: str,
    message: str,
    *,
    type: str = "Normal",
    reason: str = "Scheduled",
    pod_uid: str = POD_UID,
    rv: int = 1,
    count: int = 1,
    last: str | None = "2024-05-01T12:00:01Z",
) -> EventRecord:
    record: dict[str, Any] = {
        "uid": uid,
        "rv": rv,
        "pod_uid": pod_uid,
        "type": type,
        "reason": reason,
        "message": message,
        "count": count,
    }
    if last:
        record["last"] = last
    return record  # type: ignore[return-value]
