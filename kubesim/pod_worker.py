"""The kubelet's work for one pod: sandbox, init containers, containers, restarts, stopping.

A PodWorker runs the real kubelet's sequence for a pod bound to one of its
kubelet's nodes: sandbox and pod IP, init containers one by one to completion,
then every container (pull, create, start; the first start of each container
after the previous one's), readiness, exits and restarts per restartPolicy with
crash-loop back-off, image pull failures with back-off. terminate() is graceful
deletion (Killing events, stop with the grace period, final status, removal);
abort() ends everything when the pod is gone or kubesim stops. Container
behaviour comes from the kubelet's runtimes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from typing import TYPE_CHECKING, Any, Protocol

from kubesim import kubelet_events as ev
from kubesim.cluster import pod_key
from kubesim.errors import ApiError
from kubesim.kubelet_runtime import (
    ContainerHandle,
    ContainerRuntime,
    ExitStatus,
    FailedStart,
    KubeletTimings,
)
from kubesim.loopback import LoopbackAllocator
from kubesim.pod_status import ContainerRun, render_status
from kubesim.volumes import MountFailed

if TYPE_CHECKING:
    from kubesim.event_recorder import EventRecorder
    from kubesim.store import ObjectStore

log = logging.getLogger(__name__)

HOST_IP = "127.0.0.1"  # every simulated node is this machine
# The kubelet's volume operations retry with exponential back-off from 500 ms to 2m2s.
MOUNT_RETRY_INITIAL = 0.5
MOUNT_RETRY_MAX = 122.0


class PodGone(Exception):
    """The pod this worker runs was removed or replaced."""


def annotation(pod: dict[str, Any], name: str) -> str | None:
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(name)
    return None if value is None else str(value)


def is_true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1", "yes")


def pull_policy(container: dict[str, Any]) -> str:
    """imagePullPolicy, defaulted as the API server does (Always for :latest or no tag)."""
    if container.get("imagePullPolicy"):
        return str(container["imagePullPolicy"])
    image = str(container.get("image") or "")
    last = image.rsplit("/", 1)[-1]
    if "@" in last:
        return "IfNotPresent"
    if ":" not in last or last.endswith(":latest"):
        return "Always"
    return "IfNotPresent"


def image_size(image: str) -> int:
    """A stable, plausible image size in bytes."""
    return 50_000_000 + int(hashlib.sha256(image.encode()).hexdigest()[:8], 16) % 900_000_000


class Kubelet(Protocol):
    """What a PodWorker uses of the kubelet that runs it (:class:`kubesim.kubelet_base.
    SimulatedKubelet`, which imports this module)."""

    timings: KubeletTimings
    addresses: LoopbackAllocator

    @property
    def store(self) -> ObjectStore: ...

    @property
    def recorder(self) -> EventRecorder: ...

    def runtime_for(
        self, container: dict[str, Any], *, main: bool, init: bool
    ) -> ContainerRuntime: ...

    def set_up_volumes(self, pod: dict[str, Any]) -> None: ...

    def image_present(self, node: str, image: str) -> bool: ...

    def remember_image(self, node: str, image: str) -> None: ...

    def pull_fails(self, pod: dict[str, Any], container: dict[str, Any], main: bool) -> bool: ...


class PodWorker:
    """The kubelet's work for one pod."""

    def __init__(self, kubelet: Kubelet, pod: dict[str, Any], node: str) -> None:
        self.kubelet = kubelet
        self.key = pod_key(pod)
        self.uid = str(pod["metadata"].get("uid"))
        self.node = node
        self.pod = pod  # latest copy this worker wrote or read
        spec = pod.get("spec") or {}
        self.restart_policy = spec.get("restartPolicy") or "Always"
        self.init_specs: list[dict[str, Any]] = list(spec.get("initContainers") or [])
        self.specs: list[dict[str, Any]] = list(spec.get("containers") or [])
        initial = "PodInitializing" if self.init_specs else "ContainerCreating"
        self.init_runs = [
            ContainerRun(c["name"], c.get("image", ""), init=True, reason="PodInitializing")
            for c in self.init_specs
        ]
        self.runs = [
            ContainerRun(c["name"], c.get("image", ""), reason=initial) for c in self.specs
        ]
        self.handles: dict[str, ContainerHandle] = {}
        self.pod_ip: str | None = None
        self.start_time = ev.rfc3339(ev.utcnow())
        self.task: asyncio.Task[Any] | None = None
        self.terminating = False

    @property
    def name(self) -> str:
        return f"{self.key[0]}/{self.key[1]}"

    # --- store writes ------------------------------------------------------------------------
    def write_status(self) -> None:
        def update(current: dict[str, Any]) -> None:
            if current["metadata"].get("uid") != self.uid:
                raise PodGone
            current["status"] = render_status(
                current,
                init_runs=self.init_runs,
                runs=self.runs,
                pod_ip=self.pod_ip,
                host_ip=HOST_IP,
                start_time=self.start_time,
                now=ev.rfc3339(ev.utcnow()),
            )

        try:
            self.pod = self.kubelet.store.mutate("pods", self.key[0], self.key[1], update)
        except ApiError as error:
            if error.code == 404:
                raise PodGone from error
            raise

    def event(
        self,
        reason: str,
        message: str,
        *,
        type_: str = "Normal",
        container: dict[str, Any] | None = None,
        init: bool = False,
    ) -> None:
        field_path = ev.container_field_path(container["name"], init=init) if container else None
        self.kubelet.recorder.kubelet(
            self.pod,
            node=self.node,
            reason=reason,
            message=message,
            type_=type_,
            field_path=field_path,
        )

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds)

    # --- lifecycle ---------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            await self._run()
        except PodGone:
            log.debug("pod %s went away while the kubelet ran it", self.name)

    async def _run(self) -> None:
        timings = self.kubelet.timings
        self.write_status()
        await self._mount_volumes()
        await self.sleep(timings.sandbox)
        self.pod_ip = self.kubelet.addresses.allocate()
        self.write_status()
        log.debug("pod %s: sandbox ready on %s with IP %s", self.name, self.node, self.pod_ip)
        for spec, run in zip(self.init_specs, self.init_runs, strict=True):
            if not await self._run_init(spec, run):
                return
        for run in self.runs:
            run.wait("ContainerCreating")
        if self.init_runs:
            self.write_status()
        starts = [asyncio.Event() for _ in self.specs]
        try:
            async with asyncio.TaskGroup() as group:
                for index, (spec, run) in enumerate(zip(self.specs, self.runs, strict=True)):
                    group.create_task(self._supervise(spec, run, index, starts))
        except* PodGone:
            log.debug("pod %s went away while its containers ran", self.name)

    async def _mount_volumes(self) -> None:
        """Volumes before the sandbox; a failed mount is a FailedMount warning, then a retry."""
        attempt = 0
        while True:
            try:
                self.kubelet.set_up_volumes(self.pod)
                return
            except MountFailed as failure:
                log.info("pod %s: %s", self.name, failure)
                self.event("FailedMount", str(failure), type_="Warning")
            await self.sleep(min(MOUNT_RETRY_INITIAL * 2**attempt, MOUNT_RETRY_MAX))
            attempt += 1
            current = self.kubelet.store.get("pods", *self.key)
            if current is None or current["metadata"].get("uid") != self.uid:
                raise PodGone
            self.pod = current

    async def _start_instance(
        self, spec: dict[str, Any], run: ContainerRun, *, init: bool, main: bool
    ) -> ContainerHandle:
        """Pull (with back-off on failure), create and start one container instance."""
        await self._pull(spec, run, init=init, main=main)
        timings = self.kubelet.timings
        await self.sleep(timings.create)
        self.event("Created", ev.created_message(spec["name"]), container=spec, init=init)
        runtime = self.kubelet.runtime_for(spec, main=main, init=init)
        assert self.pod_ip is not None
        # Shielded: a cancelled start still registers its process with the runtime.
        handle = await asyncio.shield(
            runtime.start(self.pod, spec, init=init, main=main, pod_ip=self.pod_ip)
        )
        self.handles[spec["name"]] = handle
        await self.sleep(timings.start)
        if isinstance(handle, FailedStart):
            log.info(
                "pod %s: container %s failed to start: %s", self.name, spec["name"], handle.message
            )
            self.event(
                "Failed",
                ev.error_message(handle.message),
                type_="Warning",
                container=spec,
                init=init,
            )
        else:
            self.event("Started", ev.started_message(spec["name"]), container=spec, init=init)
        run.run(now=ev.rfc3339(ev.utcnow()))
        return handle

    async def _pull(
        self, spec: dict[str, Any], run: ContainerRun, *, init: bool, main: bool
    ) -> None:
        kubelet = self.kubelet
        image = str(spec.get("image") or "")
        policy = pull_policy(spec)
        if policy == "Never" or (
            policy == "IfNotPresent" and kubelet.image_present(self.node, image)
        ):
            self.event("Pulled", ev.already_present_message(image), container=spec, init=init)
            return
        attempt = 0
        while True:
            self.event("Pulling", ev.pulling_message(image), container=spec, init=init)
            began = time.monotonic()
            await self.sleep(kubelet.timings.pull)
            if not kubelet.pull_fails(self.pod, spec, main):
                kubelet.remember_image(self.node, image)
                took = time.monotonic() - began
                self.event(
                    "Pulled",
                    ev.pulled_message(image, seconds=took, waited=took, size=image_size(image)),
                    container=spec,
                    init=init,
                )
                return
            log.info("pod %s: image %s cannot be pulled (simulated)", self.name, image)
            run.wait("ErrImagePull", ev.pull_error_detail(image))
            self.write_status()
            self.event(
                "Failed", ev.failed_pull_message(image), type_="Warning", container=spec, init=init
            )
            self.event(
                "Failed",
                ev.error_message("ErrImagePull"),
                type_="Warning",
                container=spec,
                init=init,
            )
            delay = kubelet.timings.backoff_delay(attempt)
            attempt += 1
            await self.sleep(min(delay, kubelet.timings.backoff))  # the next sync notices back-off
            run.wait("ImagePullBackOff", ev.back_off_pull_message(image))
            self.write_status()
            self.event("BackOff", ev.back_off_pull_message(image), container=spec, init=init)
            self.event(
                "Failed",
                ev.error_message("ImagePullBackOff"),
                type_="Warning",
                container=spec,
                init=init,
            )
            await self.sleep(delay)

    async def _run_init(self, spec: dict[str, Any], run: ContainerRun) -> bool:
        """Run an init container to completion; False when the pod failed for good."""
        attempt = 0
        while True:
            handle = await self._start_instance(spec, run, init=True, main=False)
            self.write_status()
            status = await handle.wait()
            self._record_exit(spec, run, status)
            if status.exit_code == 0:
                return True
            if self.restart_policy == "Never":
                log.info(
                    "pod %s: init container %s failed (exit %s)",
                    self.name,
                    spec["name"],
                    status.exit_code,
                )
                return False
            await self._back_off(spec, run, attempt, init=True)
            attempt += 1

    def _record_exit(self, spec: dict[str, Any], run: ContainerRun, status: ExitStatus) -> None:
        """A container instance ended: forget its handle, write its terminated state."""
        self.handles.pop(spec["name"], None)
        run.terminate(
            exit_code=status.exit_code,
            reason=status.reason,
            message=status.message,
            now=ev.rfc3339(ev.utcnow()),
        )
        self.write_status()

    async def _back_off(
        self, spec: dict[str, Any], run: ContainerRun, attempt: int, *, init: bool
    ) -> None:
        """CrashLoopBackOff before restart ``attempt`` (the first restart is immediate)."""
        if attempt == 0:
            return
        delay = self.kubelet.timings.backoff_delay(attempt - 1)
        message = (
            f"back-off {ev.go_duration(delay)} restarting failed container="
            f"{spec['name']} pod={ev.pod_display(self.pod)}"
        )
        run.wait("CrashLoopBackOff", message)
        self.write_status()
        self.event(
            "BackOff",
            ev.back_off_restart_message(spec["name"], self.pod),
            type_="Warning",
            container=spec,
            init=init,
        )
        await self.sleep(delay)

    async def _supervise(
        self, spec: dict[str, Any], run: ContainerRun, index: int, starts: list[asyncio.Event]
    ) -> None:
        """Start a container (after the previous one's first start), follow it, restart it."""
        if index:
            await starts[index - 1].wait()
        attempt = 0
        while True:
            try:
                handle = await self._start_instance(spec, run, init=False, main=index == 0)
            finally:
                starts[index].set()
            self.write_status()
            readiness = asyncio.create_task(self._follow_readiness(handle, run))
            try:
                status = await handle.wait()
            finally:
                readiness.cancel()
                with contextlib.suppress(asyncio.CancelledError, PodGone):
                    await readiness
            self._record_exit(spec, run, status)
            log.info(
                "pod %s: container %s exited with %s", self.name, spec["name"], status.exit_code
            )
            if self.restart_policy == "Never" or (
                self.restart_policy == "OnFailure" and status.exit_code == 0
            ):
                return
            await self._back_off(spec, run, attempt, init=False)
            attempt += 1

    async def _follow_readiness(self, handle: ContainerHandle, run: ContainerRun) -> None:
        await handle.wait_ready()
        run.ready = True
        self.write_status()
        log.debug("pod %s: container %s is ready", self.name, run.name)

    # --- stopping ----------------------------------------------------------------------------
    async def _cancel_run(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task

    async def terminate(self, grace: float) -> None:
        """Graceful deletion: stop every container, write the final status, remove the pod."""
        await self._cancel_run()
        try:
            self.pod = self.kubelet.store.get("pods", *self.key) or self.pod
            running = [
                (spec, run)
                for spec, run in zip(self.specs, self.runs, strict=True)
                if spec["name"] in self.handles
            ]
            for spec, _run in running:
                self.event("Killing", ev.killing_message(spec["name"]), container=spec)
            results = await asyncio.gather(
                *(self.handles[spec["name"]].stop(grace) for spec, _run in running)
            )
            now = ev.rfc3339(ev.utcnow())
            for (_spec, run), status in zip(running, results, strict=True):
                run.terminate(exit_code=status.exit_code, reason=status.reason, now=now)
            self.handles.clear()
            with contextlib.suppress(PodGone):
                self.write_status()
        finally:
            self.kubelet.addresses.release(self.pod_ip)
        current = self.kubelet.store.get("pods", *self.key)
        if current is not None and current["metadata"].get("uid") == self.uid:
            self.kubelet.store.remove("pods", *self.key)
            log.info("pod %s stopped and removed", self.name)

    async def abort(self, grace: float) -> None:
        """The pod is gone (or kubesim stops): stop everything, SIGKILL after ``grace``."""
        await self._cancel_run()
        handles = list(self.handles.values())
        self.handles.clear()
        await asyncio.gather(*(handle.stop(grace) for handle in handles), return_exceptions=True)
        self.kubelet.addresses.release(self.pod_ip)
