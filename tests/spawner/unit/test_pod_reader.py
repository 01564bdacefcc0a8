"""One PodReader per spawner: built once from a frozen description of its pod, again when
that description changes; it never reads the spawner back."""

from __future__ import annotations

import pytest
from traitlets.config import Config

from kubecache.spawner import KubeCacheSpawner
from kubecache.spawner.pod_reader import PodTarget
from tests.spawner.support import mock_hub, mock_user


def configured(**options: object) -> KubeCacheSpawner:
    config = Config()
    for name, value in options.items():
        setattr(config.KubeCacheSpawner, name, value)
    return KubeCacheSpawner(user=mock_user("alice"), hub=mock_hub(), config=config)


def test_the_target_is_what_the_spawner_would_read_itself() -> None:
    spawner = configured(
        namespace="jhub",
        cache_stale_after=7.5,
        request_404_poll_keep_running=True,
        request_failed_poll_keep_running=False,
    )
    target = spawner._reader().target
    assert target == PodTarget(
        namespace="jhub",
        pod_name="jupyter-alice",
        key="jhub/jupyter-alice",
        labels=spawner.coverage_labels(),
        stale_after_ms=7500,
        log_id="alice (pod jhub/jupyter-alice)",
        keep_running_on_404=True,
        keep_running_on_failure=False,
    )
    with pytest.raises(AttributeError):
        target.pod_name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("change", "field", "expected"),
    [
        (lambda s: setattr(s, "namespace", "other"), "key", "other/jupyter-alice"),
        (lambda s: setattr(s, "pod_name", "renamed"), "key", "jhub/renamed"),
        (lambda s: setattr(s, "cache_stale_after", 3.0), "stale_after_ms", 3000),
        (lambda s: setattr(s, "request_404_poll_keep_running", True), "keep_running_on_404", True),
        (lambda s: setattr(s, "component_label", "x"), "labels", "x"),
        (lambda s: s.load_state({"pod_name": "saved", "namespace": "jhub"}), "key", "jhub/saved"),
    ],
)
def test_the_reader_is_built_once_and_again_when_its_target_changes(
    change: object, field: str, expected: object
) -> None:
    spawner = configured(namespace="jhub")
    first = spawner._reader()
    assert spawner._reader() is first
    change(spawner)  # type: ignore[operator]
    second = spawner._reader()
    assert second is not first
    value = getattr(second.target, field)
    assert (value["component"] if field == "labels" else value) == expected
    assert spawner._reader() is second
