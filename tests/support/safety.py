"""Counting what must never happen, under any fault: the safety figures of issue 9.

- a false "stopped": ``poll()`` of a server whose pod is Running and Ready
  in the API, the same pod (uid) before and after the poll, returns non-None;
- a failed start of a pod that was Ready in the API: ``start()`` raises
  although the pod it made became Ready while the start was waiting;
- an unhandled exception: ``poll()`` raising, ``start()``/``stop()`` raising
  anything but a deliberate error (SpawnError, TimeoutError, KubeApiError),
  or a log record carrying a traceback.

The truth comes from the API's own store (kubesim in-process), not from
Redis: :class:`KubesimTruth` follows every committed pod change. Used by
the spawner integration tests, the chaos suite (``tests/chaos``) and
benchmarks; nothing here is a test hook of the spawner.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubecache.spawner import KubeCacheSpawner
from kubecache.spawner.kube_api import KubeApiError
from kubecache.spawner.spawner import SpawnError
from kubesim.store import Change, ObjectStore

#: Errors a start or stop may raise on purpose (with a message for the user).
DELIBERATE_ERRORS: tuple[type[BaseException], ...] = (SpawnError, TimeoutError, KubeApiError)


def is_running_and_ready(pod: dict[str, Any] | None) -> bool:
    """Running, Ready, not terminating: what a user would call a live server."""
    if not pod:
        return False
    status = pod.get("status") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    return (
        status.get("phase") == "Running"
        and ready
        and not (pod.get("metadata") or {}).get("deletionTimestamp")
    )


class KubesimTruth:
    """What the API says about pods, and which pods (by uid) were ever Ready."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        #: (namespace, name) -> {uid: monotonic time it was first seen Ready}
        self.ready_since: dict[tuple[str, str], dict[str, float]] = {}
        store.add_change_listener(self._on_change)

    def close(self) -> None:
        self.store.remove_change_listener(self._on_change)

    def _on_change(self, change: Change) -> None:
        if change.resource != "pods" or change.type == "DELETED":
            return
        if is_running_and_ready(change.obj):
            uid = change.obj["metadata"]["uid"]
            self.ready_since.setdefault(change.key, {}).setdefault(uid, time.monotonic())

    def running_uid(self, namespace: str, name: str) -> str | None:
        """The uid of the pod if it is Running and Ready in the API now."""
        pod = self.store.get("pods", namespace, name)
        if pod is not None and is_running_and_ready(pod):
            uid: str = pod["metadata"]["uid"]
            return uid
        return None

    def became_ready_after(self, namespace: str, name: str, moment: float) -> bool:
        """Whether a pod of that name became Ready at or after ``moment`` (monotonic)."""
        return any(t >= moment for t in self.ready_since.get((namespace, name), {}).values())


#: Loggers of the hub side: the spawner logs through JupyterHub's (traitlets') logger.
HUB_LOGGERS = ("kubecache", "traitlets", "JupyterHub")


class TracebackCounter(logging.Handler):
    """Counts log records that carry a traceback (``log.exception``): unhandled errors.

    ``records`` holds those of the hub's loggers, ``others`` the rest (e.g.
    kubesim's own server), which say nothing about the spawner.
    """

    def __init__(self, loggers: tuple[str, ...] = HUB_LOGGERS) -> None:
        super().__init__(logging.ERROR)
        self.loggers = loggers
        self.records: list[str] = []
        self.others: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.exc_info:
            return
        line = f"{record.name}: {record.getMessage()}"
        exc = record.exc_info[1]
        if exc is not None:
            line += f" ({type(exc).__name__}: {exc})"
        if any(record.name == n or record.name.startswith(n + ".") for n in self.loggers):
            self.records.append(line)
        else:
            self.others.append(line)


@dataclass
class SafetyFigures:
    polls: int = 0
    false_stopped: int = 0
    starts: int = 0
    failed_starts: int = 0
    failed_starts_of_ready_pods: int = 0
    stops: int = 0
    unhandled_exceptions: int = 0
    details: list[str] = field(default_factory=list)

    @property
    def safe(self) -> bool:
        return not (
            self.false_stopped or self.failed_starts_of_ready_pods or self.unhandled_exceptions
        )

    def summary(self) -> dict[str, int]:
        return {
            "polls": self.polls,
            "false_stopped": self.false_stopped,
            "starts": self.starts,
            "failed_starts": self.failed_starts,
            "failed_starts_of_ready_pods": self.failed_starts_of_ready_pods,
            "stops": self.stops,
            "unhandled_exceptions": self.unhandled_exceptions,
        }


