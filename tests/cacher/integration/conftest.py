"""Helpers for cacher scenarios against kubesim and a real redis-server."""

from __future__ import annotations

from typing import Any

from kubesim.store import ObjectStore

NAMESPACE = "jhub"
USER_LABELS = {"component": "singleuser-server", "app": "jupyterhub"}


def ensure_namespace(store: ObjectStore, name: str = NAMESPACE) -> None:
    if store.get("namespaces", None, name) is None:
        store.create("namespaces", None, {"metadata": {"name": name}})


def pod_manifest(name: str, *, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {**USER_LABELS, "hub.jupyter.org/username": name}
            if labels is None
            else labels,
            "annotations": {"hub.jupyter.org/username": name},
        },
        "spec": {
            "containers": [{"name": "notebook", "image": "quay.io/jupyter/base-notebook"}],
            "terminationGracePeriodSeconds": 1,
        },
    }


def create_pods(store: ObjectStore, names: list[str], namespace: str = NAMESPACE) -> None:
    ensure_namespace(store, namespace)
    for name in names:
        store.create("pods", namespace, pod_manifest(name))


def label_pods(store: ObjectStore, names: list[str], value: str) -> None:
    def touch(pod: dict[str, Any]) -> None:
        pod["metadata"].setdefault("annotations", {})["hub.jupyter.org/touched"] = value

    for name in names:
        if store.get("pods", NAMESPACE, name) is not None:
            store.mutate("pods", NAMESPACE, name, touch)


def delete_pods(store: ObjectStore, names: list[str]) -> None:
    for name in names:
        if store.get("pods", NAMESPACE, name) is not None:
            store.delete("pods", NAMESPACE, name, grace_period_seconds=0)
