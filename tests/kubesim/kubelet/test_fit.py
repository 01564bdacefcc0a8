"""Scheduling decisions and the scheduler's wording, without a store."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kubesim.cluster import NodeSpec, NodeUsage, default_nodes, pod_requests
from kubesim.fit import choose_node, failed_scheduling_message, judge_node, tolerates


def pod(
    name: str = "jupyter-alice", *, cpu: str | None = None, memory: str | None = None, **spec: Any
) -> dict[str, Any]:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    container: dict[str, Any] = {"name": "notebook", "image": "jupyterhub/singleuser:4"}
    if requests:
        container["resources"] = {"requests": requests}
    return {
        "metadata": {"name": name, "namespace": "jhub"},
        "spec": {"containers": [container], **spec},
    }


def test_requests_take_the_larger_of_init_max_and_container_sum() -> None:
    manifest = pod(cpu="500m", memory="1Gi")
    manifest["spec"]["containers"].append(
        {"name": "side", "image": "x", "resources": {"limits": {"cpu": "250m"}}}
    )
    manifest["spec"]["initContainers"] = [
        {"name": "init", "image": "x", "resources": {"requests": {"cpu": "2", "memory": "1Mi"}}}
    ]
    assert pod_requests(manifest) == {
        "cpu": Decimal(2),
        "memory": Decimal(1024**3),
        "pods": Decimal(1),
    }


def test_a_pod_that_fits_goes_to_the_least_allocated_node() -> None:
    nodes = default_nodes()
    usage = NodeUsage(nodes)
    usage.observe({**pod("busy", cpu="3"), "spec": {**pod(cpu="3")["spec"], "nodeName": "node-1"}})
    chosen, _ = choose_node(pod(cpu="1"), nodes, {n.name: usage.used(n.name) for n in nodes})
    assert chosen == "node-2"


def test_insufficient_cpu_everywhere_is_reported_in_the_real_wording() -> None:
    chosen, verdicts = choose_node(pod(cpu="8"), default_nodes(), {})
    assert chosen is None
    assert failed_scheduling_message(verdicts) == (
        "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: "
        "3 No preemption victims found for incoming pod."
    )


def test_combined_reasons_are_counted_and_sorted_as_the_scheduler_does() -> None:
    nodes = [
        NodeSpec("node-1", memory="1Gi", labels={"disk": "ssd"}),
        NodeSpec("node-2"),
        NodeSpec("node-3"),
    ]
    chosen, verdicts = choose_node(pod(memory="2Gi", nodeSelector={"disk": "ssd"}), nodes, {})
    assert chosen is None
    assert failed_scheduling_message(verdicts) == (
        "0/3 nodes are available: 1 Insufficient memory, 2 node(s) didn't match Pod's node "
        "affinity/selector. preemption: 0/3 nodes are available: 1 No preemption victims found "
        "for incoming pod, 2 Preemption is not helpful for scheduling."
    )


def test_several_shortages_on_one_node_are_all_reported() -> None:
    _, verdicts = choose_node(pod(cpu="5", memory="20Gi"), [NodeSpec("node-1")], {})
    assert verdicts[0].reasons == ("Insufficient cpu", "Insufficient memory")


def test_extended_resources_are_counted() -> None:
    gpu_pod = pod()
    gpu_pod["spec"]["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": "1"}}
    nodes = [NodeSpec("cpu-node"), NodeSpec("gpu-node", extended={"nvidia.com/gpu": "1"})]
    chosen, _ = choose_node(gpu_pod, nodes, {})
    assert chosen == "gpu-node"
    _, verdicts = choose_node(gpu_pod, nodes, {"gpu-node": {"nvidia.com/gpu": Decimal(1)}})
    assert "0/2 nodes are available: 2 Insufficient nvidia.com/gpu." in failed_scheduling_message(
        verdicts
    )


def test_too_many_pods_when_the_pod_slots_are_used() -> None:
    verdict = judge_node(pod(), NodeSpec("node-1", pods="1"), {"pods": Decimal(1)})
    assert verdict.reasons == ("Too many pods",)


def test_an_untolerated_taint_is_named_with_key_and_value() -> None:
    node = NodeSpec(
        "gpu", taints=[{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
    )
    verdict = judge_node(pod(), node, {})
    assert verdict.reasons == ("node(s) had untolerated taint {nvidia.com/gpu: present}",)
    assert verdict.unresolvable


def test_prefer_no_schedule_taints_do_not_block() -> None:
    node = NodeSpec("n", taints=[{"key": "k", "effect": "PreferNoSchedule"}])
    assert judge_node(pod(), node, {}).fits


def test_toleration_rules() -> None:
    taint = {"key": "hub.jupyter.org/dedicated", "value": "user", "effect": "NoSchedule"}
    assert tolerates(
        {
            "key": "hub.jupyter.org/dedicated",
            "operator": "Equal",
            "value": "user",
            "effect": "NoSchedule",
        },
        taint,
    )
    assert tolerates({"key": "hub.jupyter.org/dedicated", "value": "user"}, taint)
    assert tolerates({"key": "hub.jupyter.org/dedicated", "operator": "Exists"}, taint)
    assert tolerates({"operator": "Exists"}, taint)
    assert not tolerates({"key": "hub.jupyter.org/dedicated", "value": "core"}, taint)
    assert not tolerates(
        {"key": "hub.jupyter.org/dedicated", "operator": "Exists", "effect": "NoExecute"}, taint
    )
    assert not tolerates({"value": "user"}, taint)


def test_a_tolerating_pod_schedules_on_a_tainted_node() -> None:
    node = NodeSpec(
        "user-node",
        taints=[{"key": "hub.jupyter.org/dedicated", "value": "user", "effect": "NoSchedule"}],
    )
    tolerant = pod(
        tolerations=[
            {
                "key": "hub.jupyter.org/dedicated",
                "operator": "Equal",
                "value": "user",
                "effect": "NoSchedule",
            }
        ]
    )
    assert judge_node(tolerant, node, {}).fits


def affinity(*expressions: dict[str, Any]) -> dict[str, Any]:
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": list(expressions)}]
            }
        }
    }


def test_required_node_affinity_operators() -> None:
    node = NodeSpec("n", labels={"pool": "user", "gpus": "4"})
    cases: list[tuple[dict[str, Any], bool]] = [
        ({"key": "pool", "operator": "In", "values": ["user", "x"]}, True),
        ({"key": "pool", "operator": "In", "values": ["core"]}, False),
        ({"key": "pool", "operator": "NotIn", "values": ["core"]}, True),
        ({"key": "absent", "operator": "NotIn", "values": ["core"]}, True),
        ({"key": "pool", "operator": "Exists"}, True),
        ({"key": "absent", "operator": "Exists"}, False),
        ({"key": "absent", "operator": "DoesNotExist"}, True),
        ({"key": "pool", "operator": "DoesNotExist"}, False),
        ({"key": "gpus", "operator": "Gt", "values": ["3"]}, True),
        ({"key": "gpus", "operator": "Gt", "values": ["4"]}, False),
        ({"key": "gpus", "operator": "Lt", "values": ["5"]}, True),
        ({"key": "pool", "operator": "Lt", "values": ["5"]}, False),
        ({"key": "kubernetes.io/hostname", "operator": "In", "values": ["n"]}, True),
    ]
    for expression, expected in cases:
        assert judge_node(pod(affinity=affinity(expression)), node, {}).fits is expected, expression


def test_node_selector_terms_are_ored_and_expressions_anded() -> None:
    node = NodeSpec("n", labels={"pool": "user"})
    terms = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["core"]}]},
                    {
                        "matchExpressions": [
                            {"key": "pool", "operator": "In", "values": ["user"]},
                            {"key": "zone", "operator": "DoesNotExist"},
                        ]
                    },
                ]
            }
        }
    }
    assert judge_node(pod(affinity=terms), node, {}).fits
    match_fields = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchFields": [
                            {"key": "metadata.name", "operator": "In", "values": ["other"]}
                        ]
                    }
                ]
            }
        }
    }
    assert not judge_node(pod(affinity=match_fields), node, {}).fits


def test_terminated_pods_free_their_requests() -> None:
    nodes = default_nodes()
    usage = NodeUsage(nodes)
    bound = pod("a", cpu="3")
    bound["spec"]["nodeName"] = "node-1"
    assert not usage.observe(bound)
    assert usage.used("node-1")["cpu"] == Decimal(3)
    finished = {**bound, "status": {"phase": "Succeeded"}}
    assert usage.observe(finished)
    assert usage.used("node-1")["cpu"] == Decimal(0)
