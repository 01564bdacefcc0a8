"""The list+watch loop against a scripted API server (aiohttp on loopback)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
from aiohttp import web

from kubecache.cacher.credentials import ClusterAccess
from kubecache.cacher.kube_api import KubeHttp
from kubecache.cacher.metrics import CacherMetrics
from kubecache.cacher.watcher import Listing, Resource, ResourceSync, WatchTarget
from tests.support.waiting import wait_for


def pod(name: str, rv: int) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": name, "resourceVersion": str(rv)}}


def line(kind: str, obj: dict[str, Any]) -> bytes:
    return orjson.dumps({"type": kind, "object": obj}) + b"\n"


class ScriptedApi:
    """LIST answers from ``lists``, WATCH answers from ``watches`` (popped in order).

    A watch step is ``(status, body_lines, hang)``: with hang the stream stays
    open without data after the lines (a number: for that many seconds, then ends).
    """

    def __init__(self) -> None:
        self.lists: list[tuple[int, dict[str, Any], dict[str, str]]] = []
        self.watches: list[tuple[int, list[bytes], bool | float, dict[str, str]]] = []
        self.list_params: list[dict[str, str]] = []
        self.watch_params: list[dict[str, str]] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        params = dict(request.query)
        if params.get("watch"):
            self.watch_params.append(params)
            if not self.watches:
                await asyncio.sleep(3600)
            status, lines, hang, headers = self.watches.pop(0)
            if status != 200:
                return web.json_response(
                    {"kind": "Status", "code": status}, status=status, headers=headers
                )
            response = web.StreamResponse()
            await response.prepare(request)
            for chunk in lines:
                await response.write(chunk)
            if hang:
                await asyncio.sleep(3600 if hang is True else hang)
            return response
        self.list_params.append(params)
        status, body, headers = self.lists.pop(0)
        return web.json_response(body, status=status, headers=headers)


class RecordingSink:
    def __init__(self) -> None:
        self.lists: list[tuple[str, list[dict[str, Any]], str]] = []
        self.changes: list[tuple[str, str]] = []
        self.states: list[str] = []

    async def listed(self, resource: Resource, pages: Listing, reason: str) -> None:
        items = [item async for page in pages for item in page]
        self.lists.append((reason, items, pages.resource_version))

    async def changed(
        self, resource: Resource, changes: list[tuple[str, dict[str, Any]]], received: float
    ) -> None:
        self.changes += [(kind, obj["metadata"]["name"]) for kind, obj in changes]

    async def state(self, resource: Resource, state: str) -> None:
        self.states.append(state)


@contextlib.asynccontextmanager
async def serving(
    handle: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[KubeHttp]:
    """A loopback API server answering /api/v1/pods with ``handle``, and a client of it."""
    app = web.Application()
    app.router.add_get("/api/v1/pods", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    http = KubeHttp(ClusterAccess(server=f"http://127.0.0.1:{port}"), request_timeout=5)
    try:
        yield http
    finally:
        await http.close()
        await runner.cleanup()


@pytest.fixture
async def api() -> AsyncIterator[tuple[ScriptedApi, KubeHttp]]:
    scripted = ScriptedApi()
    async with serving(scripted.handle) as http:
        yield scripted, http


def make_sync(
    http: KubeHttp,
    sink: RecordingSink,
    delays: list[float],
    *,
    watch_timeout: float = 300.0,
    stall_timeout: float = 0.5,
) -> ResourceSync:
    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    return ResourceSync(
        http,
        [WatchTarget("pods", None, "component=singleuser-server")],
        sink,
        metrics=CacherMetrics(),
        watch_timeout=watch_timeout,
        stall_timeout=stall_timeout,
        page_size=2,
        sleep=sleep,
    )


def listing(
    items: list[dict[str, Any]], rv: int, cont: str = ""
) -> tuple[int, dict[str, Any], dict[str, str]]:
    return 200, {"metadata": {"resourceVersion": str(rv), "continue": cont}, "items": items}, {}


async def test_the_list_is_paginated_and_the_watch_resumes_from_the_last_rv_seen(
    api: tuple[ScriptedApi, KubeHttp],
) -> None:
    scripted, http = api
    scripted.lists = [listing([pod("a", 1), pod("b", 2)], 10, "tok"), listing([pod("c", 3)], 10)]
    bookmark = {"kind": "Pod", "metadata": {"resourceVersion": "15"}}
    scripted.watches = [
        (200, [line("ADDED", pod("d", 11)), line("BOOKMARK", bookmark)], False, {}),
        (200, [line("MODIFIED", pod("d", 16))], False, {}),
    ]
    sink, delays = RecordingSink(), []
    sync = make_sync(http, sink, delays)
    await sync.run(iterations=2)
    assert [p["metadata"]["name"] for p in sink.lists[0][1]] == ["a", "b", "c"]
    assert sink.lists[0][2] == "10"
    assert scripted.list_params[0]["limit"] == "2"
    assert scripted.list_params[0]["labelSelector"] == "component=singleuser-server"
    assert scripted.list_params[1]["continue"] == "tok"
    assert [p["resourceVersion"] for p in scripted.watch_params] == ["10", "15"]
    assert scripted.watch_params[0]["allowWatchBookmarks"] == "true"
    assert sink.changes == [("ADDED", "d"), ("MODIFIED", "d")]
    assert delays == []  # a watch that ends normally reconnects at once
    assert (
        sync.metrics.value(
            "kubecache_cacher_watch_restarts_total", {"resource": "pods", "reason": "closed"}
        )
        == 2
    )


async def test_an_expired_watch_relists_instead_of_retrying_the_stale_rv(
    api: tuple[ScriptedApi, KubeHttp],
) -> None:
    scripted, http = api
    expired = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}
    scripted.lists = [listing([pod("a", 1)], 10), listing([pod("b", 20)], 30)]
    scripted.watches = [
        (200, [line("ERROR", expired)], False, {}),
        (410, [], False, {}),  # the same as an HTTP status
        (200, [line("ADDED", pod("c", 31))], False, {}),
    ]
    scripted.lists.append(listing([pod("b", 20)], 40))
    sink, delays = RecordingSink(), []
    sync = make_sync(http, sink, delays)
    await sync.run(iterations=3)
    assert [reason for reason, _, _ in sink.lists] == ["initial", "expired", "expired"]
    assert [p["resourceVersion"] for p in scripted.watch_params] == ["10", "30", "40"]
    assert (
        sync.metrics.value(
            "kubecache_cacher_relists_total", {"resource": "pods", "reason": "expired"}
        )
        == 2
    )


async def test_throttling_waits_retry_after_and_server_errors_back_off(
    api: tuple[ScriptedApi, KubeHttp],
) -> None:
    scripted, http = api
    scripted.lists = [listing([], 10)]
    scripted.watches = [
        (429, [], False, {"Retry-After": "7"}),
        (503, [], False, {}),
        (200, [line("ADDED", pod("a", 11))], False, {}),
    ]
    sink, delays = RecordingSink(), []
    sync = make_sync(http, sink, delays)
    await sync.run(iterations=3)
    assert delays[0] >= 7
    assert len(delays) == 2
    assert sink.changes == [("ADDED", "a")]
    assert sink.states[-1] == "ok"
    assert any(s.startswith("retrying throttled") for s in sink.states)
    assert [p["resourceVersion"] for p in scripted.watch_params] == ["10", "10", "10"]


async def test_a_stalled_watch_is_reconnected_and_counted(
    api: tuple[ScriptedApi, KubeHttp],
) -> None:
    scripted, http = api
    scripted.lists = [listing([], 10)]
    scripted.watches = [(200, [line("ADDED", pod("a", 11))], True, {})]
    scripted.watches.append((200, [line("ADDED", pod("b", 12))], False, {}))
    sink, delays = RecordingSink(), []
    sync = make_sync(http, sink, delays)
    await sync.run(iterations=2)
    assert (
        sync.metrics.value(
            "kubecache_cacher_watch_restarts_total", {"resource": "pods", "reason": "stalled"}
        )
        == 1
    )
    assert [p["resourceVersion"] for p in scripted.watch_params] == ["10", "11"]


def completions(sync: ResourceSync) -> float:
    return sync.metrics.value("kubecache_cacher_watch_completions_total", {"resource": "pods"})


async def test_an_idle_watch_the_server_ends_at_its_timeout_is_progress(
    api: tuple[ScriptedApi, KubeHttp],
) -> None:
    scripted, http = api
    scripted.lists = [listing([], 10)]
    # timeoutSeconds=1 is asked; the server keeps the silent watch 0.7 s, then ends it
    scripted.watches = [(200, [], 0.7, {})]
    sink, delays = RecordingSink(), []
    sync = make_sync(http, sink, delays, watch_timeout=1.0, stall_timeout=5.0)
    await sync.relist("initial")
    listed_at = sync.states[0].progress
    outcome = await sync.watch_once(sync.states[0])
    assert outcome.reason == "closed" and outcome.events == 0
    assert listed_at is not None and sync.states[0].progress is not None
    assert sync.states[0].progress - listed_at >= 0.5
    assert completions(sync) == 1


@pytest.mark.parametrize(
    ("step", "why"),
    [((200, [], False, {}), "closed at once"), ((200, [], True, {}), "cut by the read timeout")],
)
async def test_a_watch_ended_early_or_stalled_is_no_progress(
    api: tuple[ScriptedApi, KubeHttp], step: tuple[int, list[bytes], bool, dict[str, str]], why: str
) -> None:
    scripted, http = api
    scripted.lists = [listing([], 10)]
    scripted.watches = [step]
    sink, delays = RecordingSink(), []
    sync = make_sync(http, sink, delays, watch_timeout=1.0, stall_timeout=0.6)
    await sync.relist("initial")
    listed_at = sync.states[0].progress
    await sync.watch_once(sync.states[0])
    assert sync.states[0].progress == listed_at, why
    assert completions(sync) == 0


async def test_a_watch_denied_again_and_again_reports_failed_and_keeps_trying(
    api: tuple[ScriptedApi, KubeHttp],
) -> None:
    scripted, http = api
    scripted.lists = [listing([], 10)]
    scripted.watches = [(403, [], False, {})] * 4
    sink, delays = RecordingSink(), []
    sync = make_sync(http, sink, delays)
    await sync.run(iterations=4)
    assert any(s.startswith("failed denied") for s in sink.states)
    assert len(delays) == 4


async def test_malformed_lines_are_counted_and_skipped(api: tuple[ScriptedApi, KubeHttp]) -> None:
    scripted, http = api
    scripted.lists = [listing([], 10)]
    scripted.watches = [
        (
            200,
            [b"{not json\n", line("ADDED", pod("a", 11)), b'{"type":"ADDED","object":"x"}\n'],
            False,
            {},
        ),
    ]
    sink, delays = RecordingSink(), []
    sync = make_sync(http, sink, delays)
    await sync.run(iterations=1)
    assert sink.changes == [("ADDED", "a")]
    assert sync.metrics.value("kubecache_cacher_malformed_objects_total", {"resource": "pods"}) == 2


class GatedSink(RecordingSink):
    """Holds its first write until released; records each batch it is handed."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[tuple[str, str]]] = []
        self.first_started = asyncio.Event()
        self.release = asyncio.Event()

    async def changed(
        self, resource: Resource, changes: list[tuple[str, dict[str, Any]]], received: float
    ) -> None:
        self.batches.append([(kind, obj["metadata"]["name"]) for kind, obj in changes])
        if len(self.batches) == 1:
            self.first_started.set()
            await self.release.wait()


