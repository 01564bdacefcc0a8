"""Process groups kubesim started and has not reaped yet: killed if the interpreter exits.

Containers and exec sessions run in process groups of their own (start_new_session); an
atexit hook SIGKILLs whatever is still registered, so an interpreter that exits without the
kubelet's close() leaves no process behind.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal

__all__ = ["forget", "kill", "track"]

_live: set[int] = set()


def track(pgid: int) -> None:
    _live.add(pgid)


def forget(pgid: int) -> None:
    _live.discard(pgid)


def kill(pgid: int, signum: int = signal.SIGKILL) -> None:
    """Signal a whole group; a group that is gone already is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


@atexit.register
def _kill_leftovers() -> None:
    for pgid in list(_live):
        kill(pgid)
