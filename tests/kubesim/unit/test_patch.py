"""PATCH bodies apply as on the API server: merge, JSON and strategic merge patches."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from kubesim.errors import ApiError
from kubesim.patch import apply_patch

MERGE = "application/merge-patch+json"
JSON = "application/json-patch+json"
SMP = "application/strategic-merge-patch+json"


def patched(obj: dict[str, Any], patch: Any, content_type: str, resource: str = "pods") -> Any:
    before = copy.deepcopy(obj)
    result = apply_patch(obj, orjson.dumps(patch), content_type, resource=resource)
    assert obj == before, "apply_patch must not mutate its input"
    return result


def failure(obj: dict[str, Any], body: bytes, content_type: str) -> ApiError:
    with pytest.raises(ApiError) as caught:
        apply_patch(obj, body, content_type, resource="pods")
    return caught.value


POD: dict[str, Any] = {
    "metadata": {
        "name": "jupyter-alice",
        "labels": {"app": "jhub", "component": "singleuser-server"},
        "annotations": {"a": "1"},
        "finalizers": ["x/a"],
        "ownerReferences": [{"uid": "u1", "name": "one", "kind": "Pod", "apiVersion": "v1"}],
    },
    "spec": {
        "containers": [
            {
                "name": "notebook",
                "image": "jupyter/base:1",
                "args": ["jupyterhub-singleuser", "--debug"],
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                "ports": [{"containerPort": 8888, "name": "notebook-port"}],
                "volumeMounts": [{"name": "home", "mountPath": "/home/jovyan"}],
            },
            {"name": "sidecar", "image": "proxy:1"},
        ],
        "volumes": [{"name": "home", "persistentVolumeClaim": {"claimName": "claim-alice"}}],
        "tolerations": [{"key": "a", "operator": "Exists"}],
        "imagePullSecrets": [{"name": "regcred"}],
    },
    "status": {
        "phase": "Pending",
        "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Ready", "status": "False"},
        ],
        "containerStatuses": [{"name": "notebook", "ready": False}, {"name": "sidecar"}],
    },
}


# --- merge patch ---------------------------------------------------------------------------


def test_merge_patch_merges_maps_deletes_nulls_and_replaces_lists() -> None:
    result = patched(
        POD,
        {"metadata": {"labels": {"app": None, "new": "x"}}, "spec": {"tolerations": []}},
        MERGE,
    )
    assert result["metadata"]["labels"] == {"component": "singleuser-server", "new": "x"}
    assert result["spec"]["tolerations"] == []
    assert result["spec"]["containers"] == POD["spec"]["containers"]


@pytest.mark.parametrize(
    ("target", "patch", "expected"),
    [  # the examples of RFC 7386 appendix A
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_follows_rfc_7386(target: Any, patch: Any, expected: Any) -> None:
    assert patched(target, patch, MERGE) == expected


def test_merge_patch_that_is_not_an_object_is_a_bad_request() -> None:
    assert failure(POD, b'["a"]', MERGE).code == 400


# --- JSON patch ----------------------------------------------------------------------------


def test_json_patch_supports_every_operation_in_order() -> None:
    result = patched(
        POD,
        [
            {"op": "test", "path": "/metadata/name", "value": "jupyter-alice"},
            {"op": "add", "path": "/metadata/labels/hub.jupyter.org~1username", "value": "alice"},
            {"op": "replace", "path": "/spec/containers/0/image", "value": "jupyter/base:2"},
            {"op": "remove", "path": "/spec/containers/1"},
            {"op": "add", "path": "/spec/containers/0/args/-", "value": "--port=8888"},
            {"op": "add", "path": "/spec/containers/0/args/0", "value": "exec"},
            {"op": "copy", "from": "/metadata/labels/app", "path": "/metadata/annotations/app"},
            {"op": "move", "from": "/metadata/annotations/a", "path": "/metadata/annotations/b"},
            {"op": "add", "path": "/metadata/annotations/t~0ilde", "value": "~"},
        ],
        JSON,
    )
    assert result["metadata"]["labels"]["hub.jupyter.org/username"] == "alice"
    assert result["metadata"]["annotations"] == {"app": "jhub", "b": "1", "t~ilde": "~"}
    assert [c["name"] for c in result["spec"]["containers"]] == ["notebook"]
    assert result["spec"]["containers"][0]["image"] == "jupyter/base:2"
    assert result["spec"]["containers"][0]["args"] == [
        "exec",
        "jupyterhub-singleuser",
        "--debug",
        "--port=8888",
    ]


@pytest.mark.parametrize(
    "operations",
    [
        [{"op": "test", "path": "/metadata/name", "value": "someone-else"}],
        [{"op": "test", "path": "/status/phase", "value": 1}],
        [{"op": "test", "path": "/spec/containers/0/ports/0/containerPort", "value": True}],
        [{"op": "remove", "path": "/metadata/missing"}],
        [{"op": "replace", "path": "/metadata/missing", "value": 1}],
        [{"op": "add", "path": "/missing/deeper", "value": 1}],
        [{"op": "add", "path": "/spec/containers/5", "value": {}}],
        [{"op": "add", "path": "/spec/containers/01", "value": {}}],
        [{"op": "remove", "path": "/spec/containers/-"}],
        [{"op": "move", "from": "/metadata", "path": "/metadata/labels"}],
        [{"op": "copy", "from": "/nope", "path": "/x"}],
        [{"op": "frobnicate", "path": "/x"}],
        [{"op": "add", "path": "no-slash", "value": 1}],
        [{"op": "add", "path": "/x"}],
        [{"op": "add", "path": "/x", "value": 1}, {"op": "test", "path": "/x", "value": 2}],
    ],
)
def test_json_patch_operations_that_do_not_apply_are_422(operations: list[Any]) -> None:
    err = failure(POD, orjson.dumps(operations), JSON)
    assert err.code == 422
    assert err.reason == "Invalid"
    assert err.message == "the server rejected our request due to an error in our request"


def test_json_patch_test_failure_names_the_path_in_its_cause() -> None:
    body = orjson.dumps([{"op": "test", "path": "/metadata/name", "value": "bob"}])
    assert failure(POD, body, JSON).status()["details"]["causes"][0]["message"] == (
        "testing value /metadata/name failed: test failed"
    )


def test_json_patch_test_of_an_equal_object_ignores_key_order_and_number_form() -> None:
    patched(
        {"a": {"x": 1, "y": [1.0]}},
        [{"op": "test", "path": "/a", "value": {"y": [1], "x": 1.0}}],
        JSON,
    )


def test_json_patch_that_is_not_a_list_of_operations_is_a_bad_request() -> None:
    assert failure(POD, b'{"op": "add"}', JSON).code == 400


# --- content types and bodies --------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type", ["application/apply-patch+yaml", "application/json", "text/plain", ""]
)
def test_other_content_types_are_415(content_type: str) -> None:
    err = failure(POD, b"{}", content_type)
    assert err.code == 415
    assert err.reason == "UnsupportedMediaType"


def test_content_type_parameters_are_ignored() -> None:
    result = apply_patch(
        POD,
        b'{"status": {"phase": "Running"}}',
        "application/merge-patch+json; charset=utf-8",
        resource="pods",
    )
    assert result["status"]["phase"] == "Running"


@pytest.mark.parametrize("content_type", [MERGE, JSON, SMP])
def test_a_body_that_is_not_json_is_a_bad_request(content_type: str) -> None:
    assert failure(POD, b"{not json", content_type).code == 400


# --- strategic merge patch -----------------------------------------------------------------


def test_containers_merge_by_name_and_keep_the_others() -> None:
    result = patched(
        POD,
        {
            "spec": {
                "containers": [
                    {
                        "name": "notebook",
                        "image": "jupyter/base:2",
                        "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}],
                    },
                    {"name": "extra", "image": "x"},
                ]
            }
        },
        SMP,
    )
    containers = result["spec"]["containers"]
    assert [c["name"] for c in containers] == ["notebook", "sidecar", "extra"]
    assert containers[0]["image"] == "jupyter/base:2"
    assert containers[0]["env"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "3"},
        {"name": "C", "value": "4"},
    ]
    assert containers[0]["args"] == ["jupyterhub-singleuser", "--debug"]
    assert containers[0]["ports"] == POD["spec"]["containers"][0]["ports"]


def test_atomic_lists_are_replaced() -> None:
    result = patched(
        POD,
        {
            "spec": {
                "tolerations": [{"key": "b", "operator": "Exists"}],
                "containers": [{"name": "notebook", "args": ["x"]}],
            }
        },
        SMP,
    )
    assert result["spec"]["tolerations"] == [{"key": "b", "operator": "Exists"}]
    assert result["spec"]["containers"][0]["args"] == ["x"]


def test_status_conditions_merge_by_type_and_container_statuses_are_atomic() -> None:
    result = patched(
        POD,
        {
            "status": {
                "phase": "Running",
                "conditions": [
                    {"type": "Ready", "status": "True"},
                    {"type": "Initialized", "status": "True"},
                ],
                "containerStatuses": [{"name": "notebook", "ready": True}],
            }
        },
        SMP,
    )
    assert result["status"]["conditions"] == [
        {"type": "PodScheduled", "status": "True"},
        {"type": "Ready", "status": "True"},
        {"type": "Initialized", "status": "True"},
    ]
    assert result["status"]["containerStatuses"] == [{"name": "notebook", "ready": True}]


def test_other_merge_keys_of_the_pod_type() -> None:
    result = patched(
        POD,
        {
            "metadata": {
                "finalizers": ["x/b", "x/a"],
                "ownerReferences": [{"uid": "u1", "name": "renamed"}, {"uid": "u2", "name": "t"}],
            },
            "spec": {
                "volumes": [
                    {"name": "home", "persistentVolumeClaim": {"readOnly": True}},
                    {"name": "tmp", "emptyDir": {}},
                ],
                "imagePullSecrets": [{"name": "other"}],
                "containers": [
                    {
                        "name": "notebook",
                        "ports": [{"containerPort": 8888, "protocol": "TCP"}],
                        "volumeMounts": [{"mountPath": "/home/jovyan", "readOnly": True}],
                    }
                ],
            },
        },
        SMP,
    )
    assert result["metadata"]["finalizers"] == ["x/a", "x/b"]
    assert [r["name"] for r in result["metadata"]["ownerReferences"]] == ["renamed", "t"]
    assert result["spec"]["volumes"][0] == {
        "name": "home",
        "persistentVolumeClaim": {"claimName": "claim-alice", "readOnly": True},
    }
    assert [v["name"] for v in result["spec"]["volumes"]] == ["home", "tmp"]
    assert result["spec"]["imagePullSecrets"] == [{"name": "regcred"}, {"name": "other"}]
    notebook = result["spec"]["containers"][0]
    assert notebook["ports"] == [
        {"containerPort": 8888, "name": "notebook-port", "protocol": "TCP"}
    ]
    assert notebook["volumeMounts"] == [
        {"name": "home", "mountPath": "/home/jovyan", "readOnly": True}
    ]


def test_patch_delete_directive_removes_list_items_and_maps() -> None:
    result = patched(
        POD,
        {
            "metadata": {"annotations": {"$patch": "delete"}},
            "spec": {
                "containers": [
                    {"name": "sidecar", "$patch": "delete"},
                    {"name": "notebook", "env": [{"name": "A", "$patch": "delete"}]},
                ]
            },
        },
        SMP,
    )
    assert "annotations" not in result["metadata"]
    assert [c["name"] for c in result["spec"]["containers"]] == ["notebook"]
    assert result["spec"]["containers"][0]["env"] == [{"name": "B", "value": "2"}]


def test_patch_replace_directive_replaces_lists_and_maps() -> None:
    result = patched(
        POD,
        {
            "metadata": {"labels": {"$patch": "replace", "only": "this"}},
            "spec": {"containers": [{"$patch": "replace"}, {"name": "solo", "image": "s"}]},
        },
        SMP,
    )
    assert result["metadata"]["labels"] == {"only": "this"}
    assert result["spec"]["containers"] == [{"name": "solo", "image": "s"}]


def test_patch_merge_directive_is_the_default_and_unknown_ones_are_rejected() -> None:
    result = patched(POD, {"metadata": {"labels": {"$patch": "merge", "x": "y"}}}, SMP)
    assert result["metadata"]["labels"]["app"] == "jhub"
    body = orjson.dumps({"metadata": {"labels": {"$patch": "explode"}}})
    assert failure(POD, body, SMP).code == 400


def test_null_deletes_keys_in_strategic_merge_patch() -> None:
    result = patched(POD, {"metadata": {"labels": {"app": None}}, "status": None}, SMP)
    assert result["metadata"]["labels"] == {"component": "singleuser-server"}
    assert "status" not in result


def test_retain_keys_clears_fields_not_listed() -> None:
    result = patched(
        POD,
        {
            "spec": {
                "volumes": [{"name": "home", "$retainKeys": ["name", "emptyDir"], "emptyDir": {}}]
            }
        },
        SMP,
    )
    assert result["spec"]["volumes"] == [{"name": "home", "emptyDir": {}}]
    bad = orjson.dumps(
        {"spec": {"volumes": [{"name": "home", "$retainKeys": ["name"], "emptyDir": {}}]}}
    )
    assert failure(POD, bad, SMP).code == 400


def test_delete_from_primitive_list_removes_values() -> None:
    result = patched(POD, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["x/a"]}}, SMP)
    assert result["metadata"]["finalizers"] == []


def test_set_element_order_orders_the_merged_list() -> None:
    result = patched(
        POD,
        {
            "status": {
                "$setElementOrder/conditions": [
                    {"type": "Initialized"},
                    {"type": "Ready"},
                    {"type": "PodScheduled"},
                ],
                "conditions": [{"type": "Initialized", "status": "True"}],
            }
        },
        SMP,
    )
    assert [c["type"] for c in result["status"]["conditions"]] == [
        "Initialized",
        "Ready",
        "PodScheduled",
    ]


def test_set_element_order_keeps_server_only_items_in_place() -> None:
    result = patched(
        POD,
        {
            "spec": {
                "$setElementOrder/containers": [{"name": "extra"}, {"name": "notebook"}],
                "containers": [{"name": "extra", "image": "e"}],
            }
        },
        SMP,
    )
    assert [c["name"] for c in result["spec"]["containers"]] == ["extra", "sidecar", "notebook"]


def test_list_items_without_their_merge_key_are_an_error() -> None:
    body = orjson.dumps({"spec": {"containers": [{"image": "httpd"}]}})
    err = failure(POD, body, SMP)
    assert err.code == 500
    assert err.status()["message"] == (
        "map: map[image:httpd] does not contain declared merge key: name"
    )
    assert "reason" not in err.status()


def test_service_ports_merge_by_port() -> None:
    service = {
        "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]},
    }
    result = patched(
        service, {"spec": {"ports": [{"port": 80, "targetPort": 8080}]}}, SMP, resource="services"
    )
    assert result["spec"]["ports"] == [
        {"port": 80, "name": "http", "targetPort": 8080},
        {"port": 443, "name": "https"},
    ]


def test_unknown_resources_merge_maps_and_replace_lists() -> None:
    lease = {"metadata": {"name": "l"}, "spec": {"holderIdentity": "a", "x": [1, 2]}}
    result = patched(lease, {"spec": {"holderIdentity": "b", "x": [3]}}, SMP, resource="leases")
    assert result["spec"] == {"holderIdentity": "b", "x": [3]}


def test_strategic_patch_must_be_an_object() -> None:
    assert failure(POD, b"[]", SMP).code == 400