@contextlib.asynccontextmanager
async def gated_api(
    sink: GatedSink, sync_of: list[ResourceSync], later: list[tuple[str, str, int]]
) -> AsyncIterator[KubeHttp]:
    """A watch that sends one change, then (while the first write is held) ``later``
    one line at a time, each once the watch has parsed the one before."""

    async def handle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(line("ADDED", pod("a", 11)))
        await asyncio.wait_for(sink.first_started.wait(), 10)
        state = sync_of[0].states[0]
        for kind, name, rv in later:
            await response.write(line(kind, pod(name, rv)))
            await wait_for(
                lambda rv=rv: state.resource_version == str(rv),  # type: ignore[misc]
                message=f"the watch to parse rv {rv} while a write is in flight",
            )
        await asyncio.sleep(3600)  # the stream stays open (a watch that has not ended)
        return response

    async with serving(handle) as http:
        yield http


async def test_changes_read_during_a_write_join_the_next_batch_in_order() -> None:
    sink = GatedSink()
    syncs: list[ResourceSync] = []
    later = [("MODIFIED", "b", 12), ("MODIFIED", "c", 13), ("DELETED", "a", 14)]
    async with gated_api(sink, syncs, later) as http:
        sync = make_sync(http, sink, [], stall_timeout=30)
        syncs.append(sync)
        sync.states[0].resource_version = "10"
        watching = asyncio.create_task(sync.watch_once(sync.states[0]))
        try:
            # The reader kept reading while the first batch was being written.
            await wait_for(lambda: sync.states[0].resource_version == "14", message="rv 14")
            assert sink.batches == [[("ADDED", "a")]]
            sink.release.set()
            await wait_for(lambda: len(sink.batches) == 2, message="the second batch")
            assert sink.batches[1] == [("MODIFIED", "b"), ("MODIFIED", "c"), ("DELETED", "a")]
        finally:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching


