"""Retry policy: bounded exponential back-off with full jitter.

Shared by every loop that retries: the cacher's watches and elections, the
spawner's change-feed follower and Kubernetes API calls.

A :class:`Backoff` is a small state machine: ``next_delay()`` after each
failure, ``reset()`` after a success. A server's Retry-After is honoured (it
replaces the computed delay, capped at ``retry_after_cap``) so a throttled
cacher waits as long as the API server asked, never less.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Backoff:
    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    #: Longest Retry-After honoured (a broken proxy could ask for hours).
    retry_after_cap: float = 120.0
    rand: Callable[[], float] = field(default=random.random, repr=False)
    attempts: int = 0

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.maximum < self.initial or self.factor < 1:
            raise ValueError("back-off needs 0 < initial <= maximum and factor >= 1")

    def ceiling(self) -> float:
        """Upper bound of the next delay (before jitter)."""
        return min(self.maximum, self.initial * self.factor ** min(self.attempts, 64))

    def next_delay(self, retry_after: float | None = None) -> float:
        """Seconds to wait before the next attempt; counts the failure.

        Full jitter (uniform in [0, ceiling]) spreads reconnect storms of many
        clients; a Retry-After from the server is a floor, plus a little jitter.
        """
        ceiling = self.ceiling()
        self.attempts += 1
        if retry_after is not None and retry_after > 0:
            wait = min(retry_after, self.retry_after_cap)
            return wait + self.rand() * min(1.0, wait * 0.1)
        return self.rand() * ceiling

    def reset(self) -> None:
        self.attempts = 0


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form only)."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def jittered(
    value: float, fraction: float = 0.1, rand: Callable[[], float] = random.random
) -> float:
    """``value`` spread by up to ``+fraction`` (e.g. watch timeouts of many clients)."""
    return value * (1.0 + fraction * rand())


__all__ = ["Backoff", "jittered", "parse_retry_after"]
