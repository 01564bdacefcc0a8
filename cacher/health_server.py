"""HTTP endpoints for Kubernetes probes and Prometheus.

- ``/healthz`` (the liveness probe: a failure restarts the container): 200
  while the process does its job; 503 when its event loop is unresponsive (a
  ticker task has not run recently) or the ``liveness`` check fails (see
  :meth:`kubecache.cacher.app.Cacher.liveness`: a wedged control loop, or a leader that
  cannot write to Redis and still holds the Lease). Never for an outage of
  Redis or the API alone: restarting would not end it.
- ``/readyz``: 200 when the replica is a leader that is synced and writing, or
  a healthy standby; 503 with a JSON reason otherwise (a failed watch, Redis
  down, not yet synced).
- ``/metrics``: Prometheus text format of this process's registry.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from kubecache.cacher.metrics import CacherMetrics


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str
    details: dict[str, Any] = field(default_factory=dict)


class HealthServer:
    def __init__(
        self,
        *,
        metrics: CacherMetrics,
        readiness: Callable[[], Readiness],
        liveness: Callable[[], Readiness] | None = None,
        host: str = "0.0.0.0",
        port: int = 8080,
        tick: float = 1.0,
        unresponsive_after: float = 10.0,
    ) -> None:
        self.metrics = metrics
        self.readiness = readiness
        self.liveness = liveness
        self.host = host
        self.port = port
        self.tick = tick
        self.unresponsive_after = unresponsive_after
        self.last_tick = time.monotonic()
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.metrics_handler)
        return app

    async def healthz(self, request: web.Request) -> web.Response:
        age = time.monotonic() - self.last_tick
        if age > self.unresponsive_after:
            return _json(503, {"ok": False, "reason": f"event loop stalled for {age:.1f} s"})
        if self.liveness is not None:
            state = self.liveness()
            if not state.ready:
                return _json(503, {"ok": False, "reason": state.reason})
        return _json(200, {"ok": True})

    async def readyz(self, request: web.Request) -> web.Response:
        state = self.readiness()
        body = {"ready": state.ready, "reason": state.reason, **state.details}
        return _json(200 if state.ready else 503, body)

    async def metrics_handler(self, request: web.Request) -> web.Response:
        response = web.Response(body=self.metrics.expose())
        response.headers["Content-Type"] = self.metrics.content_type
        return response

    async def _tick(self) -> None:
        while True:
            self.last_tick = time.monotonic()
            await asyncio.sleep(self.tick)

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = getattr(site, "_server", None)
        if self.port == 0 and server is not None and server.sockets:
            self.port = int(server.sockets[0].getsockname()[1])
        self._ticker = asyncio.create_task(self._tick())

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self._runner is not None:
            await self._runner.cleanup()


def _json(status: int, body: dict[str, Any]) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


__all__ = ["HealthServer", "Readiness"]
