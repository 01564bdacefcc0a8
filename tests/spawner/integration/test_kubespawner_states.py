"""Servers, claims and hub states left by KubeSpawner 6, taken over by kubecache.

A KubeSpawner 6 state has no ``kubespawner_version`` and its objects carry
"escape"-scheme names (``mock@name`` -> ``mock-40name``); KubeSpawner 7.1
names the same user's claim ``claim-mock-name---6241db84``. JupyterHub's
order of calls is reproduced: ``load_state`` on a new spawner, ``stop``,
``clear_state`` then ``get_state`` saved, the spawner dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

from kubecache import views
from kubecache.contract import Keys, PodRecord, decode_pod_record, pod_key
from kubecache.spawner import KubeCacheSpawner
from tests.spawner.integration.conftest import NAMESPACE
from tests.support.waiting import wait_for

USER = "mock@name"
LEGACY_POD, LEGACY_CLAIM = "jupyter-mock-40name", "claim-mock-40name"
SAFE_CLAIM = "claim-mock-name---6241db84"
KUBESPAWNER_6_STATE = {
    "pod_name": LEGACY_POD,
    "namespace": NAMESPACE,
    "dns_name": f"{LEGACY_POD}.{NAMESPACE}.svc.cluster.local",
}


def claims(cluster: Any) -> set[str]:
    return {o["metadata"]["name"] for o in cluster.store.list("persistentvolumeclaims", NAMESPACE)}


def make_legacy_claim(cluster: Any) -> str:
    claim = cluster.store.create(
        "persistentvolumeclaims",
        NAMESPACE,
        {
            "metadata": {"name": LEGACY_CLAIM, "labels": {"component": "singleuser-storage"}},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    uid: str = claim["metadata"]["uid"]
    return uid


def storage(**more: Any) -> dict[str, Any]:
    return {"storage_pvc_ensure": True, "storage_capacity": "1Gi", **more}


async def test_a_kubespawner_6_server_keeps_its_legacy_claim_across_a_stop_and_a_new_spawner(
    cluster: Any, make_spawner: Callable[..., KubeCacheSpawner]
) -> None:
    uid = make_legacy_claim(cluster)
    first = make_spawner(USER, **storage())
    first.load_state(dict(KUBESPAWNER_6_STATE))
    await first.stop(now=True)  # its pod is already gone: nothing to delete
    first.clear_state()
    saved = first.get_state()
    assert saved["kubespawner_version"] == "unknown" and "pvc_name" not in saved, saved

    second = make_spawner(USER, **storage())  # after a hub restart
    second.load_state(saved)
    await asyncio.wait_for(second.start(), 30)
    assert second.pvc_name == LEGACY_CLAIM
    assert second.get_state()["pvc_name"] == LEGACY_CLAIM
    assert claims(cluster) == {LEGACY_CLAIM}, "a new, empty claim was made beside the user's"
    claim = cluster.store.get("persistentvolumeclaims", NAMESPACE, LEGACY_CLAIM)
    assert claim["metadata"]["uid"] == uid
    await second.stop(now=True)


async def test_deleting_a_user_with_a_kubespawner_6_state_deletes_the_legacy_claim(
    cluster: Any, make_spawner: Callable[..., KubeCacheSpawner]
) -> None:
    make_legacy_claim(cluster)
    spawner = make_spawner(USER, **storage(delete_pvc=True))
    spawner.load_state(dict(KUBESPAWNER_6_STATE))
    await spawner.delete_forever()
    assert claims(cluster) == set(), "the user's legacy claim was orphaned"


async def test_deleting_prefers_the_current_claim_name_like_start_does(
    cluster: Any, make_spawner: Callable[..., KubeCacheSpawner]
) -> None:
    make_legacy_claim(cluster)
    made = make_spawner(USER, **storage())
    await asyncio.wait_for(made.start(), 30)  # a fresh state: the 7.x name
    await made.stop(now=True)
    assert claims(cluster) == {LEGACY_CLAIM, SAFE_CLAIM}

    spawner = make_spawner(USER, **storage(delete_pvc=True))
    spawner.load_state(dict(KUBESPAWNER_6_STATE))
    await spawner.delete_forever()
    assert claims(cluster) == {LEGACY_CLAIM}


async def test_a_running_kubespawner_6_pod_polls_running_and_stops(
    cluster: Any, redis: aioredis.Redis, make_spawner: Callable[..., KubeCacheSpawner]
) -> None:
    # KubeSpawner 6's pod: escaped names in its labels, no hub.jupyter.org annotations
    labels = {
        "component": "singleuser-server",
        "app": "jupyterhub",
        "heritage": "jupyterhub",
        "hub.jupyter.org/username": "mock-40name",
        "hub.jupyter.org/servername": "",
    }
    cluster.store.create(
        "pods",
        NAMESPACE,
        {
            "metadata": {"name": LEGACY_POD, "labels": labels},
            "spec": {
                "containers": [
                    {
                        "name": "notebook",
                        "image": "quay.io/jupyter/base-notebook:latest",
                        "ports": [{"containerPort": 8888, "name": "notebook-port"}],
                    }
                ]
            },
        },
    )
    spawner = make_spawner(USER)
    spawner.load_state(dict(KUBESPAWNER_6_STATE))

    async def ready_record() -> PodRecord | None:
        key = pod_key(NAMESPACE, LEGACY_POD)
        raw = await redis.hget(Keys().pods, key)
        record = None if raw is None else decode_pod_record(raw, key=key)
        return record if record is not None and record["ready"] else None

    record = await wait_for(ready_record, timeout=20, message="the legacy pod running in the cache")
    assert spawner.pod_name == LEGACY_POD
    assert await spawner.poll() is None
    row = views.server_row(record, now_s=0)
    assert (row.user, row.server, row.pod) == ("mock-40name", "", LEGACY_POD)
    await spawner.stop(now=True)
    assert cluster.store.get("pods", NAMESPACE, LEGACY_POD) is None
    assert await spawner.poll() == 1
