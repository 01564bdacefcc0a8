"""Values are stored as the API server stores them: canonical quantities, null string values."""

from __future__ import annotations

from typing import Any

import pytest

from kubesim.errors import ApiError
from kubesim.quantity import canonical_text
from kubesim.validation import decode, validate_create


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        (1.0, "1"),
        (0.5, "500m"),
        (2, "2"),
        ("1Gi", "1Gi"),
        ("1024Mi", "1Gi"),
        ("1.5Gi", "1536Mi"),
        ("0.5Ki", "512"),  # below 1Ki a binary quantity prints as decimal
        ("1000m", "1"),
        ("1500", "1500"),
        ("1000", "1k"),
        ("100M", "100M"),
        ("1e3", "1e3"),
        ("1000e0", "1e3"),
        ("12e-3", "12e-3"),
        ("0.1", "100m"),
        (None, "0"),
    ],
)
def test_quantities_are_stored_canonically(raw: Any, stored: str) -> None:
    assert canonical_text(raw) == stored


def test_a_pod_stores_canonical_quantities_everywhere_it_has_them() -> None:
    pod: dict[str, Any] = {
        "metadata": {"name": "p", "labels": {"a": None}, "annotations": {"b": None}},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "resources": {"limits": {"cpu": 1.0, "memory": "1024Mi"}, "requests": {}},
                    "env": [
                        {"name": "E", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}
                    ],
                }
            ],
            "initContainers": [{"name": "i", "resources": {"requests": {"cpu": 0.25}}}],
            "overhead": {"cpu": 0.1},
            "nodeSelector": {"disk": None},
            "volumes": [
                {"name": "scratch", "emptyDir": {"sizeLimit": 1073741824}},
                {
                    "name": "info",
                    "downwardAPI": {
                        "items": [
                            {
                                "path": "mem",
                                "resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"},
                            }
                        ]
                    },
                },
            ],
        },
    }
    decode("pods", pod)
    container = pod["spec"]["containers"][0]
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "1Gi"}
    assert container["env"][0]["valueFrom"]["resourceFieldRef"]["divisor"] == "0"
    assert pod["spec"]["initContainers"][0]["resources"]["requests"] == {"cpu": "250m"}
    assert pod["spec"]["overhead"] == {"cpu": "100m"}
    assert pod["spec"]["volumes"][0]["emptyDir"]["sizeLimit"] == "1073741824"
    assert pod["spec"]["volumes"][1]["downwardAPI"]["items"][0]["resourceFieldRef"] == {
        "resource": "limits.memory",
        "divisor": "1Mi",
    }
    assert pod["metadata"]["labels"] == {"a": ""}
    assert pod["metadata"]["annotations"] == {"b": ""}
    assert pod["spec"]["nodeSelector"] == {"disk": ""}


def test_claims_and_nodes_store_canonical_quantities() -> None:
    claim: dict[str, Any] = {
        "metadata": {"name": "c"},
        "spec": {"resources": {"requests": {"storage": 10 * 1024**3}}},
        "status": {"capacity": {"storage": "10240Mi"}},
    }
    decode("persistentvolumeclaims", claim)
    assert claim["spec"]["resources"]["requests"] == {"storage": "10737418240"}
    assert claim["status"]["capacity"] == {"storage": "10Gi"}
    node: dict[str, Any] = {"metadata": {"name": "n"}, "status": {"allocatable": {"cpu": 4}}}
    decode("nodes", node)
    assert node["status"]["allocatable"] == {"cpu": "4"}


def test_a_malformed_quantity_is_a_bad_request_with_the_servers_message() -> None:
    container = {"name": "c", "resources": {"limits": {"cpu": "x"}}}
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [container]}}
    with pytest.raises(ApiError) as caught:
        decode("pods", pod)
    assert caught.value.code == 400
    assert caught.value.message.startswith('Pod in version "v1" cannot be handled as a Pod: ')


def test_a_number_where_a_string_belongs_is_the_decoders_400() -> None:
    container = {"name": "c", "image": "x:1", "env": [{"name": "N", "value": 1}]}
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [container]}}
    with pytest.raises(ApiError) as caught:
        validate_create("pods", pod)
    assert caught.value.code == 400
    assert caught.value.message == (
        'Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal number into Go '
        "struct field EnvVar.spec.containers.env.value of type string"
    )
    container["env"] = [{"name": "N", "value": None}]
    container["args"] = ["--port", 8888]
    with pytest.raises(ApiError) as caught:
        validate_create("pods", pod)
    assert caught.value.message.endswith(
        "cannot unmarshal number into Go struct field Container.spec.containers.args of type string"
    )
