"""The writer's Lua scripts: registered once, run as one call or in batches.

A batch script takes the deployment's head keys and arguments, then one event
log key and a few arguments per item; :meth:`FencedScripts.run_batches` sends
at most ``batch_size`` items per call and stops at the first call the fence
refuses (the reply is then a code, not a list of per-item replies).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from kubecache.cacher import lua_scripts as scripts
from kubecache.cacher.metrics_interface import WriterMetrics
from kubecache.contract import Keys

#: A script argument: payloads are bytes end to end (never decoded and re-encoded).
ScriptArg = str | int | bytes


@dataclass(frozen=True, slots=True)
class ScriptItem:
    """One item of a batch script: its event log key and its arguments."""

    log: str
    args: tuple[ScriptArg, ...]


SCRIPTS = {
    "write_pods": scripts.WRITE_PODS,
    "forget_pods": scripts.FORGET_PODS,
    "expire_tombstones": scripts.EXPIRE_TOMBSTONES,
    "write_events": scripts.WRITE_EVENTS,
    "take_over": scripts.TAKE_OVER,
    "heartbeat": scripts.HEARTBEAT,
    "audit_pods": scripts.AUDIT_PODS,
    "mark_synced": scripts.MARK_SYNCED,
    "set_watch_state": scripts.SET_WATCH_STATE,
}


class FencedScripts:
    """The scripts of :data:`SCRIPTS` on one Redis client; failures are counted."""

    def __init__(self, redis: Redis, metrics: WriterMetrics) -> None:
        self.metrics = metrics
        self._scripts = {name: redis.register_script(text) for name, text in SCRIPTS.items()}

    async def run(self, name: str, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        try:
            return await self._scripts[name](keys=list(keys), args=list(args))
        except RedisError:
            self.metrics.redis_error(name)
            raise

    async def run_batches(
        self,
        name: str,
        kind: str,
        head_keys: Sequence[str],
        head_args: Sequence[ScriptArg],
        items: Sequence[ScriptItem],
        *,
        batch_size: int,
    ) -> tuple[list[Any], int | None]:
        """Run the batch script ``name`` over ``items`` in chunks of ``batch_size``.

        Returns the flat per-item replies and the fence code that stopped the
        run (None when every chunk ran). A deposed writer sends no further
        chunk after the first refused one.
        """
        replies: list[Any] = []
        script = self._scripts[name]
        for start in range(0, len(items), batch_size):
            chunk = items[start : start + batch_size]
            keys = [*head_keys, *(item.log for item in chunk)]
            args = [*head_args, *(arg for item in chunk for arg in item.args)]
            began = time.perf_counter()
            try:
                reply = await script(keys=keys, args=args)  # reloads after NOSCRIPT
            except RedisError:
                self.metrics.redis_error(kind)
                raise
            self.metrics.write_seconds(kind, time.perf_counter() - began)
            if not isinstance(reply, list):
                return replies, int(reply)
            replies.extend(reply)
        return replies, None


def count_outcome(metrics: WriterMetrics, kind: str, codes: Sequence[int]) -> None:
    """Count the records a batch wrote and the writes it found stale."""
    written = sum(1 for c in codes if c == scripts.WRITTEN)
    stale = sum(1 for c in codes if c == scripts.STALE)
    if written:
        metrics.records_written(kind, written)
    if stale:
        metrics.writes_stale(kind, stale)


async def retire_epoch(node: Redis, keys: Keys, *, epoch: int, feed_maxlen: int) -> bool:
    """Mark ``epoch`` unsynced on ``node``, a primary that was replaced.

    Readers still connected there stop trusting it at once instead of
    after ``cache_stale_after``; True when the epoch still owned it.
    """
    reply = await node.eval(scripts.RETIRE, 2, keys.health, keys.feed, str(epoch), feed_maxlen)
    return int(reply) == 1


__all__ = ["SCRIPTS", "FencedScripts", "ScriptArg", "ScriptItem", "count_outcome", "retire_epoch"]
