"""The settings the chart renders are accepted by the cacher's own parser."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kubecache.cacher import credentials
from kubecache.cacher import settings as cacher_settings
from tests.charts.rendering import (
    CHART_DIR,
    CI_VALUES,
    NAMESPACE,
    POD_NAME,
    ci_values,
    container_environment,
)


@pytest.fixture
def in_a_pod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A service-account mount like the one Kubernetes gives the cacher pod."""
    account = tmp_path / "serviceaccount"
    account.mkdir()
    for name, text in (("token", "t"), ("ca.crt", "c"), ("namespace", NAMESPACE)):
        (account / name).write_text(text)
    monkeypatch.setattr(credentials, "SERVICE_ACCOUNT", account)
    files = tmp_path / "mounted"
    files.mkdir()
    return files


def load(values: dict[str, Any], files: Path) -> cacher_settings.Settings:
    env, args = container_environment(values, files)
    env["KUBERNETES_SERVICE_HOST"] = "10.96.0.1"
    return cacher_settings.load_settings(args, env)


@pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.stem)
def test_every_scenario_configures_a_cacher_that_starts(values_file: Path, in_a_pod: Path) -> None:
    settings = load(ci_values(values_file), in_a_pod)
    assert settings.in_cluster is True
    assert settings.identity == POD_NAME
    assert settings.lease_namespace == NAMESPACE
    assert settings.health_port == 8080


def test_the_defaults_watch_the_release_namespace_through_the_in_chart_redis(
    in_a_pod: Path,
) -> None:
    settings = load({}, in_a_pod)
    assert settings.namespaces == (NAMESPACE,)
    assert settings.pod_selector == "component=singleuser-server"
    assert settings.key_prefix == "kubecache:v1:"
    assert settings.redis.url == f"redis://hub-kubecache-redis.{NAMESPACE}.svc:6379/0"
    assert settings.redis.credentials() == ("kubecache-cacher", "secret-from-a-mounted-file")
    assert settings.lease_name == "hub-kubecache-cacher"
    assert (settings.lease_duration, settings.renew_deadline, settings.retry_period) == (15, 10, 2)
    assert settings.log_format == "json"


def test_chart_values_reach_the_cacher_as_settings(in_a_pod: Path) -> None:
    values = ci_values(CHART_DIR / "ci" / "namespaced-values.yaml")
    values["cacher"].update(eventLogCap=40, feedMaxlen=5000, extraArgs=["--log-level", "DEBUG"])
    settings = load(values, in_a_pod)
    assert settings.namespaces == ("jhub-users", "jhub-staff")
    assert settings.pod_selector == "component=singleuser-server,hub.jupyter.org/network-access-hub"
    assert settings.lease_name == "kubecache-leader"
    assert (settings.lease_duration, settings.renew_deadline, settings.retry_period) == (20, 15, 3)
    assert (settings.event_log_cap, settings.feed_maxlen) == (40, 5000)
    assert settings.log_level == "DEBUG"


def test_an_external_tls_redis_gets_user_password_file_and_ca_file(in_a_pod: Path) -> None:
    settings = load(ci_values(CHART_DIR / "ci" / "external-redis-tls-values.yaml"), in_a_pod)
    assert settings.redis.url == "rediss://redis.example.internal:6380/0"
    assert settings.redis.credentials() == ("kubecache", "secret-from-a-mounted-file")
    assert settings.redis.ca_file == str(in_a_pod / "redis-ca" / "ca.crt")
    assert settings.key_prefix == "hub-a:kubecache:v1:"


def test_every_namespace_is_an_explicit_opt_in(in_a_pod: Path) -> None:
    settings = load({"cacher": {"watch": {"clusterWide": True}}}, in_a_pod)
    assert settings.namespaces == ()


def test_lease_timings_that_could_overlap_two_leaders_are_refused_with_the_reason(
    in_a_pod: Path,
) -> None:
    bad = {"cacher": {"leaderElection": {"leaseDuration": "10s", "renewDeadline": "10s"}}}
    with pytest.raises(cacher_settings.SettingsError, match="renew deadline"):
        load(bad, in_a_pod)


def test_the_probes_restart_a_wedged_cacher_and_hand_the_lease_over_within_its_duration(
    in_a_pod: Path,
) -> None:
    from kubecache.cacher.app import Cacher
    from tests.charts.rendering import cacher_deployment, render

    settings = load({}, in_a_pod)
    cacher = Cacher(settings)
    # a leader cut off from Redis gives the Lease up, a standby takes it a retry later
    assert cacher.give_way_after + settings.retry_period < settings.lease_duration
    (container,) = cacher_deployment(render())["spec"]["template"]["spec"]["containers"]
    liveness, readiness = container["livenessProbe"], container["readinessProbe"]
    # liveness (a restart) is /healthz: a wedged process, or a leader that kept a Lease it
    # cannot serve; never /readyz, which fails for a Redis outage on every replica alike
    assert liveness["httpGet"]["path"] == "/healthz"
    assert readiness["httpGet"]["path"] == "/readyz"
    restart_after = cacher.wedged_after + liveness["periodSeconds"] * liveness["failureThreshold"]
    assert restart_after <= 120
    # a short stall (a GC, a big initial list) is not a restart
    assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 20
    assert liveness["timeoutSeconds"] >= 2
