"""One hub configuration, zero-to-jupyterhub-like (client-model init container, hook, dynamic
storage, a profile list, named servers), spawns the same pod and PVC under KubeSpawner 7.1
and under kubecache: only the server's API token differs.

Run under JupyterHub 5.x too: ``bash scripts/test-jupyterhub5.sh tests/e2e/<this file>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.support.hub_api import HubApi
from tests.e2e.support.stack import Cluster

pytestmark = pytest.mark.e2e

NAMESPACE = "e2e-same-pod"
Z2JH_STORAGE = Path(__file__).with_name("support") / "z2jh_storage_config.py"
#: fields the API server sets, different for every object it stores
SERVER_SET = {"uid", "resourceVersion", "creationTimestamp", "managedFields", "generation"}
#: a new token for every spawn
TOKENS = {"JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN"}
SERVERS = [("", {"profile": "small"}), ("gpu1", {"profile": "large", "flavour": "spicy"})]


def comparable(obj: Any) -> Any:
    """The object as its creator wrote it: no status, no server-set metadata, no token."""
    if isinstance(obj, dict):
        if obj.get("name") in TOKENS and "value" in obj:
            return {**obj, "value": "<token>"}
        return {
            key: comparable(value)
            for key, value in obj.items()
            if key not in SERVER_SET and key != "status"
        }
    if isinstance(obj, list):
        return [comparable(item) for item in obj]
    return obj


async def spawn_and_capture(
    cluster: Cluster, api: HubApi, server: str, options: dict[str, Any]
) -> tuple[Any, Any]:
    """Start a server of alice, read its pod and claim as stored, stop it again."""
    suffix = f"--{server}" if server else ""
    await api.start_server("alice", options, server)
    await cluster.wait(
        lambda: api.spawned("alice", server), timeout=90, message=f"alice's server {server!r}"
    )
    pod = cluster.pod(NAMESPACE, f"jupyter-alice{suffix}")
    claim = cluster.sim.store.get("persistentvolumeclaims", NAMESPACE, f"claim-alice{suffix}")
    assert pod is not None and claim is not None
    await api.stop_server("alice", server)
    await cluster.wait(
        lambda: api.server_gone("alice", server), timeout=60, message=f"{server!r} to stop"
    )
    return comparable(pod), comparable(claim)


async def test_kubespawner_and_kubecache_create_the_same_pod_and_claim(cluster: Cluster) -> None:
    proxy = await cluster.start_proxy()
    hub = cluster.hub(
        "hub",
        proxy,
        namespace=NAMESPACE,
        z2jh_like=True,
        extra_config=str(Z2JH_STORAGE),
        spawner_class="kubespawner.KubeSpawner",
    )
    await cluster.start_hub(hub)
    await hub.api.create_user("alice")
    by_kubespawner = [
        await spawn_and_capture(cluster, hub.api, server, options) for server, options in SERVERS
    ]

    await hub.replicas["hub"].stop()
    hub.settings.spawner_class = "kubecache"
    hub.save_settings()
    await cluster.start_hub(hub, "kubecache")
    by_kubecache = [
        await spawn_and_capture(cluster, hub.api, server, options) for server, options in SERVERS
    ]

    for (server, _), made_by_kubespawner, made_by_kubecache in zip(
        SERVERS, by_kubespawner, by_kubecache, strict=True
    ):
        assert made_by_kubecache == made_by_kubespawner, server
