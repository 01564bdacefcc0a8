"""Watch semantics through raw streams and kubernetes_asyncio.watch.Watch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest
from kubernetes_asyncio import client, watch

from kubesim.testing import KubeSim, running_kubesim
from tests.kubesim.conftest import pod_manifest, raw_watch
from tests.support.waiting import wait_for


@pytest.fixture
async def ticking() -> AsyncIterator[KubeSim]:
    """kubesim with frequent bookmarks."""
    async with running_kubesim(kubelet=None, bookmark_interval=0.05) as sim:
        yield sim


async def test_a_watch_from_a_resource_version_sees_only_later_changes(
    core: client.CoreV1Api,
) -> None:
    await core.create_namespaced_pod("default", pod_manifest("before"))
    rv = (await core.list_namespaced_pod("default")).metadata.resource_version
    await core.create_namespaced_pod("default", pod_manifest("after"))
    stream = await raw_watch(core.list_namespaced_pod, "default", resource_version=rv)
    event = await stream.next()
    assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "after")
    patched = await core.patch_namespaced_pod(
        "after", "default", {"metadata": {"labels": {"x": "1"}}}
    )
    event = await stream.next()
    assert event["type"] == "MODIFIED"
    assert event["object"]["metadata"]["resourceVersion"] == patched.metadata.resource_version
    await core.delete_namespaced_pod("after", "default")
    event = await stream.next()
    assert event["type"] == "DELETED"
    assert int(event["object"]["metadata"]["resourceVersion"]) > int(
        patched.metadata.resource_version
    )
    stream.close()


@pytest.mark.parametrize("rv", ["", "0"])
async def test_a_watch_without_a_version_starts_with_synthetic_added(
    core: client.CoreV1Api, rv: str
) -> None:
    await core.create_namespaced_pod("default", pod_manifest("one"))
    await core.create_namespaced_pod("default", pod_manifest("two"))
    stream = await raw_watch(core.list_namespaced_pod, "default", resource_version=rv)
    first = [await stream.next(), await stream.next()]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in first] == [
        ("ADDED", "one"),
        ("ADDED", "two"),
    ]
    await core.create_namespaced_pod("default", pod_manifest("three"))
    assert (await stream.next())["object"]["metadata"]["name"] == "three"
    stream.close()


async def test_bookmarks_carry_only_kind_and_resource_version(ticking: KubeSim) -> None:
    async with ticking.api_client() as api:
        core = client.CoreV1Api(api)
        created = await core.create_namespaced_pod("default", pod_manifest("p"))
        rv = created.metadata.resource_version
        stream = await raw_watch(
            core.list_pod_for_all_namespaces, resource_version=rv, allow_watch_bookmarks=True
        )
        # The pods watch cache moves past `rv` (else no bookmark): a write elsewhere, then a
        # consistent list's progress notification.
        await core.create_namespaced_config_map("default", {"metadata": {"name": "c"}})
        await core.list_namespaced_pod("default", limit=1)
        event = await stream.next()
        assert event["type"] == "BOOKMARK"
        assert event["object"] == {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": str(ticking.store.resource_version)},
        }
        stream.close()


async def test_events_get_no_periodic_bookmarks(ticking: KubeSim) -> None:
    async with ticking.api_client() as api:
        core = client.CoreV1Api(api)
        stream = await raw_watch(
            core.list_event_for_all_namespaces, allow_watch_bookmarks=True, timeout_seconds=1
        )
        await core.create_namespaced_event(
            "default", {"metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "p"}}
        )
        events = await stream.rest()
        assert [e["type"] for e in events] == ["ADDED"]


async def test_send_initial_events_ends_with_the_initial_events_end_bookmark(
    core: client.CoreV1Api,
) -> None:
    await core.create_namespaced_pod("default", pod_manifest("x"))
    stream = await raw_watch(
        core.list_namespaced_pod,
        "default",
        send_initial_events=True,
        resource_version_match="NotOlderThan",
        allow_watch_bookmarks=True,
    )
    added = await stream.next()
    assert added["type"] == "ADDED" and added["object"]["metadata"]["name"] == "x"
    bookmark = await stream.next()
    assert bookmark["type"] == "BOOKMARK"
    meta = bookmark["object"]["metadata"]
    assert meta["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert int(meta["resourceVersion"]) >= int(added["object"]["metadata"]["resourceVersion"])
    stream.close()


async def test_timeout_seconds_ends_the_stream(core: client.CoreV1Api) -> None:
    stream = await raw_watch(core.list_namespaced_pod, "default", timeout_seconds=1)
    assert await asyncio.wait_for(stream.rest(), 10) == []


async def test_an_expired_resource_version_gets_one_410_error_event(
    bare: KubeSim, core: client.CoreV1Api
) -> None:
    old = (await core.list_namespaced_pod("default")).metadata.resource_version
    await core.create_namespaced_pod("default", pod_manifest("p"))
    await bare.fault({"action": "compact"})
    stream = await raw_watch(core.list_namespaced_pod, "default", resource_version=old)
    events = await asyncio.wait_for(stream.rest(), 10)
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert (status["kind"], status["code"], status["reason"]) == ("Status", 410, "Expired")
    assert status["message"].startswith(f"too old resource version: {old}")


async def test_events_keep_a_shorter_history_than_pods(core: client.CoreV1Api) -> None:
    start = (await core.list_namespaced_event("default")).metadata.resource_version
    for i in range(25):  # event history is 20 in the bare fixture, pod history 200
        await core.create_namespaced_event(
            "default", {"metadata": {"name": f"e{i}"}, "involvedObject": {"kind": "Pod"}}
        )
        await core.create_namespaced_pod("default", pod_manifest(f"p{i}"))
    events = await raw_watch(core.list_namespaced_event, "default", resource_version=start)
    assert (await events.next())["type"] == "ERROR"
    events.close()
    pods = await raw_watch(core.list_namespaced_pod, "default", resource_version=start)
    assert (await pods.next())["object"]["metadata"]["name"] == "p0"
    pods.close()


async def test_selector_watches_see_objects_enter_and_leave(core: client.CoreV1Api) -> None:
    await core.create_namespaced_pod("default", pod_manifest("p", labels={"app": "jh"}))
    rv = (await core.list_namespaced_pod("default")).metadata.resource_version
    stream = await raw_watch(
        core.list_namespaced_pod, "default", label_selector="app=jh", resource_version=rv
    )
    await core.patch_namespaced_pod("p", "default", {"metadata": {"labels": {"app": "other"}}})
    left = await stream.next()
    assert left["type"] == "DELETED" and left["object"]["metadata"]["labels"] == {"app": "jh"}
    await core.patch_namespaced_pod("p", "default", {"metadata": {"labels": {"app": "jh"}}})
    entered = await stream.next()
    assert entered["type"] == "ADDED"
    stream.close()


async def test_field_selector_watches_filter_events(core: client.CoreV1Api) -> None:
    stream = await raw_watch(
        core.list_namespaced_event, "default", field_selector="involvedObject.name=mine"
    )
    for name in ("theirs", "mine"):
        await core.create_namespaced_event(
            "default",
            {"metadata": {"name": f"ev-{name}"}, "involvedObject": {"kind": "Pod", "name": name}},
        )
    event = await stream.next()
    assert event["object"]["metadata"]["name"] == "ev-mine"
    stream.close()


async def test_the_typed_watch_helper_streams_pods(core: client.CoreV1Api) -> None:
    await core.create_namespaced_pod("default", pod_manifest("typed"))
    w = watch.Watch()
    seen = []
    async for event in w.stream(core.list_namespaced_pod, "default", timeout_seconds=5):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == 1:
            await core.delete_namespaced_pod("typed", "default")
        if len(seen) == 2:
            break
    await w.close()
    assert seen == [("ADDED", "typed"), ("DELETED", "typed")]


async def test_a_watcher_that_falls_too_far_behind_is_closed() -> None:
    async with running_kubesim(kubelet=None, max_watch_queue=5) as sim, sim.api_client() as api:
        core = client.CoreV1Api(api)
        stream = await raw_watch(core.list_namespaced_config_map, "default")
        await wait_for(lambda: sim.server.hub.open_watches == 1, message="watch open")
        await sim.fault({"action": "stall_watches"})
        for i in range(8):
            await core.create_namespaced_config_map("default", {"metadata": {"name": f"c{i}"}})
        stats = await sim.stats()
        assert stats["watches_closed_slow"] == 1
        await sim.fault({"action": "clear"})
        assert await asyncio.wait_for(stream.rest(), 10) == []


@pytest.mark.parametrize(
    ("options", "field", "message"),
    [
        (
            {"send_initial_events": True, "allow_watch_bookmarks": True},
            "resourceVersionMatch",
            "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
        ),
        (
            {"resource_version_match": "NotOlderThan"},
            "resourceVersionMatch",
            "Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is "
            "provided",
        ),
        (
            {"send_initial_events": True, "resource_version_match": "Exact"},
            "resourceVersionMatch",
            'Unsupported value: "Exact": supported values: "NotOlderThan"',
        ),
    ],
)
async def test_inconsistent_watch_list_options_are_422(
    core: client.CoreV1Api, options: dict[str, object], field: str, message: str
) -> None:
    response = await core.list_namespaced_pod(
        "default", watch=True, _preload_content=False, **options
    )
    assert response.status == 422
    causes = orjson.loads(await response.read())["details"]["causes"]
    assert {"reason": cause_reason(message), "message": message, "field": field} in causes


def cause_reason(message: str) -> str:
    return "FieldValueForbidden" if message.startswith("Forbidden") else "FieldValueNotSupported"


async def test_send_initial_events_without_bookmarks_sends_no_initial_events_end_bookmark(
    core: client.CoreV1Api,
) -> None:
    # Validation does not require allowWatchBookmarks; the watch cache only adds the
    # end bookmark to a watch that allows bookmarks (cacher.go isListWatchRequest).
    await core.create_namespaced_pod("default", pod_manifest("x"))
    stream = await raw_watch(
        core.list_namespaced_pod,
        "default",
        send_initial_events=True,
        resource_version_match="NotOlderThan",
        timeout_seconds=1,
    )
    events = await asyncio.wait_for(stream.rest(), 10)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "x")]


@pytest.mark.parametrize(
    ("resource_version", "problem"),
    [
        ("abc", "invalid syntax"),
        ("-1", "invalid syntax"),
        ("99999999999999999999", "value out of range"),
    ],
)
async def test_a_watch_with_a_malformed_resource_version_is_500(
    core: client.CoreV1Api, resource_version: str, problem: str
) -> None:
    response = await core.list_namespaced_pod(
        "default", watch=True, resource_version=resource_version, _preload_content=False
    )
    assert response.status == 500
    status = orjson.loads(await response.read())
    quoted = f'"{resource_version}"'
    assert status["message"] == (
        f"resourceVersion: Invalid value: {quoted}: strconv.ParseUint: parsing {quoted}: {problem}"
    )
    assert "reason" not in status  # StatusReasonUnknown: not an API status error


async def test_send_initial_events_false_starts_from_now(core: client.CoreV1Api) -> None:
    await core.create_namespaced_pod("default", pod_manifest("old"))
    stream = await raw_watch(
        core.list_namespaced_pod,
        "default",
        send_initial_events=False,
        resource_version_match="NotOlderThan",
        allow_watch_bookmarks=True,
    )
    await core.create_namespaced_pod("default", pod_manifest("new"))
    assert (await stream.next())["object"]["metadata"]["name"] == "new"
    stream.close()