class SafetySampler:
    """Runs polls, starts and stops of KubeCacheSpawners and counts the safety figures."""

    def __init__(self, truth: KubesimTruth, *, max_details: int = 50) -> None:
        self.truth = truth
        self.figures = SafetyFigures()
        self.max_details = max_details
        self.tracebacks = TracebackCounter()

    def __enter__(self) -> SafetySampler:
        logging.getLogger().addHandler(self.tracebacks)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger().removeHandler(self.tracebacks)
        self.figures.unhandled_exceptions += len(self.tracebacks.records)
        for line in self.tracebacks.records:
            self._detail(f"traceback logged: {line}")
        self.tracebacks.records.clear()

    def _detail(self, text: str) -> None:
        if len(self.figures.details) < self.max_details:
            self.figures.details.append(text)

    async def sample_polls(self, spawners: Iterable[KubeCacheSpawner]) -> list[int | None]:
        """poll() every spawner whose pod is Running and Ready in the API now, concurrently.

        A non-None answer is false when the same pod (uid) still runs after
        the poll. Returns the answers (in order of the polled spawners).
        """
        polled: list[tuple[KubeCacheSpawner, str]] = []
        for spawner in spawners:
            uid = self.truth.running_uid(spawner.namespace, spawner.pod_name)
            if uid is not None:
                polled.append((spawner, uid))
        answers = await asyncio.gather(*(s.poll() for s, _ in polled), return_exceptions=True)
        results: list[int | None] = []
        for (spawner, uid), answer in zip(polled, answers, strict=True):
            self.figures.polls += 1
            if isinstance(answer, BaseException):
                self.figures.unhandled_exceptions += 1
                self._detail(f"poll of {spawner.pod_name} raised {answer!r}")
                results.append(None)
                continue
            if answer is not None and (
                self.truth.running_uid(spawner.namespace, spawner.pod_name) == uid
            ):
                self.figures.false_stopped += 1
                self._detail(f"poll of {spawner.pod_name} said {answer} while it runs ({uid})")
            results.append(answer)
        return results

    async def start(self, spawner: KubeCacheSpawner) -> str | None:
        """start(); a failure is counted, and counted against safety when its pod was Ready."""
        self.figures.starts += 1
        began = time.monotonic()
        try:
            return await spawner.start()
        except DELIBERATE_ERRORS as e:
            self.figures.failed_starts += 1
            if self.truth.became_ready_after(spawner.namespace, spawner.pod_name, began):
                self.figures.failed_starts_of_ready_pods += 1
                self._detail(f"start of {spawner.pod_name} failed with its pod Ready: {e}")
            return None
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self.figures.failed_starts += 1
            self.figures.unhandled_exceptions += 1
            self._detail(f"start of {spawner.pod_name} raised {e!r}")
            return None

    async def stop(self, spawner: KubeCacheSpawner, *, now: bool = False) -> bool:
        """stop(); True when it finished. Deliberate errors are not counted as unhandled."""
        self.figures.stops += 1
        try:
            await spawner.stop(now=now)
        except DELIBERATE_ERRORS as e:
            self._detail(f"stop of {spawner.pod_name}: {e}")
            return False
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self.figures.unhandled_exceptions += 1
            self._detail(f"stop of {spawner.pod_name} raised {e!r}")
            return False
        return True


def running_pods(store: ObjectStore, spawners: Sequence[KubeCacheSpawner]) -> int:
    """How many of the spawners' pods are Running and Ready in the API."""
    return sum(
        1 for s in spawners if is_running_and_ready(store.get("pods", s.namespace, s.pod_name))
    )


__all__ = [
    "DELIBERATE_ERRORS",
    "HUB_LOGGERS",
    "KubesimTruth",
    "SafetyFigures",
    "SafetySampler",
    "TracebackCounter",
    "is_running_and_ready",
    "running_pods",
]
