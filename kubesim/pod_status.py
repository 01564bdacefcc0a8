"""Pure pod status as a kubelet writes it.

ContainerRun is the kubelet's view of one container (waiting / running /
terminated, restarts, last state); render_status() turns the runs of a pod
into the ``status`` object: phase (the kubelet's getPhase rules), conditions
with lastTransitionTime kept while a condition does not change,
containerStatuses / initContainerStatuses, pod and host IPs, startTime and
qosClass.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubesim.kubelet_events import qualified_image

CONDITION_ORDER = (
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
)


def new_container_id() -> str:
    return "containerd://" + secrets.token_hex(32)


def image_id(image: str) -> str:
    """A stable digest reference for an image name (the simulation has no registry)."""
    reference = qualified_image(image)
    repository = reference.rsplit(":", 1)[0] if "@" not in reference else reference.split("@")[0]
    digest = hashlib.sha256(reference.encode()).hexdigest()
    return f"{repository}@sha256:{digest}"


@dataclass
class ContainerRun:
    """One container as the kubelet tracks it."""

    name: str
    image: str
    init: bool = False
    state: str = "waiting"  # waiting | running | terminated
    reason: str | None = "ContainerCreating"
    message: str | None = None
    exit_code: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    container_id: str | None = None
    image_ref: str = ""
    restart_count: int = 0
    last_state: dict[str, Any] = field(default_factory=dict)
    ready: bool = False

    # --- transitions -----------------------------------------------------------------------
    def wait(self, reason: str, message: str | None = None) -> None:
        """Waiting for ``reason``; a terminated state moves to lastState."""
        if self.state == "terminated":
            self.last_state = {"terminated": self._terminated()}
        self.state, self.reason, self.message, self.ready = "waiting", reason, message, False
        self.exit_code = None

    def run(self, *, now: str) -> None:
        """A (new) container instance started."""
        if self.state == "terminated":
            self.last_state = {"terminated": self._terminated()}
        if self.container_id is not None:
            self.restart_count += 1
        self.state, self.reason, self.message, self.exit_code = "running", None, None, None
        self.started_at, self.finished_at = now, None
        self.container_id = new_container_id()
        self.image_ref = image_id(self.image)
        self.ready = False

    def terminate(
        self, *, exit_code: int, now: str, reason: str | None = None, message: str | None = None
    ) -> None:
        """The container exited: Completed for 0, Error otherwise, unless ``reason`` (OOMKilled)."""
        self.state = "terminated"
        self.exit_code = exit_code
        self.reason = reason or ("Completed" if exit_code == 0 else "Error")
        self.message = message
        self.finished_at = now
        self.started_at = self.started_at or now
        self.ready = False

    # --- rendering -------------------------------------------------------------------------
    def _terminated(self) -> dict[str, Any]:
        terminated: dict[str, Any] = {
            "exitCode": self.exit_code if self.exit_code is not None else 0,
            "reason": self.reason,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
        }
        if self.message:
            terminated["message"] = self.message
        if self.container_id:
            terminated["containerID"] = self.container_id
        return terminated

    def current_state(self) -> dict[str, Any]:
        if self.state == "running":
            return {"running": {"startedAt": self.started_at}}
        if self.state == "terminated":
            return {"terminated": self._terminated()}
        waiting: dict[str, Any] = {"reason": self.reason}
        if self.message:
            waiting["message"] = self.message
        return {"waiting": waiting}

    def to_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "name": self.name,
            "state": self.current_state(),
            "lastState": dict(self.last_state),
            "ready": self.ready,
            "restartCount": self.restart_count,
            "image": self.image,
            "imageID": self.image_ref,
            "started": self.state == "running",
        }
        if self.container_id:
            status["containerID"] = self.container_id
        return status

    @property
    def succeeded(self) -> bool:
        return self.state == "terminated" and self.exit_code == 0


def compute_phase(
    restart_policy: str, init_runs: Sequence[ContainerRun], runs: Sequence[ContainerRun]
) -> str:
    """The kubelet's getPhase for the given container runs."""
    for run in init_runs:
        if not run.succeeded:
            if run.state == "terminated" and restart_policy == "Never":
                return "Failed"
            return "Pending"
    running = waiting = stopped = succeeded = 0
    for run in runs:
        if run.state == "running":
            running += 1
        elif run.state == "terminated":
            stopped += 1
            succeeded += run.exit_code == 0
        elif run.last_state.get("terminated"):
            stopped += 1  # waiting to restart after an exit
            succeeded += run.last_state["terminated"].get("exitCode") == 0
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if restart_policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if restart_policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def qos_class(pod: Mapping[str, Any]) -> str:
    """Guaranteed / Burstable / BestEffort from the containers' requests and limits."""
    spec = pod.get("spec") or {}
    containers = [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]
    any_set = False
    guaranteed = True
    for container in containers:
        resources = container.get("resources") or {}
        requests = resources.get("requests") or {}
        limits = resources.get("limits") or {}
        if requests or limits:
            any_set = True
        for name in ("cpu", "memory"):
            if name not in limits or str(requests.get(name, limits[name])) != str(limits[name]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _condition(kind: str, ok: bool, reason: str | None, message: str | None) -> dict[str, Any]:
    condition: dict[str, Any] = {
        "type": kind,
        "status": "True" if ok else "False",
        "lastProbeTime": None,
    }
    if not ok and reason:
        condition["reason"] = reason
        if message:
            condition["message"] = message
    return condition


def _names(runs: Sequence[ContainerRun]) -> str:
    return "[" + " ".join(run.name for run in runs) + "]"


def render_status(
    pod: Mapping[str, Any],
    *,
    init_runs: Sequence[ContainerRun],
    runs: Sequence[ContainerRun],
    pod_ip: str | None,
    host_ip: str,
    start_time: str,
    now: str,
) -> dict[str, Any]:
    """The pod's whole ``status`` for the kubelet to write."""
    previous = pod.get("status") or {}
    restart_policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
    phase = compute_phase(restart_policy, init_runs, runs)
    deleting = bool((pod.get("metadata") or {}).get("deletionTimestamp"))
    if deleting and runs and all(run.state == "terminated" for run in runs):
        # The kubelet moves a pod it stopped for deletion to a terminal phase.
        phase = "Succeeded" if all(run.exit_code == 0 for run in runs) else "Failed"

    incomplete_init = [run for run in init_runs if not run.succeeded]
    unready = [run for run in runs if not run.ready]
    conditions = [
        _condition("PodReadyToStartContainers", bool(pod_ip), None, None),
        _condition(
            "Initialized",
            not incomplete_init,
            "ContainersNotInitialized",
            f"containers with incomplete status: {_names(incomplete_init)}",
        ),
    ]
    if phase == "Succeeded":
        ready_pair = [
            _condition(k, False, "PodCompleted", None) for k in ("Ready", "ContainersReady")
        ]
    else:
        message = f"containers with unready status: {_names(unready)}"
        ready_pair = [
            _condition(k, not unready, "ContainersNotReady", message)
            for k in ("Ready", "ContainersReady")
        ]
    conditions += ready_pair
    conditions.append(_condition("PodScheduled", True, None, None))

    old = {c.get("type"): c for c in previous.get("conditions") or []}
    for condition in conditions:
        before = old.get(condition["type"])
        if (
            before
            and before.get("status") == condition["status"]
            and before.get("lastTransitionTime")
        ):
            condition["lastTransitionTime"] = before["lastTransitionTime"]
        else:
            condition["lastTransitionTime"] = now
    known = {c["type"] for c in conditions}
    conditions += [c for c in previous.get("conditions") or [] if c.get("type") not in known]
    conditions.sort(
        key=lambda c: CONDITION_ORDER.index(c["type"]) if c["type"] in CONDITION_ORDER else 99
    )

    status: dict[str, Any] = {
        "phase": phase,
        "conditions": conditions,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "startTime": start_time,
        "qosClass": previous.get("qosClass") or qos_class(pod),
        "containerStatuses": [run.to_status() for run in runs],
    }
    if init_runs:
        status["initContainerStatuses"] = [run.to_status() for run in init_runs]
    if pod_ip:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    return status
