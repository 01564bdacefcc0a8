"""The 0.5.1 option names keep working as deprecated aliases - all of them."""

from __future__ import annotations

import logging

import pytest
from traitlets.config import Config

from kubecache.spawner.config import KubeSpawner
from kubecache.spawner.deprecated import DEPRECATED_NAMES
from tests.spawner.unit.golden import FakeHub, FakeOrmSpawner, FakeUser

SAMPLE_VALUES = {
    "image": "old/image:1",
    "working_dir": "/old",
    "service_account": "old-sa",
    "extra_labels": {"old": "label"},
    "extra_annotations": {"old": "annotation"},
    "image_pull_policy": "Always",
    "image_pull_secrets": ["old-secret"],
    "node_selector": {"old": "node"},
    "uid": 1234,
    "fs_gid": 99,
    "supplemental_gids": [7],
    "privileged": True,
    "allow_privilege_escalation": True,
    "lifecycle_hooks": {"postStart": {"exec": {"command": ["true"]}}},
    "extra_pod_config": {"dnsPolicy": "None"},
    "init_containers": [{"name": "init", "image": "busybox"}],
    "extra_container_config": {"stdin": True},
    "extra_containers": [{"name": "side", "image": "nginx"}],
    "storage_class": "old-class",
    "storage_pvc_ensure": True,
    "storage_capacity": "3Gi",
    "storage_extra_labels": {"old": "storage"},
    "storage_access_modes": ["ReadOnlyMany"],
}


def make(section: dict[str, object]) -> KubeSpawner:
    return KubeSpawner(
        user=FakeUser("alice"),
        hub=FakeHub(),
        orm_spawner=FakeOrmSpawner(""),
        config=Config({"KubeSpawner": section}),
    )


@pytest.mark.parametrize("old", sorted(DEPRECATED_NAMES))
def test_old_config_name_sets_the_new_option_with_a_warning(
    old: str, caplog: pytest.LogCaptureFixture
) -> None:
    new = DEPRECATED_NAMES[old][0]
    with caplog.at_level(logging.WARNING):
        spawner = make({old: SAMPLE_VALUES[new]})
    assert getattr(spawner, new) == SAMPLE_VALUES[new]
    assert f"KubeSpawner.{old} is deprecated" in caplog.text


@pytest.mark.parametrize(
    "old",
    [
        "singleuser_image_spec",
        "singleuser_lifecycle_hooks",
        "singleuser_allow_privilege_escalation",
    ],
)
def test_names_kubespawner_7_drops_silently_still_work(old: str) -> None:
    new = DEPRECATED_NAMES[old][0]
    assert getattr(make({old: SAMPLE_VALUES[new]}), new) == SAMPLE_VALUES[new]


def test_the_new_name_wins_when_both_are_configured(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        spawner = make({"singleuser_uid": 1, "uid": 2})
    assert spawner.uid == 2
    assert "Ignoring deprecated config KubeSpawner.singleuser_uid" in caplog.text


def test_old_names_read_and_write_the_new_option_at_runtime(
    caplog: pytest.LogCaptureFixture,
) -> None:
    spawner = make({})
    with caplog.at_level(logging.WARNING):
        spawner.user_storage_capacity = "5Gi"  # type: ignore[attr-defined]
        assert spawner.storage_capacity == "5Gi"
        assert spawner.singleuser_image_spec == spawner.image  # type: ignore[attr-defined]
    assert "KubeSpawner.user_storage_capacity is deprecated" in caplog.text


def test_a_single_pull_secret_name_of_0_5_is_accepted() -> None:
    with pytest.warns(DeprecationWarning):
        spawner = make({"singleuser_image_pull_secrets": "regcred"})
    assert spawner.image_pull_secrets == [{"name": "regcred"}]


def test_subclass_sections_are_translated_too() -> None:
    class KubeCacheSpawner(KubeSpawner):
        pass

    spawner = KubeCacheSpawner(
        user=FakeUser("alice"),
        hub=FakeHub(),
        orm_spawner=FakeOrmSpawner(""),
        config=Config({"KubeCacheSpawner": {"singleuser_uid": 42}}),
    )
    assert spawner.uid == 42
