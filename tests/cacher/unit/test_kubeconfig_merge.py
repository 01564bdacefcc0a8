"""KUBECONFIG lists are merged as kubectl merges them; tls-server-name is honoured."""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubecache.cacher.credentials import CredentialsError, kubeconfig_problem, load_kubeconfig


def _file(path: Path, **config: Any) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", **config}))
    return str(path)


def _cluster(name: str, server: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "cluster": {"server": server, **extra}}


def _user(name: str, **user: Any) -> dict[str, Any]:
    return {"name": name, "user": user}


def _context(name: str, cluster: str, user: str, namespace: str = "default") -> dict[str, Any]:
    return {"name": name, "context": {"cluster": cluster, "user": user, "namespace": namespace}}


def test_the_first_file_to_name_an_entry_or_a_current_context_wins(tmp_path: Path) -> None:
    first = _file(
        tmp_path / "a" / "config",
        clusters=[_cluster("prod", "https://first:6443")],
        users=[_user("me", token="first-token")],
    )
    second = _file(
        tmp_path / "b" / "config",
        clusters=[_cluster("prod", "https://second:6443"), _cluster("dev", "https://dev:6443")],
        users=[_user("me", token="second-token")],
        contexts=[_context("work", "prod", "me", "jhub"), _context("play", "dev", "me")],
        **{"current-context": "work"},
    )
    third = _file(tmp_path / "c" / "config", **{"current-context": "play"})
    listed = os.pathsep.join([first, str(tmp_path / "missing"), "", second, third])
    access = load_kubeconfig(listed)
    assert (access.server, access.token, access.namespace) == (
        "https://first:6443",
        "first-token",
        "jhub",
    )
    assert load_kubeconfig(listed, context="play").server == "https://dev:6443"
    assert load_kubeconfig(os.pathsep.join([third, second])).server == "https://dev:6443"


def test_relative_paths_are_relative_to_the_file_that_holds_them(tmp_path: Path) -> None:
    (tmp_path / "users" / "token").parent.mkdir(parents=True)
    (tmp_path / "users" / "token").write_text("t\n")
    clusters = _file(
        tmp_path / "clusters" / "config",
        clusters=[_cluster("c", "https://k:6443", **{"certificate-authority": "ca.crt"})],
        contexts=[_context("x", "c", "u")],
        **{"current-context": "x"},
    )
    users = _file(tmp_path / "users" / "config", users=[_user("u", tokenFile="token")])
    access = load_kubeconfig(os.pathsep.join([clusters, users]))
    assert access.ca_file == str(tmp_path / "clusters" / "ca.crt")
    assert access.token_file == str(tmp_path / "users" / "token")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("clusters: [\n  - name: x\n bad indent", "not valid YAML (line"),
        ("- just\n- a list\n", "not a YAML mapping"),
        ("apiVersion: v1\nkind: Config\n", "no current-context"),
        ("current-context: x\ncontexts: []\n", "no context named 'x'"),
        ("clusters: {a: b}\ncurrent-context: x\n", "clusters must be a list"),
    ],
)
def test_unusable_kubeconfigs_are_one_clear_sentence(
    tmp_path: Path, content: str, words: str
) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(content)
    problem = kubeconfig_problem(str(path))
    assert problem is not None and words in problem and "\n" not in problem
    with pytest.raises(CredentialsError, match="kubeconfig"):
        load_kubeconfig(str(path))


def test_a_list_without_any_existing_file_is_refused(tmp_path: Path) -> None:
    listed = os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b")])
    assert "no kubeconfig file found" in (kubeconfig_problem(listed) or "")


def test_tls_server_name_becomes_the_name_sent_and_verified(tmp_path: Path) -> None:
    path = _file(
        tmp_path / "config",
        clusters=[_cluster("c", "https://10.0.0.1:6443", **{"tls-server-name": "api.internal"})],
        users=[_user("u", token="t")],
        contexts=[_context("x", "c", "u")],
        **{"current-context": "x"},
    )
    access = load_kubeconfig(path)
    assert access.tls_server_name == "api.internal"
    context = access.ssl_context()
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    sslobj = context.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="10.0.0.1")
    assert sslobj.server_hostname == "api.internal"
