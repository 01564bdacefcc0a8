"""Subprocesses of the end-to-end tests, each in its own process group, logging to a file.

Every process is stopped by the fixture that started it, even when the test
fails: SIGTERM to its group, then SIGKILL to the group after a grace period.
Waits poll the process without blocking the event loop, because kubesim
serves from the test's own loop.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

from tests.support.waiting import wait_for


class ManagedProcess:
    """One started command: its process group, log file and exit status."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_dir: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_dir / f"{name}.log"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
                cwd=cwd,
                start_new_session=True,  # its own group: stopping it stops its children
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)

    async def wait_exit(self, timeout: float) -> int:
        await wait_for(
            lambda: not self.running, timeout=timeout, interval=0.05, message=f"{self.name} to exit"
        )
        return int(self.process.returncode)

    async def kill(self) -> None:
        """SIGKILL the whole group (a crashed node, not a shutdown) and reap the leader."""
        self.signal_group(signal.SIGKILL)
        await self.wait_exit(10)

    async def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the group, SIGKILL it after ``grace`` seconds; always reaps."""
        if self.running:
            self.signal_group(signal.SIGTERM)
            with contextlib.suppress(AssertionError):
                await self.wait_exit(grace)
        # Whatever is left of the group (children that ignored SIGTERM) goes now.
        self.signal_group(signal.SIGKILL)
        if self.running:
            with contextlib.suppress(AssertionError):
                await self.wait_exit(10)


class ProcessGroup:
    """Processes of one test, stopped in reverse order of starting."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[ManagedProcess] = []

    def start(
        self,
        name: str,
        argv: Sequence[str],
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> ManagedProcess:
        process = ManagedProcess(name, argv, log_dir=self.log_dir, env=env, cwd=cwd)
        self.started.append(process)
        return process

    async def stop_all(self) -> None:
        for process in reversed(self.started):
            await process.stop()

    def died(self) -> list[ManagedProcess]:
        return [p for p in self.started if not p.running]

    def report(self) -> str:
        """The last log lines of every process, for a failing test's output."""
        parts = []
        for process in self.started:
            state = "running" if process.running else f"exited {process.process.returncode}"
            parts.append(f"----- {process.name} ({state}): {process.log_path}")
            parts.append(process.log_tail())
        return "\n".join(parts)
