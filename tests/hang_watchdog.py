"""A test run that hangs names itself: which test, which thread, which await.

pytest-timeout fails a test after its bound (``timeout`` in pyproject.toml, or a
``@pytest.mark.timeout``), but its report shows only the main thread's Python
stack, which for an asyncio test is the event loop's ``select()``: not *what*
the test was waiting for. This plugin, loaded by tests/conftest.py, watches every
test from a thread of its own:

- shortly before pytest-timeout fires, it prints every thread's stack and every
  pending task of every running event loop, each with the chain of awaits down
  to the line it is suspended on;
- pytest-timeout fires once per test; when the timed-out test's teardown then
  hangs too (pytest-asyncio cancels the loop's remaining tasks and waits for them
  without a bound: one task that does not end on cancel, and the run idles in
  its event loop forever), it raises a failure into the main thread every
  ``KUBECACHE_HANG_NUDGE`` seconds (after printing the pending tasks; through
  SIGUSR2, pytest-timeout having removed its SIGALRM handler once the test
  failed), so the test fails with its name and the run goes on;
- as a last resort, if the process is still in the same test well past its
  bound (pytest-timeout could not interrupt it: a C call holding the GIL, a
  wedged signal handler), faulthandler dumps every thread's C-level-safe
  traceback and exits the process, so CI fails with a name instead of idling;
- the whole session has a bound too (``KUBECACHE_SESSION_TIMEOUT`` seconds,
  default 80 minutes, under CI's 90), covering collection, session fixtures and
  teardown, where no test's timeout applies.

Output goes to the stderr the run started with, not into pytest's capture
(which holds file descriptor 2 during a test, and is lost with the process when
the last resort ends it), so it is seen even when the run is killed afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import gc
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from types import CoroutineType, FrameType, GeneratorType
from typing import Any

import pytest

#: Seconds before the test's timeout at which the diagnostic dump is printed.
DUMP_LEAD = float(os.environ.get("KUBECACHE_HANG_DUMP_LEAD", "10"))
#: Seconds after the test's timeout at which the process is dumped and ended.
HARD_STOP_GRACE = float(os.environ.get("KUBECACHE_HANG_GRACE", "90"))
#: Seconds between the failures raised into a teardown hung after the test's timeout.
NUDGE_EVERY = float(os.environ.get("KUBECACHE_HANG_NUDGE", "15"))
SESSION_TIMEOUT = float(os.environ.get("KUBECACHE_SESSION_TIMEOUT", "4800"))


#: A duplicate of the run's own stderr, set by pytest_configure (fd 2 until then).
_out_fd = 2
_out_file: Any = None


def _real_stderr_fd(config: pytest.Config) -> int:
    """The stderr the run started with: pytest's fd capture saved it before redirecting 2."""
    capman = config.pluginmanager.getplugin("capturemanager")
    capturing = getattr(capman, "_global_capturing", None)
    saved = getattr(getattr(capturing, "err", None), "targetfd_save", None)
    return saved if isinstance(saved, int) else 2


def _write(text: str) -> None:
    with contextlib.suppress(OSError):
        os.write(_out_fd, text.encode("utf-8", "backslashreplace"))


def _await_chain(coro: Any) -> Iterator[str]:
    """The lines a coroutine is suspended on, outermost first, following ``await``s."""
    seen = 0
    while coro is not None and seen < 50:
        seen += 1
        frame: FrameType | None = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            code = frame.f_code
            line = traceback.extract_stack(frame, limit=1)[-1]
            yield f'    File "{code.co_filename}", line {frame.f_lineno}, in {code.co_name}'
            if line.line:
                yield f"      {line.line.strip()}"
        nxt = getattr(coro, "cr_await", None)
        if nxt is None:
            nxt = getattr(coro, "gi_yieldfrom", None)
        if nxt is not None and not isinstance(nxt, CoroutineType | GeneratorType):
            # a Future or an awaitable object: say what it is and stop
            yield f"    awaiting {nxt!r}"[:400]
            return
        coro = nxt


def _running_loops() -> list[asyncio.AbstractEventLoop]:
    return [
        obj
        for obj in gc.get_objects()
        if isinstance(obj, asyncio.AbstractEventLoop) and obj.is_running()
    ]


