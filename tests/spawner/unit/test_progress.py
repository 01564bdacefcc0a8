"""Progress events read like KubeSpawner's: "{timestamp} [{type}] {message}", approaching 90."""

from __future__ import annotations

from kubecache.spawner.progress import (
    ProgressTracker,
    SlowSpawnTimer,
    event_message,
    slow_spawn_event,
)
from tests.spawner.unit.records import event


def test_an_event_message_has_timestamp_type_and_message() -> None:
    assert (
        event_message(event("e1", "Successfully assigned jhub/jupyter-alice to node-1"))
        == "2024-05-01T12:00:01Z [Normal] Successfully assigned jhub/jupyter-alice to node-1"
    )


def test_progress_approaches_90_like_kubespawner() -> None:
    tracker = ProgressTracker(namespace="jhub", pod_name="jupyter-alice")
    shown = tracker.new_events([event(f"e{i}", f"m{i}") for i in range(12)])
    assert [e["progress"] for e in shown] == [30, 50, 63, 72, 78, 82, 84, 86, 87, 88, 88, 89]


def test_each_event_is_shown_once_even_when_updated() -> None:
    tracker = ProgressTracker(namespace="jhub", pod_name="jupyter-alice")
    assert len(tracker.new_events([event("e1", "pulling")])) == 1
    again = tracker.new_events([event("e1", "pulling", count=2, rv=9), event("e2", "pulled")])
    assert [e["message"].split("] ")[1] for e in again] == ["pulled"]


def test_the_raw_event_is_shaped_like_a_kubernetes_event() -> None:
    tracker = ProgressTracker(namespace="jhub", pod_name="jupyter-alice")
    [shown] = tracker.new_events([event("e1", "m", type="Warning", reason="FailedScheduling")])
    raw = shown["raw_event"]
    assert raw["involvedObject"]["name"] == "jupyter-alice"
    assert raw["reason"] == "FailedScheduling" and raw["type"] == "Warning"
    assert raw["lastTimestamp"] == "2024-05-01T12:00:01Z"
    assert set(shown) == {"progress", "message", "raw_event"}


def test_the_slow_spawn_message_shows_the_elapsed_seconds() -> None:
    template = "Still waiting after {seconds} seconds."
    assert slow_spawn_event(template, 12.7) == {"message": "Still waiting after 12 seconds."}


def test_the_slow_spawn_timer_waits_for_the_threshold_then_repeats_at_the_frequency() -> None:
    timer = SlowSpawnTimer(threshold=10, frequency=5)
    assert not timer.due(9.9)
    assert timer.seconds_until_next(9.0) == 1.0
    assert timer.due(10.0)
    assert not timer.due(14.0)
    assert timer.seconds_until_next(14.0) == 1.0
    assert timer.due(15.0)


def test_a_threshold_of_zero_disables_the_slow_spawn_message() -> None:
    timer = SlowSpawnTimer(threshold=0, frequency=5)
    assert not timer.due(1000)
    assert timer.seconds_until_next(1000) is None
