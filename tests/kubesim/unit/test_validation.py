"""validate_create/validate_update report every problem as the API server does."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubesim.errors import ApiError
from kubesim.validation import validate_create, validate_update


def pod(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "jupyter-alice", "namespace": "jhub", "labels": {"app": "jhub"}},
        "spec": {
            "containers": [
                {
                    "name": "notebook",
                    "image": "jupyter/base:1",
                    "ports": [{"name": "notebook-port", "containerPort": 8888}],
                    "env": [{"name": "JUPYTERHUB_USER", "value": "alice"}],
                    "volumeMounts": [{"name": "home", "mountPath": "/home/jovyan"}],
                    "resources": {
                        "requests": {"cpu": "500m", "memory": "1Gi"},
                        "limits": {"cpu": "2", "memory": "2Gi"},
                    },
                }
            ],
            "volumes": [{"name": "home", "persistentVolumeClaim": {"claimName": "claim-alice"}}],
            "restartPolicy": "OnFailure",
        },
    }
    body["spec"].update(spec)
    return body


def invalid(resource: str, obj: dict[str, Any]) -> ApiError:
    with pytest.raises(ApiError) as caught:
        validate_create(resource, obj)
    return caught.value


def messages(err: ApiError) -> list[str]:
    assert err.details is not None
    return [f"{c['field']}: {c['message']}" for c in err.details["causes"]]


def test_a_typical_kubespawner_pod_is_valid() -> None:
    validate_create("pods", pod())


def test_pod_without_containers_has_the_real_message() -> None:
    err = invalid("pods", pod(containers=[]))
    assert err.code == 422
    assert err.reason == "Invalid"
    assert err.message == 'Pod "jupyter-alice" is invalid: spec.containers: Required value'
    assert err.details == {
        "name": "jupyter-alice",
        "kind": "Pod",
        "causes": [
            {
                "reason": "FieldValueRequired",
                "message": "Required value",
                "field": "spec.containers",
            }
        ],
    }


def test_bad_pod_name_message_is_word_for_word() -> None:
    obj = pod()
    obj["metadata"]["name"] = "Bad_Name"
    err = invalid("pods", obj)
    assert err.message == (
        'Pod "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC '
        "1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
        "start and end with an alphanumeric character (e.g. 'example.com', regex used for "
        "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    )
    assert err.details is not None
    assert err.details["causes"][0]["reason"] == "FieldValueInvalid"


NAME_CASES = [
    ("pods", "a.b.c", True),
    ("pods", "x" * 253, True),
    ("pods", "x" * 254, False),
    ("secrets", "tls.crt-x", True),
    ("configmaps", "UPPER", False),
    ("persistentvolumeclaims", "claim-alice", True),
    ("serviceaccounts", "-sa", False),
    ("events", "jupyter-alice.17a2b3c", True),
    ("leases", "kubecache-cacher", True),
    ("namespaces", "jhub", True),
    ("namespaces", "j.hub", False),
    ("namespaces", "x" * 64, False),
    ("services", "jupyter-alice", True),
    ("services", "1-alice", False),
    ("services", "a.b", False),
    ("nodes", "node-1.example", True),
]


def minimal(resource: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {"name": name}}
    if resource == "pods":
        obj["spec"] = {"containers": [{"name": "c", "image": "i"}]}
    elif resource == "services":
        obj["spec"] = {"ports": [{"port": 80}]}
    elif resource == "persistentvolumeclaims":
        obj["spec"] = {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}},
        }
    return obj


@pytest.mark.parametrize(("resource", "name", "valid"), NAME_CASES)
def test_name_rules_per_kind(resource: str, name: str, valid: bool) -> None:
    obj = minimal(resource, name)
    if valid:
        validate_create(resource, obj)
    else:
        err = invalid(resource, obj)
        assert all(c["field"] == "metadata.name" for c in err.details["causes"])  # type: ignore[index]


def test_name_or_generate_name_is_required() -> None:
    obj = minimal("configmaps", "")
    assert messages(invalid("configmaps", obj)) == [
        "metadata.name: Required value: name or generateName is required"
    ]


def test_generate_name_prefix_may_end_with_a_dash() -> None:
    validate_create("pods", {**minimal("pods", ""), "metadata": {"generateName": "jupyter-"}})
    err = invalid("pods", {**minimal("pods", ""), "metadata": {"generateName": "Jupyter-"}})
    assert messages(err)[0].startswith('metadata.generateName: Invalid value: "Jupyter-"')


def test_kind_and_group_name_the_lease() -> None:
    err = invalid("leases", {"metadata": {"name": "l"}, "spec": {"leaseDurationSeconds": 0}})
    assert err.message == (
        'Lease.coordination.k8s.io "l" is invalid: spec.leaseDurationSeconds: Invalid value: 0: '
        "must be greater than 0"
    )


def test_labels_annotations_and_namespace_are_checked() -> None:
    obj = minimal("configmaps", "c")
    obj["metadata"].update(
        namespace="Bad_NS",
        labels={"Bad Key": "v", "ok": "-bad", "a/b/c": "x"},
        annotations={"x": "y" * (256 * 1024)},
    )
    found = messages(invalid("configmaps", obj))
    assert found[0].startswith('metadata.namespace: Invalid value: "Bad_NS": a lowercase RFC 1123')
    assert any(
        m.startswith('metadata.labels: Invalid value: "Bad Key": name part must') for m in found
    )
    assert any(m.startswith('metadata.labels: Invalid value: "-bad": a valid label') for m in found)
    assert any("a qualified name must consist of" in m for m in found)
    assert found[-1] == "metadata.annotations: Too long: may not be more than 262144 bytes"


def test_cluster_scoped_objects_may_not_carry_a_namespace() -> None:
    err = invalid("namespaces", {"metadata": {"name": "jhub", "namespace": "x"}})
    assert messages(err) == ["metadata.namespace: Forbidden: not allowed on this type"]


def test_owner_references_need_their_identity() -> None:
    obj = minimal("secrets", "s")
    obj["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "Pod", "name": "p"}]
    assert messages(invalid("secrets", obj)) == [
        'metadata.ownerReferences.uid: Invalid value: "": uid must not be empty'
    ]


def test_every_pod_problem_is_reported_at_once() -> None:
    obj = pod(
        initContainers=[{"name": "notebook", "image": "busybox"}],
        containers=[
            {"name": "notebook", "image": "x"},
            {
                "name": "Side_Car",
                "ports": [{"containerPort": 70000, "protocol": "HTTP"}, {"containerPort": 0}],
            },
            {
                "image": "y",
                "volumeMounts": [{"name": "nope", "mountPath": "/x"}],
                "env": [{"value": "v"}],
            },
        ],
        restartPolicy="Sometimes",
    )
    found = messages(invalid("pods", obj))
    assert found == [
        'spec.containers[0].name: Duplicate value: "notebook"',
        'spec.containers[1].name: Invalid value: "Side_Car": a lowercase RFC 1123 label must '
        "consist of lower case alphanumeric characters or '-', and must start and end with an "
        "alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        "spec.containers[1].image: Required value",
        "spec.containers[1].ports[0].containerPort: Invalid value: 70000: must be between 1 and "
        "65535, inclusive",
        'spec.containers[1].ports[0].protocol: Unsupported value: "HTTP": supported values: '
        '"SCTP", "TCP", "UDP"',
        "spec.containers[1].ports[1].containerPort: Required value",
        "spec.containers[2].name: Required value",
        "spec.containers[2].env[0].name: Required value",
        'spec.containers[2].volumeMounts[0].name: Not found: "nope"',
        'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", '
        '"OnFailure", "Never"',
    ]


def test_requests_above_limits_are_invalid_and_extended_resources_must_match() -> None:
    obj = pod()
    obj["spec"]["containers"][0]["resources"] = {
        "requests": {"cpu": "2000m", "memory": "3Gi", "nvidia.com/gpu": "1", "example.com/x": 1},
        "limits": {"cpu": "1", "memory": "2Gi", "nvidia.com/gpu": "2"},
    }
    assert messages(invalid("pods", obj)) == [
        'spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal '
        "to cpu limit of 1",
        'spec.containers[0].resources.requests: Invalid value: "3Gi": must be less than or '
        "equal to memory limit of 2Gi",
        'spec.containers[0].resources.requests: Invalid value: "1": must be equal to '
        "nvidia.com/gpu limit of 2",
        "spec.containers[0].resources.limits: Required value: Limit must be set for non "
        "overcommitable resources",
    ]


def test_negative_quantities_are_invalid_and_malformed_ones_are_a_bad_request() -> None:
    obj = pod()
    obj["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "-1"}}
    assert messages(invalid("pods", obj)) == [
        'spec.containers[0].resources.limits[cpu]: Invalid value: "-1": must be greater than '
        "or equal to 0"
    ]
    obj["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "lots"}}
    err = invalid("pods", obj)
    assert err.code == 400
    assert err.message == (
        'Pod in version "v1" cannot be handled as a Pod: quantities must match the regular '
        "expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )


def test_wrongly_typed_fields_are_a_bad_request() -> None:
    obj = pod()
    obj["metadata"]["labels"] = {"a": 1}
    assert invalid("pods", obj).code == 400
    assert invalid("pods", pod(containers="notebook")).code == 400


def test_duplicate_volumes_and_tolerations_are_checked() -> None:
    obj = pod(
        volumes=[{"name": "home"}, {"name": "home"}],
        tolerations=[
            {"key": "k", "operator": "Exists", "value": "v"},
            {"key": "k", "operator": "Like", "effect": "Sometimes"},
        ],
        activeDeadlineSeconds=0,
        nodeSelector={"bad key": "x"},
    )
    found = messages(invalid("pods", obj))
    assert 'spec.volumes[1].name: Duplicate value: "home"' in found
    assert any(m.startswith("spec.tolerations[0].operator: Invalid value") for m in found)
    assert any(
        m.startswith('spec.tolerations[1].operator: Unsupported value: "Like"') for m in found
    )
    assert any(
        m.startswith('spec.tolerations[1].effect: Unsupported value: "Sometimes"') for m in found
    )
    assert any(m.startswith("spec.activeDeadlineSeconds: Invalid value: 0") for m in found)
    assert any(m.startswith('spec.nodeSelector: Invalid value: "bad key"') for m in found)


def test_pvc_needs_access_modes_and_storage() -> None:
    err = invalid("persistentvolumeclaims", {"metadata": {"name": "claim"}, "spec": {}})
    assert messages(err) == [
        "spec.accessModes: Required value: at least 1 access mode is required",
        "spec.resources[storage]: Required value",
    ]
    bad = {
        "metadata": {"name": "claim"},
        "spec": {
            "accessModes": ["ReadWriteSometimes"],
            "resources": {"requests": {"storage": "0"}},
        },
    }
    found = messages(invalid("persistentvolumeclaims", bad))
    assert found[0].startswith('spec.accessModes: Unsupported value: "ReadWriteSometimes"')
    assert found[1] == 'spec.resources[storage]: Invalid value: "0": must be greater than zero'


def test_service_ports_are_required_unless_headless() -> None:
    assert messages(invalid("services", {"metadata": {"name": "s"}, "spec": {}})) == [
        "spec.ports: Required value"
    ]
    validate_create("services", {"metadata": {"name": "s"}, "spec": {"clusterIP": "None"}})
    obj = {
        "metadata": {"name": "s"},
        "spec": {
            "type": "Magic",
            "selector": {"app": "x"},
            "ports": [
                {"port": 80},
                {"port": 80, "name": "Bad"},
                {"port": 0, "name": "z", "targetPort": 99999},
            ],
        },
    }
    found = messages(invalid("services", obj))
    assert found[0].startswith('spec.type: Unsupported value: "Magic"')
    assert "spec.ports[0].name: Required value" in found
    assert any(m.startswith('spec.ports[1].name: Invalid value: "Bad"') for m in found)
    assert 'spec.ports[1]: Duplicate value: "80/TCP"' in found
    assert "spec.ports[2].port: Required value" in found
    assert any(m.startswith("spec.ports[2].targetPort: Invalid value: 99999") for m in found)


def test_secret_and_configmap_keys_must_be_config_keys() -> None:
    found = messages(invalid("secrets", {"metadata": {"name": "s"}, "data": {"bad key": "eA=="}}))
    assert found == [
        'data[bad key]: Invalid value: "bad key": a valid config key must consist of '
        "alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or "
        "'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
    ]
    cm = {"metadata": {"name": "c"}, "data": {"a": "1"}, "binaryData": {"a": "MQ=="}}
    assert messages(invalid("configmaps", cm)) == [
        'binaryData[a]: Invalid value: "a": duplicate of key present in data'
    ]
    validate_create("configmaps", {"metadata": {"name": "c"}, "data": {"jupyterhub_config.py": ""}})


def test_event_namespace_must_match_its_involved_object() -> None:
    event = {"metadata": {"name": "e", "namespace": "a"}, "involvedObject": {"namespace": "b"}}
    assert messages(invalid("events", event)) == [
        'involvedObject.namespace: Invalid value: "b": does not match event.namespace'
    ]


# --- updates -----------------------------------------------------------------------------------


def test_pod_image_deadline_and_added_tolerations_may_change() -> None:
    old = pod(activeDeadlineSeconds=100, tolerations=[{"key": "a", "operator": "Exists"}])
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "jupyter/base:2"
    new["spec"]["activeDeadlineSeconds"] = 50
    new["spec"]["tolerations"].append({"key": "b", "operator": "Exists"})
    new["metadata"]["labels"] = {"app": "jhub", "extra": "yes"}
    validate_update("pods", old, new)


def test_pod_spec_changes_are_forbidden_with_the_real_message() -> None:
    old = pod()
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["env"] = []
    with pytest.raises(ApiError) as caught:
        validate_update("pods", old, new)
    assert caught.value.code == 422
    assert caught.value.message.startswith(
        'Pod "jupyter-alice" is invalid: spec: Forbidden: pod updates may not change fields '
        "other than `spec.containers[*].image`,"
    )
    assert caught.value.details["causes"][0]["reason"] == "FieldValueForbidden"  # type: ignore[index]


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"nodeName": "node-2"}, "spec: Forbidden"),
        ({"tolerations": []}, "spec: Forbidden"),
        ({"activeDeadlineSeconds": 200}, "must be less than or equal to previous value"),
        ({"activeDeadlineSeconds": None}, "must not update from a positive integer to nil"),
    ],
)
def test_forbidden_pod_updates(change: dict[str, Any], fragment: str) -> None:
    old = pod(activeDeadlineSeconds=100, tolerations=[{"key": "a", "operator": "Exists"}])
    new = copy.deepcopy(old)
    new["spec"].update(change)
    with pytest.raises(ApiError, match=fragment):
        validate_update("pods", old, new)


def test_name_namespace_and_uid_are_immutable() -> None:
    old = minimal("configmaps", "c")
    old["metadata"].update(namespace="jhub", uid="u1")
    new = copy.deepcopy(old)
    new["metadata"].update(name="d", namespace="other", uid="u2")
    with pytest.raises(ApiError) as caught:
        validate_update("configmaps", old, new)
    assert messages(caught.value) == [
        'metadata.name: Invalid value: "d": field is immutable',
        'metadata.namespace: Invalid value: "other": field is immutable',
        'metadata.uid: Invalid value: "u2": field is immutable',
    ]
    del new["metadata"]["uid"]
    new["metadata"].update(name="c", namespace="jhub")
    validate_update("configmaps", old, new)


def test_status_updates_ignore_the_spec() -> None:
    old = pod()
    new = copy.deepcopy(old)
    new["spec"]["nodeName"] = "node-9"
    new["status"] = {"phase": "Running"}
    validate_update("pods", old, new, subresource="status")


def test_pvc_spec_is_immutable_except_growing_storage_and_binding() -> None:
    old = minimal("persistentvolumeclaims", "claim")
    grown = copy.deepcopy(old)
    grown["spec"]["resources"]["requests"]["storage"] = "2Gi"
    grown["spec"]["volumeName"] = "pv-1"
    validate_update("persistentvolumeclaims", old, grown)
    shrunk = copy.deepcopy(old)
    shrunk["spec"]["resources"]["requests"]["storage"] = "1Mi"
    with pytest.raises(ApiError, match="field can not be less than previous value"):
        validate_update("persistentvolumeclaims", old, shrunk)
    changed = copy.deepcopy(old)
    changed["spec"]["accessModes"] = ["ReadWriteMany"]
    with pytest.raises(ApiError, match="spec is immutable after creation"):
        validate_update("persistentvolumeclaims", old, changed)


def test_service_cluster_ip_is_immutable() -> None:
    old = minimal("services", "s")
    old["spec"]["clusterIP"] = "10.0.0.1"
    new = copy.deepcopy(old)
    new["spec"]["clusterIP"] = "10.0.0.2"
    with pytest.raises(ApiError, match=r'spec\.clusterIP: Invalid value: "10\.0\.0\.2": field is'):
        validate_update("services", old, new)


def test_immutable_secrets_keep_their_data() -> None:
    old = {"metadata": {"name": "s"}, "type": "Opaque", "immutable": True, "data": {"a": "eA=="}}
    new = copy.deepcopy(old)
    new["data"] = {"a": "eQ=="}
    new["type"] = "kubernetes.io/tls"
    with pytest.raises(ApiError) as caught:
        validate_update("secrets", old, new)
    assert messages(caught.value) == [
        'type: Invalid value: "kubernetes.io/tls": field is immutable',
        "data: Forbidden: field is immutable when `immutable` is set",
    ]


async def test_objects_made_by_the_real_kubespawner_are_valid() -> None:
    from kubernetes_asyncio.client import ApiClient
    from kubespawner.objects import make_owner_reference, make_pod, make_pvc, make_service

    pod_obj = make_pod(
        name="jupyter-alice",
        cmd=["jupyterhub-singleuser"],
        port=8888,
        image="jupyterhub/singleuser:5",
        image_pull_policy="IfNotPresent",
        image_pull_secrets=["regcred"],
        node_selector={"hub.jupyter.org/node-purpose": "user"},
        env={"JUPYTERHUB_API_TOKEN": "x"},
        working_dir="/home/jovyan",
        labels={"app": "jupyterhub", "hub.jupyter.org/username": "alice"},
        annotations={"hub.jupyter.org/username": "alice"},
        cpu_limit=2,
        cpu_guarantee=0.5,
        mem_limit="2G",
        mem_guarantee="1G",
        extra_resource_limits={"nvidia.com/gpu": "1"},
        extra_resource_guarantees={"nvidia.com/gpu": "1"},
        volumes=[{"name": "home", "persistentVolumeClaim": {"claimName": "claim-alice"}}],
        volume_mounts=[{"name": "home", "mountPath": "/home/jovyan"}],
        tolerations=[
            {
                "key": "hub.jupyter.org/dedicated",
                "operator": "Equal",
                "value": "user",
                "effect": "NoSchedule",
            }
        ],
        init_containers=[{"name": "init", "image": "busybox", "command": ["true"]}],
        extra_containers=[{"name": "side", "image": "nginx"}],
        service_account="default",
        automount_service_account_token=False,
    )
    pvc_obj = make_pvc(
        name="claim-alice",
        storage_class="standard",
        access_modes=["ReadWriteOnce"],
        selector=None,
        storage="10Gi",
        labels={},
        annotations={},
    )
    owner = make_owner_reference("jupyter-alice", "uid-1")
    service_obj = make_service(
        name="jupyter-alice",
        port=8888,
        selector={"a": "b"},
        owner_references=[owner],
        labels={},
        annotations={},
    )
    api = ApiClient()
    try:
        validate_create("pods", api.sanitize_for_serialization(pod_obj))
        validate_create("persistentvolumeclaims", api.sanitize_for_serialization(pvc_obj))
        validate_create("services", api.sanitize_for_serialization(service_obj))
    finally:
        await api.close()