def dump_state(reason: str) -> None:
    """Prints every thread's stack and every pending asyncio task to stderr."""
    out = [f"\n{'=' * 30} {reason} {'=' * 30}"]
    frames = sys._current_frames()
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    for ident, frame in frames.items():
        if ident == threading.get_ident():
            continue
        out.append(f"--- thread {names.get(ident, '?')} ({ident}) ---")
        out.extend(line.rstrip() for line in traceback.format_stack(frame))
    for loop in _running_loops():
        try:
            tasks = list(asyncio.all_tasks(loop))
        except RuntimeError:  # the set changed while we read it: try once more
            tasks = list(asyncio.all_tasks(loop))
        out.append(f"--- event loop {loop!r}: {len(tasks)} pending task(s) ---")
        for task in tasks:
            out.append(f"  task {task.get_name()}: {task.get_coro()!r}")
            out.extend(_await_chain(task.get_coro()))
    out.append("=" * (62 + len(reason)) + "\n")
    _write("\n".join(out))


class _Watch:
    """One timer thread for the whole run, re-armed at every test."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._deadline: float | None = None  # the diagnostic dump
        self._nudge_at: float | None = None  # the next re-raise into a hung teardown
        self._label = ""
        self._session_deadline = time.monotonic() + SESSION_TIMEOUT
        self._session_dumped = False
        threading.Thread(target=self._run, name="hang-watchdog", daemon=True).start()

    def arm(self, label: str, timeout: float) -> None:
        with self._lock:
            now = time.monotonic()
            self._label = label
            self._deadline = now + max(timeout - DUMP_LEAD, timeout / 2)
            self._nudge_at = now + timeout + NUDGE_EVERY
            self._lock.notify()
        # the C-level watchdog: works even when the interpreter cannot run Python code
        faulthandler.dump_traceback_later(
            timeout + HARD_STOP_GRACE, exit=True, file=_out_file or sys.stderr
        )

    def disarm(self) -> None:
        with self._lock:
            self._deadline = None
            self._nudge_at = None
        faulthandler.cancel_dump_traceback_later()

    def _run(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                due = [
                    d
                    for d in (self._deadline, self._nudge_at, self._session_deadline)
                    if d is not None
                ]
                wait = min(due) - now if due else 60.0
                if wait > 0:
                    self._lock.wait(timeout=min(wait, 60.0))
                    continue
                label = self._label
                test_due = self._deadline is not None and self._deadline <= now
                nudge_due = self._nudge_at is not None and self._nudge_at <= now
                if test_due:
                    self._deadline = None
                if nudge_due:
                    self._nudge_at = now + NUDGE_EVERY
            if test_due:
                dump_state(f"test still running near its timeout: {label}")
            elif nudge_due:
                dump_state(f"test still not ended {NUDGE_EVERY:g} s after its timeout: {label}")
                _write(f"failing the main thread's wait ({label})\n")
                _reraise_timeout()
            elif not self._session_dumped:
                self._session_dumped = True
                dump_state(f"the test session exceeded {SESSION_TIMEOUT:.0f} s (at {label})")
                faulthandler.dump_traceback(file=_out_file or sys.stderr, all_threads=True)
                os._exit(3)


def _reraise_timeout() -> None:
    """Fails whatever the main thread waits on (the handler installed by pytest_configure)."""
    with contextlib.suppress(OSError, ValueError):
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGUSR2)


def _fail_hung_teardown(signum: int, frame: FrameType | None) -> None:
    __tracebackhide__ = True
    pytest.fail(
        f"still not ended {NUDGE_EVERY:g} s after its timeout (a teardown waiting on a task "
        "that does not end when cancelled?): see the pending tasks printed above",
        pytrace=False,
    )


_watch: _Watch | None = None


def _timeout_of(item: pytest.Item) -> float:
    marker = item.get_closest_marker("timeout")
    if marker is not None and marker.args:
        return float(marker.args[0])
    if marker is not None and "timeout" in marker.kwargs:
        return float(marker.kwargs["timeout"])
    value = item.config.getini("timeout")
    return float(value) if value else 300.0


def pytest_configure(config: pytest.Config) -> None:
    global _out_fd, _out_file
    _out_fd = os.dup(_real_stderr_fd(config))
    _out_file = os.fdopen(_out_fd, "w", buffering=1, closefd=False)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGUSR2, _fail_hung_teardown)


def pytest_sessionstart(session: pytest.Session) -> None:
    global _watch
    _watch = _Watch()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    if _watch is not None:
        _watch.arm(item.nodeid, _timeout_of(item))
    try:
        yield
    finally:
        if _watch is not None:
            _watch.disarm()
