"""Bookmarks as kube-apiserver's watch cache sends them (see docs/kubesim.md, "Watch bookmarks").

A bookmark falls due every bookmark interval and 2 s before a watch's timeout, and is sent only
when the resource's watch cache revision is newer than the revision the watch started from.
The watch cache moves on a change of the resource anywhere in the cluster, and on an etcd
progress notification (a consistent LIST triggers one; etcd sends one periodically).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from kubernetes_asyncio import client

from kubesim.testing import KubeSim, running_kubesim
from tests.kubesim.conftest import RawWatch, pod_manifest, raw_watch
from tests.support.waiting import wait_for


@pytest.fixture
async def ticking() -> AsyncIterator[KubeSim]:
    """kubesim whose watches are due a bookmark every 50 ms."""
    async with running_kubesim(kubelet=None, bookmark_interval=0.05) as sim:
        yield sim


async def withheld_at_least(sim: KubeSim, count: int) -> None:
    """Wait until ``count`` more due bookmarks were withheld (the watch cache did not move)."""
    start = sim.server.stats.bookmarks_withheld
    await wait_for(
        lambda: sim.server.stats.bookmarks_withheld >= start + count,
        message=f"{count} bookmarks falling due",
    )


async def pod_watch(core: client.CoreV1Api, **kwargs: object) -> RawWatch:
    return await raw_watch(
        core.list_namespaced_pod, "default", allow_watch_bookmarks=True, **kwargs
    )


async def make_config_map(core: client.CoreV1Api, name: str) -> str:
    created = await core.create_namespaced_config_map("default", {"metadata": {"name": name}})
    return str(created.metadata.resource_version)


async def test_an_idle_watch_gets_no_bookmark(ticking: KubeSim) -> None:
    async with ticking.api_client() as api:
        core = client.CoreV1Api(api)
        stream = await pod_watch(core)
        await withheld_at_least(ticking, 5)
        created = await core.create_namespaced_pod("default", pod_manifest("first"))
        event = await stream.next()  # the first line is the change: no bookmark came before
        assert event["type"] == "ADDED"
        assert event["object"]["metadata"]["resourceVersion"] == created.metadata.resource_version
        stream.close()


async def test_writes_of_other_resources_alone_bring_no_bookmark(ticking: KubeSim) -> None:
    async with ticking.api_client() as api:
        core = client.CoreV1Api(api)
        stream = await pod_watch(core)
        for i in range(3):
            await make_config_map(core, f"c{i}")
            await withheld_at_least(ticking, 2)
        await core.create_namespaced_pod("default", pod_manifest("p"))
        assert (await stream.next())["type"] == "ADDED"
        stream.close()


async def test_a_change_of_the_resource_anywhere_brings_a_bookmark_at_its_revision(
    ticking: KubeSim,
) -> None:
    async with ticking.api_client() as api:
        core = client.CoreV1Api(api)
        stream = await pod_watch(core, label_selector="app=mine")
        other = await core.create_namespaced_pod("default", pod_manifest("other"))
        await make_config_map(core, "later")  # moves etcd's revision, not the pods cache
        event = await stream.next()
        assert event["type"] == "BOOKMARK"
        assert event["object"] == {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": other.metadata.resource_version},
        }
        stream.close()


async def test_a_consistent_list_triggers_a_progress_notification_and_a_bookmark_follows(
    ticking: KubeSim,
) -> None:
    async with ticking.api_client() as api:
        core = client.CoreV1Api(api)
        stream = await pod_watch(core)
        await withheld_at_least(ticking, 2)
        latest = await make_config_map(core, "elsewhere")
        listed = await core.list_namespaced_pod("default", limit=1)  # no resourceVersion
        assert listed.metadata.resource_version == latest
        event = await stream.next()
        assert event["type"] == "BOOKMARK"
        assert event["object"]["metadata"]["resourceVersion"] == latest
        stream.close()


async def test_a_list_at_resource_version_0_triggers_no_progress_notification(
    ticking: KubeSim,
) -> None:
    async with ticking.api_client() as api:
        core = client.CoreV1Api(api)
        stream = await pod_watch(core)
        await make_config_map(core, "elsewhere")
        await core.list_namespaced_pod("default", resource_version="0")
        await withheld_at_least(ticking, 3)
        await core.create_namespaced_pod("default", pod_manifest("p"))
        assert (await stream.next())["type"] == "ADDED"
        assert ticking.server.hub.progress_notifications == 0
        stream.close()


async def test_without_consistent_list_from_cache_a_list_brings_no_bookmark() -> None:
    async with (
        running_kubesim(
            kubelet=None, bookmark_interval=0.05, consistent_list_from_cache=False
        ) as sim,
        sim.api_client() as api,
    ):
        core = client.CoreV1Api(api)
        stream = await pod_watch(core)
        await make_config_map(core, "elsewhere")
        await core.list_namespaced_pod("default", limit=1)
        await withheld_at_least(sim, 3)
        await core.create_namespaced_pod("default", pod_manifest("p"))
        assert (await stream.next())["type"] == "ADDED"
        stream.close()


async def test_etcd_periodic_progress_notification_moves_the_watch_cache() -> None:
    async with (
        running_kubesim(kubelet=None, bookmark_interval=0.05, progress_notify_interval=0.3) as sim,
        sim.api_client() as api,
    ):
        core = client.CoreV1Api(api)
        stream = await pod_watch(core)
        latest = await make_config_map(core, "elsewhere")
        event = await asyncio.wait_for(stream.next(), 10)
        assert event["type"] == "BOOKMARK"
        assert event["object"]["metadata"]["resourceVersion"] == latest
        stream.close()


async def test_the_pre_timeout_bookmark_follows_the_same_rule(bare: KubeSim) -> None:
    # Default 60 s interval: within a 3 s watch only the pre-timeout bookmark (at 1 s) is due.
    async with bare.api_client() as api:
        core = client.CoreV1Api(api)
        idle = await pod_watch(core, timeout_seconds=3)
        assert await asyncio.wait_for(idle.rest(), 10) == []
        assert bare.server.stats.bookmarks_withheld == 1
        moved = await pod_watch(core, timeout_seconds=3)
        latest = await make_config_map(core, "elsewhere")
        await core.list_namespaced_pod("default", limit=1)
        events = await asyncio.wait_for(moved.rest(), 10)
        assert [(e["type"], e["object"]["metadata"]["resourceVersion"]) for e in events] == [
            ("BOOKMARK", latest)
        ]


async def test_a_resumed_watch_gets_a_bookmark_once_the_cache_moved_past_its_version(
    ticking: KubeSim,
) -> None:
    async with ticking.api_client() as api:
        core = client.CoreV1Api(api)
        created = await core.create_namespaced_pod("default", pod_manifest("p"))
        latest = await make_config_map(core, "elsewhere")
        await core.list_namespaced_pod("default", limit=1)  # the pods cache moves to `latest`
        stream = await pod_watch(core, resource_version=created.metadata.resource_version)
        event = await stream.next()
        assert event["type"] == "BOOKMARK"
        assert event["object"]["metadata"]["resourceVersion"] == latest
        stream.close()


async def test_a_watch_started_at_the_caches_revision_gets_no_bookmark_until_it_moves(
    ticking: KubeSim,
) -> None:
    async with ticking.api_client() as api:
        core = client.CoreV1Api(api)
        created = await core.create_namespaced_pod("default", pod_manifest("p"))
        stream = await pod_watch(core, resource_version=created.metadata.resource_version)
        await withheld_at_least(ticking, 3)
        second = await core.create_namespaced_pod("default", pod_manifest("q"))
        assert (await stream.next())["type"] == "ADDED"
        event = await stream.next()  # a long watch: its start revision stays the same
        assert event["type"] == "BOOKMARK"
        assert event["object"]["metadata"]["resourceVersion"] == second.metadata.resource_version
        stream.close()


async def test_the_legacy_option_sends_every_due_bookmark() -> None:
    async with (
        running_kubesim(kubelet=None, bookmark_interval=0.05, unconditional_bookmarks=True) as sim,
        sim.api_client() as api,
    ):
        core = client.CoreV1Api(api)
        stream = await pod_watch(core)
        for _ in range(2):
            event = await stream.next()
            assert event["type"] == "BOOKMARK"
            assert event["object"]["metadata"]["resourceVersion"] == str(sim.store.resource_version)
        stream.close()


async def test_a_stalled_watch_is_not_ended_by_its_timeout(bare: KubeSim) -> None:
    async with bare.api_client() as api:
        core = client.CoreV1Api(api)
        stream = await pod_watch(core, timeout_seconds=1)
        await wait_for(lambda: bare.server.hub.open_watches == 1, message="watch open")
        await bare.fault({"action": "stall_watches"})
        pending = asyncio.ensure_future(stream.rest())
        # Bounded by the clock kubesim itself uses for the watch's deadline.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 1.5
        await wait_for(lambda: loop.time() > deadline, message="the watch's timeout passing")
        assert not pending.done() and bare.server.hub.open_watches == 1
        await bare.fault({"action": "clear"})
        assert await asyncio.wait_for(pending, 10) == []
