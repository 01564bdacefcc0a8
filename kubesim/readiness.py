"""When a container that runs as a local process is ready: its readinessProbe, else its port.

With a ``readinessProbe`` the process kubelet probes as the kubelet does, on the pod IP:
``tcpSocket`` (the port accepts a connection), ``httpGet`` (a status from 200 to 399;
HTTPS without verifying the certificate, as the kubelet) or ``exec`` (the command exits 0, run
in the container's environment), first after ``initialDelaySeconds``, then every
``periodSeconds`` (default 10), each with ``timeoutSeconds`` (default 1). The first success
makes the container ready; later failures do not make it unready again (not emulated).
Without a probe the container is ready once its port (``notebook-port``, else the first
containerPort) accepts connections, polled every 50 ms; without ports, at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from kubesim.container_spec import ProcessSpec, notebook_port
from kubesim.exec_process import ProcessExec
from kubesim.kubelet_runtime import ExecRequest

__all__ = ["READY_POLL", "ReadinessCheck", "probe_once", "readiness_check", "wait_until_ready"]

READY_POLL = 0.05  # how often a container without a probe is checked


@dataclass(frozen=True)
class ReadinessCheck:
    """One way of telling that a container is ready."""

    kind: str  # "none" | "tcp" | "http" | "exec"
    port: int | None = None
    path: str = "/"
    https: bool = False
    command: tuple[str, ...] = ()
    initial_delay: float = 0.0
    period: float = READY_POLL
    timeout: float = 1.0


def _port(container: Mapping[str, Any], value: Any) -> int | None:
    """A probe's port: a number, or the name of one of the container's ports."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    for port in container.get("ports") or []:
        if port.get("name") == value and port.get("containerPort"):
            return int(port["containerPort"])
    return None


def readiness_check(container: Mapping[str, Any]) -> ReadinessCheck:
    """The check a container's spec asks for."""
    probe = container.get("readinessProbe")
    if not isinstance(probe, dict):
        port = notebook_port(container)
        return ReadinessCheck("tcp", port) if port is not None else ReadinessCheck("none")
    timed = ReadinessCheck(
        "none",
        initial_delay=float(probe.get("initialDelaySeconds") or 0),
        period=max(float(probe.get("periodSeconds") or 10), READY_POLL),
        timeout=float(probe.get("timeoutSeconds") or 1),
    )
    if isinstance(probe.get("tcpSocket"), dict):
        return replace(timed, kind="tcp", port=_port(container, probe["tcpSocket"].get("port")))
    if isinstance(probe.get("httpGet"), dict):
        get = probe["httpGet"]
        return replace(
            timed,
            kind="http",
            port=_port(container, get.get("port")),
            path=str(get.get("path") or "/"),
            https=str(get.get("scheme") or "HTTP").upper() == "HTTPS",
        )
    if isinstance(probe.get("exec"), dict):
        command = tuple(str(word) for word in probe["exec"].get("command") or [])
        return replace(timed, kind="exec", command=command)
    return timed


class _Silent:
    """ExecStreams for a probe: no stdin, output dropped."""

    async def read_stdin(self) -> bytes | None:
        return None

    async def write_stdout(self, data: bytes) -> None:
        return None

    async def write_stderr(self, data: bytes) -> None:
        return None

    def on_resize(self, handler: Callable[[int, int], None]) -> None:
        return None


async def _connect(check: ReadinessCheck, pod_ip: str) -> bool:
    context = None
    if check.https:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    reader, writer = await asyncio.open_connection(pod_ip, check.port, ssl=context)
    try:
        if check.kind != "http":
            return True
        request = f"GET {check.path} HTTP/1.0\r\nHost: {pod_ip}:{check.port}\r\n"
        writer.write((request + "User-Agent: kube-probe/1.32\r\n\r\n").encode())
        await writer.drain()
        status_line = await reader.readline()
        parts = status_line.split()
        return len(parts) >= 2 and parts[1].isdigit() and 200 <= int(parts[1]) < 400
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()


async def probe_once(check: ReadinessCheck, pod_ip: str, spec: ProcessSpec, label: str) -> bool:
    """One probe; any failure (refused, timeout, bad status, non-zero exit) is False."""
    try:
        # asyncio.timeout, not wait_for: before Python 3.12 wait_for can lose a
        # cancellation that arrives as the probe ends, and a stopped prober probes on
        async with asyncio.timeout(check.timeout):
            if check.kind == "exec":
                request = ExecRequest(container=label, command=check.command)
                outcome = await ProcessExec(spec, request, f"{label} (probe)").run(_Silent())
                return outcome.exit_code == 0
            if check.port is None:
                return False
            return await _connect(check, pod_ip)
    except (TimeoutError, OSError, ssl.SSLError):
        return False


async def wait_until_ready(
    check: ReadinessCheck, pod_ip: str, spec: ProcessSpec, label: str, exited: asyncio.Task[Any]
) -> bool:
    """True once a probe succeeds; False if the process exits first."""
    if check.kind == "none":
        return True
    if check.initial_delay:
        await asyncio.sleep(check.initial_delay)
    while not exited.done():
        if await probe_once(check, pod_ip, spec, label):
            return True
        await asyncio.sleep(check.period)
    return False
