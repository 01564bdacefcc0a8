"""``kubecache hub-standby -- CMD...``: run CMD (a JupyterHub) on exactly one replica.

JupyterHub must be the only active hub on its database (jupyterhub#1932: it
keeps pending spawns in memory), so hub high availability is a hot standby:
every replica runs this wrapper, they compete for a lease in Redis, and only
the holder runs the hub. A standby needs no warm-up: the new hub answers every
``poll()`` from the cache.

- The holder renews every ``retry_period``. When it cannot renew for
  ``renew_deadline`` (Redis unreachable) or finds the lease taken, it stops
  its hub (SIGTERM, then SIGKILL after ``stop_grace``) and exits with
  :data:`EXIT_LEASE_LOST`, so at no time do two hubs run: the deadline is
  shorter than the lease, which a standby must wait out.
- When the hub exits by itself, the lease is released at once and the
  wrapper exits with the hub's status, so a standby takes over immediately.
- SIGTERM/SIGINT (a rolling update) stop the hub, then release the lease.
- The hub dies with the wrapper (Linux parent-death signal), so a killed
  wrapper never leaves a hub running without a lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import random
import signal
import socket
from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError, WatchError

log = logging.getLogger(__name__)

EXIT_LEASE_LOST = 75  # EX_TEMPFAIL: restart me, I will come back as a standby



@dataclass(frozen=True)
class LeaseTiming:
    duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def problem(self) -> str | None:
        if not 0 < self.retry_period < self.renew_deadline < self.duration:
            return (
                "lease timing must satisfy 0 < retry-period < renew-deadline < lease-duration "
                f"(got {self.retry_period} < {self.renew_deadline} < {self.duration})"
            )
        return None


def default_identity() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{random.randrange(16**4):04x}"


class RedisLease:
    """A lease held by one identity at a time: a Redis key with a TTL.

    Renewing and releasing are compare-and-set in a WATCH/MULTI/EXEC transaction rather than
    a Lua script, so the hub's Redis user needs no EVAL: it may write this one key only
    (see :mod:`kubecache.acl`).
    """

    def __init__(self, redis: aioredis.Redis, key: str, identity: str, timing: LeaseTiming) -> None:
        self.redis, self.key, self.identity, self.timing = redis, key, identity, timing

    @property
    def _ttl_ms(self) -> int:
        return int(self.timing.duration * 1000)

    async def try_acquire(self) -> bool:
        if await self.redis.set(self.key, self.identity, nx=True, px=self._ttl_ms):
            return True
        return await self.renew()

    async def _if_ours(self, change: str, *args: object) -> bool:
        """Run ``change`` on the key when it still holds our identity; False when it does not
        (or when another replica changed it between our read and our write)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(self.key)
                if _text(await pipe.get(self.key)) != self.identity:
                    return False
                pipe.multi()
                pipe.execute_command(change, self.key, *args)
                (result,) = await pipe.execute()
            except WatchError:
                return False
        return bool(result)

    async def renew(self) -> bool:
        return await self._if_ours("PEXPIRE", self._ttl_ms)

    async def release(self) -> None:
        await self._if_ours("DEL")

    async def holder(self) -> str | None:
        return _text(await self.redis.get(self.key))


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


async def _stop(process: asyncio.subprocess.Process, grace: float) -> int:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            log.warning("hub did not stop within %.0f s of SIGTERM: killing it", grace)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
    return await process.wait()


async def wait_for_lease(lease: RedisLease) -> None:
    """Return once ``lease`` is ours; Redis errors are retried, never fatal."""
    last_holder: str | None = None
    while True:
        try:
            if await lease.try_acquire():
                return
            holder = await lease.holder()
            if holder != last_holder:
                log.info("standing by: the hub runs on %s (lease %s)", holder, lease.key)
                last_holder = holder
        except (RedisError, OSError) as e:
            log.warning("cannot reach Redis for lease %s: %s; retrying", lease.key, e)
        await asyncio.sleep(lease.timing.retry_period * random.uniform(0.8, 1.2))


async def hold_lease(lease: RedisLease) -> None:
    """Renew until the lease is lost (taken, or not renewable before the deadline)."""
    loop = asyncio.get_running_loop()
    last_renewed = loop.time()
    while True:
        await asyncio.sleep(lease.timing.retry_period)
        try:
            if not await lease.renew():
                log.error("lease %s was taken by %s", lease.key, await lease.holder())
                return
            last_renewed = loop.time()
        except (RedisError, OSError) as e:
            if loop.time() - last_renewed >= lease.timing.renew_deadline:
                log.error(
                    "could not renew lease %s for %.0f s (%s): stopping the hub",
                    lease.key,
                    lease.timing.renew_deadline,
                    e,
                )
                return
            log.warning("renewing lease %s failed: %s; retrying", lease.key, e)


async def run_standby(
    command: Sequence[str], lease: RedisLease, *, stop_grace: float = 30.0
) -> int:
    """Wait for the lease, run ``command`` while holding it; the exit status to use."""
    await wait_for_lease(lease)
    log.info("acquired lease %s as %s: starting %s", lease.key, lease.identity, command[0])
    process = await asyncio.create_subprocess_exec(*command, preexec_fn=_die_with_parent)
    holding = asyncio.create_task(hold_lease(lease))
    exited = asyncio.create_task(process.wait())
    try:
        await asyncio.wait({holding, exited}, return_when=asyncio.FIRST_COMPLETED)
        if exited.done():
            log.info("hub exited with %s: releasing lease %s", process.returncode, lease.key)
            return process.returncode or 0
        await _stop(process, stop_grace)
        return EXIT_LEASE_LOST
    finally:
        holding.cancel()
        exited.cancel()
        if process.returncode is None:
            log.info("stopping the hub (pid %s)", process.pid)
            await asyncio.shield(_stop(process, stop_grace))
        with contextlib.suppress(RedisError, OSError):
            await lease.release()


async def main_async(command: Sequence[str], lease: RedisLease, *, stop_grace: float) -> int:
    """run_standby, ended cleanly by SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    runner = asyncio.create_task(run_standby(command, lease, stop_grace=stop_grace))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runner.cancel)
    try:
        return await runner
    except asyncio.CancelledError:
        log.info("stopped by signal; lease %s released", lease.key)
        return 0
