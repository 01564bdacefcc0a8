"""read_pod_from_api: what it reads through is computed once per spawner, not per question,
and again whenever something it is made of changes."""

from __future__ import annotations

from typing import Any

import pytest

from kubecache.spawner import KubeCacheSpawner
from kubecache.spawner.kube_api import Timeouts
from tests.spawner.support import mock_hub, mock_user
from tests.spawner.unit.test_pod_reads import FakeApi


class RecordingApi(FakeApi):
    def __init__(self, names: list[str]) -> None:
        super().__init__(names)
        self.asked: list[tuple[str, str, float]] = []

    async def read_pod(self, namespace: str, name: str, timeouts: Timeouts) -> Any:
        self.asked.append((namespace, name, round(timeouts.request, 1)))  # less the time spent
        return await super().read_pod(namespace, name, timeouts)


def _spawner(user: str, namespace: str) -> KubeCacheSpawner:
    return KubeCacheSpawner(
        user=mock_user(user),
        hub=mock_hub(),
        namespace=namespace,
        redis_url="redis://127.0.0.1:1/0",
        k8s_api_request_timeout=3,
    )


@pytest.fixture
def spawner_and_api(monkeypatch: pytest.MonkeyPatch) -> tuple[KubeCacheSpawner, RecordingApi]:
    spawner = _spawner("alice", "jhub")
    api = RecordingApi(["jupyter-alice", "jupyter-bob"])
    made: list[int] = []

    async def fake_api() -> Any:
        made.append(1)
        return api

    monkeypatch.setattr(spawner, "_api", fake_api)
    api.made = made  # type: ignore[attr-defined]
    return spawner, api


async def test_the_target_is_built_once_and_each_question_reads_it(
    spawner_and_api: tuple[KubeCacheSpawner, RecordingApi],
) -> None:
    spawner, api = spawner_and_api
    first = await spawner.read_pod_from_api(max_age=0)
    second = await spawner.read_pod_from_api(max_age=0)
    assert first.record is not None and second.record is not None
    assert api.made == [1]  # type: ignore[attr-defined]
    assert api.asked == [("jhub", "jupyter-alice", 3.0)] * 2
    await spawner.read_pod_from_api(max_age=0, within=0.5)  # a shorter bound, this once
    await spawner.read_pod_from_api(max_age=0, within=10)
    assert [t for _, _, t in api.asked[2:]] == [0.5, 3.0]


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda s, api: setattr(s, "k8s_api_request_timeout", 7), ("jhub", "jupyter-alice", 7.0)),
        (lambda s, api: setattr(s, "namespace", "other"), ("other", "jupyter-alice", 3.0)),
        (lambda s, api: setattr(api, "closed", True), ("jhub", "jupyter-alice", 3.0)),
    ],
)
async def test_the_target_is_built_again_after_what_it_is_made_of_changed(
    spawner_and_api: tuple[KubeCacheSpawner, RecordingApi], change: Any, expected: Any
) -> None:
    spawner, api = spawner_and_api
    await spawner.read_pod_from_api(max_age=0)
    change(spawner, api)
    await spawner.read_pod_from_api(max_age=0)
    assert api.asked[-1] == expected
    assert api.made == [1, 1]  # type: ignore[attr-defined]


async def test_the_pod_name_is_read_at_each_question(
    spawner_and_api: tuple[KubeCacheSpawner, RecordingApi],
) -> None:
    """A plain attribute (not observed), renamed by load_state or a hook."""
    spawner, api = spawner_and_api
    await spawner.read_pod_from_api(max_age=0)
    spawner.pod_name = "jupyter-bob"
    await spawner.read_pod_from_api(max_age=0)
    assert api.asked[-1] == ("jhub", "jupyter-bob", 3.0)


async def test_spawners_of_one_configuration_share_one_target(
    spawner_and_api: tuple[KubeCacheSpawner, RecordingApi], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not one more object per spawner for the garbage collector to walk."""
    spawner, api = spawner_and_api
    other = _spawner("bob", "other")
    monkeypatch.setattr(other, "_api", spawner._api)
    await spawner.read_pod_from_api(max_age=0)
    await other.read_pod_from_api(max_age=0)
    assert other._api_read_target is spawner._api_read_target
    assert api.asked[-1] == ("other", "jupyter-bob", 3.0)


async def test_a_changed_kubeconfig_builds_the_target_again(
    spawner_and_api: tuple[KubeCacheSpawner, RecordingApi], monkeypatch: pytest.MonkeyPatch
) -> None:
    spawner, api = spawner_and_api
    await spawner.read_pod_from_api(max_age=0)
    monkeypatch.setenv("KUBECONFIG", "/elsewhere/kubeconfig")
    await spawner.read_pod_from_api(max_age=0)
    assert api.made == [1, 1]  # type: ignore[attr-defined]


async def test_the_label_selector_follows_component_label(
    spawner_and_api: tuple[KubeCacheSpawner, RecordingApi],
) -> None:
    spawner, api = spawner_and_api
    api.gate = None
    await spawner.read_pod_from_api(max_age=0)
    spawner.component_label = "other-server"
    target = spawner._api_read_target
    assert target is None
    await spawner.read_pod_from_api(max_age=0)
    assert spawner._api_read_target is not None
    assert spawner._api_read_target.label_selector == "component=other-server"
