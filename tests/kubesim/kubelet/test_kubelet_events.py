"""Event objects shaped as the kubelet and kube-scheduler write them."""

from __future__ import annotations

from datetime import UTC, datetime

from kubesim import kubelet_events as ev

POD = {
    "metadata": {"name": "jupyter-alice", "namespace": "jhub", "uid": "abc", "resourceVersion": "7"}
}
NOW = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def test_a_kubelet_event_names_the_container_and_its_node() -> None:
    event = ev.kubelet_event(
        POD,
        node="node-1",
        reason="Pulling",
        message=ev.pulling_message("a:1"),
        field_path=ev.container_field_path("notebook"),
        now=NOW,
    )
    assert event["involvedObject"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": "jupyter-alice",
        "namespace": "jhub",
        "resourceVersion": "7",
        "uid": "abc",
        "fieldPath": "spec.containers{notebook}",
    }
    assert event["source"] == {"component": "kubelet", "host": "node-1"}
    assert event["reportingComponent"] == "kubelet" and event["reportingInstance"] == "node-1"
    assert event["firstTimestamp"] == event["lastTimestamp"] == "2026-01-02T03:04:05Z"
    assert event["count"] == 1 and event["eventTime"] is None
    assert event["message"] == 'Pulling image "a:1"'
    name, _, suffix = event["metadata"]["name"].partition(".")
    assert name == "jupyter-alice" and int(suffix, 16) > 0


def test_event_names_are_unique_even_when_made_in_the_same_instant() -> None:
    names = {ev.event_name("p") for _ in range(1000)}
    assert len(names) == 1000


def test_a_repeat_bumps_count_and_last_timestamp() -> None:
    event = ev.kubelet_event(POD, node="n", reason="BackOff", message="m", type_="Warning", now=NOW)
    later = datetime(2026, 1, 2, 3, 5, 0, tzinfo=UTC)
    ev.bump_count(event, now=later)
    assert event["count"] == 2
    assert event["firstTimestamp"] == "2026-01-02T03:04:05Z"
    assert event["lastTimestamp"] == "2026-01-02T03:05:00Z"


def test_a_scheduler_event_has_event_time_and_a_series_on_repeat() -> None:
    event = ev.scheduler_event(
        POD, reason="FailedScheduling", message="0/3", action="Scheduling", type_="Warning", now=NOW
    )
    assert event["eventTime"] == "2026-01-02T03:04:05.678901Z"
    assert event["firstTimestamp"] is None and event["lastTimestamp"] is None
    assert event["source"] == {} and event["reportingComponent"] == "default-scheduler"
    assert "fieldPath" not in event["involvedObject"] and "count" not in event
    ev.bump_series(event, now=NOW)
    ev.bump_series(event, now=NOW)
    assert event["series"] == {"count": 3, "lastObservedTime": "2026-01-02T03:04:05.678901Z"}


def test_messages_use_current_kubernetes_wording() -> None:
    assert (
        ev.scheduled_message(POD, "node-1") == "Successfully assigned jhub/jupyter-alice to node-1"
    )
    assert ev.pulled_message("a:1", seconds=1.2, waited=1.2, size=123) == (
        'Successfully pulled image "a:1" in 1.2s (1.2s including waiting). Image size: 123 bytes.'
    )
    assert ev.already_present_message("a:1") == 'Container image "a:1" already present on machine'
    assert ev.created_message("notebook") == "Created container: notebook"
    assert ev.started_message("notebook") == "Started container notebook"
    assert ev.killing_message("notebook") == "Stopping container notebook"
    assert ev.back_off_restart_message("notebook", POD) == (
        "Back-off restarting failed container notebook in pod jupyter-alice_jhub(abc)"
    )
    assert ev.failed_pull_message("x:doesnotexist").startswith(
        'Failed to pull image "x:doesnotexist": rpc error: code = NotFound'
    )
    assert ev.back_off_pull_message("x:1") == 'Back-off pulling image "x:1"'


def test_durations_print_like_go() -> None:
    assert ev.go_duration(0.5234) == "523ms"
    assert ev.go_duration(1.2) == "1.2s"
    assert ev.go_duration(2.0) == "2s"
    assert ev.go_duration(63.5) == "1m3.5s"


def test_image_names_are_qualified_like_containerd_does() -> None:
    assert ev.qualified_image("python") == "docker.io/library/python:latest"
    assert ev.qualified_image("jupyterhub/singleuser:4") == "docker.io/jupyterhub/singleuser:4"
    assert (
        ev.qualified_image("quay.io/jupyter/base-notebook:x") == "quay.io/jupyter/base-notebook:x"
    )
