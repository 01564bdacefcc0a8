"""The process kubelet: the notebook container really runs, as a local process on the pod's IP.

``spec.containers[0]`` (the notebook) runs as a subprocess: ``command + args``
(or ``args`` alone, the image entrypoint being unknown), the pod's ``env``
(values, ``$(VAR)`` references, valueFrom secretKeyRef / configMapKeyRef from
the store, fieldRef metadata.name/namespace/uid, status.podIP/hostIP,
spec.nodeName/serviceAccountName; ``envFrom``) plus PATH and HOME from the
host, in ``workingDir`` when that exists on this machine (else a private
temporary directory). Every ``0.0.0.0`` in args and env values becomes the
pod's own loopback IP (127.x.y.z), so a server told to bind everywhere binds
its pod's address. The container is ready when its port (the one named
``notebook-port``, else the first containerPort) accepts TCP connections on
the pod IP; without ports, as soon as it runs. Its exit code becomes the
container's terminated state (Completed for 0, Error otherwise; signals are
128+N). Output (stdout and stderr) is kept in a bounded buffer per container
for read_log(). Deletion sends SIGTERM to the process group and SIGKILL after
the grace period; close() ends every process group, and an atexit hook kills
any left if the interpreter exits without close().

Sidecars, init containers and a notebook container without command or args
(whose image entrypoint cannot be known here) are simulated as in the fake
kubelet; image pulls are simulated (fast by default).
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import contextlib
import logging
import os
import re
import shutil
import signal
import tempfile
from collections import deque
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kubesim.cluster import NodeSpec
from kubesim.kubelet_base import HOST_IP, SimulatedKubelet
from kubesim.kubelet_fake import FakeRuntime
from kubesim.kubelet_runtime import (
    ContainerHandle,
    ContainerRuntime,
    ExitStatus,
    FailedStart,
    KubeletTimings,
)

if TYPE_CHECKING:
    from kubesim.store import ObjectStore

log = logging.getLogger(__name__)

PROCESS_TIMINGS = KubeletTimings(
    sandbox=0.05, pull=0.1, create=0.02, start=0.02, init_run=0.05, stop=0.1
)
LOG_LIMIT = 1 << 20  # bytes kept per container
READY_POLL = 0.05
_VAR_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$")
_live_groups: set[int] = set()  # process groups not yet reaped, for the atexit hook


@atexit.register
def _kill_leftover_groups() -> None:
    for pgid in list(_live_groups):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


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


# --- pure: what to run ----------------------------------------------------------------------


def expand(text: str, variables: Mapping[str, str]) -> str:
    """Kubernetes $(VAR) expansion: known references replaced, $$ escapes $, others kept."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return variables.get(name, match.group(0))

    return _VAR_REFERENCE.sub(replace, text)


def bind_to_pod(text: str, pod_ip: str) -> str:
    """Where the server is told to listen on every address, it listens on its pod's."""
    return text.replace("0.0.0.0", pod_ip)


def _field_value(pod: Mapping[str, Any], path: str, pod_ip: str) -> str | None:
    metadata = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    values = {
        "metadata.name": metadata.get("name"),
        "metadata.namespace": metadata.get("namespace"),
        "metadata.uid": metadata.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": pod_ip,
        "status.hostIP": HOST_IP,
    }
    match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if match:
        return (metadata.get(match.group(1)) or {}).get(match.group(2))
    value = values.get(path)
    return None if value is None else str(value)


def _object_data(
    store: ObjectStore | None, resource: str, namespace: str, name: str
) -> dict[str, str]:
    if store is None or not name:
        return {}
    obj = store.get(resource, namespace, name) or {}
    data: dict[str, str] = {}
    if resource == "secrets":
        for key, value in (obj.get("data") or {}).items():
            with contextlib.suppress(ValueError):
                data[key] = base64.b64decode(value).decode(errors="replace")
        data.update(obj.get("stringData") or {})
    else:
        data.update(obj.get("data") or {})
    return data


