"""Pod volumes are validated with kube-apiserver's field paths and wording; defaults are filled."""

from __future__ import annotations

from typing import Any

import pytest

from kubesim.errors import ApiError
from kubesim.resources import apply_create_defaults
from kubesim.validation import decode, validate_create


def pod_with(volumes: list[dict[str, Any]], mounts: list[dict[str, Any]] | None = None) -> dict:
    container = {"name": "notebook", "image": "jupyter/base:1", "volumeMounts": mounts or []}
    return {"metadata": {"name": "p"}, "spec": {"containers": [container], "volumes": volumes}}


def messages(obj: dict[str, Any]) -> list[str]:
    decode("pods", obj)
    with pytest.raises(ApiError) as caught:
        validate_create("pods", obj)
    assert caught.value.code == 422
    assert caught.value.details is not None
    return [f"{c['field']}: {c['message']}" for c in caught.value.details["causes"]]


def test_null_where_a_name_is_required_is_the_servers_422() -> None:
    found = messages(
        pod_with(
            [
                {"name": "a", "secret": {"secretName": None}},
                {"name": "b", "configMap": {"name": None}},
                {"name": "c", "persistentVolumeClaim": {"claimName": None}},
                {"name": "d"},
                {"name": "e", "emptyDir": {}, "secret": {"secretName": "s"}},
            ]
        )
    )
    assert found == [
        "spec.volumes[0].secret.secretName: Required value",
        "spec.volumes[1].configMap.name: Required value",
        "spec.volumes[2].persistentVolumeClaim.claimName: Required value",
        "spec.volumes[3]: Required value: must specify a volume type",
        "spec.volumes[4].secret: Forbidden: may not specify more than 1 volume type",
    ]


def test_modes_and_item_paths_are_checked() -> None:
    found = messages(
        pod_with(
            [
                {
                    "name": "a",
                    "secret": {
                        "secretName": "s",
                        "defaultMode": 0o1777,
                        "items": [
                            {"key": "k", "path": "/abs"},
                            {"key": None, "path": "../up", "mode": -1},
                        ],
                    },
                }
            ],
            [{"name": "a", "mountPath": "/x", "subPath": "../y"}],
        )
    )
    assert found == [
        "spec.volumes[0].secret.defaultMode: Invalid value: 1023: must be a number between 0 "
        "and 0777 (octal), both inclusive",
        'spec.volumes[0].secret.items[0].path: Invalid value: "/abs": must be a relative path',
        "spec.volumes[0].secret.items[1].key: Required value",
        "spec.volumes[0].secret.items[1].path: Invalid value: \"../up\": must not contain '..'",
        "spec.volumes[0].secret.items[1].path: Invalid value: \"../up\": must not start with '..'",
        "spec.volumes[0].secret.items[1].mode: Invalid value: -1: must be a number between 0 and "
        "0777 (octal), both inclusive",
        'spec.containers[0].volumeMounts[0].subPath: Invalid value: "../y": '
        "must not contain '..'",
    ]


def test_volume_defaults_are_the_api_servers() -> None:
    obj = pod_with(
        [
            {"name": "a", "secret": {"secretName": "s"}},
            {"name": "b", "configMap": {"name": "c"}},
            {"name": "c", "hostPath": {"path": "/data"}},
            {
                "name": "d",
                "projected": {
                    "sources": [
                        {"serviceAccountToken": {"path": "token"}},
                        {"downwardAPI": {"items": [{"path": "n", "fieldRef": {"fieldPath": "x"}}]}},
                    ]
                },
            },
        ]
    )
    apply_create_defaults("pods", obj)
    volumes = obj["spec"]["volumes"]
    assert volumes[0]["secret"] == {"secretName": "s", "defaultMode": 420}
    assert volumes[1]["configMap"] == {"name": "c", "defaultMode": 420}
    assert volumes[2]["hostPath"] == {"path": "/data", "type": ""}
    projected = volumes[3]["projected"]
    assert projected["defaultMode"] == 420
    assert projected["sources"][0]["serviceAccountToken"]["expirationSeconds"] == 3600
    assert projected["sources"][1]["downwardAPI"]["items"][0]["fieldRef"]["apiVersion"] == "v1"
