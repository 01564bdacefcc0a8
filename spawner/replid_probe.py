"""Which Redis node a cache read came from: its ``master_replid``, asked with every read.

Health written on another primary than the node read (a promoted replica
that may miss the last writes) is not trusted
(:data:`~kubecache.contract.Freshness.FAILED_OVER`); for that a reader must
know the node it reads, so every pipelined cache read also sends
``INFO replication``. It rides in the same round trip: Redis spends a few
microseconds on it, redis-py ~26 us parsing the reply. Caching it per
connection would miss a node demoted under an open connection.
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import NoPermissionError

from kubecache.redis_connection import node_replid
from kubecache.spawner.hub_log import Logger, hub_logger


class ReplidProbe:
    """Whether a cache read also asks the node its ``master_replid`` (``INFO replication``).

    Every pipelined read asks. A Redis user without the right to run INFO
    (NOPERM), or a server without INFO, is logged once; reads then go on
    without the check and ask again every ``retry_seconds`` (ACLs change).
    """

    def __init__(self, retry_seconds: float = 300.0, *, log: Logger | None = None) -> None:
        self.retry_seconds = retry_seconds
        #: the hub's logger (the cache client's)
        self.log = hub_logger(log, __name__)
        self.denied_until = 0.0
        self.warned = False

    def due(self, now: float) -> bool:
        return now >= self.denied_until

    def answer(self, reply: Any, now: float, where: str) -> str | None:
        """The node's replid from an INFO reply (parsed or an error), None when unknown."""
        if not isinstance(reply, Exception):
            return node_replid(reply)
        if isinstance(reply, Exception):
            # NOPERM (an ACL without +info), or INFO renamed away: ask again later
            self.denied_until = now + self.retry_seconds
            if not self.warned:
                self.warned = True
                denied = isinstance(reply, NoPermissionError) or "NOPERM" in str(reply).upper()
                self.log.warning(
                    "kubecache: the hub cannot run INFO at %s (%s): it cannot tell a promoted "
                    "replica from the primary the cacher wrote, so after a Redis failover the "
                    "cache is trusted before the cacher took over. %s",
                    where,
                    reply,
                    "Grant the hub's ACL user +info."
                    if denied
                    else "Allow the INFO command for the hub's Redis user.",
                )
        return None


__all__ = ["ReplidProbe"]
