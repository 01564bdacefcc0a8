"""The simulated default-scheduler: binds pending pods to nodes, or reports why it cannot.

Pods with ``spec.schedulerName`` other than ``default-scheduler`` are left
alone, as are pods created with ``spec.nodeName``. An unschedulable pod gets
PodScheduled=False/Unschedulable and a Warning FailedScheduling event; it is
tried again whenever capacity frees (a bound pod is deleted or terminates)
and every ``retry_interval`` seconds, the repeat going into the same event's
series. Decisions are the pure functions of kubesim.fit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kubesim import kubelet_events as ev
from kubesim.cluster import NodeSpec, NodeUsage, pod_key
from kubesim.errors import ApiError
from kubesim.event_recorder import EventRecorder
from kubesim.fit import choose_node, failed_scheduling_message

if TYPE_CHECKING:
    from kubesim.store import ObjectStore

log = logging.getLogger(__name__)

DEFAULT_SCHEDULER = "default-scheduler"
# How many pods one pass schedules before letting the event loop run other work.
_BATCH = 50


class _AlreadyBound(Exception):
    """Raised inside a store mutation to abandon a binding that lost a race."""


def wants_scheduling(pod: dict[str, Any]) -> bool:
    """True for a live pod waiting for the default scheduler."""
    spec = pod.get("spec") or {}
    metadata = pod.get("metadata") or {}
    return (
        not spec.get("nodeName")
        and (spec.get("schedulerName") or DEFAULT_SCHEDULER) == DEFAULT_SCHEDULER
        and not metadata.get("deletionTimestamp")
        and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
    )


def _set_condition(pod: dict[str, Any], condition: dict[str, Any]) -> bool:
    """Put a PodScheduled condition in place; False when nothing changed."""
    status = pod.setdefault("status", {})
    conditions = status.setdefault("conditions", [])
    for index, existing in enumerate(conditions):
        if existing.get("type") == condition["type"]:
            same = all(existing.get(k) == condition.get(k) for k in ("status", "reason", "message"))
            if same:
                return False
            conditions[index] = condition
            return True
    conditions.append(condition)
    return True


class Scheduler:
    """Schedules the store's pending pods onto ``nodes``."""

    def __init__(
        self, nodes: Sequence[NodeSpec], *, retry_interval: float = 30.0, instance: str = "kubesim"
    ) -> None:
        self.nodes = list(nodes)
        self.usage = NodeUsage(self.nodes)
        self.retry_interval = retry_interval
        self._instance = instance
        self._store: ObjectStore | None = None
        self._recorder: EventRecorder | None = None
        self._pending: dict[tuple[str, str], None] = {}  # insertion-ordered set
        self._unschedulable: set[tuple[str, str]] = set()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False

    # --- wiring ------------------------------------------------------------------------------
    def attach(self, store: ObjectStore, recorder: EventRecorder | None = None) -> None:
        self._store = store
        self._recorder = recorder or EventRecorder(store, scheduler_instance=self._instance)
        store.add_listener(self._on_change)

    async def start(self) -> None:
        store = self._require_store()
        for pod in store.list("pods"):
            self.usage.observe(pod)
            if wants_scheduling(pod):
                self._pending[pod_key(pod)] = None
        self._started = True
        self._wake.set()
        self._tasks = [
            asyncio.create_task(self._run(), name="kubesim-scheduler"),
            asyncio.create_task(self._retry_periodically(), name="kubesim-scheduler-retry"),
        ]

    async def close(self) -> None:
        self._started = False
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def _require_store(self) -> ObjectStore:
        if self._store is None:
            raise RuntimeError("Scheduler.attach(store) must be called before start()")
        return self._store

    # --- listener (never blocks: only bookkeeping and a wake-up) -----------------------------
    def _on_change(self, kind: str, resource: str, obj: dict[str, Any]) -> None:
        if resource != "pods":
            return
        key = pod_key(obj)
        if kind == "DELETED":
            freed = self.usage.forget(key)
            self._pending.pop(key, None)
            self._unschedulable.discard(key)
        else:
            freed = self.usage.observe(obj)
            if wants_scheduling(obj):
                if key not in self._unschedulable:
                    self._pending[key] = None
            else:
                self._pending.pop(key, None)
                self._unschedulable.discard(key)
        if freed:
            self._requeue_unschedulable()
        if self._pending and self._started:
            self._wake.set()

    def _requeue_unschedulable(self) -> None:
        for key in sorted(self._unschedulable):
            self._pending[key] = None
        self._unschedulable.clear()

    # --- loop --------------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            done = 0
            while self._pending:
                key = next(iter(self._pending))
                del self._pending[key]
                try:
                    self.schedule_one(key)
                except Exception:
                    log.exception("scheduling %s/%s failed; it stays pending", *key)
                done += 1
                if done % _BATCH == 0:
                    await asyncio.sleep(0)

    async def _retry_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.retry_interval)
            if self._unschedulable:
                self._requeue_unschedulable()
                self._wake.set()

    def schedule_one(self, key: tuple[str, str]) -> str | None:
        """One scheduling attempt for the pod ``key``; returns the node it was bound to."""
        store = self._require_store()
        pod = store.get("pods", key[0], key[1])
        if pod is None or not wants_scheduling(pod):
            return None
        used = {node.name: self.usage.used(node.name) for node in self.nodes}
        chosen, verdicts = choose_node(pod, self.nodes, used)
        if chosen is None:
            self._report_unschedulable(pod, failed_scheduling_message(verdicts))
            return None
        return self._bind(pod, chosen)

    def _bind(self, pod: dict[str, Any], node: str) -> str | None:
        store = self._require_store()
        namespace, name = pod_key(pod)
        uid = pod["metadata"].get("uid")
        now = ev.rfc3339(ev.utcnow())

        def bind(current: dict[str, Any]) -> None:
            if current["metadata"].get("uid") != uid or current.get("spec", {}).get("nodeName"):
                raise _AlreadyBound
            current["spec"]["nodeName"] = node
            _set_condition(
                current,
                {
                    "type": "PodScheduled",
                    "status": "True",
                    "lastProbeTime": None,
                    "lastTransitionTime": now,
                },
            )
            current["status"].setdefault("phase", "Pending")

        try:
            bound = store.mutate("pods", namespace, name, bind)
        except (_AlreadyBound, ApiError):
            return None
        self._unschedulable.discard((namespace, name))
        log.debug("scheduled pod %s/%s to %s", namespace, name, node)
        assert self._recorder is not None
        self._recorder.scheduler(
            bound, reason="Scheduled", action="Binding", message=ev.scheduled_message(bound, node)
        )
        return node

    def _report_unschedulable(self, pod: dict[str, Any], message: str) -> None:
        store = self._require_store()
        namespace, name = pod_key(pod)
        uid = pod["metadata"].get("uid")
        self._unschedulable.add((namespace, name))
        condition = {
            "type": "PodScheduled",
            "status": "False",
            "lastProbeTime": None,
            "lastTransitionTime": ev.rfc3339(ev.utcnow()),
            "reason": "Unschedulable",
            "message": message,
        }
        if _needs_condition(pod, condition):

            def mark(current: dict[str, Any]) -> None:
                if current["metadata"].get("uid") != uid:
                    raise _AlreadyBound
                _set_condition(current, condition)
                current["status"].setdefault("phase", "Pending")

            try:
                pod = store.mutate("pods", namespace, name, mark)
            except (_AlreadyBound, ApiError):
                return
        log.info("pod %s/%s is unschedulable: %s", namespace, name, message)
        assert self._recorder is not None
        self._recorder.scheduler(
            pod, reason="FailedScheduling", action="Scheduling", type_="Warning", message=message
        )


def _needs_condition(pod: dict[str, Any], condition: dict[str, Any]) -> bool:
    for existing in (pod.get("status") or {}).get("conditions") or []:
        if existing.get("type") == condition["type"]:
            return any(existing.get(k) != condition.get(k) for k in ("status", "reason", "message"))
    return True
