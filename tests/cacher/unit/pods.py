"""Raw Pod and Event JSON as the API server returns them for KubeSpawner-style pods.

Each function returns a fresh dict of one realistic state; tests and the
record-size benchmark use them. Times are fixed so expectations are exact.
"""

from __future__ import annotations

import copy
from typing import Any

NAMESPACE = "jhub"
UID = "3f1c2a9e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"
CREATED = "2024-05-01T12:00:00Z"  # 1714564800
SCHEDULED = "2024-05-01T12:00:01Z"  # 1714564801
STARTED = "2024-05-01T12:00:05Z"  # 1714564805
CREATED_S = 1714564800
STARTED_S = 1714564805

_BASE: dict[str, Any] = {
    "kind": "Pod",
    "apiVersion": "v1",
    "metadata": {
        "name": "jupyter-alice",
        "namespace": NAMESPACE,
        "uid": UID,
        "resourceVersion": "1001",
        "creationTimestamp": CREATED,
        "labels": {
            "app": "jupyterhub",
            "component": "singleuser-server",
            "heritage": "jupyterhub",
            "release": "jhub",
            "chart": "jupyterhub-3.3.7",
            "hub.jupyter.org/network-access-hub": "true",
            "hub.jupyter.org/servername": "",
            "hub.jupyter.org/username": "alice",
            "app.kubernetes.io/name": "jupyterhub",
            "app.kubernetes.io/component": "singleuser-server",
            "app.kubernetes.io/managed-by": "kubespawner",
        },
        "annotations": {
            "hub.jupyter.org/username": "alice",
            "hub.jupyter.org/servername": "",
            "kubectl.kubernetes.io/default-container": "notebook",
            "cluster-autoscaler.kubernetes.io/safe-to-evict": "false",
        },
        "managedFields": [
            {
                "manager": "OpenAPI-Generator",
                "operation": "Update",
                "apiVersion": "v1",
                "time": CREATED,
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:labels": {".": {}}}, "f:spec": {}},
            }
        ],
    },
    "spec": {
        "volumes": [
            {"name": "volume-alice", "persistentVolumeClaim": {"claimName": "claim-alice"}},
            {"name": "kube-api-access-x7k2p", "projected": {"defaultMode": 420, "sources": []}},
        ],
        "initContainers": [
            {
                "name": "block-cloud-metadata",
                "image": "quay.io/jupyterhub/k8s-network-tools:3.3.7",
                "command": ["iptables", "-A", "OUTPUT", "-d", "169.254.169.254", "-j", "DROP"],
            }
        ],
        "containers": [
            {
                "name": "notebook",
                "image": "quay.io/jupyterhub/k8s-singleuser-sample:3.3.7",
                "args": ["jupyterhub-singleuser"],
                "ports": [{"name": "notebook-port", "containerPort": 8888, "protocol": "TCP"}],
                "env": [
                    {"name": "JUPYTERHUB_API_TOKEN", "value": "redacted"},
                    {"name": "JUPYTERHUB_USER", "value": "alice"},
                    {"name": "JUPYTERHUB_SERVICE_PREFIX", "value": "/user/alice/"},
                    {"name": "MEM_GUARANTEE", "value": "1073741824"},
                ],
                "resources": {"limits": {"memory": "2Gi"}, "requests": {"memory": "1Gi"}},
                "volumeMounts": [{"name": "volume-alice", "mountPath": "/home/jovyan"}],
                "imagePullPolicy": "IfNotPresent",
                "lifecycle": {},
            }
        ],
        "restartPolicy": "OnFailure",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "serviceAccountName": "default",
        "automountServiceAccountToken": False,
        "securityContext": {"fsGroup": 100, "runAsUser": 1000},
        "schedulerName": "default-scheduler",
        "tolerations": [
            {
                "key": "hub.jupyter.org/dedicated",
                "operator": "Equal",
                "value": "user",
                "effect": "NoSchedule",
            },
        ],
        "priority": 0,
        "enableServiceLinks": False,
    },
    "status": {"phase": "Pending", "qosClass": "Burstable"},
}


def _pod(rv: int = 1001, **status: Any) -> dict[str, Any]:
    pod = copy.deepcopy(_BASE)
    pod["metadata"]["resourceVersion"] = str(rv)
    pod["status"].update(status)
    return pod


def _conditions(*, scheduled: bool = True, ready: bool = False) -> list[dict[str, Any]]:
    truth = "True" if ready else "False"
    conditions = [
        {
            "type": "PodScheduled",
            "status": "True" if scheduled else "False",
            "lastProbeTime": None,
            "lastTransitionTime": SCHEDULED,
        },
    ]
    if scheduled:
        conditions = [
            {
                "type": "Initialized",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": SCHEDULED,
            },
            {
                "type": "Ready",
                "status": truth,
                "lastProbeTime": None,
                "lastTransitionTime": STARTED,
            },
            {
                "type": "ContainersReady",
                "status": truth,
                "lastProbeTime": None,
                "lastTransitionTime": STARTED,
            },
            *conditions,
        ]
        if not ready:
            for c in conditions[1:3]:
                c["reason"] = "ContainersNotReady"
                c["message"] = "containers with unready status: [notebook]"
    return conditions