def container_environment(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    *,
    pod_ip: str,
    store: ObjectStore | None = None,
    host_env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The process environment: PATH/HOME from the host, then envFrom, then env (in order)."""
    host = os.environ if host_env is None else host_env
    namespace = str((pod.get("metadata") or {}).get("namespace") or "")
    env: dict[str, str] = {k: host[k] for k in ("PATH", "HOME", "LANG") if k in host}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix") or ""
        if "configMapRef" in source:
            data = _object_data(store, "configmaps", namespace, source["configMapRef"].get("name"))
        elif "secretRef" in source:
            data = _object_data(store, "secrets", namespace, source["secretRef"].get("name"))
        else:
            continue
        env.update({prefix + k: v for k, v in data.items()})
    for item in container.get("env") or []:
        name = item.get("name")
        if not name:
            continue
        if "value" in item or "valueFrom" not in item:
            env[name] = expand(str(item.get("value") or ""), env)
            continue
        source = item["valueFrom"] or {}
        value: str | None = None
        if "fieldRef" in source:
            value = _field_value(pod, source["fieldRef"].get("fieldPath", ""), pod_ip)
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            value = _object_data(store, "secrets", namespace, ref.get("name")).get(ref.get("key"))
        elif "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            value = _object_data(store, "configmaps", namespace, ref.get("name")).get(
                ref.get("key")
            )
        if value is not None:
            env[name] = value
    return {k: bind_to_pod(v, pod_ip) for k, v in env.items()}


def container_argv(container: Mapping[str, Any], env: Mapping[str, str], pod_ip: str) -> list[str]:
    """command + args, $(VAR)-expanded, 0.0.0.0 replaced by the pod IP."""
    words = [*(container.get("command") or []), *(container.get("args") or [])]
    return [bind_to_pod(expand(str(word), env), pod_ip) for word in words]


def notebook_port(container: Mapping[str, Any]) -> int | None:
    """The port named notebook-port, else the first containerPort."""
    ports = [p for p in container.get("ports") or [] if p.get("containerPort")]
    for port in ports:
        if port.get("name") == "notebook-port":
            return int(port["containerPort"])
    return int(ports[0]["containerPort"]) if ports else None


def working_directory(container: Mapping[str, Any], pod_name: str) -> tuple[str, str | None]:
    """(cwd, temporary dir to remove later): workingDir when it exists here, else a new temp dir."""
    wanted = container.get("workingDir")
    if wanted and os.path.isdir(wanted):
        return str(wanted), None
    created = tempfile.mkdtemp(prefix=f"kubesim-{pod_name}-")
    return created, created


def exit_status(returncode: int) -> ExitStatus:
    """A process's return code as a container exit code (a signal N is 128+N)."""
    code = 128 - returncode if returncode < 0 else returncode
    return ExitStatus(code)


# --- the runtime ----------------------------------------------------------------------------


class ProcessContainer:
    """One container instance running as a process group of its own."""

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        *,
        pod_ip: str,
        port: int | None,
        logs: LogBuffer,
        workdir: str | None,
        label: str,
    ) -> None:
        self.process = process
        self._pod_ip = pod_ip
        self._port = port
        self._logs = logs
        self._workdir = workdir
        self._label = label
        _live_groups.add(process.pid)
        self._reader = asyncio.create_task(self._read_output())
        self._exited = asyncio.create_task(self._reap())

    async def _read_output(self) -> None:
        assert self.process.stdout is not None
        while chunk := await self.process.stdout.read(65536):
            self._logs.append(chunk)

    async def _reap(self) -> ExitStatus:
        returncode = await self.process.wait()
        _live_groups.discard(self.process.pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)  # children left in the group
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
        if self._port is None:
            return
        while not self._exited.done():
            try:
                _, writer = await asyncio.open_connection(self._pod_ip, self._port)
            except OSError:
                await asyncio.sleep(READY_POLL)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return
        await asyncio.Future()  # exited before it ever listened: never ready

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)

    async def stop(self, grace_period: float) -> ExitStatus:
        if not self._exited.done():
            if grace_period > 0:
                self._signal(signal.SIGTERM)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._exited), timeout=grace_period)
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

    async def start(
        self, pod: dict[str, Any], container: dict[str, Any], *, init: bool, main: bool, pod_ip: str
    ) -> ContainerHandle:
        metadata = pod.get("metadata") or {}
        label = f"{metadata.get('namespace')}/{metadata.get('name')}/{container['name']}"
        env = container_environment(pod, container, pod_ip=pod_ip, store=self.store)
        argv = container_argv(container, env, pod_ip)
        if not argv:
            return FailedStart(
                "no command or args to run: the process kubelet cannot run an "
                "image's entrypoint; set the container's command or args"
            )
        working_dir, workdir = working_directory(container, str(metadata.get("name")))
        key = (str(metadata.get("namespace")), str(metadata.get("name")), container["name"])
        logs = self.logs.setdefault(key, LogBuffer())
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                env=env,
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
            port=notebook_port(container),
            logs=logs,
            workdir=workdir,
            label=label,
        )
        self.containers.add(handle)
        handle._exited.add_done_callback(lambda _: self.containers.discard(handle))
        return handle

    def forget_pod(self, namespace: str, name: str) -> None:
        for key in [k for k in self.logs if k[:2] == (namespace, name)]:
            del self.logs[key]

    async def close(self, grace_period: float = 2.0) -> None:
        """End every process: SIGTERM, SIGKILL after ``grace_period``."""
        await asyncio.gather(
            *(c.stop(grace_period) for c in list(self.containers)), return_exceptions=True
        )


class ProcessKubelet(SimulatedKubelet):
    """Simulated scheduler + kubelet whose notebook containers run as real local processes.

    ``close_grace_period``: SIGTERM-to-SIGKILL time at close() and for pods removed without
    graceful deletion (the real kubelet's minimum is 2 s).
    """

    def __init__(
        self,
        nodes: Sequence[NodeSpec] | None = None,
        timings: KubeletTimings | float | None = None,
        *,
        close_grace_period: float = 2.0,
        **options: Any,
    ) -> None:
        super().__init__(nodes, timings if timings is not None else PROCESS_TIMINGS, **options)
        self.processes = ProcessRuntime()
        self._fake = FakeRuntime(self.timings)
        self.stop_grace_period = close_grace_period

    def attach(self, store: ObjectStore) -> None:
        super().attach(store)
        self.processes.store = store

    def runtime_for(self, container: dict[str, Any], *, main: bool, init: bool) -> ContainerRuntime:
        """The notebook container runs for real when it says what to run; all else is faked."""
        runnable = bool(container.get("command") or container.get("args"))
        return self.processes if main and not init and runnable else self._fake

    def read_log(self, namespace: str, name: str, container: str | None) -> bytes | None:
        if container is None:
            pod = self.store.get("pods", namespace, name) if self._store is not None else None
            containers = ((pod or {}).get("spec") or {}).get("containers") or []
            if not containers:
                return None
            container = containers[0]["name"]
        buffer = self.processes.logs.get((namespace, name, container))
        return None if buffer is None else buffer.read()

    def pod_removed(self, namespace: str, name: str) -> None:
        self.processes.forget_pod(namespace, name)

    async def _close_runtime(self) -> None:
        await self.processes.close(self.stop_grace_period)
