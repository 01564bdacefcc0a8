"""Until when the hub may call itself active: written by ``hub-standby``, read in the hub.

A hub and its ``hub-standby`` wrapper frozen together (SIGSTOP, a paused VM) for longer
than the lease resume together; the wrapper then kills the hub at once, but a readiness
probe that was already waiting in the hub's socket is answered in the hub's first loop
iteration, before the wrapper runs: two hubs answer ``/hub/health`` for a moment (seen
in the HA test's SIGSTOP phase). So the wrapper writes, after every renewal, the
CLOCK_MONOTONIC time until which the lease it holds is surely its own
(``confirmed + duration - margin``) into a small file named by :data:`ENV`, and the hub
(started through :mod:`kubecache.hub_preload`) answers ``/hub/health`` with 503 past it.
CLOCK_MONOTONIC is one clock for every process of the machine, and it runs on while a
process is stopped.

The file holds one native double at offset 0, written with one ``pwrite``. A file that
cannot be read does not make the hub unready (that would be an outage made by a check):
the wrapper's kill remains the guarantee; this only closes the moment before it.
"""

from __future__ import annotations

import contextlib
import os
import struct
import time
from pathlib import Path

#: the environment variable that names the file, set by hub-standby for its hub
ENV = "KUBECACHE_HUB_LEASE_VALID_UNTIL"
_DOUBLE = struct.Struct("=d")


class LeaseClockWriter:
    """The wrapper's side: one file per hub process, removed on close."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        self.write(0.0)  # not active until the wrapper says so

    def write(self, valid_until: float) -> None:
        os.pwrite(self._fd, _DOUBLE.pack(valid_until), 0)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)
        with contextlib.suppress(OSError):
            self.path.unlink()


def lease_expired(path: str, now: float | None = None) -> bool:
    """The hub's side: True only when the file says the lease ended before ``now``."""
    try:
        with open(path, "rb") as f:
            data = f.read(_DOUBLE.size)
    except OSError:
        return False
    if len(data) != _DOUBLE.size:
        return False
    (valid_until,) = _DOUBLE.unpack(data)
    return (time.monotonic() if now is None else now) > valid_until


__all__ = ["ENV", "LeaseClockWriter", "lease_expired"]
