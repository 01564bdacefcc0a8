"""Many running servers at once, for scale tests and benchmarks.

:func:`make_spawners` builds KubeCacheSpawners of users ``user0..``;
:func:`create_running_pods` puts their pods into kubesim's store as a
kubelet would leave them: Running and Ready (no kubelet needed, so
thousands take seconds).
"""

from __future__ import annotations

from typing import Any

from kubecache.spawner import KubeCacheSpawner
from kubesim.testing import KubeSim
from tests.spawner.support import mock_hub, mock_user

NAMESPACE = "jhub"


def make_spawners(
    redis_url: str, n: int, *, prefix: str = "user", **config: Any
) -> list[KubeCacheSpawner]:
    """``n`` spawners of users ``<prefix>0..`` in namespace jhub reading ``redis_url``;
    ``config`` overrides."""
    spawners = []
    for i in range(n):
        spawner = KubeCacheSpawner(
            user=mock_user(f"{prefix}{i}", user_id=i + 1),
            hub=mock_hub(),
            namespace=NAMESPACE,
            redis_url=redis_url,
            image="quay.io/jupyter/base-notebook:latest",
            **{"cache_stale_after": 1.0, "delete_stopped_pods": False, **config},
        )
        spawner.api_token = f"token-{i}"
        spawners.append(spawner)
    return spawners


def mark_running(pod: dict[str, Any], ip: str) -> None:
    """The status a kubelet writes for a ready server (without imageID, which the API always
    sends: a reader must not depend on it)."""
    now = "2026-11-25T12:00:00Z"
    pod["spec"]["nodeName"] = "node-1"
    pod["status"] = {
        "phase": "Running",
        "podIP": ip,
        "startTime": now,
        "conditions": [
            {"type": t, "status": "True", "lastTransitionTime": now}
            for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
        ],
        "containerStatuses": [
            {
                "name": "notebook",
                "ready": True,
                "restartCount": 0,
                "image": "quay.io/jupyter/base-notebook:latest",
                "state": {"running": {"startedAt": now}},
            }
        ],
    }


async def create_running_pods(sim: KubeSim, spawners: list[KubeCacheSpawner]) -> None:
    for i, spawner in enumerate(spawners):
        sim.store.create("pods", NAMESPACE, await spawner.pod_request_body())
        # the status a kubelet would write (a create ignores status, as the API does)
        ip = f"10.1.{i // 250}.{i % 250 + 1}"
        sim.store.mutate(
            "pods", NAMESPACE, spawner.pod_name, lambda pod, ip=ip: mark_running(pod, ip)
        )


__all__ = ["NAMESPACE", "create_running_pods", "make_spawners", "mark_running"]
