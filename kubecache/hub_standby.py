"""``kubecache hub-standby -- CMD...``: run CMD (a JupyterHub) on exactly one replica.

JupyterHub must be the only active hub on its database (jupyterhub#1932: it
keeps pending spawns in memory), so hub high availability is a hot standby:
every replica runs this wrapper, they compete for a lease in Redis, and only
the holder runs the hub. A standby needs no warm-up: the new hub answers every
``poll()`` from the cache.

The rule that keeps two hubs from ever running at once: the hub of a replica
is dead before the lease it last renewed can expire. With ``confirmed`` the
moment the last successful renewal was *sent* (Redis applied it later, so the
lease expires no earlier than ``confirmed + duration``):

- The holder renews every ``retry_period``, each attempt bounded in time (a
  Redis that stopped answering, not only one that refuses, is a failure).
- When it has not renewed for ``renew_deadline``, or finds the lease taken, it
  stops its hub: SIGTERM, then SIGKILL at ``confirmed + duration - margin``
  at the latest (``margin``: the smaller of ``retry_period`` and half of
  ``duration - renew_deadline``), and exits with :data:`EXIT_LEASE_LOST`.
  ``--stop-grace`` shortens that, never lengthens it.
- A replica that was frozen (SIGSTOP, a paused VM) and wakes up past that
  point kills its hub at once, before asking Redis anything.
- When the hub exits by itself, the lease is released at once and the
  wrapper exits with the hub's status, so a standby takes over immediately.
- SIGTERM/SIGINT (a rolling update) stop the hub while still renewing the
  lease, then release it: the standby starts once the old hub is gone.
- The hub dies with the wrapper (Linux parent-death signal, SIGKILL), so a
  killed wrapper never leaves a hub running without a lease.

Every takeover is logged on both sides (who takes over from whom; who loses
the lease to whom and why), written into the lease record
(:class:`kubecache.hub_standby_state.LeaseRecord`, shown by ``kubecache
status``) and counted in the replica's metrics (:mod:`kubecache.hub_standby_state`).
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
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import RedisError, WatchError

from kubecache.contract import redis_time_ms
from kubecache.hub_lease_clock import ENV as LEASE_CLOCK_ENV
from kubecache.hub_lease_clock import LeaseClockWriter
from kubecache.hub_preload import GO
from kubecache.hub_standby_state import LeaseRecord, StandbyState, decode_lease

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

    @property
    def margin(self) -> float:
        """How long before the lease can expire a deposed hub must be dead."""
        return min(self.retry_period, (self.duration - self.renew_deadline) / 2)


def default_identity() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{random.randrange(16**4):04x}"


class RedisLease:
    """A lease held by one identity at a time: a Redis key with a TTL.

    The value is a :class:`LeaseRecord` (JSON). Renewing and releasing are
    compare-and-set in a WATCH/MULTI/EXEC transaction rather than a Lua script,
    so the hub's Redis user needs no EVAL: it may write this one key only (see
    :mod:`kubecache.acl`).
    """

    def __init__(self, redis: aioredis.Redis, key: str, identity: str, timing: LeaseTiming) -> None:
        self.redis, self.key, self.identity, self.timing = redis, key, identity, timing
        #: monotonic time the last successful take or renewal was sent: the lease lasts
        #: at least ``timing.duration`` from then
        self.confirmed: float | None = None

    @property
    def _ttl_ms(self) -> int:
        return int(self.timing.duration * 1000)

    async def try_acquire(self, previous: str | None = None) -> bool:
        """Take the lease when it is free (or already ours); ``previous``: its last holder seen."""
        now_ms = redis_time_ms(await self.redis.time())
        record = LeaseRecord(self.identity, since_ms=now_ms, previous=previous)
        sent = asyncio.get_running_loop().time()
        if await self.redis.set(self.key, record.encode(), nx=True, px=self._ttl_ms):
            self.confirmed = sent
            return True
        return await self.renew()

    async def _if_ours(self, change: str, *args: object) -> bool:
        """Run ``change`` on the key when it still holds our identity; False when it does not
        (or when another replica changed it between our read and our write)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(self.key)
                record = decode_lease(await pipe.get(self.key))
                if record is None or record.holder != self.identity:
                    return False
                pipe.multi()
                pipe.execute_command(change, self.key, *args)
                (result,) = await pipe.execute()
            except WatchError:
                return False
        return bool(result)

    async def renew(self) -> bool:
        sent = asyncio.get_running_loop().time()
        if await self._if_ours("PEXPIRE", self._ttl_ms):
            self.confirmed = sent
            return True
        return False

    async def release(self) -> bool:
        """Delete the lease if it is still ours; whether it was."""
        return await self._if_ours("DEL")

    async def record(self) -> LeaseRecord | None:
        return decode_lease(await self.redis.get(self.key))

    async def holder(self) -> str | None:
        record = await self.record()
        return None if record is None else record.holder


