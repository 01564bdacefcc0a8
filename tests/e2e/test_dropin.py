"""A real JupyterHub configured like zero-to-jupyterhub's hub (client-model init container, a
V1Pod-editing hook) spawns, serves and stops a server through kubecache."""

from __future__ import annotations

import jupyterhub
import pytest

from tests.e2e.support.stack import Cluster

pytestmark = pytest.mark.e2e

NAMESPACE = "e2e-dropin"


async def test_a_z2jh_like_hub_config_with_client_models_spawns_serves_and_stops(
    cluster: Cluster,
) -> None:
    proxy = await cluster.start_proxy()
    hub = cluster.hub("hub", proxy, namespace=NAMESPACE, z2jh_like=True)
    await cluster.start_hub(hub)
    api = hub.api
    # the hub under test is this environment's JupyterHub (5.x in scripts/test-jupyterhub5.sh)
    assert (await api.request("GET", "/"))["version"] == jupyterhub.__version__

    await api.create_user("alice")
    assert await api.start_server("alice", {"profile": "small"}) == 202
    events = [event async for event in api.progress("alice")]
    assert events[-1].get("ready") is True, events

    pod = cluster.pod(NAMESPACE, "jupyter-alice")
    assert pod is not None
    init = pod["spec"]["initContainers"][0]
    assert init["name"] == "block-cloud-metadata"
    assert init["securityContext"] == {
        "privileged": True,
        "runAsUser": 0,
        "capabilities": {"add": ["NET_ADMIN"]},
    }
    assert pod["metadata"]["labels"]["e2e/init"] == "block-cloud-metadata"  # modify_pod_hook
    assert pod["metadata"]["labels"]["hub.jupyter.org/network-access-hub"] == "true"
    # z2jh's two, then the two the API server's DefaultTolerationSeconds admission appends.
    assert [t["key"] for t in pod["spec"]["tolerations"]] == [
        "hub.jupyter.org/dedicated",
        "hub.jupyter.org_dedicated",
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ]

    assert await api.server_ready("alice")
    status, body = await api.get_through_proxy("/user/alice/api/status")
    assert status == 200, body

    await api.stop_server("alice")
    await cluster.wait(
        lambda: api.server_gone("alice"), timeout=60, message="the hub to report alice stopped"
    )
    assert cluster.pod(NAMESPACE, "jupyter-alice") is None
