"""The hub's Kubernetes Service, on loopback: routes to the one Ready replica, probed over HTTP.

Each hub replica binds its own address (two pods have two IPs); the proxy, the
user servers (``hub_connect_url``) and the tests reach the hub through this
Service address, as ``http://hub:8081`` in zero-to-jupyterhub. A readiness
probe (``GET /hub/health``, 0.5 s timeout, every 0.25 s; one failure makes a
replica unready, one success ready: faster than Kubernetes' defaults, so the
measured takeover is the hub's and not the probe's) decides where new
connections go. A standby replica runs no hub, so it is never Ready.

The same probes are the test's check that at most one hub is active: every
round in which two replicas answer ``/hub/health`` is recorded in
:attr:`HubService.overlaps`.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from tests.support.tcp_forwarder import Target, TcpForwarder


@dataclass
class Backend:
    name: str
    host: str
    port: int
    ready: bool = False
    #: monotonic times this replica's health turned ready / unready
    became_ready: list[float] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


class HubService:
    def __init__(self, port: int, *, probe_period: float = 0.25, probe_timeout: float = 0.5):
        self.backends: dict[str, Backend] = {}
        self.probe_period = probe_period
        self.probe_timeout = probe_timeout
        #: (monotonic time, names of the replicas that answered) of every overlapping round
        self.overlaps: list[tuple[float, list[str]]] = []
        self.rounds = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.forwarder = TcpForwarder(self._choose, port=port)
        self._thread = threading.Thread(target=self._probe_loop, name="hub-service", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.forwarder.port}"

    def add(self, name: str, host: str, port: int) -> Backend:
        with self._lock:
            backend = self.backends[name] = Backend(name, host, port)
        return backend

    def ready(self) -> list[str]:
        with self._lock:
            return [b.name for b in self.backends.values() if b.ready]

    def _choose(self) -> Target | None:
        with self._lock:
            for backend in self.backends.values():
                if backend.ready:
                    return (backend.host, backend.port)
        return None

    def _healthy(self, backend: Backend) -> bool:
        try:
            with urllib.request.urlopen(
                backend.url + "/hub/health", timeout=self.probe_timeout
            ) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError, ValueError):
            return False

    def _probe_loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                backends = list(self.backends.values())
            answered = []
            for backend in backends:
                healthy = self._healthy(backend)
                if healthy:
                    answered.append(backend.name)
                if healthy and not backend.ready:
                    backend.became_ready.append(time.monotonic())
                backend.ready = healthy
            self.rounds += 1
            if len(answered) > 1:
                self.overlaps.append((time.monotonic(), answered))
            self._stop.wait(self.probe_period)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.forwarder.close()
