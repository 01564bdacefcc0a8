"""The fake kubelet's pod lifecycle against a real ObjectStore."""

from __future__ import annotations

import asyncio
from typing import Any

from kubesim.cluster import NodeSpec
from tests.kubesim.kubelet.conftest import Cluster, make_cluster
from tests.support.waiting import wait_for

IMAGE = "jupyterhub/singleuser:4"


def phase(cluster: Cluster, name: str = "jupyter-alice") -> str | None:
    pod = cluster.pod(name)
    return pod["status"].get("phase") if pod else None


def ready(cluster: Cluster, name: str = "jupyter-alice") -> bool:
    return cluster.condition("Ready", name).get("status") == "True"


async def test_a_pod_runs_through_the_real_event_sequence(cluster: Cluster) -> None:
    cluster.create_pod()
    await wait_for(lambda: ready(cluster), message="the pod ready")
    assert cluster.reasons() == ["Scheduled", "Pulling", "Pulled", "Created", "Started"]
    pulling = cluster.event("Pulling")
    assert pulling is not None
    pod = cluster.pod()
    assert pod is not None
    assert pulling["involvedObject"]["fieldPath"] == "spec.containers{notebook}"
    assert pulling["involvedObject"]["uid"] == pod["metadata"]["uid"]
    assert pulling["involvedObject"]["kind"] == "Pod"
    assert pulling["source"] == {"component": "kubelet", "host": pod["spec"]["nodeName"]}
    assert pulling["message"] == f'Pulling image "{IMAGE}"'
    pulled = cluster.event("Pulled")
    assert pulled is not None and pulled["message"].startswith(
        f'Successfully pulled image "{IMAGE}" in '
    )
    created, started = cluster.event("Created"), cluster.event("Started")
    assert created is not None and created["message"] == "Created container: notebook"
    assert started is not None and started["message"] == "Started container notebook"

    status = pod["status"]
    assert status["phase"] == "Running"
    assert status["podIP"].startswith("127.") and status["podIP"] != "127.0.0.1"
    assert status["hostIP"] == "127.0.0.1" and status["startTime"]
    container = status["containerStatuses"][0]
    assert container["ready"] and container["started"] and "running" in container["state"]
    assert container["containerID"].startswith("containerd://")


async def test_an_image_already_on_the_node_is_not_pulled_again(cluster: Cluster) -> None:
    cluster.create_pod("first", nodeName="node-1")
    await wait_for(lambda: ready(cluster, "first"), message="first ready")
    cluster.create_pod("second", nodeName="node-1")
    await wait_for(lambda: ready(cluster, "second"), message="second ready")
    assert cluster.reasons("second") == ["Pulled", "Created", "Started"]
    pulled = cluster.event("Pulled", "second")
    assert pulled is not None
    assert pulled["message"] == f'Container image "{IMAGE}" already present on machine'


async def test_init_containers_run_to_completion_first(cluster: Cluster) -> None:
    cluster.create_pod(initContainers=[{"name": "block-metadata", "image": "network-tools:1"}])
    await wait_for(lambda: ready(cluster), message="the pod ready")
    events = cluster.events()
    paths = [(e["reason"], e["involvedObject"].get("fieldPath")) for e in events[1:]]
    init, main = "spec.initContainers{block-metadata}", "spec.containers{notebook}"
    assert paths == [
        ("Pulling", init),
        ("Pulled", init),
        ("Created", init),
        ("Started", init),
        ("Pulling", main),
        ("Pulled", main),
        ("Created", main),
        ("Started", main),
    ]
    pod = cluster.pod()
    assert pod is not None
    init_status = pod["status"]["initContainerStatuses"][0]
    assert init_status["state"]["terminated"]["reason"] == "Completed"
    assert cluster.condition("Initialized")["status"] == "True"


