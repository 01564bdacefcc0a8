"""pods/exec over WebSocket, in Kubernetes' channel protocols.

The client upgrades ``GET /api/v1/namespaces/{ns}/pods/{name}/exec?command=...&stdout=true``
offering subprotocols: ``v5.channel.k8s.io`` down to ``channel.k8s.io``, and the base64
ones (``v4.base64.channel.k8s.io``, ``base64.channel.k8s.io``). Each binary message is one
channel byte plus data (base64: a text message, the channel as an ASCII digit, the data
base64-encoded): 0 stdin (client → server), 1 stdout, 2 stderr, 3 error, 4 resize (a JSON
``{"Width": w, "Height": h}`` from a TTY client). v5 adds the close signal ``[255, channel]``:
the client closed its stdin.

As the kubelet does, the server first sends an empty message on the lowest channel it will
write (stdout, else stderr, else error). When the command ends it writes the error channel
once and closes: with v4 and v5 a metav1 Status (``Success``, or ``Failure`` with reason
``NonZeroExitCode`` and the exit code as the cause's message, which clients parse), with
older protocols only an error text. A client that goes away ends the command.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from kubesim import errors
from kubesim.kubelet_runtime import ExecOutcome, ExecRequest, ExecRunner

__all__ = [
    "PROTOCOLS",
    "WebSocketStreams",
    "exec_request",
    "outcome_status",
    "serve_exec",
]

log = logging.getLogger(__name__)

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
V4_BASE64 = "v4.base64.channel.k8s.io"
BASE64 = "base64.channel.k8s.io"
PROTOCOLS = (
    V5,
    V4,
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
    V4_BASE64,
    BASE64,
)
STATUS_PROTOCOLS = (V5, V4, V4_BASE64)  # the error channel carries a Status
STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE = 255  # v5: the client closed one of its streams
MAX_MESSAGE = 16 * 1024 * 1024  # bytes in one client message
STDIN_BACKLOG = 64  # stdin messages held before the server stops reading (backpressure)


def _flag(query: Mapping[str, str], name: str) -> bool:
    return str(query.get(name, "")).lower() in ("true", "1")


def exec_request(pod: dict[str, Any], query: Any) -> ExecRequest:
    """The request a pods/exec query makes, checked as the API server checks it (400s)."""
    name = str(pod["metadata"]["name"])
    command = tuple(query.getall("command", ()))
    spec = pod.get("spec") or {}
    containers = [str(c.get("name")) for c in spec.get("containers") or []]
    init_containers = [str(c.get("name")) for c in spec.get("initContainers") or []]
    container = str(query.get("container") or "")
    if not container:
        if len(containers) == 1:
            container = containers[0]
        elif not containers:
            raise errors.bad_request(f"a container name must be specified for pod {name}")
        else:
            message = (
                f"a container name must be specified for pod {name}, "
                f"choose one of: [{' '.join(containers)}]"
            )
            if init_containers:
                message += f" or one of the init containers: [{' '.join(init_containers)}]"
            raise errors.bad_request(message)
    elif container not in containers + init_containers:
        raise errors.bad_request(f"container {container} is not valid for pod {name}")
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        raise errors.bad_request(
            f"cannot exec into a container in a completed pod; current phase is {phase}"
        )
    if not spec.get("nodeName"):
        raise errors.bad_request(f"pod {name} does not have a host assigned")
    request = ExecRequest(
        container=container,
        command=command,
        stdin=_flag(query, "stdin"),
        stdout=_flag(query, "stdout"),
        stderr=_flag(query, "stderr"),
        tty=_flag(query, "tty"),
    )
    if not command:
        raise errors.bad_request("you must specify at least 1 command")
    if not (request.stdin or request.stdout or request.stderr):
        raise errors.bad_request("you must specify at least 1 of stdin, stdout, stderr")
    return request


def outcome_status(outcome: ExecOutcome, command: tuple[str, ...]) -> dict[str, Any]:
    """The error channel's Status (v4/v5) for how the command ended."""
    if outcome.error is not None:
        return {
            "metadata": {},
            "status": "Failure",
            "message": f"Internal error occurred: {outcome.error}",
            "reason": "InternalError",
            "details": {"causes": [{"message": outcome.error}]},
            "code": 500,
        }
    if not outcome.exit_code:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": (
            "command terminated with non-zero exit code: error executing command "
            f"[{' '.join(command)}], exit code {outcome.exit_code}"
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(outcome.exit_code)}]},
    }


def _error_text(outcome: ExecOutcome) -> bytes:
    """Before v4 the error channel carries only a message, and nothing on success."""
    if outcome.error is not None:
        return outcome.error.encode()
    if outcome.exit_code:
        return f"command terminated with non-zero exit code: exit code {outcome.exit_code}".encode()
    return b""


