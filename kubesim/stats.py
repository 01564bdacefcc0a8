"""Request and watch accounting served at GET /kubesim/stats."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

__all__ = ["Stats"]


class Stats:
    """Counters; the server and the watch fan-out bump them, nothing here does I/O."""

    def __init__(self) -> None:
        self.requests: defaultdict[str, defaultdict[str, int]] = defaultdict(
            lambda: defaultdict(int)
        )
        #: the same counters per authenticated user (who sent what, e.g. hub vs cacher)
        self.requests_by_user: defaultdict[str, defaultdict[str, defaultdict[str, int]]] = (
            defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
        )
        self.errors: defaultdict[int, int] = defaultdict(int)
        self.open_watches = 0
        self.watches_started = 0
        self.watches_closed_slow = 0
        self.watch_events_sent = 0
        self.bytes_sent = 0
        #: due bookmarks sent, and withheld because the watch cache had not moved
        self.bookmarks_sent = 0
        self.bookmarks_withheld = 0

    def request(self, verb: str, resource: str, user: str = "") -> None:
        self.requests[verb][resource] += 1
        self.requests_by_user[user][verb][resource] += 1

    def error(self, code: int) -> None:
        self.errors[code] += 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": {verb: dict(per) for verb, per in self.requests.items()},
            "requests_total": sum(sum(per.values()) for per in self.requests.values()),
            "requests_by_user": {
                user: {verb: dict(per) for verb, per in verbs.items()}
                for user, verbs in self.requests_by_user.items()
            },
            "errors": {str(code): n for code, n in self.errors.items()},
            "open_watches": self.open_watches,
            "watches_started": self.watches_started,
            "watches_closed_slow": self.watches_closed_slow,
            "watch_events_sent": self.watch_events_sent,
            "bytes_sent": self.bytes_sent,
            "bookmarks_sent": self.bookmarks_sent,
            "bookmarks_withheld": self.bookmarks_withheld,
        }

    def reset(self) -> None:
        open_watches = self.open_watches
        self.__init__()  # type: ignore[misc]
        self.open_watches = open_watches
