"""The simulated cluster's nodes and what their pods request.

Pure: NodeSpec (configuration), the v1 Node object written to the store,
pod resource requests as the scheduler counts them, and the per-node
accounting of requests of non-terminated pods (NodeUsage).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from kubesim.quantity import parse_quantity

KUBELET_VERSION = "v1.32.0"
TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})
# Resources every node reports; extended ones (nvidia.com/gpu ...) come from NodeSpec.extended.
_BASE_RESOURCES = ("cpu", "memory", "pods", "ephemeral-storage")


@dataclass(frozen=True)
class NodeSpec:
    """One simulated node: capacity (= allocatable), labels and taints."""

    name: str
    cpu: str = "4"
    memory: str = "16Gi"
    pods: str = "110"
    ephemeral_storage: str = "100Gi"
    extended: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[dict[str, Any]] = field(default_factory=list)

    def capacity(self) -> dict[str, str]:
        """Capacity as the Node object shows it (quantity strings)."""
        return {
            "cpu": self.cpu,
            "memory": self.memory,
            "pods": self.pods,
            "ephemeral-storage": self.ephemeral_storage,
            **self.extended,
        }

    def allocatable(self) -> Mapping[str, Decimal]:
        """Allocatable amounts, parsed (the simulation reserves nothing for the system)."""
        return _parsed(tuple(sorted(self.capacity().items())))

    def all_labels(self) -> dict[str, str]:
        """The well-known labels a kubelet sets, overridden by the configured ones."""
        return {
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": "amd64",
            **self.labels,
        }


@functools.lru_cache(maxsize=256)
def _parsed(capacity: tuple[tuple[str, str], ...]) -> Mapping[str, Decimal]:
    return MappingProxyType({name: parse_quantity(value) for name, value in capacity})


def default_nodes(
    count: int = 3, *, cpu: str = "4", memory: str = "16Gi", pods: str = "110"
) -> list[NodeSpec]:
    """Identical worker nodes node-1 ... node-N (by default 3 x 4 CPU, 16Gi, 110 pods).

    Like a real node, each takes at most ``pods`` pods: raise it for benchmarks with
    thousands of scheduled pods.
    """
    return [
        NodeSpec(name=f"node-{i}", cpu=cpu, memory=memory, pods=pods) for i in range(1, count + 1)
    ]


def node_object(spec: NodeSpec, *, host_ip: str, now: str) -> dict[str, Any]:
    """The v1 Node a kubelet registers for ``spec`` (without store-managed metadata)."""
    capacity = spec.capacity()
    condition_texts = {
        "MemoryPressure": (
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        ),
        "DiskPressure": ("False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        "PIDPressure": ("False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        "Ready": ("True", "KubeletReady", "kubelet is posting ready status"),
    }
    conditions = [
        {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }
        for kind, (status, reason, message) in condition_texts.items()
    ]
    node: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": spec.name, "labels": spec.all_labels(), "annotations": {}},
        "spec": {},
        "status": {
            "capacity": dict(capacity),
            "allocatable": dict(capacity),
            "conditions": conditions,
            "addresses": [
                {"type": "InternalIP", "address": host_ip},
                {"type": "Hostname", "address": spec.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "osImage": "kubesim",
                "kernelVersion": "",
                "containerRuntimeVersion": "kubesim://1.0",
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": KUBELET_VERSION,
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
            },
        },
    }
    if spec.taints:
        node["spec"]["taints"] = [dict(taint) for taint in spec.taints]
    return node


def _container_requests(container: Mapping[str, Any]) -> dict[str, Decimal]:
    """A container's requests; a resource with only a limit requests its limit (API defaulting)."""
    resources = container.get("resources") or {}
    amounts = {name: parse_quantity(str(v)) for name, v in (resources.get("limits") or {}).items()}
    amounts.update(
        {name: parse_quantity(str(v)) for name, v in (resources.get("requests") or {}).items()}
    )
    return amounts


def pod_requests(pod: Mapping[str, Any]) -> dict[str, Decimal]:
    """Effective requests: max(largest init container, sum of containers) + overhead, plus 1 pod."""
    spec = pod.get("spec") or {}
    total: dict[str, Decimal] = {}
    for container in spec.get("containers") or []:
        for name, amount in _container_requests(container).items():
            total[name] = total.get(name, Decimal(0)) + amount
    for container in spec.get("initContainers") or []:
        for name, amount in _container_requests(container).items():
            total[name] = max(total.get(name, Decimal(0)), amount)
    for name, value in (spec.get("overhead") or {}).items():
        total[name] = total.get(name, Decimal(0)) + parse_quantity(str(value))
    total["pods"] = Decimal(1)
    return {name: amount for name, amount in total.items() if amount > 0}


def pod_key(pod: Mapping[str, Any]) -> tuple[str, str]:
    metadata = pod.get("metadata") or {}
    return (metadata.get("namespace") or "", metadata.get("name") or "")


def occupies_node(pod: Mapping[str, Any]) -> bool:
    """True when the pod is bound and not terminated (its requests count on the node)."""
    node = (pod.get("spec") or {}).get("nodeName")
    phase = (pod.get("status") or {}).get("phase")
    return bool(node) and phase not in TERMINAL_PHASES


class NodeUsage:
    """Requests of the non-terminated pods bound to each node, kept up to date incrementally."""

    def __init__(self, nodes: Iterable[NodeSpec]) -> None:
        self._nodes = {node.name: node for node in nodes}
        self._pods: dict[tuple[str, str], tuple[str, dict[str, Decimal]]] = {}
        self._used: dict[str, dict[str, Decimal]] = {name: {} for name in self._nodes}

    def observe(self, pod: Mapping[str, Any]) -> bool:
        """Account for ``pod``'s current state; True when this freed capacity on some node."""
        key = pod_key(pod)
        if occupies_node(pod):
            node = pod["spec"]["nodeName"]
            if key in self._pods and self._pods[key][0] == node:
                return False
            freed = self.forget(key)
            if node in self._used:
                requests = pod_requests(pod)
                self._pods[key] = (node, requests)
                used = self._used[node]
                for name, amount in requests.items():
                    used[name] = used.get(name, Decimal(0)) + amount
            return freed
        return self.forget(key)

    def forget(self, key: tuple[str, str]) -> bool:
        """Drop a pod's requests; True when it held any."""
        entry = self._pods.pop(key, None)
        if entry is None:
            return False
        node, requests = entry
        used = self._used[node]
        for name, amount in requests.items():
            used[name] = used.get(name, Decimal(0)) - amount
        return True

    def used(self, node: str) -> Mapping[str, Decimal]:
        return self._used.get(node, {})

    def node_of(self, key: tuple[str, str]) -> str | None:
        entry = self._pods.get(key)
        return entry[0] if entry else None
