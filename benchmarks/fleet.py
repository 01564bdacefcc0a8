"""The running servers the benchmarks make: their pods and addresses (pure, no emulator).

A hub process of the benchmarks (``hub_worker.py``, ``poll_profile.py``) imports
this, not ``sim_host``: a hub does not carry the emulator (or pytest) in its heap,
which every full garbage collection of a fresh hub walks.
"""

from __future__ import annotations

from typing import Any

NOW = "2026-11-23T12:00:00Z"
#: A node the fake kubelet does not know: bulk pods on it are left as written.
PARKED_NODE = "parked-node"
IMAGE = "quay.io/jupyterhub/k8s-singleuser-sample:4.0.0"


def pod_ip(index: int) -> str:
    """The address of the running pod number ``index`` (the hub's database has it too)."""
    return f"10.{index // 65536 % 256}.{index // 256 % 256}.{index % 256}"


def running_pod(user: str, namespace: str, index: int) -> dict[str, Any]:
    """A running, ready user pod as a z2jh hub makes it (labels of both spawners)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"jupyter-{user}",
            "namespace": namespace,
            "labels": {
                "component": "singleuser-server",
                "app": "jupyterhub",
                "release": "jhub",
                "heritage": "jupyterhub",
                "chart": "jupyterhub-4.0.0",
                "hub.jupyter.org/username": user,
                "hub.jupyter.org/servername": "",
            },
            "annotations": {"hub.jupyter.org/username": user},
        },
        "spec": {
            "nodeName": PARKED_NODE,
            "containers": [
                {
                    "name": "notebook",
                    "image": IMAGE,
                    "args": ["jupyterhub-singleuser"],
                    "ports": [{"containerPort": 8888, "name": "notebook-port"}],
                    "env": [
                        {"name": "JUPYTERHUB_USER", "value": user},
                        {"name": "JUPYTERHUB_API_URL", "value": "http://hub:8081/hub/api"},
                        {"name": "JUPYTERHUB_SERVICE_PREFIX", "value": f"/user/{user}/"},
                        {"name": "MEM_GUARANTEE", "value": "1073741824"},
                    ],
                    "resources": {"requests": {"cpu": "100m", "memory": "1Gi"}},
                }
            ],
        },
        "status": running_status(pod_ip(index), f"{index:064d}", IMAGE),
    }


def running_status(ip: str, container_id: str, image: str) -> dict[str, Any]:
    """The status a kubelet writes for a running, ready server."""
    return {
        "phase": "Running",
        "podIP": ip,
        "hostIP": "192.168.0.1",
        "startTime": NOW,
        "conditions": [
            {"type": t, "status": "True", "lastTransitionTime": NOW}
            for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
        ],
        "containerStatuses": [
            {
                "name": "notebook",
                "ready": True,
                "restartCount": 0,
                "image": image,
                "imageID": "sha256:" + "0" * 64,
                "containerID": "containerd://" + container_id,
                "started": True,
                "state": {"running": {"startedAt": NOW}},
            }
        ],
    }
