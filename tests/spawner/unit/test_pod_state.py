"""Interpreting cached pod records: running, failed, exited — KubeSpawner's rules."""

from __future__ import annotations

from typing import Any

import pytest

from kubecache.contract import lenient_pod_record
from kubecache.spawner import pod_state
from tests.spawner.unit.records import container, event, pod, running


def test_a_running_ready_pod_with_an_ip_is_running() -> None:
    assert pod_state.is_running(running())


def test_a_pod_without_ip_is_not_running() -> None:
    record = running()
    del record["ip"]
    assert not pod_state.is_running(record)


def test_a_terminating_pod_is_not_running() -> None:
    assert not pod_state.is_running(running(deleted=1714564900))


def test_a_pod_with_an_unready_container_is_not_running() -> None:
    record = running(
        containers=[container(ready=True, state="running"), container("sidecar", state="running")]
    )
    assert not pod_state.is_running(record)


def test_a_pending_pod_and_no_pod_are_not_running() -> None:
    assert not pod_state.is_running(pod("Pending"))
    assert not pod_state.is_running(None)


def test_no_pod_polls_as_exit_status_1() -> None:
    assert pod_state.exit_status(None) == 1


def test_pending_and_running_pods_poll_as_running() -> None:
    assert pod_state.exit_status(pod("Pending")) is None
    assert pod_state.exit_status(running()) is None
    assert pod_state.exit_status(running(deleted=1714564900)) is None


def test_a_terminated_notebook_container_polls_as_its_exit_code() -> None:
    record = pod("Running", containers=[container(state="terminated", exit_code=3)])
    assert pod_state.exit_status(record) == 3
    record = pod("Succeeded", containers=[container(state="terminated", exit_code=0)])
    assert pod_state.exit_status(record) == 0


def test_a_terminated_notebook_container_without_an_exit_code_polls_as_failed() -> None:
    record = pod("Failed", containers=[container(state="terminated")])
    assert pod_state.exit_status(record) == 1
    why = pod_state.start_failure(record) or ""
    assert why.endswith("the notebook container exited") and "None" not in why


def test_a_terminated_sidecar_does_not_stop_the_server() -> None:
    record = pod(
        "Running",
        containers=[
            container(ready=True, state="running"),
            container("sidecar", state="terminated", exit_code=2),
        ],
    )
    assert pod_state.exit_status(record) is None


def test_a_failed_pod_without_container_statuses_polls_as_stopped() -> None:
    assert pod_state.exit_status(pod("Failed", reason="Evicted")) == 1
    assert pod_state.exit_status(pod("Succeeded")) == 0


def test_a_crash_looping_container_fails_the_start_with_its_exit_code() -> None:
    record = pod(
        "Running",
        containers=[
            container(reason="CrashLoopBackOff", exit_code=1, message="back-off 10s restarting")
        ],
    )
    why = pod_state.start_failure(record)
    assert why is not None
    assert "CrashLoopBackOff" in why and "exit code 1" in why and "jhub/jupyter-alice" in why


def test_an_image_pull_back_off_fails_the_start() -> None:
    record = pod(
        "Pending",
        containers=[container(reason="ImagePullBackOff", message='Back-off pulling image "nope"')],
    )
    why = pod_state.start_failure(record)
    assert why is not None and 'Back-off pulling image "nope"' in why


def test_the_failure_reasons_are_configurable() -> None:
    record = pod("Pending", containers=[container(reason="ImagePullBackOff")])
    assert pod_state.start_failure(record, failure_reasons=()) is None


def test_an_unschedulable_pod_is_not_a_failure_yet() -> None:
    record = pod("Pending", unschedulable="0/3 nodes are available: 3 Insufficient cpu.")
    assert pod_state.start_failure(record) is None
    assert "Insufficient cpu" in (pod_state.pending_reason(record) or "")


def test_a_failed_or_deleted_pod_fails_the_start() -> None:
    failed = pod("Failed", reason="Evicted", message="low on memory")
    assert "Evicted; low on memory" in (pod_state.start_failure(failed) or "")
    assert "deleted" in (pod_state.start_failure(pod("Pending", deleted=1)) or "")
    exited = pod("Succeeded", containers=[container(state="terminated", exit_code=0)])
    assert "exited with code 0" in (pod_state.start_failure(exited) or "")


