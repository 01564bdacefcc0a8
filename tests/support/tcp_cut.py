"""A TCP forwarder on 127.0.0.1 that a test can cut: the network between one client and Redis.

``TcpCut(target_port)`` listens on a free port and forwards every connection
to ``127.0.0.1:target_port``. :meth:`reset` closes every connection and
refuses new ones (a connection reset); :meth:`drop` keeps connections open but
forwards nothing, and new ones are accepted and left silent (packets dropped:
clients hang until their socket timeout); :meth:`heal` forwards again.
Runs in the test's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Literal

Mode = Literal["pass", "reset", "drop"]


class TcpCut:
    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.target_port = target_port
        self.port = 0
        self.mode: Mode = "pass"
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.mode == "reset":
            writer.transport.abort()
            return
        self._writers.add(writer)
        try:
            if self.mode == "drop":
                await self._silent(reader)
                return
            up_reader, up_writer = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            writer.transport.abort()
            self._writers.discard(writer)
            return
        self._writers.add(up_writer)
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer)),
            asyncio.create_task(self._pump(up_reader, writer)),
        ]
        self._tasks.update(pumps)
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for task in pumps:
            task.cancel()
            self._tasks.discard(task)
        for w in (writer, up_writer):
            w.transport.abort()
            self._writers.discard(w)

    async def _silent(self, reader: asyncio.StreamReader) -> None:
        """Swallow what the client sends; answer nothing (until heal or EOF)."""
        while self.mode == "drop":
            data = await reader.read(65536)
            if not data:
                return
        # healed while silent: the client already waits for answers that never come;
        # closing makes it reconnect
        return

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                return
            if self.mode == "drop":
                continue  # dropped on the floor
            writer.write(data)
            await writer.drain()

    def reset(self) -> None:
        """Connection reset: close every connection, refuse new ones."""
        self.mode = "reset"
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def drop(self) -> None:
        """Silent drop: bytes go nowhere, on open and new connections alike."""
        self.mode = "drop"

    def heal(self) -> None:
        """Forward again; connections opened during a drop are closed (clients reconnect)."""
        dropped = self.mode == "drop"
        self.mode = "pass"
        if dropped:
            for writer in list(self._writers):
                writer.transport.abort()
            self._writers.clear()

    async def close(self) -> None:
        self.reset()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()


__all__ = ["TcpCut"]
