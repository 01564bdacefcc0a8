"""Server-side printing of pods: the ``meta.k8s.io/v1`` Table that ``kubectl get pods`` asks for.

kubectl sends ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io,...,application/json``
and prints the columns the API server chose; without a Table it falls back to NAME and AGE
only, so an operator could not see whether a pod is Running. The columns and their values
follow the API server's pod printer: NAME, READY, STATUS, RESTARTS, AGE, and with ``-o wide``
IP, NODE, NOMINATED NODE, READINESS GATES. RESTARTS is the count only (the API server adds
"(5m ago)" after a restart). Other resources keep the plain JSON (kubectl's NAME/AGE).
A watch asking for a Table (``kubectl get pods -w``) gets each pod event's object as a
one-row Table.
Pure: objects in, Table out.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = ["human_duration", "pod_row", "pod_table", "table_event_lines", "wants_table"]

COLUMNS: list[tuple[str, str, int, str]] = [
    ("Name", "name", 0, "Name must be unique within a namespace."),
    ("Ready", "", 0, "The aggregate readiness state of this pod for accepting traffic."),
    ("Status", "", 0, "The aggregate status of the containers in this pod."),
    ("Restarts", "", 0, "The number of times the containers in this pod have been restarted."),
    ("Age", "", 0, "CreationTimestamp is a timestamp representing the server time ..."),
    ("IP", "", 1, "IP address allocated to the pod. Routable at least within the cluster."),
    ("Node", "", 1, "NodeName is a request to schedule this pod onto a specific node."),
    ("Nominated Node", "", 1, "nominatedNodeName is set when this pod preempts other pods."),
    ("Readiness Gates", "", 1, "If specified, all readiness gates will be evaluated."),
]


def wants_table(accept: str) -> bool:
    """Whether an Accept header asks for a meta.k8s.io/v1 Table (kubectl get does)."""
    for media_range in accept.split(","):
        kind, *params = (part.strip() for part in media_range.split(";"))
        options = dict(param.partition("=")[::2] for param in params)
        if (
            kind == "application/json"
            and options.get("as") == "Table"
            and options.get("g") == "meta.k8s.io"
            and options.get("v") == "v1"
        ):
            return True
    return False


def human_duration(seconds: float) -> str:
    """Kubernetes' HumanDuration: 45s, 5m30s, 2h10m, 3d4h, 2y10d."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def _age(metadata: dict[str, Any], now: datetime) -> str:
    created = metadata.get("creationTimestamp")
    if not isinstance(created, str):
        return "<unknown>"
    try:
        at = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return "<unknown>"
    return human_duration((now - at).total_seconds())


def _terminated_reason(terminated: dict[str, Any], prefix: str = "") -> str:
    if terminated.get("reason"):
        return prefix + str(terminated["reason"])
    if terminated.get("signal"):
        return f"{prefix}Signal:{terminated['signal']}"
    return f"{prefix}ExitCode:{terminated.get('exitCode', 0)}"


def pod_status_text(pod: dict[str, Any]) -> tuple[str, int, int]:
    """(STATUS, ready containers, restarts) as the API server's pod printer computes them."""
    status = pod.get("status") or {}
    spec = pod.get("spec") or {}
    reason = str(status.get("reason") or status.get("phase") or "Unknown")
    restarts, ready = 0, 0
    initializing = False
    init_statuses = status.get("initContainerStatuses") or []
    for index, container in enumerate(init_statuses):
        restarts += int(container.get("restartCount") or 0)
        state = container.get("state") or {}
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if terminated and not terminated.get("exitCode"):
            continue
        initializing = True
        if terminated:
            reason = _terminated_reason(terminated, "Init:")
        elif waiting and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + str(waiting["reason"])
        else:
            reason = f"Init:{index}/{len(spec.get('initContainers') or [])}"
        break
    if not initializing:
        restarts = 0
        has_running = False
        for container in reversed(status.get("containerStatuses") or []):
            restarts += int(container.get("restartCount") or 0)
            state = container.get("state") or {}
            terminated, waiting = state.get("terminated"), state.get("waiting")
            if waiting and waiting.get("reason"):
                reason = str(waiting["reason"])
            elif terminated:
                reason = _terminated_reason(terminated)
            elif container.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            pod_ready = any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in status.get("conditions") or []
            )
            reason = "Running" if pod_ready else "NotReady"
    metadata = pod.get("metadata") or {}
    if metadata.get("deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    return reason, ready, restarts


def pod_row(pod: dict[str, Any], now: datetime) -> list[Any]:
    """The cells of one pod, in the order of COLUMNS."""
    metadata = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    reason, ready, restarts = pod_status_text(pod)
    gates = spec.get("readinessGates") or []
    return [
        metadata.get("name", ""),
        f"{ready}/{len(spec.get('containers') or [])}",
        reason,
        str(restarts),
        _age(metadata, now),
        status.get("podIP") or "<none>",
        spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        "<none>" if not gates else f"0/{len(gates)}",
    ]


def pod_table(
    pods: list[dict[str, Any]], *, list_metadata: dict[str, Any], now: datetime | None = None
) -> dict[str, Any]:
    """A Table of ``pods``; each row's object is the pod's metadata (includeObject=Metadata)."""
    at = now or datetime.now(UTC)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_metadata,
        "columnDefinitions": [
            {"name": name, "type": "string", "format": fmt, "description": text, "priority": p}
            for name, fmt, p, text in COLUMNS
        ],
        "rows": [
            {
                "cells": pod_row(pod, at),
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": pod.get("metadata") or {},
                },
            }
            for pod in pods
        ],
    }


def table_event_lines(lines: list[bytes]) -> list[bytes]:
    """Watch lines with each pod replaced by its one-row Table (BOOKMARK and ERROR kept)."""
    converted = []
    for line in lines:
        event = orjson.loads(line)
        obj = event.get("object") or {}
        if event.get("type") in ("ADDED", "MODIFIED", "DELETED") and obj.get("kind") == "Pod":
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            event["object"] = pod_table([obj], list_metadata={"resourceVersion": rv})
            converted.append(orjson.dumps(event) + b"\n")
        else:
            converted.append(line)
    return converted
