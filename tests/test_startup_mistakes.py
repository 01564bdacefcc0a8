"""Every start-up mistake of every command is one line saying what to fix, exit code 2.

Each command runs as a real process (``python3 -m``, what the console
scripts call), so a traceback anywhere would show on its stderr.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kubecache import __version__

REPO = Path(__file__).resolve().parents[1]


def run(module: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KUBECACHE_")}
    clean.pop("KUBECONFIG", None)
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        cwd=REPO,
        env={**clean, "PYTHONPATH": str(REPO), **(env or {})},
    )
    return result.returncode, result.stdout, result.stderr


def assert_one_line(code: int, err: str, *words: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    for word in words:
        assert word in err, err


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return path


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("kubecache.cli", "kubecache"),
        ("kubecache.cacher", "kubecache-cacher"),
        ("kubesim.cli", "kubesim"),
    ],
)
def test_every_command_has_a_version(module: str, name: str) -> None:
    code, out, _ = run(module, "--version")
    assert code == 0 and out.strip() == f"{name} {__version__}"


# -- kubesim ---------------------------------------------------------------


def test_kubesim_on_a_busy_port(busy_port: int, tmp_path: Path) -> None:
    code, _, err = run(
        "kubesim.cli", "serve", "--port", str(busy_port), "--kubeconfig-out", str(tmp_path / "k")
    )
    assert_one_line(code, err, f"127.0.0.1:{busy_port}", "in use", "--port")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("- name: n1\n  gpus: 2\n", "unexpected keyword argument 'gpus'"),
        ("nodes: [n1]\n", "expected a list of nodes"),
        ("- [unclosed\n", "not valid JSON/YAML"),
    ],
)
def test_kubesim_with_a_bad_nodes_file(tmp_path: Path, content: str, words: str) -> None:
    nodes = tmp_path / "nodes.yaml"
    nodes.write_text(content)
    code, _, err = run(
        "kubesim.cli", "serve", "--nodes", str(nodes), "--kubeconfig-out", str(tmp_path / "k")
    )
    assert_one_line(code, err, "--nodes", words)


def test_kubesim_with_a_missing_nodes_file(tmp_path: Path) -> None:
    code, _, err = run(
        "kubesim.cli", "serve", "--nodes", str(tmp_path / "none.yaml"),
        "--kubeconfig-out", str(tmp_path / "k"),
    )  # fmt: skip
    assert_one_line(code, err, "--nodes", "cannot read")


def test_kubesim_writing_its_kubeconfig_into_a_missing_directory(tmp_path: Path) -> None:
    code, _, err = run("kubesim.cli", "serve", "--kubeconfig-out", str(tmp_path / "no" / "k"))
    assert_one_line(code, err, "--kubeconfig-out", "does not exist")


def test_kubesim_with_a_bad_log_level(tmp_path: Path) -> None:
    code, _, err = run(
        "kubesim.cli", "serve", "--log-level", "loud", "--kubeconfig-out", str(tmp_path / "k")
    )
    assert_one_line(code, err, "--log-level")


# -- kubecache-cacher --------------------------------------------------------


def test_cacher_with_a_kubeconfig_that_is_not_yaml(tmp_path: Path) -> None:
    bad = tmp_path / "kubeconfig"
    bad.write_text("clusters: [\n  - name: c\n   server: x: y\n")
    code, _, err = run("kubecache.cacher", "--kubeconfig", str(bad))
    assert_one_line(code, err, "not valid YAML", "line")


def test_cacher_with_a_kubeconfig_without_current_context(tmp_path: Path) -> None:
    bad = tmp_path / "kubeconfig"
    bad.write_text("apiVersion: v1\nkind: Config\nclusters: []\n")
    code, _, err = run("kubecache.cacher", "--kubeconfig", str(bad))
    assert_one_line(code, err, "no current-context", "kubectl config use-context")


def test_cacher_with_a_kubeconfig_list_of_missing_files(tmp_path: Path) -> None:
    listed = os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b")])
    code, _, err = run("kubecache.cacher", env={"KUBECONFIG": listed})
    assert_one_line(code, err, "does not exist", "--kubeconfig")


def test_cacher_with_its_health_port_busy(busy_port: int, kubeconfig: Path) -> None:
    code, _, err = run("kubecache.cacher", "--kubeconfig", str(kubeconfig),
        "--health-host", "127.0.0.1", "--health-port", str(busy_port),
    )  # fmt: skip
    assert_one_line(code, err, f"127.0.0.1:{busy_port}", "--health-port", "in use")


def test_cacher_with_a_bad_redis_url(kubeconfig: Path) -> None:
    code, _, err = run(
        "kubecache.cacher",
        "--kubeconfig",
        str(kubeconfig),
        env={"KUBECACHE_REDIS_URL": "http://redis"},
    )
    assert_one_line(code, err, "KUBECACHE_REDIS_URL", "scheme")


# -- kubecache ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "words"),
    [
        (["--key-prefix", "nocolon", "status"], {}, "prefix"),
        (["status", "--redis-url", "http://x"], {}, "scheme"),
        (["servers"], {"KUBECACHE_REDIS_PASSWORD_FILE": "/nonexistent"}, "password_file"),
        (["status"], {"KUBECACHE_STALE_AFTER": "soon"}, "KUBECACHE_STALE_AFTER"),
        (["statsu"], {}, "invalid choice"),
        (["events"], {}, "USER[/SERVER]"),
        (
            ["hub-standby", "--lease-duration", "5", "--renew-deadline", "9", "--", "true"],
            {},
            "renew",
        ),
        (["hub-standby"], {}, "give the hub command after --"),
        (["hub-standby", "--stop-grace", "-1", "--", "true"], {}, "--stop-grace"),
    ],
)
def test_kubecache_usage_mistakes(args: list[str], env: dict[str, str], words: str) -> None:
    code, _, err = run("kubecache.cli", *args, env=env)
    assert_one_line(code, err, words)


def test_kubesim_with_tls_but_no_openssl(tmp_path: Path) -> None:
    code, _, err = run(
        "kubesim.cli", "serve", "--tls", "--kubeconfig-out", str(tmp_path / "k"),
        env={"PATH": str(tmp_path)},  # no openssl on this PATH
    )  # fmt: skip
    assert_one_line(code, err, "--tls", "openssl")


def _all_actions(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.Action]]:
    found = []
    for action in parser._actions:
        found.append((parser.prog, action))
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found.extend(_all_actions(sub))
    return found


def test_every_flag_of_the_cacher_and_kubesim_has_help_and_the_cacher_names_its_variable() -> None:
    from kubecache.cacher.settings import build_parser as cacher_parser
    from kubesim.cli import parser as kubesim_parser

    for prog, action in _all_actions(cacher_parser()) + _all_actions(kubesim_parser()):
        assert action.help, f"{prog} {action.option_strings or action.dest} has no help"
    for _, action in _all_actions(cacher_parser()):
        flag = action.option_strings[-1] if action.option_strings else ""
        if flag.startswith("--") and flag not in ("--help", "--version"):
            variable = "KUBECACHE_" + flag[2:].replace("-", "_").upper()
            assert variable in (action.help or ""), flag
