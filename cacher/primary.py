"""Which Redis primary the leader writes to, and the failovers it noticed.

The take-over records the node's replication ID (every write script then
refuses another node, see :mod:`kubecache.cacher.lua_scripts`) and its address. A failover
is noticed when

- a script refuses to run (:class:`~kubecache.cacher.write_errors.FailedOver`: a promoted
  replica, or redis-py's retry reconnected the client to another node),
- Sentinel names another primary than the epoch's (asked every heartbeat:
  after a planned switch the old primary accepts writes until it is demoted,
  and they are lost),
- a write gets READONLY (the node became a replica), or
- the take-over finds the primary at another address than before.

Each one counts (``failovers``, ``last_failover_ms`` in health, the metric),
makes the next list rewrite every record, and retires the old epoch on the
replaced primary in the background (``synced=0`` there), so hubs whose
connections still point to it stop trusting it at once.
"""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from kubecache.cacher.metrics import CacherMetrics
from kubecache.cacher.watcher import cancel_and_wait
from kubecache.cacher.write_errors import FailedOver
from kubecache.cacher.writer import CacheWriter
from kubecache.redis_connection import (
    RedisSettings,
    connect_node,
    follows_sentinel,
    primary_address,
    redacted,
    topology_problem,
)

log = logging.getLogger(__name__)


class UnsupportedRedis(Exception):
    """The Redis server cannot hold a kubecache cache (e.g. a Cluster node): exit."""


class PrimaryWatch:
    def __init__(
        self, redis: aioredis.Redis, settings: RedisSettings, metrics: CacherMetrics
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.metrics = metrics
        self.sentinel = follows_sentinel(redis)
        self.addr = ""  # host:port of the primary the current epoch writes to
        self.replid = ""  # its master_replid
        self.epoch: int | None = None  # the last epoch taken over
        self.failovers = 0
        self.last_failover_ms = 0  # Redis time, ms
        self._stamp = False  # the next take-over stamps last_failover_ms
        self._retiring: set[asyncio.Task[None]] = set()

    async def take_over(self, writer: CacheWriter) -> int:
        """Check the topology, find the primary, and take the cache over on it."""
        problem = await topology_problem(self.redis)
        if problem:
            raise UnsupportedRedis(f"{redacted(self.settings.url)}: {problem}")
        addr = await primary_address(self.redis)
        if self.addr and addr != self.addr and not self._stamp:
            # e.g. the old primary died and Sentinel named another
            self.noticed(writer, f"the primary moved from {self.addr} to {addr}", self.epoch)
        self.addr = addr
        epoch = await writer.take_over(
            primary_addr=addr,
            failovers=self.failovers,
            last_failover_ms=None if self._stamp else self.last_failover_ms,
        )
        if self._stamp:
            self.last_failover_ms = writer.taken_over_ms
            self._stamp = False
        if self.replid and writer.primary_replid != self.replid:
            # Another node, or a restarted one: its records may be older than ours.
            writer.rewrite_next_list = True
        self.replid = writer.primary_replid
        self.epoch = epoch
        self.metrics.set_primary(addr, writer.primary_replid)
        return epoch

    def noticed(self, writer: CacheWriter, why: object, epoch: int | None) -> None:
        """Count a failover; the old ``epoch`` is retired on the replaced primary."""
        self.failovers += 1
        self._stamp = True
        writer.rewrite_next_list = True
        self.metrics.failovers.inc()
        self.metrics.relists.labels("pods", "failover").inc()
        log.warning(
            "Redis failover noticed (%s): new epoch on the current primary (was %s), every "
            "record is rewritten from a full list",
            why,
            self.addr or "?",
        )
        self._retire_later(writer, self.addr, epoch)

    async def after_failover(self) -> None:
        """Drop pooled connections: they reconnect to the current primary."""
        await self.redis.connection_pool.disconnect()

    async def check_sentinel(self, writer: CacheWriter) -> None:
        """Raise :class:`FailedOver` when Sentinel names another primary than the epoch's."""
        if not self.sentinel:
            return
        try:
            named = await primary_address(self.redis)
        except (RedisError, OSError) as e:
            log.warning("cannot ask Sentinel for the primary (%s); writing on", e)
            return
        if named != self.addr:
            writer.epoch = None  # no further write of this epoch
            raise FailedOver(f"Sentinel names {named} as primary, the epoch writes to {self.addr}")

    def _retire_later(self, writer: CacheWriter, address: str, epoch: int | None) -> None:
        """Retire ``epoch`` on ``address`` without delaying the take-over."""
        if not address or epoch is None:
            return
        task = asyncio.create_task(self._retire(writer, address, epoch), name="retire")
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _retire(self, writer: CacheWriter, address: str, epoch: int) -> None:
        """Best effort, bounded: the replaced primary's readers stop trusting it."""
        node = connect_node(self.settings, address)
        try:
            async with asyncio.timeout(2 * self.settings.socket_timeout):
                if await writer.retire(node, epoch):
                    log.info("epoch %s retired on the replaced primary %s", epoch, address)
        except (RedisError, OSError, TimeoutError) as e:
            log.info("could not retire epoch %s on %s (%s): down or demoted", epoch, address, e)
        finally:
            await node.aclose()

    async def close(self) -> None:
        for task in list(self._retiring):
            await cancel_and_wait(task)


__all__ = ["PrimaryWatch", "UnsupportedRedis"]
