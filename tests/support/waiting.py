"""Bounded waits on conditions: the only way tests synchronise."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def wait_for(
    condition: Callable[[], T | Awaitable[T]],
    *,
    timeout: float = 10.0,
    interval: float = 0.01,
    message: str = "condition",
) -> T:
    """Return the first truthy value of ``condition()`` (sync or async).

    Fails the test with ``message`` and the last value seen when ``timeout``
    seconds pass first.
    """
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        last = value  # type: ignore[assignment]
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout} s waiting for {message}; last: {last!r}"
            )
        await asyncio.sleep(interval)


def wait_until(
    condition: Callable[[], object], *, timeout: float = 10.0, message: str = "condition"
) -> None:
    """The synchronous twin of :func:`wait_for`, for tests driving subprocesses."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(0.02)
