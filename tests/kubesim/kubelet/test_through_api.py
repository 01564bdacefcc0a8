"""The simulated scheduler and kubelets seen through the real kubernetes_asyncio client."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from kubernetes_asyncio import client

from kubesim.testing import KubeSim, running_kubesim
from tests.support.waiting import wait_for


def notebook_pod(name: str, **container: Any) -> Any:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "containers": [
                {
                    "name": "notebook",
                    "image": "jupyterhub/singleuser:4",
                    "ports": [{"name": "notebook-port", "containerPort": 8888}],
                    **container,
                }
            ]
        },
    }


async def pod_events(core: client.CoreV1Api, name: str) -> list[Any]:
    listed = await core.list_namespaced_event(
        "default", field_selector=f"involvedObject.name={name}"
    )
    return sorted(listed.items, key=lambda e: int(e.metadata.resource_version))


async def is_ready(core: client.CoreV1Api, name: str) -> bool:
    pod = await core.read_namespaced_pod(name, "default")
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


async def test_a_pod_starts_with_its_events_and_stops_gracefully(kubesim: KubeSim) -> None:
    async with kubesim.api_client() as api:
        core = client.CoreV1Api(api)
        await core.create_namespaced_pod("default", notebook_pod("jupyter-alice"))
        await wait_for(lambda: is_ready(core, "jupyter-alice"), message="the pod ready")
        events = await pod_events(core, "jupyter-alice")
        assert [e.reason for e in events] == [
            "Scheduled",
            "Pulling",
            "Pulled",
            "Created",
            "Started",
        ]
        pod = await core.read_namespaced_pod("jupyter-alice", "default")
        assert pod.status.phase == "Running" and pod.status.pod_ip.startswith("127.")
        assert events[0].involved_object.uid == pod.metadata.uid
        assert events[1].involved_object.field_path == "spec.containers{notebook}"
        assert events[1].source.component == "kubelet" and events[1].count == 1

        deleting = await core.delete_namespaced_pod("jupyter-alice", "default")
        assert deleting.metadata.deletion_timestamp is not None

        async def gone() -> bool:
            listed = await core.list_namespaced_pod("default")
            return not listed.items

        await wait_for(gone, message="the pod removed")
        assert "Killing" in [e.reason for e in await pod_events(core, "jupyter-alice")]


async def test_an_oversized_pod_is_reported_unschedulable(kubesim: KubeSim) -> None:
    async with kubesim.api_client() as api:
        core = client.CoreV1Api(api)
        await core.create_namespaced_pod(
            "default", notebook_pod("huge", resources={"requests": {"memory": "64Gi"}})
        )

        async def failed() -> list[Any]:
            return [e for e in await pod_events(core, "huge") if e.reason == "FailedScheduling"]

        [event] = await wait_for(failed, message="FailedScheduling")
        assert event.type == "Warning"
        assert event.message.startswith("0/3 nodes are available: 3 Insufficient memory.")
        pod = await core.read_namespaced_pod("huge", "default")
        assert pod.status.phase == "Pending"
        [condition] = [c for c in pod.status.conditions if c.type == "PodScheduled"]
        assert (condition.status, condition.reason) == ("False", "Unschedulable")


async def test_a_process_pod_serves_on_its_ip_and_its_log_is_readable() -> None:
    async with running_kubesim(kubelet="process") as sim, sim.api_client() as api:
        core = client.CoreV1Api(api)
        manifest = notebook_pod(
            "jupyter-bob",
            command=[sys.executable, "-u"],
            args=["-m", "http.server", "--bind", "0.0.0.0", "8888"],
        )
        await core.create_namespaced_pod("default", manifest)
        await wait_for(lambda: is_ready(core, "jupyter-bob"), timeout=20, message="ready")
        pod = await core.read_namespaced_pod("jupyter-bob", "default")
        reader, writer = await asyncio.open_connection(pod.status.pod_ip, 8888)
        writer.write(b"GET / HTTP/1.0\r\n\r\n")
        assert (await reader.readline()).startswith(b"HTTP/1.0 200")
        writer.close()

        async def logged() -> str:
            text: str = await core.read_namespaced_pod_log("jupyter-bob", "default")
            return text if "GET /" in text else ""

        assert pod.status.pod_ip in await wait_for(logged, message="the request in the log")
