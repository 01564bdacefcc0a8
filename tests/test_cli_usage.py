"""The kubecache CLI behaves like the tools operators already trust.

Options before or after the subcommand, --version, help that lists every
flag and environment variable, JSON diagnostics with --json, a loud banner
and a distinct exit code when the cache cannot be trusted, and a reason for
every empty result.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kubecache import __version__
from kubecache.cli import EXIT_FAILED, EXIT_OK, EXIT_UNTRUSTED, EXIT_USAGE, main
from kubecache.cli_args import ENVIRONMENT, GLOBAL_OPTIONS, build_parser
from tests.test_cli import KEYS, _run, seeded

__all__ = ["seeded"]

REPO = Path(__file__).resolve().parents[1]


def test_global_options_work_before_and_after_the_subcommand(seeded, redis_server, capsys) -> None:
    before = main(["--redis-url", redis_server.url, "--json", "status"])
    out_before = json.loads(capsys.readouterr().out)
    after = main(["status", "--redis-url", redis_server.url, "--json"])
    out_after = json.loads(capsys.readouterr().out)
    assert before == after == EXIT_OK
    assert out_before["leader"] == out_after["leader"] == "cacher-0"
    code = main(["servers", "--user", "bob", "--redis-url", redis_server.url, "--json"])
    assert code == EXIT_OK and [r["user"] for r in json.loads(capsys.readouterr().out)] == ["bob"]


def test_a_command_line_option_wins_over_its_environment_variable(
    seeded, redis_server, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("KUBECACHE_REDIS_URL", "redis://127.0.0.1:1/0")
    assert main(["status", "--redis-url", redis_server.url]) == EXIT_OK
    monkeypatch.setenv("KUBECACHE_REDIS_URL", redis_server.url)
    monkeypatch.setenv("KUBECACHE_KEY_PREFIX", "elsewhere:")
    assert main(["status"]) == EXIT_UNTRUSTED
    assert main(["status", "--key-prefix", KEYS.prefix]) == EXIT_OK


def test_help_lists_every_flag_and_environment_variable_with_examples(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in GLOBAL_OPTIONS:
        assert option.flag in text
    for name, _ in ENVIRONMENT:
        assert f"KUBECACHE_{name}" in text
    assert "examples:" in text and "exit codes:" in text and "``" not in text
    # Every flag of every subcommand has help text.
    commands = next(a for a in build_parser()._actions if a.dest == "command")
    for name, sub in commands.choices.items():  # type: ignore[union-attr]
        for action in sub._actions:
            assert action.help, f"kubecache {name} {action.option_strings} has no help"


def test_version_is_printed(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"kubecache {__version__}"


@pytest.mark.parametrize(
    "argv",
    [
        ["--json", "no-such-command"],
        ["status", "--json", "--stale-after", "-3"],
        ["servers", "--json", "--no-such-flag"],
    ],
)
def test_usage_errors_with_json_are_json_on_stderr(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == EXIT_USAGE
    captured = capsys.readouterr()
    assert captured.out == ""
    error = json.loads(captured.err)
    assert error["level"] == "error" and "kubecache" in error["message"]


def test_runtime_errors_with_json_are_json_on_stderr(capsys) -> None:
    code = main(["--redis-url", "redis://127.0.0.1:1/0", "servers", "--json"])
    assert code == EXIT_FAILED
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "cannot read Redis" in json.loads(captured.err)["message"]
    code = main(["--redis-url", "http://x", "status", "--json"])
    assert code == EXIT_USAGE and "scheme" in json.loads(capsys.readouterr().err)["message"]


def test_servers_on_a_stale_cache_show_a_banner_and_exit_untrusted(
    seeded, redis_server, capsys
) -> None:
    seeded.hset(KEYS.health, "heartbeat_ms", "1000")
    code, out, err = _run(capsys, redis_server.url, "servers")
    assert code == EXIT_UNTRUSTED
    assert "alice" in out  # still shown, but marked
    assert err.startswith("warning: CACHE STALE") and "heartbeat" in err and "doctor" in err
    code, out, err = _run(capsys, redis_server.url, "servers", "--json")
    assert code == EXIT_UNTRUSTED and json.loads(err)["freshness"] == "stale"
    code, out, err = _run(capsys, redis_server.url, "events", "alice")
    assert code == EXIT_UNTRUSTED and "Started" in out and "CACHE STALE" in err


def test_servers_under_a_prefix_no_cacher_wrote_say_so(seeded, redis_server, capsys) -> None:
    code, out, err = _run(capsys, redis_server.url, "--key-prefix", "typo:v1:", "servers")
    assert code == EXIT_UNTRUSTED
    assert out.strip() == "no servers"
    assert "CACHE UNKNOWN" in err and "no cacher has ever written" in err and "doctor" in err
    code, out, err = _run(capsys, redis_server.url, "--key-prefix", "typo:v1:", "status")
    assert code == EXIT_UNTRUSTED and "no cacher has written under the key prefix" in out


def test_an_empty_result_on_a_fresh_cache_says_why(seeded, redis_server, capsys) -> None:
    code, out, err = _run(capsys, redis_server.url, "servers", "--user", "carol")
    assert code == EXIT_OK
    assert out.strip() == "no servers"
    assert "none of the 2 pods in the cache match --user 'carol'" in err
    seeded.delete(KEYS.pods)
    code, out, err = _run(capsys, redis_server.url, "servers")
    assert code == EXIT_OK and "holds no pods" in err


def test_the_console_script_module_runs_without_a_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    missing = tmp_path / "no-such-password"
    result = subprocess.run(
        [sys.executable, "-m", "kubecache.cli", "status", "--redis-password-file", str(missing)],
        capture_output=True,
        check=False,
        text=True,
        env=env,
        timeout=30,
    )
    assert result.returncode == EXIT_USAGE
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1
    assert "password_file" in result.stderr