class WebSocketStreams:
    """An exec's streams over one WebSocket (implements kubelet_runtime.ExecStreams)."""

    def __init__(self, ws: web.WebSocketResponse, request: ExecRequest, protocol: str) -> None:
        self.ws = ws
        self.request = request
        self.protocol = protocol
        self.base64 = protocol in (V4_BASE64, BASE64)
        self._stdin: asyncio.Queue[bytes | None] = asyncio.Queue(STDIN_BACKLOG)
        self._stdin_closed = False
        self._resize: Callable[[int, int], None] | None = None
        self._send_lock = asyncio.Lock()
        self.client_gone = asyncio.Event()

    async def send(self, channel: int, data: bytes) -> None:
        async with self._send_lock:
            if self.ws.closed:
                return
            if self.base64:
                await self.ws.send_str(str(channel) + base64.b64encode(data).decode())
            else:
                await self.ws.send_bytes(bytes([channel]) + data)

    async def read_stdin(self) -> bytes | None:
        return await self._stdin.get()

    async def write_stdout(self, data: bytes) -> None:
        if self.request.stdout:
            await self.send(STDOUT, data)

    async def write_stderr(self, data: bytes) -> None:
        if self.request.stderr and not self.request.tty:
            await self.send(STDERR, data)
        elif self.request.tty:
            await self.write_stdout(data)

    def on_resize(self, handler: Callable[[int, int], None]) -> None:
        self._resize = handler

    async def receive(self) -> None:
        """Dispatch what the client sends until it closes the connection."""
        try:
            async for message in self.ws:
                if message.type == WSMsgType.BINARY:
                    await self._dispatch(bytes(message.data))
                elif message.type == WSMsgType.TEXT and self.base64:
                    await self._dispatch_base64(str(message.data))
                elif message.type == WSMsgType.TEXT:
                    await self._dispatch(str(message.data).encode())
        finally:
            self.client_gone.set()
            self._close_stdin()

    def _close_stdin(self) -> None:
        """The end-of-input marker, even when the backlog is full (the reader is done)."""
        if self._stdin_closed:
            return
        self._stdin_closed = True
        while self._stdin.full():
            self._stdin.get_nowait()
        self._stdin.put_nowait(None)

    async def _dispatch_base64(self, text: str) -> None:
        if not text or not text[0].isdigit():
            return
        try:
            data = base64.b64decode(text[1:], validate=True)
        except (binascii.Error, ValueError):
            log.info("exec: ignored a message that is not base64 %r", text[:100])
            return
        await self._dispatch(bytes([int(text[0])]) + data)

    async def _dispatch(self, frame: bytes) -> None:
        if not frame:
            return
        channel, data = frame[0], frame[1:]
        if channel == STDIN and self.request.stdin:
            if data and not self._stdin_closed:
                await self._stdin.put(data)
        elif channel == RESIZE and self._resize is not None:
            try:
                size = orjson.loads(data)
                self._resize(int(size.get("Width", 0)), int(size.get("Height", 0)))
            except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
                log.info("exec: ignored a malformed resize message %r", data[:100])
        elif channel == CLOSE and self.protocol == V5 and data[:1] == bytes([STDIN]):
            await self._stdin.put(None)
            self._stdin_closed = True


async def serve_exec(
    request: web.Request, runner: ExecRunner, exec_req: ExecRequest, label: str
) -> web.WebSocketResponse:
    """Upgrade, run the command with its I/O on the channels, report how it ended, close."""
    ws = web.WebSocketResponse(protocols=PROTOCOLS, heartbeat=None, max_msg_size=MAX_MESSAGE)
    await ws.prepare(request)
    protocol = ws.ws_protocol or "channel.k8s.io"
    streams = WebSocketStreams(ws, exec_req, protocol)
    first = STDOUT if exec_req.stdout else STDERR if exec_req.stderr and not exec_req.tty else ERROR
    await streams.send(first, b"")
    receiver = asyncio.create_task(streams.receive())
    command = asyncio.create_task(runner.run(streams))
    gone = asyncio.create_task(streams.client_gone.wait())
    try:
        await asyncio.wait({command, gone}, return_when=asyncio.FIRST_COMPLETED)
        if not command.done():
            log.info("exec %s: the client went away; ending the command", label)
            command.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await command
            return ws
        outcome = command.result()
        log.info("exec %s %s: %s", label, list(exec_req.command), outcome)
        if protocol in STATUS_PROTOCOLS:
            await streams.send(ERROR, orjson.dumps(outcome_status(outcome, exec_req.command)))
        elif text := _error_text(outcome):
            await streams.send(ERROR, text)
        await ws.close()
    finally:
        for task in (command, gone, receiver):
            task.cancel()
        for task in (command, gone, receiver):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    return ws
