"""The scheduler loop against a real ObjectStore."""

from __future__ import annotations

from kubesim.cluster import NodeSpec
from tests.kubesim.kubelet.conftest import Cluster, make_cluster
from tests.support.waiting import wait_for

INSUFFICIENT_CPU = (
    "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: "
    "3 No preemption victims found for incoming pod."
)


def node_of(cluster: Cluster, name: str) -> str | None:
    pod = cluster.pod(name)
    return pod["spec"].get("nodeName") if pod else None


async def test_nodes_are_registered_in_the_store(cluster: Cluster) -> None:
    nodes = cluster.store.list("nodes")
    assert [n["metadata"]["name"] for n in nodes] == ["node-1", "node-2", "node-3"]
    node = nodes[0]
    assert node["status"]["allocatable"]["cpu"] == "4"
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "node-1"
    assert {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"] == "True"


async def test_a_pod_that_fits_is_bound_with_a_scheduled_event(cluster: Cluster) -> None:
    cluster.create_pod(cpu="1")
    await wait_for(lambda: cluster.event("Scheduled"), message="Scheduled event")
    node = node_of(cluster, "jupyter-alice")
    assert node in ("node-1", "node-2", "node-3")
    event = cluster.event("Scheduled")
    assert event is not None
    assert event["message"] == f"Successfully assigned jhub/jupyter-alice to {node}"
    assert event["type"] == "Normal" and event["action"] == "Binding"
    assert event["reportingComponent"] == "default-scheduler"
    assert event["eventTime"] and event["lastTimestamp"] is None
    assert cluster.condition("PodScheduled")["status"] == "True"


async def test_a_pod_that_fits_nowhere_stays_pending_with_the_real_message(
    cluster: Cluster,
) -> None:
    cluster.create_pod(cpu="5")
    await wait_for(lambda: cluster.event("FailedScheduling"), message="FailedScheduling")
    event = cluster.event("FailedScheduling")
    assert event is not None
    assert event["type"] == "Warning"
    assert event["message"] == INSUFFICIENT_CPU
    condition = cluster.condition("PodScheduled")
    assert condition["status"] == "False"
    assert condition["reason"] == "Unschedulable"
    assert condition["message"] == INSUFFICIENT_CPU
    pod = cluster.pod()
    assert pod is not None and pod["status"]["phase"] == "Pending"
    assert not pod["spec"].get("nodeName")


async def test_an_unschedulable_pod_is_retried_when_capacity_frees(cluster: Cluster) -> None:
    for index in range(3):
        cluster.create_pod(f"big-{index}", cpu="3")
    cluster.create_pod("small", cpu="500m")
    await wait_for(
        lambda: all(node_of(cluster, n) for n in ("big-0", "big-1", "big-2", "small")),
        message="the first pods bound",
    )
    cluster.create_pod("waiting", cpu="2")
    await wait_for(lambda: cluster.event("FailedScheduling", "waiting"), message="FailedScheduling")
    first = cluster.event("FailedScheduling", "waiting")
    assert first is not None and "series" not in first

    cluster.store.delete("pods", "jhub", "small")  # frees too little: tried again, same event
    await wait_for(
        lambda: (cluster.event("FailedScheduling", "waiting") or {}).get("series"),
        message="the FailedScheduling series",
    )
    again = cluster.event("FailedScheduling", "waiting")
    assert again is not None
    assert again["metadata"]["uid"] == first["metadata"]["uid"]
    assert again["series"]["count"] == 2
    assert [e["reason"] for e in cluster.events("waiting")] == ["FailedScheduling"]

    cluster.store.delete("pods", "jhub", "big-1")
    await wait_for(lambda: node_of(cluster, "waiting"), message="the waiting pod bound")
    assert cluster.condition("PodScheduled", "waiting")["status"] == "True"


async def test_untolerated_taints_and_selectors_are_reported_per_node() -> None:
    nodes = [
        NodeSpec("node-1", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
        NodeSpec("node-2", labels={"pool": "core"}),
        NodeSpec("node-3", labels={"pool": "user"}, memory="1Gi"),
    ]
    cluster = await make_cluster(nodes)
    try:
        cluster.create_pod(memory="2Gi", nodeSelector={"pool": "user"})
        await wait_for(lambda: cluster.event("FailedScheduling"), message="FailedScheduling")
        event = cluster.event("FailedScheduling")
        assert event is not None
        assert event["message"] == (
            "0/3 nodes are available: 1 Insufficient memory, 1 node(s) didn't match Pod's node "
            "affinity/selector, 1 node(s) had untolerated taint {dedicated: gpu}. preemption: "
            "0/3 nodes are available: 1 No preemption victims found for incoming pod, "
            "2 Preemption is not helpful for scheduling."
        )
        cluster.create_pod(
            "tolerant",
            tolerations=[{"key": "dedicated", "operator": "Exists"}],
            affinity={
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [{"key": "pool", "operator": "DoesNotExist"}]}
                        ]
                    }
                }
            },
        )
        await wait_for(lambda: node_of(cluster, "tolerant"), message="the tolerant pod bound")
        assert node_of(cluster, "tolerant") == "node-1"
    finally:
        await cluster.kubelet.close()


async def test_pods_for_another_scheduler_are_left_alone(cluster: Cluster) -> None:
    cluster.create_pod("mine", schedulerName="my-scheduler")
    cluster.create_pod("theirs")
    await wait_for(lambda: node_of(cluster, "theirs"), message="the default pod bound")
    assert node_of(cluster, "mine") is None
    assert cluster.events("mine") == []


async def test_a_pod_created_with_a_node_name_runs_without_a_scheduled_event(
    cluster: Cluster,
) -> None:
    cluster.create_pod(nodeName="node-2")
    await wait_for(lambda: cluster.event("Started"), message="Started")
    assert "Scheduled" not in cluster.reasons()
