"""The object store alone: resourceVersions, history, deletion semantics, garbage collection."""

from __future__ import annotations

from typing import Any

import pytest

from kubesim.errors import ApiError
from kubesim.store import ObjectStore


def pod(name: str = "p", **meta: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, **meta},
        "spec": {"containers": [{"name": "c", "image": "busybox:1"}]},
    }


@pytest.fixture
def store() -> ObjectStore:
    s = ObjectStore(history=50, event_history=5)
    s.create("namespaces", None, {"metadata": {"name": "ns"}})
    return s


def test_every_write_gets_the_next_global_resource_version(store: ObjectStore) -> None:
    start = store.resource_version
    a = store.create("pods", "ns", pod("a"))
    b = store.create("configmaps", "ns", {"metadata": {"name": "b"}})
    assert int(a["metadata"]["resourceVersion"]) == start + 1
    assert int(b["metadata"]["resourceVersion"]) == start + 2
    assert store.resource_version == start + 2


def test_create_fills_uid_timestamp_and_generated_name(store: ObjectStore) -> None:
    created = store.create("pods", "ns", pod("", generateName="jupyter-"))
    name = created["metadata"]["name"]
    assert name.startswith("jupyter-") and len(name) == len("jupyter-") + 5
    assert created["metadata"]["uid"]
    assert created["metadata"]["creationTimestamp"].endswith("Z")
    assert created["status"]["phase"] == "Pending"
    assert created["kind"] == "Pod" and created["apiVersion"] == "v1"


def test_create_in_a_missing_namespace_is_not_found(store: ObjectStore) -> None:
    with pytest.raises(ApiError) as caught:
        store.create("pods", "nope", pod())
    assert caught.value.code == 404
    assert caught.value.message == 'namespaces "nope" not found'


def test_create_twice_is_already_exists(store: ObjectStore) -> None:
    store.create("pods", "ns", pod())
    with pytest.raises(ApiError) as caught:
        store.create("pods", "ns", pod())
    assert (caught.value.code, caught.value.reason) == (409, "AlreadyExists")


def test_get_returns_a_copy_the_caller_may_change(store: ObjectStore) -> None:
    store.create("pods", "ns", pod())
    copy = store.get("pods", "ns", "p")
    assert copy is not None
    copy["metadata"]["labels"] = {"changed": "yes"}
    again = store.get("pods", "ns", "p")
    assert again is not None and "labels" not in again["metadata"]


def test_mutate_records_modified_and_skips_no_op_writes(store: ObjectStore) -> None:
    seen: list[tuple[str, str, str]] = []
    store.add_listener(lambda t, r, o: seen.append((t, r, o["metadata"]["resourceVersion"])))
    store.create("pods", "ns", pod())
    store.mutate("pods", "ns", "p", lambda o: o["status"].update(phase="Running"))
    rv = store.resource_version
    store.mutate("pods", "ns", "p", lambda o: o["status"].update(phase="Running"))
    assert store.resource_version == rv
    assert [t for t, _, _ in seen] == ["ADDED", "MODIFIED"]


def test_mutate_of_a_missing_object_is_not_found(store: ObjectStore) -> None:
    with pytest.raises(ApiError) as caught:
        store.mutate("pods", "ns", "missing", lambda o: None)
    assert caught.value.code == 404


def test_replace_with_a_stale_resource_version_conflicts(store: ObjectStore) -> None:
    created = store.create("leases", "ns", {"metadata": {"name": "l"}, "spec": {}})
    store.replace("leases", "ns", "l", {**created, "spec": {"holderIdentity": "a"}})
    with pytest.raises(ApiError) as caught:
        store.replace("leases", "ns", "l", {**created, "spec": {"holderIdentity": "b"}})
    assert (caught.value.code, caught.value.reason) == (409, "Conflict")


def test_replace_of_a_pod_keeps_status_and_status_replace_keeps_spec(store: ObjectStore) -> None:
    created = store.create("pods", "ns", pod())
    changed = {**created, "status": {"phase": "Running"}}
    changed["metadata"] = {**created["metadata"], "labels": {"a": "b"}}
    after = store.replace("pods", "ns", "p", changed)
    assert after["status"]["phase"] == "Pending" and after["metadata"]["labels"] == {"a": "b"}
    status = {**after, "status": {"phase": "Running"}, "metadata": {"name": "p", "labels": {}}}
    after = store.replace("pods", "ns", "p", status, subresource="status")
    assert after["status"]["phase"] == "Running" and after["metadata"]["labels"] == {"a": "b"}


def test_remove_sends_deleted_with_a_new_resource_version(store: ObjectStore) -> None:
    store.create("pods", "ns", pod())
    before = store.resource_version
    final = store.remove("pods", "ns", "p")
    assert final is not None and final["metadata"]["resourceVersion"] == str(before + 1)
    assert store.get("pods", "ns", "p") is None


