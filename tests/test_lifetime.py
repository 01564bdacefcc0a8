"""tests/support/lifetime.py: children of a killed test run or benchmark do not live on."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import psutil
import pytest

from tests.support.lifetime import die_with_parent
from tests.support.waiting import wait_for

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")

REPO = Path(__file__).resolve().parents[1]

# A parent that starts a long sleep (with or without the guard), prints its pid, and is
# then killed with SIGKILL: no teardown of its own runs.
PARENT = textwrap.dedent(
    """
    import subprocess, sys
    from tests.support.lifetime import die_with_parent
    guard = die_with_parent() if sys.argv[1] == "guarded" else None
    child = subprocess.Popen(["sleep", "60"], preexec_fn=guard)
    print(child.pid, flush=True)
    sys.stdin.read()
    """
)


def _orphan_of(mode: str) -> psutil.Process:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert parent.stdout is not None
    child = psutil.Process(int(parent.stdout.readline()))
    parent.kill()
    parent.wait(10)
    return child


def _dead(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE  # killed, not reaped (no init here)
    except psutil.NoSuchProcess:
        return True


async def test_a_guarded_child_dies_with_its_killed_parent() -> None:
    """And the control: an unguarded one, orphaned the same way, is alive after the guarded
    one died (the kill of the parent alone does not end its children)."""
    plain = _orphan_of("plain")
    try:
        guarded = _orphan_of("guarded")
        await wait_for(
            lambda: _dead(guarded), timeout=10, message=f"pid {guarded.pid} to be killed"
        )
        assert not _dead(plain)
    finally:
        plain.kill()


def test_no_guard_from_a_worker_thread() -> None:
    """The signal follows the forking thread: a child started from a worker thread would
    die when that thread ends, so none is installed there."""
    found: list[object] = []
    worker = threading.Thread(target=lambda: found.append(die_with_parent()))
    worker.start()
    worker.join(10)
    assert found == [None]
    assert die_with_parent() is not None
