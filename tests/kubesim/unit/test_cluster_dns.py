"""A Service's DNS name maps to its ready pods' IPs, as cluster DNS would answer."""

from __future__ import annotations

from typing import Any

from kubesim.cluster_dns import hostname_mapping, service_addresses
from kubesim.store import ObjectStore


def ready_pod(store: ObjectStore, name: str, ip: str, ready: bool = True, **labels: str) -> None:
    spec = {"containers": [{"name": "c", "image": "x:1"}]}
    store.create("pods", "jhub", {"metadata": {"name": name, "labels": labels}, "spec": spec})

    def running(pod: dict[str, Any]) -> None:
        pod["status"] = {
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        }

    store.mutate("pods", "jhub", name, running)


def test_service_names_resolve_to_the_selected_ready_pods() -> None:
    store = ObjectStore()
    store.create("namespaces", None, {"metadata": {"name": "jhub"}})
    store.create(
        "services",
        "jhub",
        {
            "metadata": {"name": "jupyter-alice"},
            "spec": {"selector": {"user": "alice"}, "ports": [{"port": 8888}]},
        },
    )
    ready_pod(store, "jupyter-alice", "127.1.2.3", user="alice")
    ready_pod(store, "starting", "127.1.2.4", ready=False, user="alice")
    ready_pod(store, "jupyter-bob", "127.1.2.5", user="bob")
    for name in (
        "jupyter-alice.jhub",
        "jupyter-alice.jhub.svc",
        "jupyter-alice.jhub.svc.cluster.local",
        "jupyter-alice.jhub.svc.cluster.local.",
    ):
        assert service_addresses(store, name) == ["127.1.2.3"], name
    assert service_addresses(store, "jupyter-alice") == []
    assert service_addresses(store, "missing.jhub.svc.cluster.local") == []
    assert service_addresses(store, "jupyter-alice.jhub.svc.example.org") == []
    assert hostname_mapping(store, "jupyter-alice.jhub", "missing.jhub") == {
        "jupyter-alice.jhub": "127.1.2.3"
    }
