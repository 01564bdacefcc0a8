"""Pod status rendering and phase rules, without a store."""

from __future__ import annotations

from typing import Any

from kubesim.pod_status import ContainerRun, compute_phase, qos_class, render_status

T0, T1, T2 = "2026-01-01T00:00:00Z", "2026-01-01T00:00:05Z", "2026-01-01T00:00:09Z"


def manifest(restart_policy: str = "Always", **resources: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "notebook", "image": "jupyterhub/singleuser:4"}
    if resources:
        container["resources"] = resources
    return {
        "metadata": {"name": "jupyter-alice", "namespace": "jhub", "uid": "u1"},
        "spec": {"containers": [container], "restartPolicy": restart_policy},
    }


def test_a_creating_container_is_pending_with_unready_conditions() -> None:
    run = ContainerRun("notebook", "jupyterhub/singleuser:4")
    status = render_status(
        manifest(),
        init_runs=[],
        runs=[run],
        pod_ip="127.1.2.3",
        host_ip="127.0.0.1",
        start_time=T0,
        now=T0,
    )
    assert status["phase"] == "Pending"
    assert status["containerStatuses"][0]["state"] == {"waiting": {"reason": "ContainerCreating"}}
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Ready"]["status"] == "False"
    assert conditions["Ready"]["reason"] == "ContainersNotReady"
    assert conditions["Ready"]["message"] == "containers with unready status: [notebook]"
    assert conditions["Initialized"]["status"] == "True"
    assert status["podIP"] == "127.1.2.3" and status["podIPs"] == [{"ip": "127.1.2.3"}]
    assert status["qosClass"] == "BestEffort"


def test_ready_keeps_transition_times_of_unchanged_conditions() -> None:
    pod = manifest()
    run = ContainerRun("notebook", "img")
    pod["status"] = render_status(
        pod,
        init_runs=[],
        runs=[run],
        pod_ip="127.1.1.1",
        host_ip="127.0.0.1",
        start_time=T0,
        now=T0,
    )
    run.run(now=T1)
    run.ready = True
    status = render_status(
        pod,
        init_runs=[],
        runs=[run],
        pod_ip="127.1.1.1",
        host_ip="127.0.0.1",
        start_time=T0,
        now=T2,
    )
    conditions = {c["type"]: c for c in status["conditions"]}
    assert status["phase"] == "Running"
    assert conditions["Ready"] == {
        "type": "Ready",
        "status": "True",
        "lastProbeTime": None,
        "lastTransitionTime": T2,
    }
    assert conditions["Initialized"]["lastTransitionTime"] == T0
    container = status["containerStatuses"][0]
    assert container["state"] == {"running": {"startedAt": T1}}
    assert container["ready"] and container["started"]
    assert container["containerID"].startswith("containerd://")
    assert container["imageID"].startswith("docker.io/library/img@sha256:")


def test_a_crashed_container_waits_in_crash_loop_with_its_last_state() -> None:
    run = ContainerRun("notebook", "img")
    run.run(now=T0)
    run.terminate(exit_code=3, now=T1)
    run.wait("CrashLoopBackOff", "back-off 10s restarting failed container=notebook")
    state = run.to_status()
    assert state["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert state["lastState"]["terminated"]["exitCode"] == 3
    assert state["lastState"]["terminated"]["reason"] == "Error"
    assert compute_phase("Always", [], [run]) == "Running"
    run.run(now=T2)
    assert run.restart_count == 1


def test_phase_follows_the_restart_policy_after_exit() -> None:
    ok, bad = ContainerRun("a", "i"), ContainerRun("b", "i")
    for run, code in ((ok, 0), (bad, 1)):
        run.run(now=T0)
        run.terminate(exit_code=code, now=T1)
    assert compute_phase("Never", [], [ok]) == "Succeeded"
    assert compute_phase("Never", [], [ok, bad]) == "Failed"
    assert compute_phase("OnFailure", [], [ok]) == "Succeeded"
    assert compute_phase("OnFailure", [], [bad]) == "Running"
    assert compute_phase("Always", [], [ok]) == "Running"


def test_an_unfinished_init_container_keeps_the_pod_pending() -> None:
    init = ContainerRun("setup", "i", init=True)
    init.run(now=T0)
    main = ContainerRun("notebook", "i", reason="PodInitializing")
    status = render_status(
        manifest(),
        init_runs=[init],
        runs=[main],
        pod_ip=None,
        host_ip="127.0.0.1",
        start_time=T0,
        now=T0,
    )
    conditions = {c["type"]: c for c in status["conditions"]}
    assert status["phase"] == "Pending"
    assert conditions["Initialized"]["message"] == "containers with incomplete status: [setup]"
    assert conditions["PodReadyToStartContainers"]["status"] == "False"
    assert "podIP" not in status
    init.terminate(exit_code=1, now=T1)
    assert compute_phase("Never", [init], [main]) == "Failed"


def test_oom_killed_is_reported_as_its_reason() -> None:
    run = ContainerRun("notebook", "i")
    run.run(now=T0)
    run.terminate(exit_code=137, now=T1, reason="OOMKilled")
    assert run.to_status()["state"]["terminated"]["reason"] == "OOMKilled"


def test_qos_classes() -> None:
    assert qos_class(manifest()) == "BestEffort"
    assert qos_class(manifest(requests={"cpu": "1"})) == "Burstable"
    assert qos_class(manifest(limits={"cpu": "1", "memory": "1Gi"})) == "Guaranteed"
    assert (
        qos_class(
            manifest(requests={"cpu": "1", "memory": "1Gi"}, limits={"cpu": "2", "memory": "1Gi"})
        )
        == "Burstable"
    )
