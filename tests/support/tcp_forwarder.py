"""A TCP forwarder on 127.0.0.1 that a test controls: pass traffic, black-hole it, or refuse it.

It stands between one client (e.g. one hub replica) and a server (e.g. Redis)
to cut that client's connection only, the way a network fault does:

- ``passing``: bytes flow both ways;
- ``blackhole``: connections stay open but nothing is delivered either way (a
  partition: the client's requests time out, they are not refused);
- ``refusing``: open connections are reset and new ones closed at once.

The forwarder runs its own event loop in a thread, so both synchronous tests
driving subprocesses and asynchronous ones (whose loop may be busy serving
kubesim) can use it. ``target`` may be a callable chosen per connection (the
hub Service of the e2e tests routes to the ready replica).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable

from tests.support.redis_server import free_port

Target = tuple[str, int]

PASSING, BLACKHOLE, REFUSING = "passing", "blackhole", "refusing"


class TcpForwarder:
    def __init__(
        self,
        target: Target | Callable[[], Target | None],
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
    ) -> None:
        self._target = target
        self.host = host
        self.port = port or free_port(host)
        self.mode = PASSING
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"forwarder-{self.port}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the TCP forwarder did not start")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, self.host, self.port)
        )
        self._ready.set()
        self._loop.run_forever()

    def _choose(self) -> Target | None:
        return self._target() if callable(self._target) else self._target

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        target = None if self.mode == REFUSING else self._choose()
        if target is None:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*target), 5)
        except (OSError, TimeoutError):
            writer.close()
            return
        self.connections += 1
        self._writers.update((writer, up_writer))
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                if self.mode == PASSING:
                    writer.write(data)
                    await writer.drain()
                # blackhole: swallowed, as a partition would
        with contextlib.suppress(OSError):
            writer.close()

    def _set(self, mode: str) -> None:
        def apply() -> None:
            self.mode = mode
            if mode == REFUSING:
                for writer in list(self._writers):
                    transport = writer.transport
                    with contextlib.suppress(OSError):
                        transport.abort()

        done = threading.Event()
        self._loop.call_soon_threadsafe(lambda: (apply(), done.set()))
        done.wait(5)

    def pass_traffic(self) -> None:
        self._set(PASSING)

    def blackhole(self) -> None:
        self._set(BLACKHOLE)

    def refuse(self) -> None:
        self._set(REFUSING)

    def close(self) -> None:
        def stop() -> None:
            if self._server is not None:
                self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            self._loop.stop()

        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(stop)
            self._thread.join(10)
