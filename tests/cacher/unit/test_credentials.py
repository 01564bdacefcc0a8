"""Kubeconfig and service-account credentials without kubernetes_asyncio."""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubecache.cacher.credentials import (
    Authorizer,
    CredentialsError,
    load_incluster,
    load_kubeconfig,
)


def write(tmp_path: Path, user: dict[str, Any], cluster: dict[str, Any] | None = None) -> str:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster or {"server": "https://k8s:6443/"}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u", "namespace": "jhub"}}],
        "current-context": "x",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return str(path)


async def test_a_token_kubeconfig_gives_server_namespace_and_bearer_header(tmp_path: Path) -> None:
    ca = base64.b64encode(b"-----BEGIN CERTIFICATE-----\n").decode()
    access = load_kubeconfig(
        write(tmp_path, {"token": "s3cret"}, {"server": "https://k8s:6443/",
                                             "certificate-authority-data": ca})
    )  # fmt: skip
    assert access.server == "https://k8s:6443"
    assert access.namespace == "jhub"
    assert access.ca_file is not None
    assert open(access.ca_file, "rb").read().startswith(b"-----")  # noqa: ASYNC230, SIM115
    assert await Authorizer(access).header() == "Bearer s3cret"
    assert "s3cret" not in repr(access)


async def test_token_files_are_read_relative_to_the_kubeconfig(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-file\n")
    access = load_kubeconfig(write(tmp_path, {"tokenFile": "token"}))
    assert await Authorizer(access).header() == "Bearer from-file"


async def test_basic_auth_users_get_a_basic_header(tmp_path: Path) -> None:
    access = load_kubeconfig(write(tmp_path, {"username": "admin", "password": "pw"}))
    assert await Authorizer(access).header() == "Basic " + base64.b64encode(b"admin:pw").decode()


async def test_exec_plugins_are_run_for_a_token(tmp_path: Path) -> None:
    script = tmp_path / "plugin.py"
    script.write_text(
        "import json\n"
        "print(json.dumps({'kind': 'ExecCredential', 'status': {'token': 'exec-tok'}}))\n"
    )
    access = load_kubeconfig(
        write(tmp_path, {"exec": {"command": sys.executable, "args": [str(script)],
                                  "apiVersion": "client.authentication.k8s.io/v1"}})
    )  # fmt: skip
    assert await Authorizer(access).header() == "Bearer exec-tok"


def test_a_kubeconfig_without_the_context_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({"clusters": [], "users": [], "contexts": []}))
    with pytest.raises(CredentialsError, match="current-context"):
        load_kubeconfig(str(path))
    with pytest.raises(CredentialsError, match="no context named"):
        load_kubeconfig(str(path), context="nope")


def test_in_cluster_needs_the_service_host() -> None:
    with pytest.raises(CredentialsError, match="KUBERNETES_SERVICE_HOST"):
        load_incluster({})
    access = load_incluster(
        {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    )
    assert access.server == "https://10.0.0.1:443"
    assert access.token_file is not None and access.token_file.endswith("token")