def test_warning_messages_are_the_last_distinct_warnings() -> None:
    events = [
        event("e1", "Successfully assigned", type="Normal"),
        event("e2", "0/3 nodes are available: 3 Insufficient cpu.", type="Warning"),
        event("e3", "other warning", type="Warning"),
        event("e2", "0/3 nodes are available: 3 Insufficient cpu.", type="Warning", rv=5),
    ]
    assert pod_state.warning_messages(events) == [
        "other warning",
        "0/3 nodes are available: 3 Insufficient cpu.",
    ]
    assert pod_state.warning_messages(events, limit=1) == [
        "0/3 nodes are available: 3 Insufficient cpu."
    ]


def test_a_pod_read_from_the_api_reads_like_its_record() -> None:
    raw = {
        "metadata": {
            "name": "jupyter-alice",
            "namespace": "jhub",
            "uid": "u",
            "resourceVersion": "7",
        },
        "spec": {"containers": [{"name": "notebook"}]},
        "status": {
            "phase": "Running",
            "podIP": "10.0.0.7",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {"name": "notebook", "ready": True, "restartCount": 0, "state": {"running": {}}}
            ],
        },
    }
    record = lenient_pod_record(raw)
    assert pod_state.is_running(record)
    raw["status"]["containerStatuses"][0]["state"] = {"terminated": {"exitCode": 137}}
    assert pod_state.exit_status(lenient_pod_record(raw)) == 137


def test_hooks_get_a_pod_shaped_dict_with_the_notebook_port() -> None:
    shaped = pod_state.pod_like(running(), port=8888)
    assert shaped["status"]["podIP"] == "10.0.0.7"
    assert shaped["spec"]["containers"][0]["ports"] == [
        {"name": "notebook-port", "containerPort": 8888}
    ]
    assert shaped["metadata"]["name"] == "jupyter-alice"


def test_a_pod_read_from_the_api_tells_why_a_start_fails_as_the_cache_would() -> None:
    raw: dict[str, Any] = {
        "metadata": {
            "name": "jupyter-alice",
            "namespace": "jhub",
            "uid": "u",
            "resourceVersion": "7",
        },
        "spec": {"containers": [{"name": "notebook"}], "nodeName": "node-1"},
        "status": {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/3 nodes are available",
                }
            ],
            "containerStatuses": [
                {
                    "name": "notebook",
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
                    "lastState": {"terminated": {"exitCode": 2}},
                }
            ],
        },
    }
    record = lenient_pod_record(raw)
    why = pod_state.start_failure(record)
    assert why == (
        "pod jhub/jupyter-alice: container notebook is in CrashLoopBackOff "
        "(last exit code 2): back-off"
    )
    assert pod_state.pending_reason(record) == "unschedulable: 0/3 nodes are available"
    assert record["rv"] == 7 and record["node"] == "node-1"


@pytest.mark.parametrize(
    "raw",
    [
        {},
        {"metadata": None, "spec": [], "status": "x"},
        {"spec": {"containers": [None, {"name": "notebook"}]}, "status": {"conditions": [1]}},
        {
            "status": {
                "containerStatuses": [
                    {"name": "notebook", "restartCount": "many", "state": {"terminated": None}}
                ]
            },
            "spec": {"containers": [{"name": "notebook"}]},
            "metadata": {"resourceVersion": "x"},
        },
    ],
)
def test_a_malformed_pod_from_the_api_reads_without_raising(raw: dict[str, Any]) -> None:
    record = lenient_pod_record(raw)
    assert not pod_state.is_running(record)


def test_a_failure_message_says_each_warning_once() -> None:
    unschedulable = "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."
    why = f"pod jhub/p did not start in 30 seconds (unschedulable: {unschedulable})"
    assert pod_state.with_warnings(why, [unschedulable]) == why
    assert pod_state.with_warnings(why, [unschedulable, "Back-off pulling image"]) == (
        f"{why}. Last warnings: Back-off pulling image"
    )
    assert pod_state.with_warnings("failed", []) == "failed"
