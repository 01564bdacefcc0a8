"""A real ObjectStore with the fake kubelet attached, driven in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from kubesim.cluster import NodeSpec, default_nodes
from kubesim.kubelet_fake import FakeKubelet
from kubesim.kubelet_runtime import KubeletTimings
from kubesim.store import ObjectStore

STEP = 0.01


class Cluster:
    """A store, its kubelet, and helpers to create pods and read their events."""

    def __init__(self, store: ObjectStore, kubelet: FakeKubelet) -> None:
        self.store = store
        self.kubelet = kubelet

    def create_pod(
        self,
        name: str = "jupyter-alice",
        *,
        namespace: str = "jhub",
        image: str = "jupyterhub/singleuser:4",
        annotations: dict[str, str] | None = None,
        cpu: str | None = None,
        memory: str | None = None,
        containers: list[dict[str, Any]] | None = None,
        notebook: dict[str, Any] | None = None,
        **spec: Any,
    ) -> dict[str, Any]:
        """A pod whose first container is "notebook" (``notebook`` adds fields to it)."""
        container: dict[str, Any] = {
            "name": "notebook",
            "image": image,
            "ports": [{"name": "notebook-port", "containerPort": 8888}],
            **(notebook or {}),
        }
        requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
        if requests:
            container["resources"] = {"requests": requests}
        pod = {
            "metadata": {"name": name, "annotations": annotations or {}},
            "spec": {"containers": [container, *(containers or [])], **spec},
        }
        return self.store.create("pods", namespace, pod)

    def pod(self, name: str = "jupyter-alice", namespace: str = "jhub") -> dict[str, Any] | None:
        return self.store.get("pods", namespace, name)

    def events(self, name: str = "jupyter-alice", namespace: str = "jhub") -> list[dict[str, Any]]:
        found = [
            e for e in self.store.list("events", namespace) if e["involvedObject"]["name"] == name
        ]
        return sorted(found, key=lambda e: int(e["metadata"]["resourceVersion"]))

    def reasons(self, name: str = "jupyter-alice") -> list[str]:
        return [e["reason"] for e in self.events(name)]

    def event(self, reason: str, name: str = "jupyter-alice") -> dict[str, Any] | None:
        matching = [e for e in self.events(name) if e["reason"] == reason]
        return matching[-1] if matching else None

    def container_status(self, name: str = "jupyter-alice") -> dict[str, Any]:
        pod = self.pod(name) or {}
        statuses = (pod.get("status") or {}).get("containerStatuses") or [{}]
        return statuses[0]

    def condition(self, kind: str, name: str = "jupyter-alice") -> dict[str, Any]:
        pod = self.pod(name) or {}
        for condition in (pod.get("status") or {}).get("conditions") or []:
            if condition["type"] == kind:
                return condition
        return {}


async def make_cluster(nodes: list[NodeSpec] | None = None, **options: Any) -> Cluster:
    store = ObjectStore()
    for namespace in ("jhub", "other"):
        store.create("namespaces", None, {"metadata": {"name": namespace}})
    kubelet = FakeKubelet(
        nodes or default_nodes(), options.pop("timings", KubeletTimings.uniform(STEP)), **options
    )
    kubelet.attach(store)
    await kubelet.start()
    return Cluster(store, kubelet)


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    made = await make_cluster()
    yield made
    await made.kubelet.close()
