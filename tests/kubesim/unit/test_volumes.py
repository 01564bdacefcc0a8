"""Volume directories and the rewriting of the paths a container is told about."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from kubesim.container_spec import expand
from kubesim.volumes import Mount, MountFailed, PodVolumes, container_mounts, rewrite_paths

MI = "1Mi"
MOUNTS = [
    Mount("/home/jovyan/shared", "/host/shared"),
    Mount("/home/jovyan", "/host/home"),
    Mount("/etc/jupyterhub/ssl", "/host/ssl"),
]


@pytest.mark.parametrize(
    ("text", "rewritten"),
    [
        ("/home/jovyan", "/host/home"),
        ("/home/jovyan/", "/host/home/"),
        ("/home/jovyan/work/a.ipynb", "/host/home/work/a.ipynb"),
        ("/home/jovyan/shared/x", "/host/shared/x"),  # the deeper mount wins
        ("/home/jovyan/sharedx", "/host/home/sharedx"),
        ("/home/jovyan2", "/home/jovyan2"),  # another name, not below the mount
        ("/x/home/jovyan", "/x/home/jovyan"),  # not at a path's start
        ("--certfile=/etc/jupyterhub/ssl/ssl.crt", "--certfile=/host/ssl/ssl.crt"),
        ("a:/home/jovyan:b", "a:/host/home:b"),
        ("open('/etc/jupyterhub/ssl/ca.crt')", "open('/host/ssl/ca.crt')"),
        ("no paths here", "no paths here"),
    ],
)
def test_mount_paths_are_rewritten_as_whole_path_prefixes(text: str, rewritten: str) -> None:
    assert rewrite_paths(text, MOUNTS) == rewritten


def test_container_mounts_resolve_sub_paths_deepest_first(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    container = {
        "volumeMounts": [
            {"name": "home", "mountPath": "/home/jovyan/"},
            {"name": "config", "mountPath": "/etc/app/app.json", "subPath": "app.json"},
            {"name": "home", "mountPath": "/home/jovyan/work", "subPath": "work"},
            {"name": "unknown", "mountPath": "/nowhere"},
        ]
    }
    dirs = {"home": str(tmp_path / "home"), "config": str(tmp_path / "config")}
    mounts = container_mounts(container, dirs)
    assert [(m.mount_path, m.host_path) for m in mounts] == [
        ("/etc/app/app.json", str(tmp_path / "config" / "app.json")),
        ("/home/jovyan/work", str(tmp_path / "home" / "work")),
        ("/home/jovyan", str(tmp_path / "home")),
    ]
    assert (tmp_path / "home" / "work").is_dir()  # a missing subPath directory is created


def volumes(tmp_path: Path, objects: dict[tuple[str, str], dict[str, Any]], **spec: Any) -> Any:
    metadata = {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"b": "2", "a": "1"}}
    pod = {"metadata": metadata, "spec": spec}
    return PodVolumes(
        pod,
        pod_dir=tmp_path / "pod",
        claims_dir=tmp_path / "claims",
        lookup=lambda resource, namespace, name: objects.get((resource, name)),
        issue_token=lambda namespace, account: f"token-{namespace}-{account}",
    )


def test_each_source_fills_its_directory(tmp_path: Path) -> None:
    objects = {
        ("configmaps", "cm"): {
            "data": {"a.txt": "A"},
            "binaryData": {"b.bin": base64.b64encode(b"\0").decode()},
        },
        ("secrets", "s"): {"data": {"k": base64.b64encode(b"secret").decode()}},
        ("persistentvolumeclaims", "claim"): {"metadata": {"uid": "c1"}},
    }
    found = volumes(
        tmp_path,
        objects,
        serviceAccountName="hub",
        containers=[{"name": "c", "resources": {"limits": {"memory": "2Gi"}}}],
        volumes=[
            {"name": "cm", "configMap": {"name": "cm"}},
            {
                "name": "info",
                "downwardAPI": {
                    "items": [
                        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                        {
                            "path": "mem",
                            "resourceFieldRef": {"resource": "limits.memory", "divisor": MI},
                        },
                    ]
                },
            },
            {
                "name": "token",
                "projected": {
                    "sources": [
                        {"serviceAccountToken": {"path": "token"}},
                        {"secret": {"name": "s"}},
                    ]
                },
            },
            {"name": "home", "persistentVolumeClaim": {"claimName": "claim"}},
            {"name": "opt", "secret": {"secretName": "absent", "optional": True}},
        ],
    ).set_up()
    assert (Path(found["cm"]) / "a.txt").read_text() == "A"
    assert (Path(found["cm"]) / "b.bin").read_bytes() == b"\0"
    assert (Path(found["info"]) / "labels").read_text() == 'a="1"\nb="2"'
    assert (Path(found["info"]) / "mem").read_text() == "2048"
    assert (Path(found["token"]) / "token").read_text() == "token-ns-hub"
    assert (Path(found["token"]) / "k").read_text() == "secret"
    assert found["home"] == str(tmp_path / "claims" / "ns" / "claim-c1")
    assert list(Path(found["opt"]).iterdir()) == []


@pytest.mark.parametrize(
    ("volume", "message"),
    [
        ({"name": "v", "configMap": {"name": "gone"}}, 'configmap "gone" not found'),
        (
            {"name": "v", "persistentVolumeClaim": {"claimName": "gone"}},
            'persistentvolumeclaim "gone" not found',
        ),
        (
            {"name": "v", "secret": {"secretName": "s", "items": [{"key": "nokey", "path": "x"}]}},
            "references non-existent secret key: nokey",
        ),
    ],
)
def test_a_missing_source_is_a_failed_mount(tmp_path: Path, volume: dict, message: str) -> None:
    objects = {("secrets", "s"): {"data": {}}}
    with pytest.raises(MountFailed) as caught:
        volumes(tmp_path, objects, volumes=[volume]).set_up()
    assert str(caught.value) == f'MountVolume.SetUp failed for volume "v" : {message}'


def test_a_sub_path_expr_expands_the_containers_env(tmp_path: Path) -> None:
    container = {
        "volumeMounts": [
            {"name": "home", "mountPath": "/home/jovyan", "subPathExpr": "users/$(USER)"},
            {"name": "home", "mountPath": "/escape", "subPathExpr": "$(UP)/x"},
        ]
    }
    env = {"USER": "alice", "UP": ".."}
    mounts = container_mounts(container, {"home": str(tmp_path)}, lambda text: expand(text, env))
    assert [(m.mount_path, m.host_path) for m in mounts] == [
        ("/home/jovyan", str(tmp_path / "users" / "alice"))
    ]
