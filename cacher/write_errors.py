"""Why the cache writer stopped writing; each one means: take over again.

- :class:`Fenced`: another writer took the cache over (or the writer has no
  epoch yet). The writer sets ``epoch`` to None and refuses every further
  write until :meth:`kubecache.cacher.writer.CacheWriter.take_over`.
- :class:`CacheLost`: ``P health`` vanished (Redis flushed, or restarted
  empty). Same effect; the caller takes over again and resyncs.
- :class:`FailedOver`: the node the scripts run on is not the primary the
  epoch was taken on (another ``master_replid``). :class:`CacheDiverged`:
  the records in Redis are not what this writer wrote. Same effect; the
  caller takes over with a new epoch and rewrites every record from a list.
- Redis errors (``redis.exceptions.ConnectionError``, ``TimeoutError`` and
  other ``RedisError``) propagate unchanged after being counted: the caller
  reconnects with back-off and resyncs, since a failed call may have
  written part of a batch (each batch script is still all-or-nothing).
"""

from __future__ import annotations

from collections.abc import Sequence


class WriterStopped(Exception):
    """The writer may not write any more; the caller must take over again."""


class Fenced(WriterStopped):
    """Another writer owns the cache (a newer epoch), or this one never took over."""


class CacheLost(WriterStopped):
    """Redis lost the cache (health record missing): take over and resync."""


class FailedOver(WriterStopped):
    """The writes reach another Redis node than the epoch's primary: rewrite there."""


class CacheDiverged(WriterStopped):
    """The records in Redis are not what this writer wrote: rewrite them."""

    def __init__(self, check: str, findings: Sequence[str]) -> None:
        more = f" (+{len(findings) - 5} more)" if len(findings) > 5 else ""
        shown = "; ".join(findings[:5]) + more
        super().__init__(f"{check} check: {shown}")
        self.check = check
        self.findings = list(findings)


__all__ = ["CacheDiverged", "CacheLost", "FailedOver", "Fenced", "WriterStopped"]
