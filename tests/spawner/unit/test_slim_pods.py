"""A listed pod is kept slim (pod_reads.slim_pod): the record reduced from it is the
record of the whole pod, whatever the pod holds."""

from __future__ import annotations

import copy
import gc
from typing import Any

import orjson
import pytest

from kubecache.contract import ContractError, lenient_pod_record, pod_record
from kubecache.spawner.pod_reads import parse_pod_page, slim_pod
from tests.support.fleet import make_spawners, mark_running


async def a_running_server_pod() -> dict[str, Any]:
    (spawner,) = make_spawners("redis://127.0.0.1:1/0", 1)
    pod = await spawner.pod_request_body()
    mark_running(pod, "10.1.0.7")
    pod["metadata"].update(
        namespace="jhub",
        uid="0b7c",
        resourceVersion="4711",
        creationTimestamp="2026-11-25T11:59:00Z",
        managedFields=[{"manager": "kubecache", "fieldsV1": {"f:spec": {}}}],
        ownerReferences=[],
    )
    pod["metadata"]["annotations"]["hub.jupyter.org/long"] = "x" * 5000  # cut in the record
    pod["spec"]["initContainers"] = [{"name": "init", "image": "busybox"}]
    return pod


def variants(pod: dict[str, Any]) -> list[dict[str, Any]]:
    out = [pod]
    deleting = copy.deepcopy(pod)
    deleting["metadata"].update(
        deletionTimestamp="2026-11-25T12:01:00Z", deletionGracePeriodSeconds=30
    )
    out.append(deleting)
    terminated = copy.deepcopy(pod)
    terminated["status"]["containerStatuses"][0]["state"] = {
        "terminated": {"exitCode": 3, "reason": "Error", "message": "boom"}
    }
    out.append(terminated)
    pending = copy.deepcopy(pod)
    del pending["status"]
    del pending["spec"]["nodeName"]
    out.append(pending)
    two = copy.deepcopy(pod)
    two["spec"]["containers"].append({"name": "sidecar", "image": "x"})
    out.append(two)
    return out


async def test_the_record_of_a_slim_pod_is_the_record_of_the_whole_pod() -> None:
    for pod in variants(await a_running_server_pod()):
        original = copy.deepcopy(pod)
        slim = slim_pod(pod)
        assert lenient_pod_record(slim) == lenient_pod_record(pod)
        assert pod_record(slim) == pod_record(pod)
        assert pod == original  # the listed pod itself is not changed
        assert "managedFields" not in slim["metadata"]
        assert all(set(c) == {"name"} for c in slim["spec"]["containers"])


@pytest.mark.parametrize(
    "broken",
    [
        lambda p: p["spec"].update(containers=[{"image": "no name"}]),
        lambda p: p["spec"].update(containers=["not an object"]),
        lambda p: p["spec"].update(containers="not a list"),
        lambda p: p["metadata"].pop("uid"),
        lambda p: p["metadata"].update(labels="not an object"),
        lambda p: p.update(spec="not an object"),
        lambda p: p.update(metadata=None),
    ],
)
async def test_a_malformed_pod_is_reduced_from_a_slim_pod_the_same_way(broken: Any) -> None:
    pod = await a_running_server_pod()
    broken(pod)
    slim = slim_pod(pod)
    try:
        expected: Any = pod_record(pod)
    except (ContractError, ValueError, TypeError, KeyError) as e:
        expected = type(e)
    try:
        got: Any = pod_record(slim)
    except (ContractError, ValueError, TypeError, KeyError) as e:
        got = type(e)
    assert got == expected
    assert lenient_pod_record(slim) == lenient_pod_record(pod)


def page_body(pods: list[Any], token: str = "") -> bytes:
    return orjson.dumps({"kind": "PodList", "items": pods, "metadata": {"continue": token}})


async def test_a_page_is_indexed_by_name_with_slim_pods_and_its_continue_token() -> None:
    pod = await a_running_server_pod()
    other = copy.deepcopy(pod)
    other["metadata"]["name"] = "jupyter-other"
    pods, token = parse_pod_page(page_body([pod, other], token="abc"))
    assert token == "abc"
    assert pods == {pod["metadata"]["name"]: slim_pod(pod), "jupyter-other": slim_pod(other)}
    assert parse_pod_page(page_body([pod]))[1] is None  # the last page


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"items": "not a list"}',
        b'{"items": {"a": 1}}',
    ],
)
def test_a_body_that_is_no_pod_list_is_a_value_error(body: bytes) -> None:
    """KubeApi turns it into a malformed answer (500, retried); never another exception."""
    with pytest.raises(ValueError):
        parse_pod_page(body)


def test_malformed_items_are_skipped_and_a_page_without_items_is_empty() -> None:
    body = orjson.dumps(
        {
            "items": [
                "not an object",
                None,
                {"metadata": None},
                {"metadata": {"name": 7}},
                {"metadata": {"name": "ok"}, "spec": "not an object"},
            ],
            "metadata": {"continue": 5},
        }
    )
    pods, token = parse_pod_page(body)
    assert list(pods) == ["ok"] and token is None
    assert parse_pod_page(b'{"metadata": {}}') == ({}, None)
    assert parse_pod_page(b'{"items": null, "metadata": null}') == ({}, None)


async def test_a_page_is_parsed_without_a_garbage_collection_and_the_collector_left_as_it_was() -> (
    None
):
    """A page of 500 pods is ~37,000 objects: parsed with the collector running, young
    collections promoted them and triggered full collections of the hub's heap."""
    pod = await a_running_server_pod()
    pods = []
    for i in range(500):
        one = copy.deepcopy(pod)
        one["metadata"]["name"] = f"jupyter-user{i}"
        pods.append(one)
    body = page_body(pods)
    collections: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    thresholds = gc.get_threshold()
    gc.callbacks.append(count)
    try:
        gc.set_threshold(700, 10, 10)
        assert gc.isenabled()
        parsed, _ = parse_pod_page(body)
        assert len(parsed) == 500
        assert collections == []
        assert gc.isenabled()
        gc.disable()  # a hub that turned the collector off keeps it off
        try:
            parse_pod_page(body)
            assert not gc.isenabled()
        finally:
            gc.enable()
    finally:
        gc.callbacks.remove(count)
        gc.set_threshold(*thresholds)
