"""Graceful deletion, namespace termination and garbage collection through the API."""

from __future__ import annotations

import asyncio
import sys
from typing import Any, Literal

import orjson
import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from kubesim.testing import KubeSim, running_kubesim
from tests.kubesim.conftest import pod_manifest, raw_watch
from tests.support.waiting import wait_for


async def running_pod(
    core: client.CoreV1Api, name: str, namespace: str = "default"
) -> client.V1Pod:
    await core.create_namespaced_pod(namespace, pod_manifest(name))

    async def running() -> bool:
        pod = await core.read_namespaced_pod(name, namespace)
        return pod.status.phase == "Running"

    await wait_for(running, message=f"pod {name} running")
    return await core.read_namespaced_pod(name, namespace)


async def test_a_running_pod_terminates_gracefully_then_is_deleted(kubesim: KubeSim) -> None:
    async with kubesim.api_client() as api:
        core = client.CoreV1Api(api)
        pod = await running_pod(core, "graceful")
        stream = await raw_watch(
            core.list_namespaced_pod,
            "default",
            resource_version=pod.metadata.resource_version,
            field_selector="metadata.name=graceful",
        )
        answer = await core.delete_namespaced_pod("graceful", "default", grace_period_seconds=5)
        assert answer.metadata.deletion_timestamp is not None
        assert answer.metadata.deletion_grace_period_seconds == 5
        types: list[str] = []
        while not types or types[-1] != "DELETED":
            event = await stream.next()
            types.append(event["type"])
            if event["type"] == "MODIFIED":
                assert event["object"]["metadata"]["deletionGracePeriodSeconds"] == 5
        assert types[0] == "MODIFIED" and types[-1] == "DELETED"
        stream.close()


@pytest.mark.parametrize("kubelet", ["fake", "process"])
async def test_a_graceful_delete_is_modified_with_deletion_timestamp_then_terminated_then_deleted(
    kubelet: Literal["fake", "process"],
) -> None:
    async with (
        running_kubesim(kubelet=kubelet, fake_step_delay=0.01) as sim,
        sim.api_client() as api,
    ):
        core = client.CoreV1Api(api)
        manifest = pod_manifest("graceful")
        if kubelet == "process":  # a real process, which SIGTERM ends
            manifest["spec"]["containers"][0]["command"] = [
                sys.executable,
                "-c",
                "import time; time.sleep(120)",
            ]
        await core.create_namespaced_pod("default", manifest)

        async def running() -> bool:
            pod = await core.read_namespaced_pod("graceful", "default")
            return pod.status.phase == "Running"

        await wait_for(running, timeout=60, message="pod graceful running")
        pod = await core.read_namespaced_pod("graceful", "default")
        stream = await raw_watch(
            core.list_namespaced_pod,
            "default",
            resource_version=pod.metadata.resource_version,
        )
        await core.delete_namespaced_pod("graceful", "default", grace_period_seconds=20)
        events: list[dict[str, Any]] = []
        while not events or events[-1]["type"] != "DELETED":
            events.append(await asyncio.wait_for(stream.next(), 60))
        stream.close()
    first, *middle, last = events
    # 1. The API server's own write: deletionTimestamp and deletionGracePeriodSeconds, nothing
    #    else changed yet (the container still runs).
    assert first["type"] == "MODIFIED"
    meta = first["object"]["metadata"]
    assert meta["deletionGracePeriodSeconds"] == 20 and meta["deletionTimestamp"]
    assert "running" in first["object"]["status"]["containerStatuses"][0]["state"]
    # 2. The kubelet's status writes, ending with the container terminated.
    assert middle and all(e["type"] == "MODIFIED" for e in middle)
    assert all(e["object"]["metadata"]["deletionTimestamp"] for e in middle)
    assert "terminated" in middle[-1]["object"]["status"]["containerStatuses"][0]["state"]
    # 3. Then the object is gone.
    assert last["type"] == "DELETED"
    assert "terminated" in last["object"]["status"]["containerStatuses"][0]["state"]


async def test_grace_period_zero_deletes_a_running_pod_at_once(kubesim: KubeSim) -> None:
    async with kubesim.api_client() as api:
        core = client.CoreV1Api(api)
        await running_pod(core, "now")
        await core.delete_namespaced_pod("now", "default", grace_period_seconds=0)
        with pytest.raises(ApiException) as caught:
            await core.read_namespaced_pod("now", "default")
        assert caught.value.status == 404


