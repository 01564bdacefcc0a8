"""Child processes that do not outlive the test run or benchmark that started them.

A test or benchmark killed before its teardown (``kill -9``, a hang watchdog, a
``timeout``) left its redis-server, kubesim and cacher running: one cacher ran on
for hours (session 5), and a killed ``benchmarks/compare.py`` left its
redis-server and cacher behind (session 6). On Linux a child can ask to be
SIGKILLed when its parent dies (``prctl(PR_SET_PDEATHSIG)``).
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import sys
import threading
from collections.abc import Callable

#: Loaded here, not in the forked child (no dynamic loading between fork and exec).
_LIBC = ctypes.CDLL("libc.so.6", use_errno=True) if sys.platform == "linux" else None
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # in the child, between fork and exec: one libc call
    if _LIBC is not None:
        with contextlib.suppress(OSError, AttributeError):
            _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the child SIGKILLed when this process ends; None off
    Linux or outside the main thread: the signal follows the *thread* that forked, and a
    child started from a worker thread (``asyncio.to_thread``) would die with that
    thread, not with the process."""
    if _LIBC is None or threading.current_thread() is not threading.main_thread():
        return None
    return _die_with_parent


__all__ = ["die_with_parent"]
