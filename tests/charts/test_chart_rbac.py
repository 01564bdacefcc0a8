"""The cacher gets list/watch on pods and events and its own Lease, nothing more."""

from __future__ import annotations

from typing import Any

import pytest

from tests.charts.rendering import CHART_DIR, NAMESPACE, ci_values, render

WATCH_RULES = [{"apiGroups": [""], "resources": ["pods", "events"], "verbs": ["list", "watch"]}]
RBAC_KINDS = ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")


def lease_rules(lease: str) -> list[dict[str, Any]]:
    return [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": [lease],
            "verbs": ["get", "update"],
        },
    ]


def cacher_subject() -> list[dict[str, str]]:
    return [{"kind": "ServiceAccount", "name": "hub-kubecache-cacher", "namespace": NAMESPACE}]


def test_by_default_the_cacher_reads_only_its_release_namespace() -> None:
    rendered = render()
    assert rendered.of_kind("ClusterRole") == [] and rendered.of_kind("ClusterRoleBinding") == []
    (watch_role,) = [r for r in rendered.of_kind("Role") if r["rules"] == WATCH_RULES]
    assert watch_role["metadata"]["namespace"] == NAMESPACE
    config = rendered.one("ConfigMap", "-cacher-config")["data"]
    assert config["KUBECACHE_NAMESPACES"] == NAMESPACE


def test_a_cluster_wide_cacher_is_an_explicit_opt_in_with_list_and_watch_only() -> None:
    rendered = render({"cacher": {"watch": {"clusterWide": True}}})
    assert rendered.one("ConfigMap", "-cacher-config")["data"]["KUBECACHE_NAMESPACES"] == ""
    assert "EVERY namespace" in rendered.notes
    (cluster_role,) = rendered.of_kind("ClusterRole")
    assert cluster_role["rules"] == WATCH_RULES
    (binding,) = rendered.of_kind("ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": cluster_role["metadata"]["name"],
    }
    assert binding["subjects"] == cacher_subject()
    # Cluster-scoped names carry the namespace: two releases "hub" may coexist.
    assert cluster_role["metadata"]["name"] == f"{NAMESPACE}-hub-kubecache-cacher"


def test_the_cacher_may_only_create_leases_and_read_and_renew_its_own() -> None:
    rendered = render()
    lease_name = rendered.one("ConfigMap", "-cacher-config")["data"]["KUBECACHE_LEASE_NAME"]
    role = rendered.one("Role", "-lease")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert role["rules"] == lease_rules(lease_name)
    binding = rendered.one("RoleBinding", "-lease")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == cacher_subject()


def test_a_namespaced_cacher_gets_one_role_per_watched_namespace_and_no_cluster_role() -> None:
    rendered = render(ci_values(CHART_DIR / "ci" / "namespaced-values.yaml"))
    assert rendered.of_kind("ClusterRole") == [] and rendered.of_kind("ClusterRoleBinding") == []
    watch_roles = {
        r["metadata"]["namespace"]: r for r in rendered.of_kind("Role") if r["rules"] == WATCH_RULES
    }
    assert set(watch_roles) == {"jhub-users", "jhub-staff"}
    bindings = [
        b for b in rendered.of_kind("RoleBinding") if b["metadata"]["namespace"] != NAMESPACE
    ]
    assert {b["metadata"]["namespace"] for b in bindings} == {"jhub-users", "jhub-staff"}
    for binding in bindings:
        assert binding["subjects"] == cacher_subject()
        assert (
            binding["roleRef"]["name"]
            == watch_roles[binding["metadata"]["namespace"]]["metadata"]["name"]
        )
    (lease_role,) = [r for r in rendered.of_kind("Role") if r["metadata"]["namespace"] == NAMESPACE]
    assert lease_role["rules"] == lease_rules("kubecache-leader")


def test_no_scenario_grants_anything_beyond_watching_pods_and_events_and_the_lease() -> None:
    for values_file in sorted((CHART_DIR / "ci").glob("*.yaml")):
        granted: set[tuple[str, str, str]] = set()
        for manifest in render(ci_values(values_file)):
            if manifest["kind"] not in ("ClusterRole", "Role"):
                continue
            for rule in manifest["rules"]:
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        granted.update((group, resource, verb) for verb in rule["verbs"])
        assert granted == {
            ("", "pods", "list"),
            ("", "pods", "watch"),
            ("", "events", "list"),
            ("", "events", "watch"),
            ("coordination.k8s.io", "leases", "create"),
            ("coordination.k8s.io", "leases", "get"),
            ("coordination.k8s.io", "leases", "update"),
        }, values_file.name


def test_cluster_wide_and_listed_namespaces_together_are_refused() -> None:
    complaint = r"clusterWide is true and cacher\.watch\.namespaces is set"
    with pytest.raises(Exception, match=complaint):
        render({"cacher": {"watch": {"clusterWide": True, "namespaces": ["a"]}}})


def test_rbac_can_be_left_to_the_operator() -> None:
    rendered = render({"cacher": {"rbac": {"create": False}, "serviceAccount": {"create": False}}})
    assert [m for m in rendered if m["kind"] in RBAC_KINDS] == []
    assert rendered.of_kind("ServiceAccount") == []
    spec = rendered.one("Deployment")["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == "default"