def preload_command(command: Sequence[str]) -> list[str] | None:
    """``command`` run through :mod:`kubecache.hub_preload`, or None when it is not a
    JupyterHub (``jupyterhub ARGS`` or ``PYTHON -m jupyterhub ARGS``)."""
    if command and os.path.basename(command[0]) == "jupyterhub":
        return [sys.executable, "-m", "kubecache.hub_preload", "jupyterhub", *command[1:]]
    if len(command) >= 3 and list(command[1:3]) == ["-m", "jupyterhub"]:
        return [command[0], "-m", "kubecache.hub_preload", "jupyterhub", *command[3:]]
    return None


async def _start_preloaded(
    command: Sequence[str], env: dict[str, str] | None = None
) -> asyncio.subprocess.Process | None:
    """Start the hub's imports now (a standby's idle time); None when ``command`` is no hub."""
    preload = preload_command(command)
    if preload is None:
        log.warning("--preload: %s is not jupyterhub; it starts only on takeover", command[0])
        return None
    log.info("preloading the hub: %s", " ".join(preload[:4]))
    return await asyncio.create_subprocess_exec(
        *preload, stdin=asyncio.subprocess.PIPE, preexec_fn=_die_with_parent, env=env
    )


async def _go(preloaded: asyncio.subprocess.Process | None) -> bool:
    """Let a preloaded hub start; False when there is none (it failed, or no preload)."""
    if preloaded is None or preloaded.returncode is not None or preloaded.stdin is None:
        if preloaded is not None:
            log.warning("the preloaded hub exited with %s: starting it anew", preloaded.returncode)
        return False
    try:
        preloaded.stdin.write(GO)
        await preloaded.stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        log.warning("the preloaded hub went away: starting it anew")
        return False
    return True


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


async def _stop(process: asyncio.subprocess.Process, grace: float) -> int:
    """SIGTERM, then SIGKILL after ``grace`` seconds (at once when ``grace`` <= 0)."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            if grace > 0:
                process.terminate()
            else:
                process.kill()
        try:
            async with asyncio.timeout(max(grace, 0.001)):
                await process.wait()
        except TimeoutError:
            log.warning(
                "hub (pid %s) did not stop within %.1f s of SIGTERM: killing it", process.pid, grace
            )
            with contextlib.suppress(ProcessLookupError):
                process.kill()
    return await process.wait()


async def wait_for_lease(lease: RedisLease, state: StandbyState | None = None) -> str | None:
    """Return once ``lease`` is ours (the holder last seen before us); Redis errors are
    retried, never fatal."""
    last_holder: str | None = None
    while True:
        try:
            if await lease.try_acquire(previous=last_holder):
                return last_holder
            holder = await lease.holder()
            if state is not None:
                state.saw_holder(holder)
            if holder is not None and holder != last_holder:  # None: it just became free
                log.info("standing by: the hub runs on %s (lease %s)", holder, lease.key)
                last_holder = holder
        except (RedisError, OSError) as e:
            log.warning("cannot reach Redis for lease %s: %s; retrying", lease.key, e)
        await asyncio.sleep(lease.timing.retry_period * random.uniform(0.8, 1.2))


@dataclass(frozen=True)
class LeaseLost:
    """Why the holder stopped holding, and when its lease can expire at the earliest."""

    reason: str  # "taken", "unrenewable" or "frozen"
    #: monotonic time of the last successful renewal's sending
    confirmed: float
    holder: str | None = None


async def hold_lease(
    lease: RedisLease,
    state: StandbyState | None = None,
    renewed: Callable[[float], None] | None = None,
) -> LeaseLost:
    """Renew until the lease is lost (taken, not renewable before the deadline, or this
    process was frozen past it). ``renewed`` gets the time until which the lease is surely
    this replica's after each renewal."""
    loop = asyncio.get_running_loop()
    timing = lease.timing
    confirmed = loop.time() if lease.confirmed is None else lease.confirmed
    while True:
        deadline = confirmed + timing.renew_deadline
        await asyncio.sleep(max(0.0, min(timing.retry_period, deadline - loop.time())))
        since = loop.time() - confirmed
        if since >= timing.duration - timing.margin:
            log.error(
                "lease %s was last renewed %.1f s ago, longer than it lasts (%.0f s): this "
                "replica was frozen; killing the hub now",
                lease.key,
                since,
                timing.duration,
            )
            return LeaseLost("frozen", confirmed)
        if since >= timing.renew_deadline:
            log.error(
                "could not renew lease %s for %.1f s: stopping the hub before the lease expires",
                lease.key,
                since,
            )
            return LeaseLost("unrenewable", confirmed)
        try:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for drops a cancellation that
            # arrives as the renewal completes, and this loop would go on renewing the lease
            async with asyncio.timeout(max(0.05, deadline - loop.time())):
                ours = await lease.renew()
        except (RedisError, OSError, TimeoutError) as e:
            if state is not None:
                state.renew_failures.inc()
            log.warning("renewing lease %s failed: %s; retrying", lease.key, str(e) or "timed out")
            continue
        if not ours:
            holder = None
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(timing.retry_period):
                    holder = await lease.holder()
            log.error("lease %s was taken by %s", lease.key, holder)
            return LeaseLost("taken", confirmed, holder)
        confirmed = lease.confirmed if lease.confirmed is not None else confirmed
        if renewed is not None:
            renewed(confirmed + timing.duration - timing.margin)