async def test_without_a_kubelet_a_scheduled_pod_is_deleted_at_once(
    core: client.CoreV1Api,
) -> None:
    await core.create_namespaced_pod("default", pod_manifest("bound", node="node-1"))
    answer = await core.delete_namespaced_pod("bound", "default")
    assert answer.metadata.name == "bound"
    assert (await core.list_namespaced_pod("default")).items == []


async def test_deleting_a_namespace_terminates_it_and_removes_its_contents(
    bare: KubeSim, core: client.CoreV1Api
) -> None:
    await core.create_namespace({"metadata": {"name": "team"}})
    await core.create_namespaced_pod("team", pod_manifest("p1"))
    await core.create_namespaced_config_map("team", {"metadata": {"name": "cm"}})
    seen: list[tuple[str, str, str]] = []
    phases: list[str] = []

    def record(event: str, resource: str, obj: dict[str, Any]) -> None:
        seen.append((event, resource, obj["metadata"]["name"]))
        if resource == "namespaces":
            phases.append(obj["status"]["phase"])

    bare.store.add_listener(record)
    pods = await raw_watch(core.list_namespaced_pod, "team", resource_version="0")
    assert (await pods.next())["type"] == "ADDED"

    await core.delete_namespace("team")
    deleted = await pods.next()
    assert (deleted["type"], deleted["object"]["metadata"]["name"]) == ("DELETED", "p1")

    async def gone() -> bool:
        try:
            await core.read_namespace("team")
        except ApiException as err:
            return err.status == 404
        return False

    await wait_for(gone, message="namespace team removed")
    assert seen[0] == ("MODIFIED", "namespaces", "team") and phases[0] == "Terminating"
    assert seen[-1] == ("DELETED", "namespaces", "team")
    assert {("DELETED", "pods", "p1"), ("DELETED", "configmaps", "cm")} <= set(seen)
    pods.close()


async def test_nothing_can_be_created_in_a_terminating_namespace(kubesim: KubeSim) -> None:
    async with kubesim.api_client() as api:
        core = client.CoreV1Api(api)
        await core.create_namespace({"metadata": {"name": "closing"}})
        await running_pod(core, "slow", "closing")
        await core.delete_namespace("closing")
        with pytest.raises(ApiException) as caught:
            await core.create_namespaced_config_map("closing", {"metadata": {"name": "late"}})
        assert caught.value.status == 403
        assert "being terminated" in orjson.loads(caught.value.body)["message"]


def owner_ref(pod: client.V1Pod) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": pod.metadata.name,
        "uid": pod.metadata.uid,
        "blockOwnerDeletion": True,
    }


async def test_dependents_of_a_deleted_pod_are_garbage_collected(core: client.CoreV1Api) -> None:
    pod = await core.create_namespaced_pod("default", pod_manifest("owner"))
    ref = owner_ref(pod)
    await core.create_namespaced_secret(
        "default", {"metadata": {"name": "owned-secret", "ownerReferences": [ref]}}
    )
    await core.create_namespaced_service(
        "default",
        {
            "metadata": {"name": "owned-svc", "ownerReferences": [ref]},
            "spec": {"ports": [{"port": 8888}]},
        },
    )
    await core.create_namespaced_config_map("default", {"metadata": {"name": "unowned"}})
    await core.delete_namespaced_pod("owner", "default")

    async def collected() -> bool:
        secrets = await core.list_namespaced_secret("default")
        services = await core.list_namespaced_service("default")
        return not secrets.items and not services.items

    await wait_for(collected, message="secret and service collected")
    assert [c.metadata.name for c in (await core.list_namespaced_config_map("default")).items] == [
        "unowned"
    ]


async def test_orphan_propagation_keeps_dependents(core: client.CoreV1Api) -> None:
    pod = await core.create_namespaced_pod("default", pod_manifest("owner"))
    await core.create_namespaced_secret(
        "default", {"metadata": {"name": "kept", "ownerReferences": [owner_ref(pod)]}}
    )
    await core.delete_namespaced_pod("owner", "default", propagation_policy="Orphan")
    secret = await core.read_namespaced_secret("kept", "default")
    assert not secret.metadata.owner_references
