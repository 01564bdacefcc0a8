"""When Redis does not answer, the hub stops asking it for a while: a circuit breaker.

A frozen Redis (SIGSTOP, a stuck node, a partition that drops packets) does
not refuse connections: every read waits for its timeout. Without a breaker
each poll, page and wait of the hub would pay that timeout before reading
the Kubernetes API instead. With it, the first read that fails opens the
breaker; while open, cache reads fail at once (the callers read the API,
which never turns "Redis slow" into "server stopped": see
docs/spawner-safety.md) and one background probe per ``delay`` asks Redis
again; the first answer closes it. Pure state: :class:`CacheClient` does the
probing.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubecache.backoff import Backoff


@dataclass
class BreakerState:
    """Open since (monotonic) and why; None while closed."""

    opened: float
    why: str


class Breaker:
    """Closed (reads go to Redis) or open (they fail at once until a probe succeeds)."""

    def __init__(self, *, initial: float = 0.2, maximum: float = 2.0) -> None:
        self.state: BreakerState | None = None
        self.trips = 0
        self._backoff = Backoff(initial=initial, maximum=maximum)

    @property
    def open(self) -> bool:
        return self.state is not None

    def trip(self, why: str, now: float) -> bool:
        """Open the breaker; True when it was closed (the caller starts probing)."""
        if self.state is not None:
            self.state.why = why
            return False
        self.trips += 1
        self.state = BreakerState(now, why)
        self._backoff.reset()
        return True

    def next_probe_delay(self) -> float:
        return self._backoff.next_delay()

    def close(self) -> BreakerState | None:
        """Close it; the state it was open with (None: it was closed)."""
        state, self.state = self.state, None
        return state


__all__ = ["Breaker", "BreakerState"]
