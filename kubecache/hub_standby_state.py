"""What one ``kubecache hub-standby`` replica is doing, as Prometheus metrics and a lease record.

The lease key ``P hub-lease:<name>`` holds a small JSON :class:`LeaseRecord`
(the holder's identity, when it took the lease over and from whom), so
``kubecache status`` shows the active replica and the last takeover from Redis
alone. A value that is not such a record (a wrapper of kubecache <= 0.x wrote
the bare identity) is read as the identity of its holder.

Each replica serves its own state on ``--metrics-port`` (``/metrics``,
Prometheus text format; off unless given), names starting with
``kubecache_hub_standby_``:

===============================================  ======================================
``kubecache_hub_standby_active``                  1 while this replica holds the lease
                                                  and runs the hub, else 0 (a standby)
``kubecache_hub_standby_hub_running``             1 while the hub process runs
``kubecache_hub_standby_lease_holder{holder}``    1 for the holder this replica last saw
``kubecache_hub_standby_takeovers_total``         leases this replica acquired
``kubecache_hub_standby_last_takeover_timestamp_seconds``
                                                  Unix time of its last acquisition
``kubecache_hub_standby_lease_lost_total{reason}``  ``taken``, ``unrenewable``, ``frozen``
``kubecache_hub_standby_renew_failures_total``    renewals that failed or timed out
===============================================  ======================================
"""

from __future__ import annotations

import contextlib
import logging
import platform
import time
from dataclasses import dataclass

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from kubecache import __version__

log = logging.getLogger(__name__)

#: Longest identity kept from a lease value (the key is writable by every hub replica).
MAX_IDENTITY = 253


@dataclass(frozen=True)
class LeaseRecord:
    """The value of ``P hub-lease:<name>``: who runs the hub, since when, taken from whom."""

    holder: str
    #: Redis server time (ms) when ``holder`` acquired the lease; None when unknown
    since_ms: int | None = None
    #: the holder the acquiring replica last saw before it (None: the lease was free)
    previous: str | None = None

    def encode(self) -> str:
        return orjson.dumps(
            {"holder": self.holder, "since_ms": self.since_ms, "previous": self.previous}
        ).decode()


def decode_lease(raw: bytes | str | None) -> LeaseRecord | None:
    """The record in a lease value; a bare identity (older wrappers) is its holder.

    Never raises: the value is untrusted text.
    """
    if raw is None:
        return None
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
    if text.startswith("{"):
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("holder"), str):
            since = data.get("since_ms")
            previous = data.get("previous")
            return LeaseRecord(
                holder=data["holder"][:MAX_IDENTITY],
                since_ms=since if isinstance(since, int) and not isinstance(since, bool) else None,
                previous=previous[:MAX_IDENTITY] if isinstance(previous, str) else None,
            )
    return LeaseRecord(holder=text[:MAX_IDENTITY])


class StandbyState:
    """This replica's role and history, mirrored into its own Prometheus registry."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, lease_name: str, identity: str) -> None:
        self.lease_name = lease_name
        self.identity = identity
        self.role = "standby"
        self.holder: str | None = None
        self.takeovers = 0
        self.last_takeover: float | None = None
        self.registry = r = CollectorRegistry()
        p = "kubecache_hub_standby_"
        self._active = Gauge(p + "active", "1 while this replica runs the hub", registry=r)
        self._running = Gauge(p + "hub_running", "1 while the hub process runs", registry=r)
        self._holder = Gauge(
            p + "lease_holder", "1 for the lease holder last seen", ["holder"], registry=r
        )
        self._takeovers = Counter(p + "takeovers", "Leases this replica acquired", registry=r)
        self._last_takeover = Gauge(
            p + "last_takeover_timestamp_seconds",
            "Unix time this replica last acquired the lease",
            registry=r,
        )
        self._lost = Counter(
            p + "lease_lost", "Leases lost while running the hub", ["reason"], registry=r
        )
        self.renew_failures = Counter(
            p + "renew_failures", "Lease renewals that failed or timed out", registry=r
        )
        info = Gauge(
            "kubecache_build_info",
            "kubecache version",
            ["component", "version", "python"],
            registry=r,
        )
        info.labels("hub-standby", __version__, platform.python_version()).set(1)

    def saw_holder(self, holder: str | None) -> None:
        if holder != self.holder:
            self._holder.clear()
            if holder is not None:
                self._holder.labels(holder).set(1)
            self.holder = holder

    def acquired(self) -> None:
        self.role = "active"
        self.takeovers += 1
        self.last_takeover = time.time()
        self._takeovers.inc()
        self._last_takeover.set(self.last_takeover)
        self._active.set(1)
        self.saw_holder(self.identity)

    def hub_running(self, running: bool) -> None:
        self._running.set(1 if running else 0)

    def stepped_down(self, reason: str | None) -> None:
        """The hub is stopped or stopping: ``reason`` the lease was lost for, None if released."""
        self.role = "standby"
        self._active.set(0)
        if reason is not None:
            self._lost.labels(reason).inc()

    def expose(self) -> bytes:
        return generate_latest(self.registry)

    def as_json(self) -> dict[str, object]:
        return {
            "lease": self.lease_name,
            "identity": self.identity,
            "role": self.role,
            "holder": self.holder,
            "takeovers": self.takeovers,
            "last_takeover": self.last_takeover,
        }


class MetricsServer:
    """``/metrics`` (Prometheus) and ``/state`` (JSON) of one replica."""

    def __init__(self, state: StandbyState, *, host: str, port: int) -> None:
        self.state, self.host, self.port = state, host, port
        self._runner: web.AppRunner | None = None

    async def metrics(self, request: web.Request) -> web.Response:
        response = web.Response(body=self.state.expose())
        response.headers["Content-Type"] = self.state.content_type
        return response

    async def state_json(self, request: web.Request) -> web.Response:
        return web.json_response(self.state.as_json())

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/state", self.state_json)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        log.info("serving hub-standby metrics on http://%s:%s/metrics", self.host, self.port)

    async def close(self) -> None:
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await self._runner.cleanup()
