"""The process kubelet mounts volumes: directories under its root, found through rewritten paths."""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kubesim.cluster import NodeSpec
from kubesim.kubelet_process import ProcessKubelet
from kubesim.store import ObjectStore
from tests.kubesim.kubelet.conftest import Cluster
from tests.support.waiting import wait_for

# Reads every path given as an argument (files and directories) and prints what it found.
READER = """
import json, os, sys
found = {}
for path in sys.argv[1:]:
    if os.path.isdir(path):
        found[path] = sorted(os.listdir(path))
    elif os.path.exists(path):
        with open(path) as f:
            found[path] = [f.read(), oct(os.stat(path).st_mode & 0o777)]
    else:
        found[path] = None
found["cwd"] = os.getcwd()
found["CERT"] = os.environ.get("CERT")
print(json.dumps(found), flush=True)
"""


NAMESPACE = {"fieldPath": "metadata.namespace"}


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    store = ObjectStore()
    store.create("namespaces", None, {"metadata": {"name": "jhub"}})
    kubelet = ProcessKubelet([NodeSpec("node-1")], close_grace_period=0.5, root_dir=tmp_path)
    kubelet.attach(store)
    await kubelet.start()
    yield Cluster(store, kubelet)  # type: ignore[arg-type]
    await kubelet.close()


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def phase(cluster: Cluster, name: str) -> str | None:
    pod = cluster.pod(name)
    return pod["status"].get("phase") if pod else None


def run(
    cluster: Cluster,
    name: str,
    args: list[str],
    *,
    mounts: list[dict[str, Any]],
    volumes: list[dict[str, Any]],
    **notebook: Any,
) -> None:
    cluster.create_pod(
        name,
        image="python:3.11",
        annotations={"note": "hello"},
        notebook={"command": [sys.executable], "args": args, "volumeMounts": mounts, **notebook},
        volumes=volumes,
        restartPolicy="Never",
    )


async def output_of(cluster: Cluster, name: str) -> dict[str, Any]:
    await wait_for(lambda: phase(cluster, name) == "Succeeded", timeout=20, message="Succeeded")
    log = cluster.kubelet.read_log("jhub", name, "notebook")
    assert log is not None
    found: dict[str, Any] = json.loads(log)
    return found


