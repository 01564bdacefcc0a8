"""Selectors and pagination through the server, with the real client."""

from __future__ import annotations

import orjson
import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from kubesim.testing import KubeSim
from tests.kubesim.conftest import pod_manifest


async def make_pods(core: client.CoreV1Api) -> None:
    await core.create_namespace({"metadata": {"name": "other"}})
    await core.create_namespaced_pod(
        "default", pod_manifest("a", labels={"app": "jh", "tier": "1"})
    )
    await core.create_namespaced_pod(
        "default", pod_manifest("b", labels={"app": "jh", "tier": "2"})
    )
    await core.create_namespaced_pod("default", pod_manifest("c", labels={"app": "db"}))
    await core.create_namespaced_pod("other", pod_manifest("d", labels={"tier": "2"}, node="n1"))


def names(pods: client.V1PodList) -> list[str]:
    return [p.metadata.name for p in pods.items]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=jh", ["a", "b"]),
        ("app==jh,tier=2", ["b"]),
        ("app!=jh", ["c", "d"]),
        ("tier in (1,2)", ["a", "b", "d"]),
        ("tier notin (1)", ["b", "c", "d"]),
        ("tier", ["a", "b", "d"]),
        ("!tier", ["c"]),
    ],
)
async def test_label_selectors_filter_lists(
    core: client.CoreV1Api, selector: str, expected: list[str]
) -> None:
    await make_pods(core)
    assert sorted(names(await core.list_pod_for_all_namespaces(label_selector=selector))) == (
        expected
    )


async def test_field_selectors_filter_pods(core: client.CoreV1Api) -> None:
    await make_pods(core)
    on_node = await core.list_pod_for_all_namespaces(field_selector="spec.nodeName=n1")
    assert names(on_node) == ["d"]
    by_name = await core.list_namespaced_pod("default", field_selector="metadata.name=b")
    assert names(by_name) == ["b"]
    pending = await core.list_pod_for_all_namespaces(
        field_selector="status.phase=Pending,metadata.namespace!=other"
    )
    assert names(pending) == ["a", "b", "c"]


async def test_field_selectors_filter_events_by_involved_object(core: client.CoreV1Api) -> None:
    for name, kind, reason in (("e1", "Pod", "Scheduled"), ("e2", "Node", "Ready")):
        await core.create_namespaced_event(
            "default",
            {
                "metadata": {"name": name},
                "involvedObject": {"kind": kind, "name": "x", "namespace": "default"},
                "reason": reason,
                "type": "Normal",
                "message": "m",
            },
        )
    events = await core.list_namespaced_event(
        "default", field_selector="involvedObject.kind=Pod,involvedObject.name=x,type=Normal"
    )
    assert [e.metadata.name for e in events.items] == ["e1"]
    events = await core.list_event_for_all_namespaces(field_selector="reason=Ready")
    assert [e.metadata.name for e in events.items] == ["e2"]


