"""Code written against KubeSpawner 7.1's Python API runs unchanged: subclasses, hooks, models.

Against kubesim, a real redis-server and a running cacher: what such code changes is what gets
created in the cluster.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes_asyncio.client import models as k8s

from kubecache.spawner import KubeCacheSpawner
from kubecache.spawner.spawner import SpawnError
from kubesim.resources import DEFAULT_TOLERATIONS
from tests.spawner.integration.conftest import NAMESPACE
from tests.spawner.support import mock_hub, mock_user

POD = "jupyter-alice"


def block_cloud_metadata() -> Any:
    """zero-to-jupyterhub's default init container, as its hub config builds it."""
    return k8s.V1Container(
        name="block-cloud-metadata",
        image="quay.io/jupyterhub/k8s-network-tools:4.0.0",
        command=["iptables", "-A", "OUTPUT", "-d", "169.254.169.254", "-j", "DROP"],
        security_context=k8s.V1SecurityContext(
            privileged=True, run_as_user=0, capabilities=k8s.V1Capabilities(add=["NET_ADMIN"])
        ),
        resources={},
    )


class LabellingSpawner(KubeCacheSpawner):
    """A subclass in the style of hub.extraConfig snippets: edits KubeSpawner's models."""

    async def get_pod_manifest(self) -> Any:
        pod = await super().get_pod_manifest()
        assert isinstance(pod, k8s.V1Pod)
        pod.metadata.labels["team"] = "blue"
        notebook = pod.spec.containers[0]
        notebook.env.append(k8s.V1EnvVar(name="FROM_SUBCLASS", value=notebook.env[0].name))
        return pod

    def get_pvc_manifest(self) -> Any:
        pvc = super().get_pvc_manifest()
        assert isinstance(pvc, k8s.V1PersistentVolumeClaim)
        pvc.metadata.annotations["backup"] = "daily"
        return pvc


async def test_a_subclass_overriding_the_manifest_methods_is_what_gets_created(
    cluster: Any, redis_server: Any
) -> None:
    spawner = LabellingSpawner(
        user=mock_user("alice"),
        hub=mock_hub(),
        redis_url=redis_server.url,
        namespace=NAMESPACE,
        image="quay.io/jupyter/base-notebook:latest",
        start_timeout=20,
        cache_stale_after=2.0,
        storage_pvc_ensure=True,
        storage_capacity="1Gi",
    )
    spawner.api_token = "token-alice"
    await asyncio.wait_for(spawner.start(), 30)
    pod = cluster.store.get("pods", NAMESPACE, POD)
    assert pod["metadata"]["labels"]["team"] == "blue"
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env["FROM_SUBCLASS"]  # the first variable's name, read through the model
    pvc = cluster.store.get("persistentvolumeclaims", NAMESPACE, "claim-alice")
    assert pvc["metadata"]["annotations"]["backup"] == "daily"
    await spawner.stop(now=True)


async def test_client_model_options_and_a_model_editing_hook_give_the_pod_kubespawner_would(
    cluster: Any, make_spawner: Callable[..., KubeCacheSpawner]
) -> None:
    seen: dict[str, Any] = {}

    def hook(spawner: KubeCacheSpawner, pod: Any) -> Any:
        seen["init"] = pod.spec.init_containers[0].name
        # KubeSpawner keeps the configured volume's insides as the dict it was given
        seen["claim"] = pod.spec.volumes[1].persistent_volume_claim["claimName"]
        pod.spec.tolerations.append(k8s.V1Toleration(key="added", operator="Exists"))
        return pod

    spawner = make_spawner(
        init_containers=[block_cloud_metadata()],
        volumes={
            "1-home": {"name": "home", "persistentVolumeClaim": {"claimName": "claim-{username}"}},
            "0-files": k8s.V1Volume(
                name="files", secret=k8s.V1SecretVolumeSource(secret_name="singleuser")
            ),
        },
        volume_mounts=[k8s.V1VolumeMount(name="home", mount_path="/home/jovyan")],
        tolerations=[k8s.V1Toleration(key="hub.jupyter.org/dedicated", value="user")],
        modify_pod_hook=hook,
    )
    await asyncio.wait_for(spawner.start(), 30)
    pod = cluster.store.get("pods", NAMESPACE, POD)
    assert seen == {"init": "block-cloud-metadata", "claim": "claim-alice"}
    init = pod["spec"]["initContainers"][0]
    assert init["securityContext"] == {
        "privileged": True,
        "runAsUser": 0,
        "capabilities": {"add": ["NET_ADMIN"]},
    }
    assert [v["name"] for v in pod["spec"]["volumes"]] == ["files", "home"]
    assert pod["spec"]["volumes"][0]["secret"]["secretName"] == "singleuser"
    # The API server's DefaultTolerationSeconds admission appends its two after ours.
    sent = [t for t in pod["spec"]["tolerations"] if t not in DEFAULT_TOLERATIONS]
    assert [t["key"] for t in sent][-2:] == [
        "hub.jupyter.org/dedicated",
        "added",
    ]
    await spawner.stop(now=True)


async def test_the_spawn_request_hooks_see_the_created_pod_or_the_failure(
    cluster: Any, make_spawner: Callable[..., KubeCacheSpawner]
) -> None:
    calls: list[tuple[str, Any]] = []

    async def posted(spawner: KubeCacheSpawner, pod: dict[str, Any]) -> None:
        calls.append(("post", pod["metadata"]["uid"]))

    def failed(spawner: KubeCacheSpawner, error: Exception) -> None:
        calls.append(("failed", str(error)))

    spawner = make_spawner(post_spawn_request_hook=posted, failed_spawn_request_hook=failed)
    await asyncio.wait_for(spawner.start(), 30)
    assert calls == [("post", spawner.pod_id)]
    await spawner.stop(now=True)

    calls.clear()
    refused = make_spawner(
        "bob",
        post_spawn_request_hook=posted,
        failed_spawn_request_hook=failed,
        extra_pod_config={"restartPolicy": "Sometimes"},  # the API server refuses the pod
    )
    with pytest.raises(SpawnError, match="restartPolicy"):
        await asyncio.wait_for(refused.start(), 30)
    assert len(calls) == 1 and calls[0][0] == "failed" and "restartPolicy" in calls[0][1]


@pytest.mark.parametrize("show", [True, False, lambda spawner: False])
async def test_show_first_default_event_decides_on_jupyterhubs_first_progress_event(
    cluster: Any, make_spawner: Callable[..., KubeCacheSpawner], show: Any
) -> None:
    spawner = make_spawner(show_first_default_event=show)
    spawner._spawn_pending = True  # what JupyterHub sets around start()
    start = spawner.start()
    events = [e async for e in spawner._generate_progress()]
    await asyncio.wait_for(start, 30)
    default = {"progress": 0, "message": "Server requested"}
    expect_default = show is True
    assert (events[0] == default) is expect_default
    assert default not in events[1:]
    assert any("Successfully assigned" in e.get("message", "") for e in events)
    await spawner.stop(now=True)
