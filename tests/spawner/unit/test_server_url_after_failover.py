"""A hub that takes over (restart, failover) finds each running server at its pod's address."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from kubecache.spawner import KubeCacheSpawner
from tests.spawner.support import mock_hub, mock_user
from tests.spawner.unit.records import running


class Server:
    """The part of JupyterHub's Server a poll reads and updates."""

    def __init__(self, ip: str, port: int) -> None:
        self.ip, self.port = ip, port

    @property
    def url(self) -> str:
        return f"http://{self.ip or 'hub-host'}:{self.port}/user/alice/"


def spawner_for(server: Server) -> Any:
    """A new hub's spawner (it did not start this pod), KubeSpawner's default port 8888."""
    spawner = KubeCacheSpawner(user=mock_user("alice"), hub=mock_hub(), namespace="jhub")
    spawner.server = server
    spawner.db = SimpleNamespace(commit=lambda: None)
    return spawner


def update_server_url(spawner: Any, record: Any) -> None:
    """What a poll does with the record of a running pod."""
    spawner._follow_pod_address(record)


def test_a_spawn_interrupted_by_a_failover_is_found_at_the_pods_port() -> None:
    # JupyterHub wrote the server row (no address, a random port) before start() returned,
    # then the hub died; the new hub's poll finds the pod running.
    server = Server(ip="", port=40541)
    update_server_url(spawner_for(server), running(ip="10.0.0.7"))
    assert (server.ip, server.port) == ("10.0.0.7", 8888)


def test_a_finished_spawn_keeps_the_port_jupyterhub_recorded() -> None:
    # start() returned the pod's URL (e.g. a notebook-port changed by modify_pod_hook).
    server = Server(ip="10.0.0.7", port=8000)
    update_server_url(spawner_for(server), running(ip="10.0.0.9"))
    assert (server.ip, server.port) == ("10.0.0.9", 8000)
