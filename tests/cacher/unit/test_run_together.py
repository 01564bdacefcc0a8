"""run_together and cancel_and_wait leave no task behind, even when cancelled themselves.

A leader's term runs its pods watch, events watch and heartbeat together; when one
fails and the term is cancelled meanwhile (the Lease was lost in the same
moment), every task must still end and have its failure retrieved: a task left
running would write on, and asyncio logs an unretrieved failure as a traceback
("Task exception was never retrieved"), which the chaos tests count as a defect.
"""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from kubecache.cacher.watcher import cancel_and_wait, run_together


class Boom(Exception):
    pass


def _unretrieved(loop: asyncio.AbstractEventLoop) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    return seen


async def _fails_soon() -> None:
    await asyncio.sleep(0.01)
    raise Boom("first")


async def _slow_to_cancel(cancel_seen: asyncio.Event | None = None) -> None:
    """Takes a while to wind down after a cancel, then fails (as a heartbeat may)."""
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        if cancel_seen is not None:
            cancel_seen.set()
        await asyncio.sleep(0.2)
        raise Boom("second, while cancelled") from None


async def test_the_first_failure_is_raised_and_the_others_are_ended() -> None:
    with pytest.raises(Boom, match="first"):
        await run_together({"a": _fails_soon(), "b": _slow_to_cancel()})
    assert not [t for t in asyncio.all_tasks() if t.get_name() in {"a", "b"}]


async def test_a_caller_cancelled_during_the_cleanup_still_waits_for_every_task() -> None:
    seen = _unretrieved(asyncio.get_running_loop())
    cancel_seen = asyncio.Event()
    term = asyncio.create_task(
        run_together({"pods": _fails_soon(), "heartbeat": _slow_to_cancel(cancel_seen)})
    )
    # "pods" failed and run_together, in its cleanup, cancelled "heartbeat" (winding down)
    async with asyncio.timeout(5):
        await cancel_seen.wait()
    term.cancel()  # the Lease was lost in the same moment
    with pytest.raises((asyncio.CancelledError, Boom)):
        await term
    left = [t for t in asyncio.all_tasks() if t.get_name() in {"pods", "heartbeat"}]
    assert not left, f"tasks left running after the term ended: {left}"
    gc.collect()
    await asyncio.sleep(0)
    assert not seen, [c.get("message") for c in seen]


async def test_cancel_and_wait_accepts_none_and_finished_tasks() -> None:
    seen = _unretrieved(asyncio.get_running_loop())
    failed = asyncio.create_task(_fails_soon())
    await asyncio.wait([failed])
    await cancel_and_wait(None, failed)
    del failed
    gc.collect()
    await asyncio.sleep(0)
    assert not seen