def test_a_scheduled_pod_with_a_kubelet_is_deleted_gracefully(store: ObjectStore) -> None:
    store.graceful_pods = True
    store.create("pods", "ns", pod())
    store.mutate("pods", "ns", "p", lambda o: o["spec"].update(nodeName="node-1"))
    obj, removed = store.delete("pods", "ns", "p", grace_period_seconds=10)
    assert not removed
    assert obj["metadata"]["deletionGracePeriodSeconds"] == 10
    assert obj["metadata"]["deletionTimestamp"]
    obj, removed = store.delete("pods", "ns", "p", grace_period_seconds=0)
    assert removed and store.get("pods", "ns", "p") is None


def test_without_a_kubelet_pods_are_deleted_at_once(store: ObjectStore) -> None:
    store.create("pods", "ns", pod())
    store.mutate("pods", "ns", "p", lambda o: o["spec"].update(nodeName="node-1"))
    _, removed = store.delete("pods", "ns", "p")
    assert removed


def test_delete_preconditions_are_checked(store: ObjectStore) -> None:
    store.create("pods", "ns", pod())
    with pytest.raises(ApiError) as caught:
        store.delete("pods", "ns", "p", preconditions={"uid": "other"})
    assert caught.value.code == 409
    assert "Precondition failed: UID in precondition: other" in caught.value.message


def test_owner_removal_collects_dependents(store: ObjectStore) -> None:
    owner = store.create("pods", "ns", pod())
    ref = {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": owner["metadata"]["uid"]}
    store.create("secrets", "ns", {"metadata": {"name": "s", "ownerReferences": [ref]}})
    store.create(
        "services",
        "ns",
        {"metadata": {"name": "svc", "ownerReferences": [ref]}, "spec": {"ports": [{"port": 80}]}},
    )
    store.remove("pods", "ns", "p")
    assert store.get("secrets", "ns", "s") is None
    assert store.get("services", "ns", "svc") is None


def test_orphan_propagation_keeps_dependents_without_the_reference(store: ObjectStore) -> None:
    owner = store.create("pods", "ns", pod())
    ref = {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": owner["metadata"]["uid"]}
    store.create("secrets", "ns", {"metadata": {"name": "s", "ownerReferences": [ref]}})
    store.delete("pods", "ns", "p", propagation_policy="Orphan")
    secret = store.get("secrets", "ns", "s")
    assert secret is not None and "ownerReferences" not in secret["metadata"]


def test_deleting_a_namespace_terminates_then_removes_contents_then_it(
    store: ObjectStore,
) -> None:
    seen: list[tuple[str, str]] = []
    store.create("pods", "ns", pod())
    store.add_listener(lambda t, r, o: seen.append((t, r)))
    namespace, removed = store.delete("namespaces", None, "ns")
    assert not removed and namespace["status"]["phase"] == "Terminating"
    assert seen == [("MODIFIED", "namespaces"), ("DELETED", "pods"), ("DELETED", "namespaces")]


def test_finalizers_hold_an_object_until_removed(store: ObjectStore) -> None:
    store.create("configmaps", "ns", {"metadata": {"name": "c", "finalizers": ["x/y"]}})
    obj, removed = store.delete("configmaps", "ns", "c")
    assert not removed and obj["metadata"]["deletionTimestamp"]
    store.mutate("configmaps", "ns", "c", lambda o: o["metadata"].pop("finalizers"))
    assert store.get("configmaps", "ns", "c") is None


def test_changes_since_an_old_revision_are_expired_after_history_rolls(
    store: ObjectStore,
) -> None:
    start = store.resource_version
    for i in range(8):
        store.create("events", "ns", {"metadata": {"name": f"e{i}"}, "involvedObject": {}})
    with pytest.raises(ApiError) as caught:
        store.changes_since("events", start)
    assert (caught.value.code, caught.value.reason) == (410, "Expired")
    assert len(store.changes_since("events", store.resource_version - 2)) == 2


def test_snapshot_reads_the_objects_as_they_were(store: ObjectStore) -> None:
    store.create("configmaps", "ns", {"metadata": {"name": "a"}})
    rv = store.resource_version
    store.create("configmaps", "ns", {"metadata": {"name": "b"}})
    store.mutate("configmaps", "ns", "a", lambda o: o.update(data={"x": "1"}))
    store.remove("configmaps", "ns", "a")
    names = [key[1] for key, _, _ in store.snapshot("configmaps", "ns", rv)]
    assert names == ["a"]
    store.compact()
    with pytest.raises(ApiError) as caught:
        store.snapshot("configmaps", "ns", rv)
    assert caught.value.code == 410


def test_listeners_see_changes_made_by_listeners_in_order(store: ObjectStore) -> None:
    seen: list[str] = []

    def react(event: str, resource: str, obj: dict[str, Any]) -> None:
        seen.append(f"{event} {obj['metadata']['name']}")
        if event == "ADDED" and resource == "pods":
            store.mutate("pods", "ns", "p", lambda o: o["spec"].update(nodeName="n"))

    store.add_listener(react)
    store.create("pods", "ns", pod())
    assert seen == ["ADDED p", "MODIFIED p"]