async def test_a_full_buffer_makes_the_reader_wait_for_the_write() -> None:
    sink = GatedSink()
    syncs: list[ResourceSync] = []
    later = [("MODIFIED", "b", 12), ("MODIFIED", "c", 13)]
    async with gated_api(sink, syncs, later) as http:
        sync = make_sync(http, sink, [], stall_timeout=30)
        sync.max_buffered = 1
        syncs.append(sync)
        sync.states[0].resource_version = "10"
        watching = asyncio.create_task(sync.watch_once(sync.states[0]))
        try:
            # b waits in the buffer; c is parsed, and waits for room.
            await wait_for(lambda: sync.states[0].resource_version == "13", message="rv 13")
            sink.release.set()
            await wait_for(lambda: len(sink.batches) == 3, message="three batches")
            assert sink.batches == [[("ADDED", "a")], [("MODIFIED", "b")], [("MODIFIED", "c")]]
        finally:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching


class FailingSink(GatedSink):
    async def changed(
        self, resource: Resource, changes: list[tuple[str, dict[str, Any]]], received: float
    ) -> None:
        self.batches.append([(kind, obj["metadata"]["name"]) for kind, obj in changes])
        self.first_started.set()
        raise RuntimeError("Redis said no")


async def test_a_failed_write_ends_the_watch_with_its_error() -> None:
    sink = FailingSink()
    syncs: list[ResourceSync] = []
    async with gated_api(sink, syncs, [("MODIFIED", "b", 12)]) as http:
        sync = make_sync(http, sink, [], stall_timeout=30)
        syncs.append(sync)
        sync.states[0].resource_version = "10"
        with pytest.raises(RuntimeError, match="Redis said no"):
            await asyncio.wait_for(sync.watch_once(sync.states[0]), 20)
        assert sink.batches == [[("ADDED", "a")]]