def _running_status(*, scheduled_on: str = "node-1") -> dict[str, Any]:
    return {
        "hostIP": "10.0.0.11",
        "hostIPs": [{"ip": "10.0.0.11"}],
        "podIP": "10.244.1.23",
        "podIPs": [{"ip": "10.244.1.23"}],
        "startTime": STARTED,
    }


def _container_status(
    state: dict[str, Any],
    *,
    ready: bool = False,
    restarts: int = 0,
    last: dict[str, Any] | None = None,
    started: bool = False,
) -> list[dict[str, Any]]:
    return [
        {
            "name": "notebook",
            "state": state,
            "lastState": last or {},
            "ready": ready,
            "restartCount": restarts,
            "image": "quay.io/jupyterhub/k8s-singleuser-sample:3.3.7",
            "imageID": "quay.io/jupyterhub/k8s-singleuser-sample@sha256:" + "ab" * 32,
            "containerID": "containerd://" + "cd" * 32,
            "started": started,
        }
    ]


def _scheduled(pod: dict[str, Any], node: str = "node-1") -> dict[str, Any]:
    pod["spec"]["nodeName"] = node
    return pod


def pending_unschedulable() -> dict[str, Any]:
    pod = _pod(1002)
    pod["status"]["conditions"] = [
        {
            "type": "PodScheduled",
            "status": "False",
            "lastProbeTime": None,
            "lastTransitionTime": SCHEDULED,
            "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes "
            "are available: 3 No preemption victims found for incoming pod.",
        }
    ]
    return pod


def pulling() -> dict[str, Any]:
    pod = _scheduled(_pod(1003, conditions=_conditions(), **_running_status()))
    pod["status"].pop("podIP")
    pod["status"].pop("podIPs")
    pod["status"]["containerStatuses"] = _container_status(
        {"waiting": {"reason": "ContainerCreating"}}
    )
    return pod


def image_pull_backoff() -> dict[str, Any]:
    pod = _scheduled(_pod(1004, conditions=_conditions(), **_running_status()))
    pod["status"]["containerStatuses"] = _container_status(
        {
            "waiting": {
                "reason": "ImagePullBackOff",
                "message": 'Back-off pulling image "quay.io/jupyterhub/k8s-singleuser-sample:'
                'no-such-tag"',
            }
        }
    )
    return pod


def running_not_ready() -> dict[str, Any]:
    pod = _scheduled(_pod(1005, phase="Running", conditions=_conditions(), **_running_status()))
    pod["status"]["containerStatuses"] = _container_status(
        {"running": {"startedAt": STARTED}}, started=True
    )
    return pod


def ready() -> dict[str, Any]:
    pod = _scheduled(
        _pod(1006, phase="Running", conditions=_conditions(ready=True), **_running_status())
    )
    pod["status"]["containerStatuses"] = _container_status(
        {"running": {"startedAt": STARTED}}, ready=True, started=True
    )
    return pod


def terminating() -> dict[str, Any]:
    pod = ready()
    pod["metadata"]["resourceVersion"] = "1007"
    pod["metadata"]["deletionTimestamp"] = "2024-05-01T13:00:30Z"
    pod["metadata"]["deletionGracePeriodSeconds"] = 30
    return pod


def _terminated(
    rv: int, phase: str, *, reason: str, exit_code: int, message: str | None = None
) -> dict[str, Any]:
    pod = _scheduled(_pod(rv, phase=phase, conditions=_conditions(), **_running_status()))
    terminated: dict[str, Any] = {
        "exitCode": exit_code,
        "reason": reason,
        "startedAt": STARTED,
        "finishedAt": "2024-05-01T13:00:00Z",
        "containerID": "containerd://" + "cd" * 32,
    }
    if message:
        terminated["message"] = message
    pod["status"]["containerStatuses"] = _container_status({"terminated": terminated})
    return pod


def succeeded() -> dict[str, Any]:
    return _terminated(1008, "Succeeded", reason="Completed", exit_code=0)


def failed() -> dict[str, Any]:
    return _terminated(
        1009,
        "Failed",
        reason="Error",
        exit_code=1,
        message="jupyterhub-singleuser: error: unrecognized arguments",
    )


def oom_killed() -> dict[str, Any]:
    return _terminated(1010, "Failed", reason="OOMKilled", exit_code=137)


def evicted() -> dict[str, Any]:
    pod = _scheduled(_pod(1011, phase="Failed", startTime=STARTED))
    pod["status"]["reason"] = "Evicted"
    pod["status"]["message"] = (
        "The node was low on resource: memory. Threshold quantity: 100Mi, available: 91Mi. "
        "Container notebook was using 1900Mi, request is 1Gi, has larger consumption of memory."
    )
    pod["status"]["containerStatuses"] = _container_status(
        {
            "terminated": {
                "exitCode": 137,
                "reason": "ContainerStatusUnknown",
                "message": "The container could not be located when the pod was terminated",
                "startedAt": None,
                "finishedAt": None,
            }
        }
    )
    return pod


