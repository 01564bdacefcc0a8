"""What a cached pod record means for a spawner: running, failed, exited.

Pure functions over :class:`kubecache.contract.PodRecord` and
:class:`~kubecache.contract.EventRecord`; no I/O. A record comes from the
cache or, for a pod read from the API, from
:func:`kubecache.contract.lenient_pod_record` (the cacher's translation). The rules follow
KubeSpawner 7.1 (``is_pod_running`` and ``poll``), with the differences
named where they occur.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from kubecache.contract import ContainerSummary, EventRecord, PodRecord

#: The container whose exit ends the server (KubeSpawner's name for it).
NOTEBOOK_CONTAINER = "notebook"

#: Container waiting reasons that end a start at once instead of at
#: start_timeout: the kubelet has already retried and backs off.
DEFAULT_START_FAILURE_REASONS: tuple[str, ...] = (
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImageNeverPull",
    "InvalidImageName",
)

#: How many of the pod's last Warning events a start error quotes.
WARNINGS_IN_ERROR = 3


def is_running(record: PodRecord | None) -> bool:
    """Running and reachable: phase Running, a pod IP, not terminating, all containers ready.

    KubeSpawner's ``is_pod_running``. A pod with no containers summarised is
    not running (KubeSpawner would fail on a missing containerStatuses list).
    """
    if record is None:
        return False
    containers = record.get("containers") or []
    return (
        record["phase"] == "Running"
        and bool(record.get("ip"))
        and "deleted" not in record
        and bool(containers)
        and all(c.get("ready") for c in containers)
    )


def notebook_container(record: PodRecord) -> ContainerSummary | None:
    for container in record.get("containers") or []:
        if container.get("name") == NOTEBOOK_CONTAINER:
            return container
    return None


def exit_status(record: PodRecord | None) -> int | None:
    """``poll()``'s answer for a pod known from a trusted cache.

    - no pod: 1
    - Pending: None
    - the ``notebook`` container terminated: its exit code (1 when unknown)
    - phase Succeeded or Failed otherwise (e.g. evicted, no container
      statuses left): 0 for Succeeded, 1 for Failed. KubeSpawner returns
      None for a Failed pod whose notebook container is not terminated;
      such a pod never runs again, so kubecache reports it stopped.
    - otherwise None (running, starting or terminating)
    """
    if record is None:
        return 1
    phase = record["phase"]
    if phase == "Pending":
        return None
    notebook = notebook_container(record)
    if notebook is not None and notebook.get("state") == "terminated":
        return int(notebook.get("exit_code", 1))
    if phase == "Succeeded":
        return 0
    if phase == "Failed":
        return 1
    return None


def start_failure(
    record: PodRecord, *, failure_reasons: Collection[str] = DEFAULT_START_FAILURE_REASONS
) -> str | None:
    """Why a start cannot succeed any more, or None while it still may.

    Unschedulable pods are not failures here: a cluster autoscaler may add a
    node, so they wait for start_timeout like in KubeSpawner.
    """
    where = f"pod {record['namespace']}/{record['name']}"
    phase = record["phase"]
    if phase in ("Failed", "Succeeded"):
        detail = "; ".join(x for x in (record.get("reason"), record.get("message")) if x)
        notebook = notebook_container(record)
        if notebook is not None and notebook.get("state") == "terminated":
            code = notebook.get("exit_code")
            exited = "the notebook container exited" + (
                f" with code {code}" if code is not None else ""
            )
            detail = "; ".join(x for x in (detail, exited) if x)
        return f"{where} {phase.lower()} before it was ready" + (f": {detail}" if detail else "")
    if "deleted" in record:
        return f"{where} is being deleted before it was ready"
    for container in record.get("containers") or []:
        reason = container.get("reason")
        if container.get("state") == "waiting" and reason in failure_reasons:
            text = f"{where}: container {container['name']} is in {reason}"
            if "exit_code" in container:
                text += f" (last exit code {container['exit_code']})"
            message = container.get("message")
            return text + (f": {message}" if message else "")
    return None


def pending_reason(record: PodRecord | None) -> str | None:
    """A short why-not-yet for logs and timeout errors (e.g. the unschedulable message)."""
    if record is None:
        return "the pod does not exist"
    if record.get("unschedulable"):
        return f"unschedulable: {record['unschedulable']}"
    for container in record.get("containers") or []:
        if container.get("state") == "waiting" and container.get("reason"):
            return f"container {container['name']} is waiting: {container['reason']}"
    if record["phase"] == "Running" and not record.get("ready"):
        return "running but not ready"
    return f"phase {record['phase']}"


def latest_events(events: Iterable[EventRecord]) -> list[EventRecord]:
    """Each event once (its last entry), in log order of those last entries."""
    last: dict[str, EventRecord] = {}
    for event in events:
        last.pop(event["uid"], None)
        last[event["uid"]] = event
    return list(last.values())


def warning_messages(events: Iterable[EventRecord], *, limit: int = WARNINGS_IN_ERROR) -> list[str]:
    """The messages of the pod's last ``limit`` Warning events, oldest first, no repeats."""
    messages: list[str] = []
    for event in latest_events(events):
        if event["type"] != "Warning":
            continue
        if event["message"] in messages:
            messages.remove(event["message"])
        messages.append(event["message"])
    return messages[-limit:] if limit else []


def with_warnings(why: str, warnings: Iterable[str]) -> str:
    """A failure message: ``why`` plus the warnings it does not already say (the
    unschedulable reason is both the record's and the scheduler's event message)."""
    new = [message for message in warnings if message not in why]
    return f"{why}. Last warnings: {' | '.join(new)}" if new else why


def pod_like(record: PodRecord, *, port: int) -> dict[str, Any]:
    """A dict shaped like the Pod API object, for hooks written for KubeSpawner.

    Holds what the record knows: metadata name/namespace/uid/labels/
    annotations, spec.nodeName, one ``notebook`` container with the
    ``notebook-port`` port, status phase/podIP and container statuses
    (name, ready, restartCount).
    """
    return {
        "metadata": {
            "name": record["name"],
            "namespace": record["namespace"],
            "uid": record["uid"],
            "resourceVersion": str(record["rv"]),
            "labels": dict(record.get("labels") or {}),
            "annotations": dict(record.get("annotations") or {}),
        },
        "spec": {
            "nodeName": record.get("node"),
            "containers": [
                {
                    "name": NOTEBOOK_CONTAINER,
                    "ports": [{"name": "notebook-port", "containerPort": port}],
                }
            ],
        },
        "status": {
            "phase": record["phase"],
            "podIP": record.get("ip"),
            "containerStatuses": [
                {
                    "name": c["name"],
                    "ready": bool(c.get("ready")),
                    "restartCount": c.get("restarts", 0),
                }
                for c in record.get("containers") or []
            ],
        },
    }


__all__ = [
    "DEFAULT_START_FAILURE_REASONS",
    "NOTEBOOK_CONTAINER",
    "exit_status",
    "is_running",
    "latest_events",
    "notebook_container",
    "pending_reason",
    "pod_like",
    "start_failure",
    "warning_messages",
    "with_warnings",
]
