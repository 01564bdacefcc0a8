"""Calling the hooks operators configure (plain functions or coroutines)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any


async def call_hook(hook: Callable[..., Any], *args: Any) -> Any:
    """Call a configured hook, awaiting its result when it is awaitable."""
    result = hook(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


__all__ = ["call_hook"]
