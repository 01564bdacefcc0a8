"""Logging in the hub's conventions, and log lines that must not flood it.

Every line kubecache writes in a hub goes through the spawner's ``self.log``:
in JupyterHub that is the hub's own logger (its format with time and level,
its ``log_level``), so nothing reaches ``jupyterhub.log`` bare and no INFO or
DEBUG line is lost to an unconfigured module logger. Objects shared by all
spawners of a hub (the cache client, the API client, the coalesced pod reads)
take the logger of the spawner that created them (:func:`hub_logger`); lines
about one server name its user and server.

:class:`EveryInterval` lets a recurring line through the first time and then
at most once per interval, counting what it held back.
"""

from __future__ import annotations

import logging
import time
from typing import Any

Logger = logging.Logger | logging.LoggerAdapter[Any]


def hub_logger(log: Logger | None, module: str) -> Logger:
    """``log`` (a spawner's ``self.log``: the hub's logger), else the module's own logger
    (outside a hub: the CLI, tests)."""
    return log if log is not None else logging.getLogger(module)


class EveryInterval:
    """Whether a recurring log line is due: the first time, then once per ``interval`` s."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.count = 0
        self._held_back = 0
        self._last: float | None = None

    def due(self, now: float | None = None) -> int | None:
        """Count one occurrence. None when it is not to be logged; else how many were held
        back since the last line that was (0 the first time)."""
        now = time.monotonic() if now is None else now
        self.count += 1
        if self._last is not None and now - self._last < self.interval:
            self._held_back += 1
            return None
        self._last = now
        held, self._held_back = self._held_back, 0
        return held


__all__ = ["EveryInterval", "Logger", "hub_logger"]
