"""The simulated kubelet shared by both modes: nodes, scheduler, pod workers, image cache.

attach() registers the nodes and the scheduler with the store; the store
listener starts a PodWorker (kubesim.pod_worker) for each pod bound to one of
our nodes, starts graceful termination when a pod gets a deletionTimestamp,
and aborts the worker when the pod is removed. What a container *does* is the
runtime's business (kubesim.kubelet_fake / kubesim.kubelet_process).
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from kubesim import kubelet_events as ev
from kubesim.cluster import NodeSpec, default_nodes, node_object, pod_key
from kubesim.event_recorder import EventRecorder
from kubesim.kubelet_runtime import (
    ContainerRuntime,
    ExecRefused,
    ExecRequest,
    ExecRunner,
    ExitStatus,
    KubeletTimings,
)
from kubesim.loopback import LoopbackAllocator
from kubesim.pod_worker import HOST_IP, PodWorker, annotation, is_true
from kubesim.scheduler import Scheduler

if TYPE_CHECKING:
    from kubesim.auth import Authenticator
    from kubesim.store import ObjectStore

log = logging.getLogger(__name__)

DEFAULT_PULL_FAILURES = ("*:doesnotexist", "*/nonexistent*")
PULL_FAILS_ANNOTATION = "kubesim.dev/pull-fails"


class SimulatedKubelet:
    """Runs the pods bound to ``nodes``; attach() also attaches the scheduler.

    ``nodes`` default to default_nodes(); ``timings`` is a KubeletTimings, or a number of
    seconds for every step (KubeletTimings.uniform); images matching a
    ``pull_failure_patterns`` fnmatch pattern never pull; unschedulable pods are tried
    again every ``scheduler_retry_interval`` seconds (and whenever capacity frees).
    """

    # Grace period for containers of pods removed without graceful deletion, and at close().
    stop_grace_period = 0.0

    def __init__(
        self,
        nodes: Sequence[NodeSpec] | None = None,
        timings: KubeletTimings | float | None = None,
        *,
        pull_failure_patterns: Iterable[str] = DEFAULT_PULL_FAILURES,
        scheduler_retry_interval: float = 30.0,
        loopback_seed: int | None = None,
    ) -> None:
        self.nodes = list(nodes) if nodes is not None else default_nodes()
        if isinstance(timings, int | float):
            timings = KubeletTimings.uniform(float(timings))
        self.timings = timings or KubeletTimings()
        self.pull_failure_patterns = tuple(pull_failure_patterns)
        self.scheduler = Scheduler(self.nodes, retry_interval=scheduler_retry_interval)
        self.addresses = LoopbackAllocator(seed=loopback_seed)
        self._node_names = {node.name for node in self.nodes}
        self._images: dict[str, set[str]] = {node.name: set() for node in self.nodes}
        self._store: ObjectStore | None = None
        self.auth: Authenticator | None = None  # issues service account tokens for volumes
        self._recorder: EventRecorder | None = None
        self._workers: dict[tuple[str, str], PodWorker] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False

    # --- the Kubelet interface ---------------------------------------------------------------
    def attach(self, store: ObjectStore, auth: Authenticator | None = None) -> None:
        self._store = store
        self.auth = auth
        self._recorder = EventRecorder(store)
        now = ev.rfc3339(ev.utcnow())
        for node in self.nodes:
            if store.get("nodes", None, node.name) is None:
                store.create("nodes", None, node_object(node, host_ip=HOST_IP, now=now))
        self.scheduler.attach(store, self._recorder)
        store.add_listener(self._on_change)
        store.graceful_pods = True  # deleting a scheduled pod now waits for this kubelet

    async def start(self) -> None:
        store = self.store
        self._started = True
        await self.scheduler.start()
        for pod in store.list("pods"):
            self._on_change("ADDED", "pods", pod)

    async def close(self) -> None:
        self._started = False
        await self.scheduler.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await asyncio.gather(
            *(worker.abort(self.stop_grace_period) for worker in list(self._workers.values())),
            return_exceptions=True,
        )
        self._workers.clear()
        await self._close_runtime()

    def read_log(self, namespace: str, name: str, container: str | None) -> bytes | None:
        return None

    def prepare_exec(self, namespace: str, name: str, request: ExecRequest) -> ExecRunner:
        """A runner for an exec into a running container; ExecRefused (the kubelet's
        ``container not found ("name")``) when it is not running."""
        pod = self.store.get("pods", namespace, name)
        status = (pod or {}).get("status") or {}
        statuses = [
            *(status.get("initContainerStatuses") or []),
            *(status.get("containerStatuses") or []),
        ]
        running = any(
            s.get("name") == request.container and "running" in (s.get("state") or {})
            for s in statuses
        )
        if pod is None or not running:
            raise ExecRefused(f'container not found ("{request.container}")')
        return self.exec_runner(pod, request)

    # --- for subclasses ----------------------------------------------------------------------
    def runtime_for(self, container: dict[str, Any], *, main: bool, init: bool) -> ContainerRuntime:
        raise NotImplementedError

    def exec_runner(self, pod: dict[str, Any], request: ExecRequest) -> ExecRunner:
        """How this kubelet runs an exec in a running container of ``pod``."""
        raise NotImplementedError

    def set_up_volumes(self, pod: dict[str, Any]) -> None:
        """Mount the pod's volumes before its sandbox starts (raise volumes.MountFailed).

        The fake kubelet mounts nothing: its containers read no files.
        """

    def pod_removed(self, namespace: str, name: str, uid: str) -> None:
        """The pod left the store: drop what is kept for it (logs, volumes)."""

    async def _close_runtime(self) -> None:
        """End whatever the runtimes still hold (processes)."""

    # --- plumbing ----------------------------------------------------------------------------
    @property
    def store(self) -> ObjectStore:
        if self._store is None:
            raise RuntimeError("attach(store) must be called before start()")
        return self._store

    @property
    def recorder(self) -> EventRecorder:
        assert self._recorder is not None
        return self._recorder

    def spawn(self, coroutine: Any, name: str) -> asyncio.Task[Any]:
        """Run a background task that close() cancels; failures are logged, not lost."""
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("kubelet task %s failed", task.get_name(), exc_info=task.exception())

    def image_present(self, node: str, image: str) -> bool:
        return image in self._images.get(node, set())

    def remember_image(self, node: str, image: str) -> None:
        self._images.setdefault(node, set()).add(image)

    def pull_fails(self, pod: dict[str, Any], container: dict[str, Any], main: bool) -> bool:
        image = str(container.get("image") or "")
        if main and is_true(annotation(pod, PULL_FAILS_ANNOTATION)):
            return True
        return any(fnmatch.fnmatchcase(image, pattern) for pattern in self.pull_failure_patterns)

    # --- listener (only schedules work) ------------------------------------------------------
    def _on_change(self, kind: str, resource: str, obj: dict[str, Any]) -> None:
        if resource != "pods" or not self._started:
            return
        key = pod_key(obj)
        uid = obj["metadata"].get("uid")
        worker = self._workers.get(key)
        if kind == "DELETED":
            if worker is not None and worker.uid == uid:
                del self._workers[key]
                self.spawn(worker.abort(self.stop_grace_period), f"kubelet-abort-{key[0]}/{key[1]}")
            self.recorder.forget_pod(str(uid))
            self.pod_removed(*key, str(uid))
            return
        node = (obj.get("spec") or {}).get("nodeName")
        if node not in self._node_names:
            return
        if worker is not None and worker.uid != uid:
            del self._workers[key]  # same name, new pod: the old one is gone
            self.spawn(worker.abort(self.stop_grace_period), f"kubelet-abort-{key[0]}/{key[1]}")
            worker = None
        deleting = bool(obj["metadata"].get("deletionTimestamp"))
        if worker is None:
            if deleting:
                self.spawn(self._remove_unstarted(obj), f"kubelet-remove-{key[0]}/{key[1]}")
                return
            if (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                return
            worker = PodWorker(self, obj, node)
            self._workers[key] = worker
            worker.task = self.spawn(worker.run(), f"kubelet-pod-{key[0]}/{key[1]}")
        elif deleting and not worker.terminating:
            grace = obj["metadata"].get("deletionGracePeriodSeconds")
            worker.terminating = True
            self.spawn(
                self._terminate(worker, float(grace if grace is not None else 30)),
                f"kubelet-stop-{key[0]}/{key[1]}",
            )

    async def _terminate(self, worker: PodWorker, grace: float) -> None:
        try:
            await worker.terminate(grace)
        finally:
            if self._workers.get(worker.key) is worker:
                del self._workers[worker.key]
            self.recorder.forget_pod(worker.uid)

    async def _remove_unstarted(self, pod: dict[str, Any]) -> None:
        """A pod being deleted that this kubelet never ran: nothing to stop."""
        namespace, name = pod_key(pod)
        current = self.store.get("pods", namespace, name)
        if current is not None and current["metadata"].get("uid") == pod["metadata"].get("uid"):
            self.store.remove("pods", namespace, name)


__all__ = [
    "HOST_IP",
    "ExitStatus",
    "KubeletTimings",
    "PodWorker",
    "SimulatedKubelet",
    "annotation",
    "is_true",
]
