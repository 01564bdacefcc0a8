"""A listed pod is reduced to its record as its page is parsed (pod_reads.parse_pod_page):
the record a read of the whole pod gives, whatever the pod holds."""

from __future__ import annotations

import copy
import gc
from typing import Any

import orjson
import pytest

from kubecache.contract import lenient_pod_record, pod_record
from kubecache.spawner.pod_reads import parse_pod_page
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


def page_body(pods: list[Any], token: str = "") -> bytes:
    return orjson.dumps({"kind": "PodList", "items": pods, "metadata": {"continue": token}})


async def test_a_listed_pod_is_kept_as_the_record_a_read_of_the_whole_pod_gives() -> None:
    for pod in variants(await a_running_server_pod()):
        original = copy.deepcopy(pod)
        records, _ = parse_pod_page(page_body([pod]))
        assert records == {pod["metadata"]["name"]: lenient_pod_record(original)}
        assert records[pod["metadata"]["name"]] == pod_record(original)


@pytest.mark.parametrize(
    "broken",
    [
        lambda p: p["spec"].update(containers=[{"image": "no name"}]),
        lambda p: p["spec"].update(containers=["not an object"]),
        lambda p: p["spec"].update(containers="not a list"),
        lambda p: p["metadata"].pop("uid"),
        lambda p: p["metadata"].update(labels="not an object"),
        lambda p: p["metadata"].update(deletionTimestamp="soon"),
        lambda p: p["status"].update(conditions=[None]),
        lambda p: p.update(spec="not an object"),
        lambda p: p.update(status=[]),
    ],
)
async def test_a_malformed_listed_pod_is_kept_as_the_lenient_record_of_it(broken: Any) -> None:
    """Never an exception out of the page: the record a GET of the same pod would give."""
    pod = await a_running_server_pod()
    broken(pod)
    records, _ = parse_pod_page(page_body([pod]))
    assert records == {pod["metadata"]["name"]: lenient_pod_record(copy.deepcopy(pod))}


async def test_a_page_is_indexed_by_name_with_records_and_its_continue_token() -> None:
    pod = await a_running_server_pod()
    other = copy.deepcopy(pod)
    other["metadata"]["name"] = "jupyter-other"
    records, token = parse_pod_page(page_body([pod, other], token="abc"))
    assert token == "abc"
    assert records == {
        pod["metadata"]["name"]: lenient_pod_record(pod),
        "jupyter-other": lenient_pod_record(other),
    }
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


def _tracked(value: Any) -> int:
    """Objects the cyclic garbage collector tracks in ``value`` and what it holds."""
    inner = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return int(gc.is_tracked(value)) + sum(_tracked(v) for v in inner)


async def test_what_a_list_keeps_of_a_pod_is_a_few_objects_for_the_collector() -> None:
    """A LIST's pods are kept for recent_seconds while thousands of polls wait: each is
    kept as its record (a dict and its list of containers), not as dozens of objects."""
    pod = await a_running_server_pod()
    records, _ = parse_pod_page(page_body([pod]))
    assert _tracked(records[pod["metadata"]["name"]]) <= 2
    assert _tracked(orjson.loads(page_body([pod]))["items"][0]) > 20


def test_a_pod_that_breaks_the_reduction_makes_the_page_a_malformed_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ValueError (KubeApi: HTTP 500, retried, then the LIST's questions fail, which a poll
    answers by its policy), never another exception out of the LIST."""
    from kubecache.spawner import pod_reads

    def broken(raw: Any) -> Any:
        raise RecursionError("deep")

    monkeypatch.setattr(pod_reads, "_lenient_pod_record", broken)
    with pytest.raises(ValueError, match="jupyter-x"):
        parse_pod_page(page_body([{"metadata": {"name": "jupyter-x"}}]))
