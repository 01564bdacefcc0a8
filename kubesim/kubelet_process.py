"""The process kubelet: the notebook container really runs, as a local process on the pod's IP.

``spec.containers[0]`` (the notebook) runs as a subprocess: ``command + args``
(or ``args`` alone, the image entrypoint being unknown), the pod's ``env``
(values, ``$(VAR)`` references, valueFrom secretKeyRef / configMapKeyRef from
the store, fieldRef metadata.name/namespace/uid, status.podIP/hostIP,
spec.nodeName/serviceAccountName; ``envFrom``) plus PATH and HOME from the
host, in ``workingDir`` when that exists on this machine (else a private
temporary directory). Every ``0.0.0.0`` in args and env values becomes the
pod's own loopback IP (127.x.y.z), so a server told to bind everywhere binds
its pod's address. The container is ready when its readinessProbe first
succeeds, else when its port (the one named ``notebook-port``, else the first
containerPort) accepts TCP connections on the pod IP; without ports, as soon as
it runs (kubesim.readiness). Its exit code becomes the
container's terminated state (Completed for 0, Error otherwise; signals are
128+N). Output (stdout and stderr) is kept in a bounded buffer per container
for read_log(). Deletion sends SIGTERM to the process group and SIGKILL after
the grace period; close() ends every process group, and an atexit hook kills
any left if the interpreter exits without close().

Volumes are directories under the kubelet's root directory, set up before the
pod's sandbox (kubesim.volumes): the mountPaths the container is told about in
its command, args, env and workingDir name those directories instead
(kubesim.container_spec). A volume that cannot be set up (a missing secret) is
a FailedMount warning, retried with back-off, as the real kubelet does.

An exec (pods/exec) runs its command as a local process in the container's
environment, working directory and mounts (kubesim.exec_process); into a
simulated container, in the environment its spec describes.

Sidecars, init containers and a notebook container without command or args
(whose image entrypoint cannot be known here) are simulated as in the fake
kubelet; image pulls are simulated (fast by default).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal
import tempfile
from collections import deque
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubesim import process_groups
from kubesim.cluster import NodeSpec
from kubesim.container_spec import (
    ProcessSpec,
    exit_status,
    process_spec,
    working_directory,
)
from kubesim.exec_process import ProcessExec
from kubesim.kubelet_base import SimulatedKubelet
from kubesim.kubelet_fake import FakeRuntime
from kubesim.kubelet_runtime import (
    ContainerHandle,
    ContainerRuntime,
    ExecRequest,
    ExecRunner,
    ExitStatus,
    FailedStart,
    KubeletTimings,
)
from kubesim.readiness import ReadinessCheck, readiness_check, wait_until_ready
from kubesim.volumes import PodVolumes, claim_directory

if TYPE_CHECKING:
    from kubesim.auth import Authenticator
    from kubesim.store import ObjectStore

log = logging.getLogger(__name__)

PROCESS_TIMINGS = KubeletTimings(
    sandbox=0.05, pull=0.1, create=0.02, start=0.02, init_run=0.05, stop=0.1
)
LOG_LIMIT = 1 << 20  # bytes kept per container


class LogBuffer:
    """The last ``limit`` bytes a container wrote."""

    def __init__(self, limit: int = LOG_LIMIT) -> None:
        self._limit = limit
        self._chunks: deque[bytes] = deque()
        self._size = 0

    def append(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self._size += len(chunk)
        while self._size > self._limit and self._chunks:
            dropped = self._chunks.popleft()
            self._size -= len(dropped)
            if self._size < self._limit:  # keep the tail of a partly dropped chunk
                keep = self._limit - self._size
                self._chunks.appendleft(dropped[-keep:])
                self._size += keep

    def read(self) -> bytes:
        return b"".join(self._chunks)


# --- the runtime ----------------------------------------------------------------------------


class ProcessContainer:
    """One container instance running as a process group of its own."""

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        *,
        pod_ip: str,
        readiness: ReadinessCheck,
        logs: LogBuffer,
        workdir: str | None,
        label: str,
        spec: ProcessSpec,
    ) -> None:
        self.process = process
        self.spec = spec  # what it was started with: exec runs in the same environment
        self._pod_ip = pod_ip
        self._readiness = readiness
        self._logs = logs
        self._workdir = workdir
        self._label = label
        process_groups.track(process.pid)
        self._reader = asyncio.create_task(self._read_output())
        self._exited = asyncio.create_task(self._reap())

    async def _read_output(self) -> None:
        assert self.process.stdout is not None
        while chunk := await self.process.stdout.read(65536):
            self._logs.append(chunk)

    async def _reap(self) -> ExitStatus:
        returncode = await self.process.wait()
        process_groups.forget(self.process.pid)
        process_groups.kill(self.process.pid)  # children left in the group
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(self._reader), timeout=1.0)
        if self._workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)
        status = exit_status(returncode)
        log.info("container %s exited with code %s", self._label, status.exit_code)
        return status

    async def wait(self) -> ExitStatus:
        return await asyncio.shield(self._exited)

    async def wait_ready(self) -> None:
        if await wait_until_ready(
            self._readiness, self._pod_ip, self.spec, self._label, self._exited
        ):
            return
        await asyncio.Future()  # exited before it was ever ready: never ready

    def _signal(self, signum: int) -> None:
        process_groups.kill(self.process.pid, signum)

    async def stop(self, grace_period: float) -> ExitStatus:
        if not self._exited.done():
            if grace_period > 0:
                self._signal(signal.SIGTERM)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(grace_period):  # not wait_for: see readiness
                        await asyncio.shield(self._exited)
            if not self._exited.done():
                log.info("container %s did not stop in %ss: SIGKILL", self._label, grace_period)
                self._signal(signal.SIGKILL)
        return await asyncio.shield(self._exited)


class ProcessRuntime:
    """Starts notebook containers as local processes and keeps their output."""

    def __init__(self, store: ObjectStore | None = None) -> None:
        self.store = store
        self.logs: dict[tuple[str, str, str], LogBuffer] = {}
        self.containers: set[ProcessContainer] = set()
        # (namespace, pod, container) -> the running instance (for exec)
        self.running: dict[tuple[str, str, str], ProcessContainer] = {}
        self.volume_dirs: dict[str, dict[str, str]] = {}  # pod uid -> volume name -> directory

    async def start(
        self, pod: dict[str, Any], container: dict[str, Any], *, init: bool, main: bool, pod_ip: str
    ) -> ContainerHandle:
        metadata = pod.get("metadata") or {}
        label = f"{metadata.get('namespace')}/{metadata.get('name')}/{container['name']}"
        spec = process_spec(
            pod,
            container,
            pod_ip=pod_ip,
            store=self.store,
            volume_dirs=self.volume_dirs.get(str(metadata.get("uid"))),
        )
        argv = spec.argv
        if not argv:
            return FailedStart(
                "no command or args to run: the process kubelet cannot run an "
                "image's entrypoint; set the container's command or args"
            )
        working_dir, workdir = working_directory(spec.working_dir, str(metadata.get("name")))
        key = (str(metadata.get("namespace")), str(metadata.get("name")), container["name"])
        logs = self.logs.setdefault(key, LogBuffer())
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                env=spec.env,
                cwd=working_dir,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as error:
            if workdir:
                shutil.rmtree(workdir, ignore_errors=True)
            message = f"failed to start container {container['name']!r}: {argv[0]}: {error}"
            logs.append(message.encode() + b"\n")
            log.warning("container %s could not start: %s", label, error)
            return FailedStart(message)
        log.info(
            "container %s started as pid %s on %s: %s", label, process.pid, pod_ip, " ".join(argv)
        )
        handle = ProcessContainer(
            process,
            pod_ip=pod_ip,
            readiness=readiness_check(container),
            logs=logs,
            workdir=workdir,
            label=label,
            spec=replace(spec, working_dir=working_dir),
        )
        self.containers.add(handle)
        self.running[key] = handle

        def forget(_: object) -> None:
            self.containers.discard(handle)
            if self.running.get(key) is handle:
                del self.running[key]

        handle._exited.add_done_callback(forget)
        return handle

    def forget_pod(self, namespace: str, name: str, uid: str) -> None:
        for key in [k for k in self.logs if k[:2] == (namespace, name)]:
            del self.logs[key]
        self.volume_dirs.pop(uid, None)

    async def close(self, grace_period: float = 2.0) -> None:
        """End every process: SIGTERM, SIGKILL after ``grace_period``."""
        await asyncio.gather(
            *(c.stop(grace_period) for c in list(self.containers)), return_exceptions=True
        )


class ProcessKubelet(SimulatedKubelet):
    """Simulated scheduler + kubelet whose notebook containers run as real local processes.

    ``close_grace_period``: SIGTERM-to-SIGKILL time at close() and for pods removed without
    graceful deletion (the real kubelet's minimum is 2 s). ``root_dir`` holds the volumes
    (``pods/<uid>/volumes/<name>``, ``claims/<namespace>/<claim>-<uid>``); by default a
    temporary directory removed at close().
    """

    def __init__(
        self,
        nodes: Sequence[NodeSpec] | None = None,
        timings: KubeletTimings | float | None = None,
        *,
        close_grace_period: float = 2.0,
        root_dir: Path | None = None,
        **options: Any,
    ) -> None:
        super().__init__(nodes, timings if timings is not None else PROCESS_TIMINGS, **options)
        self.processes = ProcessRuntime()
        self._fake = FakeRuntime(self.timings)
        self.stop_grace_period = close_grace_period
        self._given_root = root_dir
        self._root: Path | None = None

    @property
    def root_dir(self) -> Path:
        """Where volumes live (created on first use)."""
        if self._root is None:
            if self._given_root is not None:
                self._given_root.mkdir(parents=True, exist_ok=True)
                self._root = self._given_root
            else:
                self._root = Path(tempfile.mkdtemp(prefix="kubesim-kubelet-"))
        return self._root

    def attach(self, store: ObjectStore, auth: Authenticator | None = None) -> None:
        super().attach(store, auth)
        self.processes.store = store
        store.add_listener(self._on_claim_change)

    def runtime_for(self, container: dict[str, Any], *, main: bool, init: bool) -> ContainerRuntime:
        """The notebook container runs for real when it says what to run; all else is faked."""
        runnable = bool(container.get("command") or container.get("args"))
        return self.processes if main and not init and runnable else self._fake

    def exec_runner(self, pod: dict[str, Any], request: ExecRequest) -> ExecRunner:
        """The command runs where the container runs: its environment, directory and mounts.

        A container that runs as a process lends its exact environment; a simulated one
        (a sidecar, an init container) the environment its spec describes.
        """
        metadata = pod.get("metadata") or {}
        namespace, name = str(metadata.get("namespace")), str(metadata.get("name"))
        label = f"{namespace}/{name}/{request.container}"
        running = self.processes.running.get((namespace, name, request.container))
        if running is not None:
            return ProcessExec(running.spec, request, label)
        spec = pod.get("spec") or {}
        container = next(
            c
            for c in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]
            if c.get("name") == request.container
        )
        uid = str(metadata.get("uid"))
        process = process_spec(
            pod,
            container,
            pod_ip=str((pod.get("status") or {}).get("podIP") or "127.0.0.1"),
            store=self.store,
            volume_dirs=self.processes.volume_dirs.get(uid),
        )
        if process.working_dir is None:
            home = self.root_dir / "pods" / uid
            home.mkdir(parents=True, exist_ok=True)
            process = replace(process, working_dir=str(home))
        return ProcessExec(process, request, label)

    def set_up_volumes(self, pod: dict[str, Any]) -> None:
        metadata = pod.get("metadata") or {}
        uid = str(metadata.get("uid"))
        node = self.store.get("nodes", None, str((pod.get("spec") or {}).get("nodeName")))
        volumes = PodVolumes(
            pod,
            pod_dir=self.root_dir / "pods" / uid,
            claims_dir=self.root_dir / "claims",
            lookup=self.store.get,
            issue_token=None if self.auth is None else self.auth.issue_service_account_token,
            node_allocatable=((node or {}).get("status") or {}).get("allocatable"),
        )
        self.processes.volume_dirs[uid] = volumes.set_up()

    def read_log(self, namespace: str, name: str, container: str | None) -> bytes | None:
        if container is None:
            pod = self.store.get("pods", namespace, name) if self._store is not None else None
            containers = ((pod or {}).get("spec") or {}).get("containers") or []
            if not containers:
                return None
            container = containers[0]["name"]
        buffer = self.processes.logs.get((namespace, name, container))
        return None if buffer is None else buffer.read()

    def pod_removed(self, namespace: str, name: str, uid: str) -> None:
        self.processes.forget_pod(namespace, name, uid)
        if self._root is not None:
            shutil.rmtree(self._root / "pods" / uid, ignore_errors=True)

    def _on_claim_change(self, kind: str, resource: str, obj: dict[str, Any]) -> None:
        """A deleted claim's data goes with it (the Delete reclaim policy)."""
        if resource != "persistentvolumeclaims" or kind != "DELETED" or self._root is None:
            return
        metadata = obj.get("metadata") or {}
        path = claim_directory(
            self._root / "claims",
            str(metadata.get("namespace")),
            str(metadata.get("name")),
            str(metadata.get("uid")),
        )
        shutil.rmtree(path, ignore_errors=True)

    async def _close_runtime(self) -> None:
        await self.processes.close(self.stop_grace_period)
        if self._root is not None and self._given_root is None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None
