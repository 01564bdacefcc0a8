"""An exec in the process kubelet: the command runs as a local process in the container's
environment — its env, its working directory, its mounts (mountPaths in the command are
rewritten to the volumes' directories, kubesim.volumes).

Without a TTY stdin, stdout and stderr are pipes; with one (``tty=true``) the process gets a
pseudo-terminal as its controlling terminal, stdout carries both output streams and resize
messages set the terminal size. The command runs in its own process group; when it ends (or
the client goes away) the group is killed, so nothing it started outlives the exec.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import struct
import termios
from collections.abc import Awaitable, Callable
from typing import IO, Any

from kubesim import process_groups
from kubesim.container_spec import ProcessSpec, exit_status
from kubesim.kubelet_runtime import ExecOutcome, ExecRequest, ExecStreams
from kubesim.volumes import rewrite_paths

__all__ = ["ProcessExec"]

log = logging.getLogger(__name__)

CHUNK = 32 * 1024
DRAIN_AFTER_EXIT = 1.0  # seconds to collect output still in the pipes after the command exits


def _make_controlling_terminal() -> None:  # runs in the child, after setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


async def _pump(
    read: Callable[[], Awaitable[bytes]], write: Callable[[bytes], Awaitable[None]]
) -> None:
    """Copy until EOF (a pty's EIO after the child exits is EOF too)."""
    while True:
        try:
            chunk = await read()
        except OSError:
            return
        if not chunk:
            return
        await write(chunk)


class ProcessExec:
    """Runs one exec command as a local process (implements kubelet_runtime.ExecRunner)."""

    def __init__(self, spec: ProcessSpec, request: ExecRequest, label: str) -> None:
        self.spec = spec
        self.request = request
        self.label = label

    def argv(self) -> list[str]:
        return [rewrite_paths(word, self.spec.mounts) for word in self.request.command]

    async def run(self, streams: ExecStreams) -> ExecOutcome:
        argv = self.argv()
        if self.request.tty:
            return await self._run_tty(argv, streams)
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                env=self.spec.env,
                cwd=self.spec.working_dir,
                stdin=asyncio.subprocess.PIPE if self.request.stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as error:
            return self._not_started(argv, error)
        assert process.stdout is not None and process.stderr is not None
        stdout, stderr = process.stdout, process.stderr
        outputs = [
            asyncio.create_task(_pump(lambda: stdout.read(CHUNK), streams.write_stdout)),
            asyncio.create_task(_pump(lambda: stderr.read(CHUNK), streams.write_stderr)),
        ]
        feeder = asyncio.create_task(self._feed_pipe(process, streams))
        return await self._finish(process, outputs, feeder)

    async def _feed_pipe(self, process: asyncio.subprocess.Process, streams: ExecStreams) -> None:
        stdin = process.stdin
        if stdin is None:
            return
        with contextlib.suppress(ConnectionError, BrokenPipeError):
            while (chunk := await streams.read_stdin()) is not None:
                stdin.write(chunk)
                await stdin.drain()
            stdin.close()

    async def _run_tty(self, argv: list[str], streams: ExecStreams) -> ExecOutcome:
        master, slave = os.openpty()
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                env={"TERM": "xterm", **self.spec.env},
                cwd=self.spec.working_dir,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                start_new_session=True,
                preexec_fn=_make_controlling_terminal,
            )
        except OSError as error:
            os.close(master)
            return self._not_started(argv, error)
        finally:
            os.close(slave)

        def resize(width: int, height: int) -> None:
            with contextlib.suppress(OSError):
                fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

        streams.on_resize(resize)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        pipe: IO[bytes] = os.fdopen(master, "rb", buffering=0)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), pipe
        )
        outputs = [asyncio.create_task(_pump(lambda: reader.read(CHUNK), streams.write_stdout))]

        async def feed() -> None:
            while (chunk := await streams.read_stdin()) is not None:
                with contextlib.suppress(OSError):
                    os.write(master, chunk)
            with contextlib.suppress(OSError):
                os.write(master, b"\x04")  # stdin closed: end-of-file on the terminal

        try:
            return await self._finish(process, outputs, asyncio.create_task(feed()))
        finally:
            transport.close()

    async def _finish(
        self,
        process: asyncio.subprocess.Process,
        outputs: list[asyncio.Task[Any]],
        feeder: asyncio.Task[Any],
    ) -> ExecOutcome:
        process_groups.track(process.pid)
        try:
            returncode = await process.wait()
            _, pending = await asyncio.wait(outputs, timeout=DRAIN_AFTER_EXIT)
            if pending:
                log.info("exec %s: output still open after exit (a background child?)", self.label)
            return ExecOutcome(exit_code=exit_status(returncode).exit_code)
        finally:
            process_groups.kill(process.pid)
            process_groups.forget(process.pid)
            for task in (*outputs, feeder):
                task.cancel()
            for task in (*outputs, feeder):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    def _not_started(self, argv: list[str], error: OSError) -> ExecOutcome:
        if isinstance(error, FileNotFoundError):
            detail = f'exec: "{argv[0]}": executable file not found in $PATH'
        else:
            detail = f'exec: "{argv[0]}": {error.strerror or error}'
        log.info("exec %s: %s", self.label, detail)
        return ExecOutcome(
            error=f"error executing command in container: failed to exec in container: {detail}"
        )