def _grace_left(lost: LeaseLost, timing: LeaseTiming, stop_grace: float) -> float:
    """Seconds the deposed hub may take to stop before it must be killed."""
    kill_by = lost.confirmed + timing.duration - timing.margin
    return min(stop_grace, kill_by - asyncio.get_running_loop().time())


async def run_standby(
    command: Sequence[str],
    lease: RedisLease,
    *,
    stop_grace: float = 30.0,
    state: StandbyState | None = None,
    preload: bool = False,
) -> int:
    """Wait for the lease, run ``command`` while holding it; the exit status to use.

    ``preload``: import JupyterHub while standing by (:mod:`kubecache.hub_preload`).
    """
    # the preloaded hub answers /hub/health only until the lease it was given can end
    clock = (
        LeaseClockWriter(Path(tempfile.gettempdir()) / f"kubecache-hub-lease-{os.getpid()}")
        if preload
        else None
    )
    env = None if clock is None else {**os.environ, LEASE_CLOCK_ENV: str(clock.path)}
    preloaded = await _start_preloaded(command, env) if preload else None
    try:
        previous = await wait_for_lease(lease, state)
    except BaseException:
        if preloaded is not None and preloaded.returncode is None:
            preloaded.kill()
            await preloaded.wait()
        if clock is not None:
            clock.close()
        raise
    timing = lease.timing
    if clock is not None:
        confirmed = lease.confirmed if lease.confirmed is not None else time.monotonic()
        clock.write(confirmed + timing.duration - timing.margin)
    if previous is None:
        log.info("acquired lease %s as %s: starting %s", lease.key, lease.identity, command[0])
    else:
        log.info(
            "acquired lease %s as %s, taking over from %s: starting %s",
            lease.key,
            lease.identity,
            previous,
            command[0],
        )
    if state is not None:
        state.acquired()
    if preloaded is not None and await _go(preloaded):
        process = preloaded
    else:
        process = await asyncio.create_subprocess_exec(*command, preexec_fn=_die_with_parent)
    if state is not None:
        state.hub_running(True)
    holding = asyncio.create_task(hold_lease(lease, state, None if clock is None else clock.write))
    exited = asyncio.create_task(process.wait())
    try:
        try:
            await asyncio.wait({holding, exited}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            # SIGTERM/SIGINT: stop the hub while still holding the lease, then release it.
            log.info(
                "stopping the hub (pid %s) for shutdown; lease %s is held until it exits",
                process.pid,
                lease.key,
            )
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            await asyncio.wait(
                {holding, exited}, timeout=stop_grace, return_when=asyncio.FIRST_COMPLETED
            )
            if not exited.done() and holding.done():
                await _step_down(process, lease, holding.result(), stop_grace, state)
            raise
        if exited.done():
            log.info("hub exited with %s: releasing lease %s", process.returncode, lease.key)
            return process.returncode or 0
        await _step_down(process, lease, holding.result(), stop_grace, state)
        return EXIT_LEASE_LOST
    finally:
        holding.cancel()
        exited.cancel()
        if process.returncode is None:
            log.warning("killing the hub (pid %s)", process.pid)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await asyncio.shield(process.wait())
        if state is not None:
            state.hub_running(False)
            if state.role == "active":
                state.stepped_down(None)
        if clock is not None:
            clock.close()
        # The hub is dead: give the lease back if it is still ours (a standby need not wait).
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            async with asyncio.timeout(lease.timing.retry_period * 2):
                released = await lease.release()
            if released:
                log.info("released lease %s: a standby may take over now", lease.key)


async def _step_down(
    process: asyncio.subprocess.Process,
    lease: RedisLease,
    lost: LeaseLost,
    stop_grace: float,
    state: StandbyState | None,
) -> None:
    """Stop the hub of a lease that was lost, before the lease can expire."""
    grace = _grace_left(lost, lease.timing, stop_grace)
    log.error(
        "lost lease %s (%s%s): stopping the hub (pid %s), killed in %.1f s at the latest",
        lease.key,
        lost.reason,
        f", now held by {lost.holder}" if lost.holder else "",
        process.pid,
        max(grace, 0.0),
    )
    if state is not None:
        state.stepped_down(lost.reason)
    await _stop(process, grace)
    log.info("hub (pid %s) stopped after losing lease %s", process.pid, lease.key)


async def main_async(
    command: Sequence[str],
    lease: RedisLease,
    *,
    stop_grace: float,
    state: StandbyState | None = None,
    preload: bool = False,
) -> int:
    """run_standby, ended cleanly by SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    runner = asyncio.create_task(
        run_standby(command, lease, stop_grace=stop_grace, state=state, preload=preload)
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runner.cancel)
    try:
        return await runner
    except asyncio.CancelledError:
        log.info("stopped by signal (lease %s)", lease.key)
        return 0
