"""Events waiting for their pod (pure, bounded).

Pods and events are separate watch streams, so an event can arrive before the
writer has written its pod. Such events wait here for at most ``ttl`` seconds
and at most ``capacity`` entries in total (oldest dropped first); most of them
are about pods the cacher does not track (other pods of the namespace) and are
simply dropped when they expire.
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from kubecache.contract import EventRecord


class PendingEvents:
    def __init__(
        self,
        *,
        ttl: float = 5.0,
        capacity: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.capacity = capacity
        self._clock = clock
        self._seq = itertools.count()
        # seq -> (arrival, pod key, entry); insertion order is arrival order.
        self._items: OrderedDict[int, tuple[float, str, EventRecord]] = OrderedDict()
        # pod key -> seqs of its live items, ascending.
        self._by_key: dict[str, deque[int]] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: str) -> bool:
        return key in self._by_key

    def add(self, key: str, entry: EventRecord) -> int:
        """Hold ``entry`` for pod ``key``; returns how many old entries were dropped."""
        dropped = 0
        while len(self._items) >= self.capacity and self._items:
            self._pop_oldest()
            dropped += 1
        seq = next(self._seq)
        self._items[seq] = (self._clock(), key, entry)
        self._by_key.setdefault(key, deque()).append(seq)
        return dropped

    def expire(self) -> int:
        """Drop entries older than ``ttl``; returns how many."""
        deadline = self._clock() - self.ttl
        dropped = 0
        while self._items:
            arrival = next(iter(self._items.values()))[0]
            if arrival > deadline:
                break
            self._pop_oldest()
            dropped += 1
        return dropped

    def take(self, key: str, pod_uid: str) -> list[EventRecord]:
        """Remove and return the entries of pod ``key`` with uid ``pod_uid`` (or none given).

        Entries about another pod uid under the same name stay until they expire.
        """
        seqs = self._by_key.pop(key, None)
        if not seqs:
            return []
        taken: list[EventRecord] = []
        kept: deque[int] = deque()
        for seq in seqs:
            entry = self._items[seq][2]
            if entry["pod_uid"] in ("", pod_uid):
                del self._items[seq]
                taken.append(entry)
            else:
                kept.append(seq)
        if kept:
            self._by_key[key] = kept
        return taken

    def _pop_oldest(self) -> None:
        seq, (_, key, _) = self._items.popitem(last=False)
        seqs = self._by_key[key]
        if seqs[0] == seq:
            seqs.popleft()
        else:  # not reached while expiry and capacity drop oldest first
            seqs.remove(seq)
        if not seqs:
            del self._by_key[key]


__all__ = ["PendingEvents"]
