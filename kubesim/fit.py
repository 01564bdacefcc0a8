"""Pure scheduling decisions: does a pod fit a node, and the scheduler's wording when none does.

Filters run in kube-scheduler's order and a node fails at its first failing
filter: TaintToleration, NodeAffinity (nodeSelector + required node affinity),
NodeResourcesFit (every insufficient resource is reported). Taint and affinity
failures are "unresolvable" (preemption cannot help); resource shortages are not.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kubesim.cluster import NodeSpec, pod_requests

NODE_AFFINITY_MISMATCH = "node(s) didn't match Pod's node affinity/selector"
NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
# The order the resources plugin reports shortages in.
_RESOURCE_ORDER = ("pods", "cpu", "memory", "ephemeral-storage")


@dataclass(frozen=True)
class NodeVerdict:
    """Why a node cannot take the pod (no reasons: it fits)."""

    node: str
    reasons: tuple[str, ...] = ()
    unresolvable: bool = False

    @property
    def fits(self) -> bool:
        return not self.reasons


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """core/v1 toleration matching: empty effect = all effects; empty key + Exists = all."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    operator = toleration.get("operator") or "Equal"
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    if operator == "Exists":
        return True
    if not key:
        return False  # Equal with an empty key matches nothing
    return (toleration.get("value") or "") == (taint.get("value") or "")


def untolerated_taint(pod: Mapping[str, Any], node: NodeSpec) -> dict[str, Any] | None:
    """The first NoSchedule/NoExecute taint of ``node`` that ``pod`` does not tolerate."""
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    for taint in node.taints:
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not any(tolerates(toleration, taint) for toleration in tolerations):
            return dict(taint)
    return None


def _int_or_none(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def _requirement_matches(requirement: Mapping[str, Any], values: Mapping[str, str]) -> bool:
    key = requirement.get("key") or ""
    operator = requirement.get("operator")
    wanted = [str(v) for v in requirement.get("values") or []]
    present = key in values
    actual = values.get(key, "")
    if operator == "In":
        return present and actual in wanted
    if operator == "NotIn":
        return not present or actual not in wanted
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator in ("Gt", "Lt"):
        if not present or len(wanted) != 1:
            return False
        have, bound = _int_or_none(actual), _int_or_none(wanted[0])
        if have is None or bound is None:
            return False
        return have > bound if operator == "Gt" else have < bound
    return False


def _term_matches(term: Mapping[str, Any], node: NodeSpec) -> bool:
    expressions = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not expressions and not fields:
        return False  # an empty term matches no objects
    labels = node.all_labels()
    return all(_requirement_matches(r, labels) for r in expressions) and all(
        _requirement_matches(r, {"metadata.name": node.name}) for r in fields
    )


def matches_node_affinity(pod: Mapping[str, Any], node: NodeSpec) -> bool:
    """nodeSelector (all labels equal) AND required node affinity (any term)."""
    spec = pod.get("spec") or {}
    labels = node.all_labels()
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms")
    if terms is None:
        return True
    return any(_term_matches(term, node) for term in terms)


def _resource_rank(name: str) -> tuple[int, str]:
    return (
        (_RESOURCE_ORDER.index(name), "")
        if name in _RESOURCE_ORDER
        else (len(_RESOURCE_ORDER), name)
    )


def insufficient_resources(
    requests: Mapping[str, Decimal], node: NodeSpec, used: Mapping[str, Decimal]
) -> list[str]:
    """NodeResourcesFit reasons ("Too many pods", "Insufficient cpu" ...); empty: it fits."""
    allocatable = node.allocatable()
    reasons = []
    for name in sorted(requests, key=_resource_rank):
        wanted = requests[name]
        if wanted <= 0:
            continue
        free = allocatable.get(name, Decimal(0)) - used.get(name, Decimal(0))
        if wanted > free:
            reasons.append("Too many pods" if name == "pods" else f"Insufficient {name}")
    return reasons


def judge_node(
    pod: Mapping[str, Any],
    node: NodeSpec,
    used: Mapping[str, Decimal],
    requests: Mapping[str, Decimal] | None = None,
) -> NodeVerdict:
    """Run the filters for one node in the scheduler's order."""
    taint = untolerated_taint(pod, node)
    if taint is not None:
        text = f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value', '')}}}"
        return NodeVerdict(node.name, (text,), unresolvable=True)
    if not matches_node_affinity(pod, node):
        return NodeVerdict(node.name, (NODE_AFFINITY_MISMATCH,), unresolvable=True)
    wanted = pod_requests(pod) if requests is None else requests
    return NodeVerdict(node.name, tuple(insufficient_resources(wanted, node, used)))


def _histogram(items: Sequence[str]) -> str:
    """kube-scheduler's "N reason" list: counted, then sorted as strings."""
    return ", ".join(sorted(f"{count} {reason}" for reason, count in Counter(items).items()))


def failed_scheduling_message(verdicts: Sequence[NodeVerdict]) -> str:
    """E.g. "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available:
    3 No preemption victims found for incoming pod." (one line)."""
    total = len(verdicts)
    if total == 0:
        return "no nodes available to schedule pods"
    reasons = [reason for verdict in verdicts for reason in verdict.reasons]
    preemption = [NOT_HELPFUL if v.unresolvable else NO_VICTIMS for v in verdicts]
    return (
        f"0/{total} nodes are available: {_histogram(reasons)}. "
        f"preemption: 0/{total} nodes are available: {_histogram(preemption)}."
    )


def resource_score(
    requests: Mapping[str, Decimal], node: NodeSpec, used: Mapping[str, Decimal]
) -> Decimal:
    """LeastAllocated: mean free fraction of cpu and memory after placing the pod."""
    allocatable = node.allocatable()
    fractions = []
    for name in ("cpu", "memory"):
        capacity = allocatable.get(name, Decimal(0))
        if capacity <= 0:
            continue
        after = used.get(name, Decimal(0)) + requests.get(name, Decimal(0))
        fractions.append((capacity - after) / capacity)
    return sum(fractions, Decimal(0)) / len(fractions) if fractions else Decimal(0)


def choose_node(
    pod: Mapping[str, Any],
    nodes: Sequence[NodeSpec],
    used_by_node: Mapping[str, Mapping[str, Decimal]],
) -> tuple[str | None, list[NodeVerdict]]:
    """The node to bind to (least allocated, ties by order) or None, and every verdict."""
    requests = pod_requests(pod)
    verdicts = [judge_node(pod, node, used_by_node.get(node.name, {}), requests) for node in nodes]
    best: tuple[Decimal, int] | None = None
    chosen: str | None = None
    for index, (node, verdict) in enumerate(zip(nodes, verdicts, strict=True)):
        if not verdict.fits:
            continue
        rank = (resource_score(requests, node, used_by_node.get(node.name, {})), -index)
        if best is None or rank > best:
            best, chosen = rank, node.name
    return chosen, verdicts
