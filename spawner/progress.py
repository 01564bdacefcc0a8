"""Spawn progress events in KubeSpawner's format, from cached event records.

Pure: :class:`ProgressTracker` turns event log snapshots into the events
``Spawner.progress()`` yields, each Kubernetes Event (uid) shown once, the
bar approaching 90 % as KubeSpawner's does.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from typing import Any

from kubecache.contract import EventRecord

#: The bar never passes this while waiting for events; JupyterHub shows 100 when ready.
PROGRESS_CEILING = 90


def event_message(event: EventRecord) -> str:
    """``"{timestamp} [{type}] {message}"`` like KubeSpawner's progress messages."""
    return f"{event.get('last') or event.get('first') or ''} [{event['type']}] {event['message']}"


def event_like(event: EventRecord, *, namespace: str, pod_name: str) -> dict[str, Any]:
    """A dict shaped like the core/v1 Event KubeSpawner passes as ``raw_event``.

    Holds what the record keeps: metadata uid/resourceVersion, involvedObject
    (kind Pod, namespace, name, uid), type, reason, message, count,
    firstTimestamp and lastTimestamp.
    """
    return {
        "metadata": {"uid": event["uid"], "resourceVersion": str(event["rv"])},
        "involvedObject": {
            "kind": "Pod",
            "apiVersion": "v1",
            "namespace": namespace,
            "name": pod_name,
            "uid": event["pod_uid"],
        },
        "type": event["type"],
        "reason": event["reason"],
        "message": event["message"],
        "count": event["count"],
        "firstTimestamp": event.get("first"),
        "lastTimestamp": event.get("last"),
        "eventTime": None,
    }


def slow_spawn_event(template: str, elapsed: float) -> dict[str, Any]:
    """The patience message KubeSpawner shows after slow_spawn_message_threshold."""
    return {"message": textwrap.dedent(template).format(seconds=int(elapsed))}


class ProgressTracker:
    """Remembers which events were shown and where the bar stands."""

    def __init__(self, *, namespace: str, pod_name: str) -> None:
        self.namespace = namespace
        self.pod_name = pod_name
        self.progress = 0.0
        self._shown: set[str] = set()

    def new_events(self, events: Iterable[EventRecord]) -> list[dict[str, Any]]:
        """Progress events for the events not shown before, in log order.

        An Event updated later (its count incremented) keeps its place: it
        was shown already, like in KubeSpawner whose list is keyed by uid.
        """
        out: list[dict[str, Any]] = []
        for event in events:
            if event["uid"] in self._shown:
                continue
            self._shown.add(event["uid"])
            # each event gets a third closer to the ceiling: 30 50 63 72 78 ...
            self.progress += (PROGRESS_CEILING - self.progress) / 3
            out.append(
                {
                    "progress": int(self.progress),
                    "message": event_message(event),
                    "raw_event": event_like(
                        event, namespace=self.namespace, pod_name=self.pod_name
                    ),
                }
            )
        return out


class SlowSpawnTimer:
    """When to show the slow-spawn message (threshold, then every ``frequency`` s)."""

    def __init__(self, *, threshold: float, frequency: float) -> None:
        self.threshold = threshold
        self.frequency = frequency
        self._last_shown: float | None = None

    def due(self, elapsed: float) -> bool:
        if self.threshold <= 0 or elapsed < self.threshold:
            return False
        if self._last_shown is not None and elapsed < self._last_shown + self.frequency:
            return False
        self._last_shown = elapsed
        return True

    def seconds_until_next(self, elapsed: float) -> float | None:
        """Seconds until :meth:`due` may be true again; None when never."""
        if self.threshold <= 0:
            return None
        if self._last_shown is None:
            return max(0.0, self.threshold - elapsed)
        return max(0.0, self._last_shown + max(self.frequency, 0.001) - elapsed)


__all__ = [
    "PROGRESS_CEILING",
    "ProgressTracker",
    "SlowSpawnTimer",
    "event_like",
    "event_message",
    "slow_spawn_event",
]