async def test_a_failing_image_pull_backs_off(cluster: Cluster) -> None:
    cluster.create_pod(image="jupyterhub/singleuser:doesnotexist")
    await wait_for(
        lambda: (cluster.event("BackOff") or {}).get("count", 0) >= 2,
        message="repeated pull back-off",
    )
    messages = [(e["type"], e["reason"], e["message"]) for e in cluster.events()]
    image = "jupyterhub/singleuser:doesnotexist"
    assert ("Warning", "Failed", "Error: ErrImagePull") in messages
    assert ("Warning", "Failed", "Error: ImagePullBackOff") in messages
    assert ("Normal", "BackOff", f'Back-off pulling image "{image}"') in messages
    assert any(m.startswith(f'Failed to pull image "{image}": ') for _, _, m in messages)
    pulling = [e for e in cluster.events() if e["reason"] == "Pulling"]
    assert len(pulling) == 1 and pulling[0]["count"] >= 2  # one object, counted
    waiting = cluster.container_status()["state"]["waiting"]
    assert waiting["reason"] in ("ErrImagePull", "ImagePullBackOff")
    assert phase(cluster) == "Pending"


async def test_the_pull_fails_annotation_fails_any_image(cluster: Cluster) -> None:
    cluster.create_pod(annotations={"kubesim.dev/pull-fails": "true"})
    await wait_for(
        lambda: (
            cluster.container_status().get("state", {}).get("waiting", {}).get("reason")
            == "ImagePullBackOff"
        ),
        message="ImagePullBackOff",
    )


async def test_a_crash_loop_counts_back_offs_on_one_event(cluster: Cluster) -> None:
    cluster.create_pod(annotations={"kubesim.dev/exit-code": "3", "kubesim.dev/exit-after": "0.01"})
    await wait_for(
        lambda: (cluster.event("BackOff") or {}).get("count", 0) >= 3,
        message="BackOff counted three times",
    )
    back_offs = [e for e in cluster.events() if e["reason"] == "BackOff"]
    assert len(back_offs) == 1
    pod = cluster.pod()
    assert pod is not None
    uid = pod["metadata"]["uid"]
    assert back_offs[0]["type"] == "Warning"
    assert back_offs[0]["message"] == (
        f"Back-off restarting failed container notebook in pod jupyter-alice_jhub({uid})"
    )
    assert back_offs[0]["firstTimestamp"] <= back_offs[0]["lastTimestamp"]
    status = cluster.container_status()
    assert status["restartCount"] >= 3
    assert status["lastState"]["terminated"]["exitCode"] == 3
    assert status["lastState"]["terminated"]["reason"] == "Error"
    await wait_for(
        lambda: (
            cluster.container_status()["state"].get("waiting", {}).get("reason")
            == "CrashLoopBackOff"
        ),
        message="CrashLoopBackOff",
    )
    assert phase(cluster) == "Running"


async def test_a_scripted_exit_with_restart_policy_never_fails_the_pod(cluster: Cluster) -> None:
    cluster.create_pod(
        restartPolicy="Never",
        annotations={"kubesim.dev/exit-code": "3", "kubesim.dev/exit-after": "0.02"},
    )
    await wait_for(lambda: phase(cluster) == "Failed", message="phase Failed")
    terminated = cluster.container_status()["state"]["terminated"]
    assert terminated["exitCode"] == 3 and terminated["reason"] == "Error"
    assert terminated["startedAt"] and terminated["finishedAt"]


async def test_a_clean_exit_with_on_failure_succeeds(cluster: Cluster) -> None:
    cluster.create_pod(restartPolicy="OnFailure", annotations={"kubesim.dev/exit-after": "0.02"})
    await wait_for(lambda: phase(cluster) == "Succeeded", message="phase Succeeded")
    assert cluster.container_status()["state"]["terminated"]["reason"] == "Completed"
    assert cluster.condition("Ready")["reason"] == "PodCompleted"


async def test_oom_kill_is_reported_with_exit_137(cluster: Cluster) -> None:
    cluster.create_pod(restartPolicy="Never", annotations={"kubesim.dev/oom-after": "0.02"})
    await wait_for(lambda: phase(cluster) == "Failed", message="phase Failed")
    terminated = cluster.container_status()["state"]["terminated"]
    assert terminated == {**terminated, "exitCode": 137, "reason": "OOMKilled"}


async def test_readiness_can_be_delayed_or_withheld(cluster: Cluster) -> None:
    cluster.create_pod("slow", annotations={"kubesim.dev/ready-after": "0.1"})
    cluster.create_pod("never", annotations={"kubesim.dev/never-ready": "true"})
    await wait_for(lambda: cluster.container_status("slow").get("started"), message="slow started")
    await wait_for(lambda: ready(cluster, "slow"), message="slow ready")
    await wait_for(
        lambda: cluster.container_status("never").get("started"), message="never started"
    )
    assert phase(cluster, "never") == "Running"
    assert not ready(cluster, "never")
    assert cluster.condition("Ready", "never")["message"] == (
        "containers with unready status: [notebook]"
    )