async def test_an_unsupported_field_selector_is_400(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        await core.list_pod_for_all_namespaces(field_selector="spec.containers=x")
    assert caught.value.status == 400
    assert orjson.loads(caught.value.body)["reason"] == "BadRequest"


async def test_a_malformed_label_selector_is_400(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        await core.list_pod_for_all_namespaces(label_selector="a in (")
    assert caught.value.status == 400


async def test_pages_read_one_consistent_snapshot(core: client.CoreV1Api) -> None:
    for i in range(7):
        await core.create_namespaced_pod("default", pod_manifest(f"p{i}"))
    first = await core.list_namespaced_pod("default", limit=3)
    assert names(first) == ["p0", "p1", "p2"]
    assert first.metadata.remaining_item_count == 4 and first.metadata._continue
    # Changes after the first page do not show in later pages of the same list.
    await core.delete_namespaced_pod("p5", "default")
    await core.create_namespaced_pod("default", pod_manifest("p9"))
    second = await core.list_namespaced_pod("default", limit=3, _continue=first.metadata._continue)
    assert names(second) == ["p3", "p4", "p5"]
    assert second.metadata.resource_version == first.metadata.resource_version
    third = await core.list_namespaced_pod("default", limit=3, _continue=second.metadata._continue)
    assert names(third) == ["p6"] and not third.metadata._continue


async def test_pages_with_a_selector_skip_non_matching_objects(core: client.CoreV1Api) -> None:
    for i in range(6):
        await core.create_namespaced_pod(
            "default", pod_manifest(f"p{i}", labels={"odd": str(i % 2)})
        )
    seen: list[str] = []
    token = None
    while True:
        page = await core.list_namespaced_pod(
            "default", label_selector="odd=1", limit=2, _continue=token
        )
        seen += names(page)
        token = page.metadata._continue
        if not token:
            break
    assert seen == ["p1", "p3", "p5"]


async def test_a_continue_token_older_than_the_history_is_410_expired(
    bare: KubeSim, core: client.CoreV1Api
) -> None:
    for i in range(3):
        await core.create_namespaced_pod("default", pod_manifest(f"p{i}"))
    first = await core.list_namespaced_pod("default", limit=1)
    await core.create_namespaced_pod("default", pod_manifest("later"))
    await bare.fault({"action": "compact"})
    with pytest.raises(ApiException) as caught:
        await core.list_namespaced_pod("default", limit=1, _continue=first.metadata._continue)
    assert caught.value.status == 410
    body = orjson.loads(caught.value.body)
    assert body["reason"] == "Expired"
    assert body["message"].startswith(
        "The provided continue parameter is too old to display a consistent list result."
    )
    # The Status carries a token that continues (inconsistently) at the current revision.
    rest = await core.list_namespaced_pod("default", _continue=body["metadata"]["continue"])
    assert [p.metadata.name for p in rest.items] == ["p1", "p2"]


async def test_list_exact_resource_version_reads_the_past(core: client.CoreV1Api) -> None:
    await core.create_namespaced_config_map("default", {"metadata": {"name": "one"}})
    then = (await core.list_namespaced_config_map("default")).metadata.resource_version
    await core.create_namespaced_config_map("default", {"metadata": {"name": "two"}})
    past = await core.list_namespaced_config_map(
        "default", resource_version=then, resource_version_match="Exact"
    )
    assert [c.metadata.name for c in past.items] == ["one"]


async def test_list_items_carry_no_kind_or_api_version_but_the_list_does(
    core: client.CoreV1Api,
) -> None:
    await core.create_namespaced_pod("default", pod_manifest("a"))
    # Sent kind-last: the stored bytes do not start with kind/apiVersion.
    await core.create_namespaced_config_map(
        "default", {"metadata": {"name": "c"}, "kind": "ConfigMap", "apiVersion": "v1"}
    )
    await core.create_namespaced_config_map("default", {"metadata": {"name": "d"}})
    for call in (core.list_namespaced_pod, core.list_namespaced_config_map):
        response = await call("default", _preload_content=False)
        body = orjson.loads(await response.read())
        assert body["kind"].endswith("List") and body["apiVersion"] == "v1"
        assert body["items"]
        for item in body["items"]:
            assert "kind" not in item and "apiVersion" not in item
            assert item["metadata"]["name"]
    # A single GET keeps both.
    got = await core.read_namespaced_pod("a", "default", _preload_content=False)
    single = orjson.loads(await got.read())
    assert (single["kind"], single["apiVersion"]) == ("Pod", "v1")


async def test_a_pod_table_is_unaffected_by_items_without_kind(core: client.CoreV1Api) -> None:
    await core.create_namespaced_pod("default", pod_manifest("a"))
    response = await core.api_client.call_api(
        "/api/v1/namespaces/default/pods",
        "GET",
        header_params={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"},
        auth_settings=["BearerToken"],
        _preload_content=False,
    )
    table = orjson.loads(await response.read())
    assert table["kind"] == "Table"
    assert [row["cells"][0] for row in table["rows"]] == ["a"]


@pytest.mark.parametrize("resource_version", ["abc", "-1", "1.5"])
async def test_a_list_with_a_malformed_resource_version_is_400(
    core: client.CoreV1Api, resource_version: str
) -> None:
    with pytest.raises(ApiException) as caught:
        await core.list_namespaced_pod("default", resource_version=resource_version)
    assert caught.value.status == 400
    body = orjson.loads(caught.value.body)
    quoted = f'"{resource_version}"'
    assert body["reason"] == "BadRequest"
    assert body["message"] == (
        f"invalid resource version: resourceVersion: Invalid value: {quoted}: "
        f"strconv.ParseUint: parsing {quoted}: invalid syntax"
    )