async def test_configmap_secret_emptydir_downward_and_projected_volumes(cluster: Cluster) -> None:
    store = cluster.store
    store.create(
        "configmaps",
        "jhub",
        {"metadata": {"name": "hub-config"}, "data": {"jupyterhub_config.py": "c = 1\n"}},
    )
    store.create(
        "secrets",
        "jhub",
        {
            "metadata": {"name": "certs"},
            "data": {"ssl.crt": b64("CERT"), "ssl.key": b64("KEY"), "unused": b64("x")},
        },
    )
    volumes = [
        {"name": "config", "configMap": {"name": "hub-config"}},
        {
            "name": "ssl",
            "secret": {
                "secretName": "certs",
                "defaultMode": 0o400,
                "items": [
                    {"key": "ssl.crt", "path": "ssl.crt", "mode": 0o444},
                    {"key": "ssl.key", "path": "private/ssl.key"},
                ],
            },
        },
        {"name": "scratch", "emptyDir": {}},
        {
            "name": "info",
            "downwardAPI": {
                "items": [
                    {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
                    {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
                ]
            },
        },
        {
            "name": "bundle",
            "projected": {
                "sources": [
                    {"secret": {"name": "certs", "items": [{"key": "ssl.crt", "path": "ca.crt"}]}},
                    {"downwardAPI": {"items": [{"path": "ns", "fieldRef": NAMESPACE}]}},
                ]
            },
        },
    ]
    mounts = [
        {
            "name": "config",
            "mountPath": "/etc/jupyterhub/jupyterhub_config.py",
            "subPath": "jupyterhub_config.py",
        },
        {"name": "ssl", "mountPath": "/etc/jupyterhub/ssl"},
        {"name": "scratch", "mountPath": "/scratch"},
        {"name": "info", "mountPath": "/etc/podinfo"},
        {"name": "bundle", "mountPath": "/var/run/bundle"},
    ]
    paths = [
        "/etc/jupyterhub/jupyterhub_config.py",
        "/etc/jupyterhub/ssl",
        "/etc/jupyterhub/ssl/private/ssl.key",
        "/scratch",
        "/etc/podinfo/name",
        "/etc/podinfo/annotations",
        "/var/run/bundle",
        "/var/run/bundle/ca.crt",
    ]
    run(
        cluster,
        "mounted",
        ["-c", READER, *paths],
        mounts=mounts,
        volumes=volumes,
        env=[{"name": "CERT", "value": "--certfile=/etc/jupyterhub/ssl/ssl.crt"}],
        workingDir="/scratch",
    )
    found = await output_of(cluster, "mounted")
    # The program printed the paths it was given: rewritten to the volumes on this machine.
    shown = dict(zip(paths, [k for k in found if k not in ("cwd", "CERT")], strict=True))
    values = {path: found[shown[path]] for path in paths}
    assert values["/etc/jupyterhub/jupyterhub_config.py"] == ["c = 1\n", "0o644"]
    assert values["/etc/jupyterhub/ssl"] == ["private", "ssl.crt"]  # only the listed items
    assert values["/etc/jupyterhub/ssl/private/ssl.key"] == ["KEY", "0o400"]
    assert values["/scratch"] == []
    assert values["/etc/podinfo/name"] == ["mounted", "0o644"]
    assert values["/etc/podinfo/annotations"] == ['note="hello"', "0o644"]
    assert values["/var/run/bundle"] == ["ca.crt", "ns"]
    assert values["/var/run/bundle/ca.crt"] == ["CERT", "0o644"]
    # workingDir and env values name the same directories.
    assert found["cwd"] == shown["/scratch"]
    certfile = found["CERT"].removeprefix("--certfile=")
    with open(certfile) as cert:  # noqa: ASYNC230 - a small local file
        assert cert.read() == "CERT"
    assert oct(stat.S_IMODE(os.stat(certfile).st_mode)) == "0o444"
    pod = cluster.pod("mounted")
    assert pod is not None
    kubelet: ProcessKubelet = cluster.kubelet  # type: ignore[assignment]
    assert shown["/scratch"].startswith(str(kubelet.root_dir / "pods" / pod["metadata"]["uid"]))


async def test_a_missing_secret_is_a_failed_mount_until_it_exists(cluster: Cluster) -> None:
    volumes = [{"name": "ssl", "secret": {"secretName": "late"}}]
    mounts = [{"name": "ssl", "mountPath": "/etc/ssl-late"}]
    run(cluster, "waiting", ["-c", READER, "/etc/ssl-late"], mounts=mounts, volumes=volumes)
    failed = await wait_for(
        lambda: cluster.event("FailedMount", "waiting"), timeout=10, message="FailedMount"
    )
    assert failed["type"] == "Warning"
    assert failed["message"] == (
        'MountVolume.SetUp failed for volume "ssl" : secret "late" not found'
    )
    pod = cluster.pod("waiting")
    assert pod is not None and not pod["status"].get("podIP")  # no sandbox before the mount
    cluster.store.create("secrets", "jhub", {"metadata": {"name": "late"}, "data": {"k": b64("v")}})
    found = await output_of(cluster, "waiting")
    assert next(v for k, v in found.items() if k not in ("cwd", "CERT")) == ["k"]


async def test_a_claims_files_outlive_the_pod_and_go_with_the_claim(cluster: Cluster) -> None:
    claim = {
        "metadata": {"name": "claim-alice"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    cluster.store.create("persistentvolumeclaims", "jhub", claim)
    volumes = [{"name": "home", "persistentVolumeClaim": {"claimName": "claim-alice"}}]
    mounts = [{"name": "home", "mountPath": "/home/jovyan"}]
    write = "import sys; open(sys.argv[1], 'w').write('kept'); print('{}')"
    run(cluster, "first", ["-c", write, "/home/jovyan/notes.txt"], mounts=mounts, volumes=volumes)
    await output_of(cluster, "first")
    cluster.store.delete("pods", "jhub", "first", grace_period_seconds=0)
    await wait_for(lambda: cluster.pod("first") is None, timeout=10, message="first removed")
    run(cluster, "second", ["-c", READER, "/home/jovyan/notes.txt"], mounts=mounts, volumes=volumes)
    found = await output_of(cluster, "second")
    [(host_path, value)] = [(k, v) for k, v in found.items() if k not in ("cwd", "CERT")]
    assert value == ["kept", "0o644"]
    cluster.store.delete("persistentvolumeclaims", "jhub", "claim-alice")
    await wait_for(lambda: not os.path.exists(host_path), timeout=10, message="claim data gone")


async def test_an_unsupported_volume_type_says_what_is_supported(cluster: Cluster) -> None:
    volumes = [{"name": "nfs", "nfs": {"server": "x", "path": "/"}}]
    run(cluster, "nfs", ["-c", "pass"], mounts=[], volumes=volumes)
    failed = await wait_for(
        lambda: cluster.event("FailedMount", "nfs"), timeout=10, message="FailedMount"
    )
    assert "cannot mount a nfs volume" in failed["message"]


async def test_a_pod_waiting_for_its_mounts_can_be_deleted(cluster: Cluster) -> None:
    volumes = [{"name": "ssl", "secret": {"secretName": "never"}}]
    run(cluster, "stuck", ["-c", "pass"], mounts=[], volumes=volumes)
    await wait_for(lambda: cluster.event("FailedMount", "stuck"), timeout=10, message="FailedMount")
    cluster.store.delete("pods", "jhub", "stuck", grace_period_seconds=30)
    await wait_for(lambda: cluster.pod("stuck") is None, timeout=10, message="the pod removed")
