"""The spawner package's public surface and its JupyterHub entry point."""

from __future__ import annotations

from importlib.metadata import entry_points

from kubecache import spawner
from kubecache.spawner.spawner import KubeCacheSpawner


def test_the_package_exports_the_spawner() -> None:
    assert spawner.__all__ == ["KubeCacheSpawner"]
    assert spawner.KubeCacheSpawner is KubeCacheSpawner


def test_jupyterhub_finds_the_spawner_by_the_name_kubecache() -> None:
    [entry] = [e for e in entry_points(group="jupyterhub.spawners") if e.name == "kubecache"]
    assert entry.value == "kubecache.spawner:KubeCacheSpawner"
    assert entry.load() is KubeCacheSpawner


def test_existing_kubespawner_config_sections_apply() -> None:
    names = [cls.__name__ for cls in KubeCacheSpawner.mro()]
    assert "KubeSpawner" in names and "Spawner" in names
