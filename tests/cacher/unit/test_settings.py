"""Settings from flags and KUBECACHE_* env vars, validated before connecting."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubecache.cacher.settings import (
    SettingsError,
    label_selector_problem,
    load_settings,
    parse_duration,
)


@pytest.fixture
def kubeconfig(tmp_path: Path) -> str:
    path = tmp_path / "kubeconfig"
    path.write_text("apiVersion: v1\nkind: Config\n")
    return str(path)


def test_defaults_track_singleuser_pods_in_every_namespace(kubeconfig: str) -> None:
    settings = load_settings(["--kubeconfig", kubeconfig], env={})
    assert settings.pod_selector == "component=singleuser-server"
    assert settings.namespaces == ()
    assert (settings.lease_duration, settings.renew_deadline, settings.retry_period) == (15, 10, 2)
    assert settings.lease_name == "kubecache-cacher"
    assert (settings.health_host, settings.health_port) == ("0.0.0.0", 8080)
    assert settings.identity  # hostname + random
    assert not settings.once


def test_environment_variables_configure_and_flags_win(kubeconfig: str) -> None:
    env = {
        "KUBECACHE_KUBECONFIG": kubeconfig,
        "KUBECACHE_NAMESPACES": "jhub, other,jhub",
        "KUBECACHE_LEASE_DURATION": "30s",
        "KUBECACHE_RENEW_DEADLINE": "20",
        "KUBECACHE_LOG_LEVEL": "debug",
        "KUBECACHE_ONCE": "true",
        "KUBECACHE_IDENTITY": "from-env",
    }
    settings = load_settings(["--identity", "from-flag"], env=env)
    assert settings.kubeconfig == kubeconfig
    assert settings.namespaces == ("jhub", "other")
    assert (settings.lease_duration, settings.renew_deadline) == (30, 20)
    assert settings.log_level == "DEBUG"
    assert settings.once
    assert settings.identity == "from-flag"


def test_kubeconfig_env_var_is_the_fallback(kubeconfig: str) -> None:
    assert load_settings([], env={"KUBECONFIG": kubeconfig}).kubeconfig == kubeconfig


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--redis-url", "http://localhost"], "scheme"),
        (["--redis-password-file", "/nonexistent/pw"], "does not exist"),
        (["--pod-selector", "component in (a"], "label selector"),
        (["--pod-selector", "bad key!=x"], "label selector"),
        (["--lease-duration", "ten"], "not a duration"),
        (["--lease-duration", "0"], "greater than zero"),
        (["--renew-deadline", "15"], "shorter than the lease duration"),
        (["--retry-period", "10"], "shorter than the renew deadline"),
        (["--namespaces", "Bad_NS"], "namespace name"),
        (["--namespaces", ",,"], "names no namespace"),
        (["--namespaces", " , "], "names no namespace"),
        (["--progress-stale-after", "3"], "6 s or more"),
        (["--key-prefix", "nocolon"], "must end with ':'"),
        (["--health-port", "70000"], "at most 65535"),
        (["--event-log-cap", "0"], "at least 1"),
        (["--log-format", "xml"], "text or json"),
    ],
)
def test_bad_settings_are_refused_with_a_message_naming_the_fix(
    kubeconfig: str, args: list[str], words: str
) -> None:
    with pytest.raises(SettingsError, match=words):
        load_settings(["--kubeconfig", kubeconfig, *args], env={})


def test_a_missing_kubeconfig_is_refused() -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(["--kubeconfig", "/nonexistent/kubeconfig"], env={})


def test_in_cluster_outside_a_pod_is_refused() -> None:
    with pytest.raises(SettingsError, match="--in-cluster"):
        load_settings(["--in-cluster"], env={})


def test_an_env_var_error_names_the_env_var(kubeconfig: str) -> None:
    with pytest.raises(SettingsError, match="KUBECACHE_STALL_TIMEOUT"):
        load_settings(["--kubeconfig", kubeconfig], env={"KUBECACHE_STALL_TIMEOUT": "soon"})


@pytest.mark.parametrize(
    ("text", "seconds"), [("15", 15), ("1.5", 1.5), ("500ms", 0.5), ("2m", 120), ("1h", 3600)]
)
def test_durations_accept_units(text: str, seconds: float) -> None:
    assert parse_duration(text, name="x") == seconds


@pytest.mark.parametrize(
    "selector",
    [
        "",
        "component=singleuser-server",
        "app==jupyterhub,component!=hub",
        "hub.jupyter.org/username",
        "!hub.jupyter.org/network-access-hub",
        "component in (singleuser-server, other),release notin (x)",
    ],
)
def test_valid_label_selectors_pass(selector: str) -> None:
    assert label_selector_problem(selector) is None


@pytest.mark.parametrize("selector", ["a=b,", "in (x)", "a in ()", "-bad=x", "a=b c"])
def test_invalid_label_selectors_are_found(selector: str) -> None:
    assert label_selector_problem(selector) is not None


def test_the_redis_password_comes_from_the_environment_not_a_flag(kubeconfig: str) -> None:
    settings = load_settings(
        ["--kubeconfig", kubeconfig, "--redis-username", "cacher"],
        env={"KUBECACHE_REDIS_PASSWORD": "pw"},
    )
    assert settings.redis.credentials() == ("cacher", "pw")
    assert "pw" not in repr(settings)


def test_the_progress_promise_caps_the_watch_timeout_and_the_stall_timeout(
    kubeconfig: str,
) -> None:
    settings = load_settings(["--kubeconfig", kubeconfig], env={})
    assert settings.progress_stale_after == 30
    assert settings.watch_timeout_seconds == 20  # the chart's 300 s would outlive the promise
    assert settings.stall_seconds == 30
    settings = load_settings(
        ["--kubeconfig", kubeconfig, "--watch-timeout", "10", "--stall-timeout", "12"],
        env={"KUBECACHE_PROGRESS_STALE_AFTER": "1m"},
    )
    # the stall timeout never ends a watch before the server could (10 s + 10 % + 2 s)
    assert (settings.watch_timeout_seconds, settings.stall_seconds) == (10, 13)
