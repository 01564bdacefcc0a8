"""The API server with the simulated kubelets: pod logs (process mode) and deletecollection."""

from __future__ import annotations

import sys

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from kubesim.testing import KubeSim, running_kubesim
from tests.kubesim.conftest import pod_manifest
from tests.support.waiting import wait_for

PRINTER = "print('hello from the pod', flush=True); import time; time.sleep(60)"


async def test_pod_logs_come_from_the_process_kubelet() -> None:
    async with running_kubesim(kubelet="process") as sim, sim.api_client() as api:
        core = client.CoreV1Api(api)
        pod = pod_manifest("echo")
        pod["spec"]["restartPolicy"] = "Never"
        pod["spec"]["containers"][0]["command"] = [sys.executable, "-c", PRINTER]
        await core.create_namespaced_pod("default", pod)

        async def logged() -> str:
            try:
                text: str = await core.read_namespaced_pod_log("echo", "default")
            except ApiException as err:
                assert err.status == 400  # the container has not started yet
                return ""
            return text

        assert await wait_for(logged, timeout=30, message="pod log") == "hello from the pod\n"
        tail = await core.read_namespaced_pod_log(
            "echo", "default", container="notebook", tail_lines=1
        )
        assert tail == "hello from the pod\n"
        await core.delete_namespaced_pod("echo", "default", grace_period_seconds=1)


async def test_logs_of_a_missing_pod_are_404(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        await core.read_namespaced_pod_log("missing", "default")
    assert caught.value.status == 404


async def test_deletecollection_deletes_the_selected_objects(kubesim: KubeSim) -> None:
    async with kubesim.api_client() as api:
        core = client.CoreV1Api(api)
        for name, app in (("a", "x"), ("b", "x"), ("c", "y")):
            await core.create_namespaced_config_map(
                "default", {"metadata": {"name": name, "labels": {"app": app}}}
            )
        await core.delete_collection_namespaced_config_map("default", label_selector="app=x")
        left = await core.list_namespaced_config_map("default")
        assert [c.metadata.name for c in left.items] == ["c"]