async def test_graceful_deletion_stops_the_pod_then_removes_it(cluster: Cluster) -> None:
    cluster.create_pod()
    await wait_for(lambda: ready(cluster), message="the pod ready")
    pod, removed_now = cluster.store.delete("pods", "jhub", "jupyter-alice")
    assert not removed_now and pod["metadata"]["deletionTimestamp"]
    await wait_for(lambda: cluster.pod() is None, message="the pod removed")
    killing = cluster.event("Killing")
    assert killing is not None and killing["message"] == "Stopping container notebook"
    assert killing["involvedObject"]["fieldPath"] == "spec.containers{notebook}"
    assert len(cluster.kubelet.addresses) == 0


async def test_a_container_ignoring_sigterm_takes_the_grace_period() -> None:
    cluster = await make_cluster([NodeSpec("node-1")])
    try:
        cluster.create_pod(annotations={"kubesim.dev/ignore-sigterm": "true"})
        await wait_for(lambda: ready(cluster), message="the pod ready")
        seen: list[dict[str, Any]] = []
        cluster.store.add_listener(
            lambda kind, resource, obj: (
                seen.append(obj) if resource == "pods" and kind == "MODIFIED" else None
            )
        )
        cluster.store.delete("pods", "jhub", "jupyter-alice", grace_period_seconds=1)
        await wait_for(lambda: cluster.pod() is None, timeout=5, message="removed after grace")
        final = seen[-1]["status"]
        assert final["phase"] == "Failed"
        assert final["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 137
    finally:
        await cluster.kubelet.close()


async def test_sidecars_start_after_the_notebook(cluster: Cluster) -> None:
    cluster.create_pod(containers=[{"name": "sidecar", "image": "busybox:1"}])
    await wait_for(lambda: ready(cluster), message="the pod ready")
    started = [
        e["involvedObject"]["fieldPath"] for e in cluster.events() if e["reason"] == "Started"
    ]
    assert started == ["spec.containers{notebook}", "spec.containers{sidecar}"]


async def test_close_stops_all_pod_work(cluster: Cluster) -> None:
    for index in range(5):
        cluster.create_pod(f"p{index}", annotations={"kubesim.dev/exit-after": "0.01"})
    await wait_for(lambda: cluster.event("BackOff", "p4"), message="crash loops running")
    await cluster.kubelet.close()
    version = cluster.store.resource_version
    for _ in range(20):  # let anything still scheduled run: nothing may write after close()
        await asyncio.sleep(0)
    assert cluster.store.resource_version == version
    assert not cluster.kubelet._tasks


async def test_a_failed_init_container_fails_a_never_restarting_pod(cluster: Cluster) -> None:
    cluster.create_pod(
        restartPolicy="Never",
        annotations={"kubesim.dev/init-exit-code": "2"},
        initContainers=[{"name": "setup", "image": "busybox:1"}],
    )
    await wait_for(lambda: phase(cluster) == "Failed", message="phase Failed")
    pod = cluster.pod()
    assert pod is not None
    init = pod["status"]["initContainerStatuses"][0]["state"]["terminated"]
    assert (init["exitCode"], init["reason"]) == (2, "Error")
    assert pod["status"]["containerStatuses"][0]["state"] == {
        "waiting": {"reason": "PodInitializing"}
    }
    assert "spec.containers{notebook}" not in [
        e["involvedObject"].get("fieldPath") for e in cluster.events()
    ]


async def test_a_failing_init_container_is_retried_with_back_off(cluster: Cluster) -> None:
    cluster.create_pod(
        annotations={"kubesim.dev/init-exit-code": "1"},
        initContainers=[{"name": "setup", "image": "busybox:1"}],
    )
    await wait_for(
        lambda: (cluster.event("BackOff") or {}).get("count", 0) >= 2,
        message="init back-off counted",
    )
    back_off = cluster.event("BackOff")
    assert back_off is not None
    assert back_off["involvedObject"]["fieldPath"] == "spec.initContainers{setup}"
    assert phase(cluster) == "Pending"
    assert cluster.condition("Initialized")["reason"] == "ContainersNotInitialized"
