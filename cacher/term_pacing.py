"""When a leader may start its next term after a fault, and when it must give way.

A term ends on a fault (the health record vanished, records diverged, another
writer fenced this one, Redis failed, a key of a foreign type): each restart
is a new epoch and a full LIST of pods and events, so restarting at once on
a fault that keeps coming back (evictions under memory pressure, two
deployments fighting over one prefix) turns it into an API storm.
:class:`TermPacer` spaces them: the first ``burst`` restarts within
``window`` seconds are immediate (one FLUSHALL or one healed record costs no
wait), then each waits twice as long as the one before, up to ``maximum``,
with jitter. Restarts older than ``window`` are forgotten.

:class:`WriteDeadline` is the leader's side of the Lease contract for Redis:
a leader that could not renew its Lease for the renew deadline has lost it;
one that could not write to Redis for as long (the write deadline) gives it
up, so a standby that reaches Redis takes over within the lease duration.

Both are pure (clock and randomness injected) and tested alone.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class TermPacer:
    burst: int = 5
    window: float = 120.0
    initial: float = 1.0
    maximum: float = 30.0
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    rand: Callable[[], float] = field(default=random.random, repr=False)
    _restarts: deque[float] = field(default_factory=deque, repr=False)

    def recent(self) -> int:
        """Restarts after faults within the window (the one being paced included)."""
        now = self.clock()
        while self._restarts and now - self._restarts[0] > self.window:
            self._restarts.popleft()
        return len(self._restarts)

    def next_delay(self) -> float:
        """Seconds to wait before the restart that follows a fault now; counts it."""
        self._restarts.append(self.clock())
        beyond = self.recent() - self.burst
        if beyond <= 0:
            return 0.0
        ceiling = min(self.maximum, self.initial * 2.0 ** min(beyond - 1, 32))
        return ceiling * (0.5 + 0.5 * self.rand())  # at least half: the pacing holds


@dataclass
class WriteDeadline:
    """How long the leader has gone without a successful Redis write."""

    give_way_after: float
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    last_ok: float = 0.0
    last_error: str = ""

    def __post_init__(self) -> None:
        self.last_ok = self.clock()

    def restart(self) -> None:
        """A new leadership: the clock starts now."""
        self.last_ok = self.clock()
        self.last_error = ""

    def ok(self) -> None:
        self.last_ok = self.clock()
        self.last_error = ""

    def pause(self, seconds: float) -> None:
        """A deliberate wait without writes (a paced restart) counts as writing."""
        self.last_ok = self.clock() + seconds

    def failed(self, error: str) -> None:
        self.last_error = error

    def silent_for(self) -> float:
        return max(0.0, self.clock() - self.last_ok)

    def overdue(self) -> bool:
        return self.silent_for() > self.give_way_after

    def why(self) -> str:
        error = f" (last error: {self.last_error})" if self.last_error else " (no answer)"
        return f"no Redis write succeeded for {self.silent_for():.1f} s{error}"


__all__ = ["TermPacer", "WriteDeadline"]
