"""progress() outlives JupyterHub's spawn future, so JupyterHub's cancel always finds it waiting.

JupyterHub's progress handler reads ``iterate_until(spawner._spawn_future, progress)``; a
generator that ends in the tick the spawn future resolves fails the request with
"async generator raised StopAsyncIteration" (CI: the proxy route took 1 s after the start).
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from jupyterhub.utils import iterate_until

from kubecache.spawner import spawner as spawner_module
from kubecache.spawner.spawner import KubeCacheSpawner


async def test_progress_does_not_end_while_jupyterhubs_spawn_is_pending(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(spawner_module, "FINISHED_GRACE", 0.01)
    spawn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    holder: Any = SimpleNamespace(_spawn_future=spawn)

    async def progress() -> Any:  # our start has ended: what progress() then does
        yield {"progress": 50}
        await KubeCacheSpawner._outlive_the_spawn(holder)

    async def read() -> list[Any]:
        return [event async for event in iterate_until(spawn, progress())]

    reading = asyncio.create_task(read())
    # many times the grace: a generator that ended by itself after it would be done here
    done, _ = await asyncio.wait([reading], timeout=0.5)
    assert not done, "progress() ended while JupyterHub's spawn was still pending"
    spawn.set_result(None)
    assert await asyncio.wait_for(reading, 10) == [{"progress": 50}]


async def test_without_a_spawn_future_progress_ends_after_the_grace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(spawner_module, "FINISHED_GRACE", 0.01)
    holder: Any = SimpleNamespace(_spawn_future=None)
    await asyncio.wait_for(KubeCacheSpawner._outlive_the_spawn(holder), 10)


async def test_a_cancellation_lost_on_the_way_still_ends_progress_as_cancelled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(spawner_module, "FINISHED_GRACE", 0.01)
    spawn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    holder: Any = SimpleNamespace(_spawn_future=spawn, _log_id="alice")
    waiting = asyncio.Event()

    async def progress() -> Any:
        yield {"progress": 50}
        try:
            waiting.set()
            await asyncio.Event().wait()  # JupyterHub's cancel arrives here...
        except asyncio.CancelledError:
            pass  # ...and is lost, as asyncio.wait_for could lose it before Python 3.12
        holder._spawn_future = None  # JupyterHub forgets a spawn future once it ended
        await KubeCacheSpawner._outlive_the_spawn(holder)

    async def read() -> list[Any]:
        return [event async for event in iterate_until(spawn, progress())]

    reading = asyncio.create_task(read())
    await asyncio.wait_for(waiting.wait(), 10)
    spawn.set_result(None)
    # a generator that ended by itself here failed the request: "async generator raised
    # StopAsyncIteration" (RuntimeError)
    assert await asyncio.wait_for(reading, 10) == [{"progress": 50}]