def crash_loop() -> dict[str, Any]:
    pod = _scheduled(_pod(1012, phase="Running", conditions=_conditions(), **_running_status()))
    pod["status"]["containerStatuses"] = _container_status(
        {
            "waiting": {
                "reason": "CrashLoopBackOff",
                "message": "back-off 2m40s restarting failed container=notebook "
                "pod=jupyter-alice_jhub(" + UID + ")",
            }
        },
        restarts=5,
        last={
            "terminated": {
                "exitCode": 2,
                "reason": "Error",
                "startedAt": STARTED,
                "finishedAt": "2024-05-01T12:05:00Z",
            }
        },
    )
    return pod


#: Every pod state, by name, for table-driven tests and the benchmark.
ALL_STATES = {
    "pending unschedulable": pending_unschedulable,
    "pulling": pulling,
    "image pull back-off": image_pull_backoff,
    "running not ready": running_not_ready,
    "ready": ready,
    "terminating": terminating,
    "succeeded": succeeded,
    "failed": failed,
    "OOMKilled": oom_killed,
    "evicted": evicted,
    "crash loop": crash_loop,
}


def named(
    pod: dict[str, Any],
    name: str,
    *,
    uid: str | None = None,
    rv: int | None = None,
    namespace: str = NAMESPACE,
) -> dict[str, Any]:
    """A copy of ``pod`` renamed (and its username label/annotation with it)."""
    pod = copy.deepcopy(pod)
    meta = pod["metadata"]
    meta["name"] = name
    meta["namespace"] = namespace
    user = name.removeprefix("jupyter-")
    meta["labels"]["hub.jupyter.org/username"] = user
    meta["annotations"]["hub.jupyter.org/username"] = user
    if uid is not None:
        meta["uid"] = uid
    if rv is not None:
        meta["resourceVersion"] = str(rv)
    return pod


def event(
    reason: str = "Scheduled",
    message: str = "Successfully assigned jhub/jupyter-alice to node-1",
    *,
    pod: str = "jupyter-alice",
    pod_uid: str = UID,
    uid: str = "e0000000-0000-0000-0000-000000000001",
    rv: int = 2001,
    type_: str = "Normal",
    count: int | None = 1,
    namespace: str = NAMESPACE,
    kind: str = "Pod",
) -> dict[str, Any]:
    """A raw core/v1 Event about a pod, as the API returns it."""
    raw: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "v1",
        "metadata": {
            "name": f"{pod}.17c9a1b2c3d4e5f6",
            "namespace": namespace,
            "uid": uid,
            "resourceVersion": str(rv),
            "creationTimestamp": SCHEDULED,
        },
        "involvedObject": {
            "kind": kind,
            "namespace": namespace,
            "name": pod,
            "uid": pod_uid,
            "apiVersion": "v1",
            "resourceVersion": "1001",
        },
        "reason": reason,
        "message": message,
        "source": {"component": "default-scheduler"},
        "firstTimestamp": SCHEDULED,
        "lastTimestamp": SCHEDULED,
        "type": type_,
        "eventTime": None,
        "reportingComponent": "default-scheduler",
        "reportingInstance": "",
    }
    if count is not None:
        raw["count"] = count
    return raw


def spawn_events(
    pod: str = "jupyter-alice", pod_uid: str = UID, *, first_rv: int = 2001
) -> list[dict[str, Any]]:
    """The events of a normal spawn, in order, as the scheduler and kubelet report them."""
    image = "quay.io/jupyterhub/k8s-singleuser-sample:3.3.7"
    steps = [
        ("Normal", "Scheduled", f"Successfully assigned {NAMESPACE}/{pod} to node-1"),
        ("Normal", "Pulling", f'Pulling image "{image}"'),
        (
            "Normal",
            "Pulled",
            f'Successfully pulled image "{image}" in 4.2s (4.2s including '
            "waiting). Image size: 512000000 bytes.",
        ),
        ("Normal", "Created", "Created container notebook"),
        ("Normal", "Started", "Started container notebook"),
    ]
    return [
        event(
            reason,
            message,
            pod=pod,
            pod_uid=pod_uid,
            type_=kind,
            rv=first_rv + i,
            uid=f"e0000000-0000-0000-0000-{i + 1:012d}",
        )
        for i, (kind, reason, message) in enumerate(steps)
    ]


def failed_scheduling_event(
    pod: str = "jupyter-alice", pod_uid: str = UID, *, rv: int = 2001, count: int = 3
) -> dict[str, Any]:
    """The scheduler's warning for a pod that fits no node (repeated ``count`` times)."""
    raw = event(
        "FailedScheduling",
        "0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are "
        "available: 3 No preemption victims found for incoming pod.",
        pod=pod,
        pod_uid=pod_uid,
        rv=rv,
        type_="Warning",
        count=count,
        uid="e0000000-0000-0000-0000-0000000000f5",
    )
    raw["lastTimestamp"] = "2024-05-01T12:00:31Z"
    return raw
