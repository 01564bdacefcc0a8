"""What a simulated kubelet needs from a container runtime, and its timing settings.

A runtime starts one container instance and hands back a ContainerHandle: the
kubelet awaits its exit, its readiness, and asks it to stop. The fake runtime
scripts all three from annotations; the process runtime runs a real process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class ExitStatus:
    """How a container instance ended."""

    exit_code: int
    reason: str | None = None  # None: Completed (0) / Error (other); else e.g. OOMKilled
    message: str | None = None


@dataclass(frozen=True)
class KubeletTimings:
    """Delays of the simulated steps, in seconds (defaults feel like a small real cluster)."""

    sandbox: float = 0.3  # pod sandbox and IP before the first container step
    pull: float = 1.0  # an image pull
    create: float = 0.1  # container creation
    start: float = 0.2  # container start
    init_run: float = 0.5  # how long a (fake) init container runs before exiting 0
    stop: float = 0.3  # how long a (fake) container takes to stop after SIGTERM
    backoff: float = 10.0  # first crash-loop / image-pull back-off; doubles each time
    backoff_max: float = 300.0

    @classmethod
    def uniform(cls, step: float) -> KubeletTimings:
        """Every step ``step`` seconds, back-off from 2 steps up to 16 (for tests and demos)."""
        return cls(
            sandbox=step,
            pull=step,
            create=step,
            start=step,
            init_run=step,
            stop=step,
            backoff=2 * step,
            backoff_max=16 * step,
        )

    def backoff_delay(self, attempt: int) -> float:
        """The back-off before retry number ``attempt`` (0-based): base * 2^attempt, capped."""
        return float(min(self.backoff * (2 ** min(attempt, 30)), self.backoff_max))


class FailedStart:
    """An instance the runtime could not start (containerd's StartError, exit code 128)."""

    def __init__(self, message: str) -> None:
        self.message = message
        self._status = ExitStatus(128, "StartError", message)

    async def wait(self) -> ExitStatus:
        return self._status

    async def wait_ready(self) -> None:
        await asyncio.Future()  # never ready

    async def stop(self, grace_period: float) -> ExitStatus:
        return self._status


class ContainerHandle(Protocol):
    """One running container instance."""

    async def wait(self) -> ExitStatus:
        """Return when the instance exits by itself (never, for a server that keeps running)."""
        ...

    async def wait_ready(self) -> None:
        """Return once the instance is ready (never returns when it never becomes ready)."""
        ...

    async def stop(self, grace_period: float) -> ExitStatus:
        """SIGTERM, SIGKILL after ``grace_period``; returns how it ended."""
        ...


class ContainerRuntime(Protocol):
    async def start(
        self,
        pod: dict[str, Any],
        container: dict[str, Any],
        *,
        init: bool,
        main: bool,
        pod_ip: str,
    ) -> ContainerHandle:
        """Start an instance of ``container`` of ``pod`` (main: it is spec.containers[0])."""
        ...


# --- exec ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExecRequest:
    """What a pods/exec request asks for (the query parameters, checked by the server)."""

    container: str
    command: tuple[str, ...]
    stdin: bool = False
    stdout: bool = True
    stderr: bool = True
    tty: bool = False


@dataclass(frozen=True)
class ExecOutcome:
    """How an exec ended: an exit code, or an error before the command could run."""

    exit_code: int | None = None
    error: str | None = None  # e.g. the executable was not found


class ExecRefused(Exception):
    """The kubelet will not exec into this container (not running); str() says why."""


class ExecStreams(Protocol):
    """The client's end of an exec, as the runner sees it."""

    async def read_stdin(self) -> bytes | None:
        """The next stdin chunk; None once the client closed stdin (or went away)."""
        ...

    async def write_stdout(self, data: bytes) -> None: ...

    async def write_stderr(self, data: bytes) -> None: ...

    def on_resize(self, handler: Callable[[int, int], None]) -> None:
        """Call ``handler(width, height)`` for each terminal resize the client sends."""
        ...


class ExecRunner(Protocol):
    async def run(self, streams: ExecStreams) -> ExecOutcome:
        """Run the command to its end, streaming its I/O; cancelled if the client goes away."""
        ...
