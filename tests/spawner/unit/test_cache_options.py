"""Misconfigured cache options are an error when the spawner is configured, saying what to fix.

Before, an invalid prefix or URL made every poll fall back to the
Kubernetes API silently (issue 9 item 7).
"""

from __future__ import annotations

import pytest
from traitlets import TraitError
from traitlets.config import Config

from kubecache.spawner import KubeCacheSpawner
from tests.spawner.support import mock_hub, mock_user


def configured(**options: object) -> KubeCacheSpawner:
    config = Config()
    for name, value in options.items():
        setattr(config.KubeCacheSpawner, name, value)
    return KubeCacheSpawner(user=mock_user("alice"), hub=mock_hub(), config=config)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"redis_key_prefix": "kubecache"}, "redis_key_prefix .*must end with ':'"),
        ({"redis_key_prefix": ""}, "redis_key_prefix .*must not be empty"),
        ({"redis_key_prefix": "kube cache:"}, "without whitespace"),
        ({"redis_url": "http://redis:6379"}, "redis_url .*scheme must be one of"),
        ({"redis_url": "redis+sentinel://s1:26379"}, "redis_url .*must look like"),
        ({"cache_stale_after": -1.0}, "cache_stale_after .*positive number of seconds"),
        ({"cache_stale_after": 0.0}, "cache_stale_after .*positive"),
        ({"cache_stale_after": float("nan")}, "cache_stale_after .*positive"),
    ],
)
def test_a_bad_cache_option_in_the_config_is_a_clear_error(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(TraitError, match=message):
        configured(**options)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("KUBECACHE_KEY_PREFIX", "nocolon", r"\$KUBECACHE_KEY_PREFIX.*must end with ':'"),
        ("KUBECACHE_REDIS_URL", "tcp://redis:6379", r"\$KUBECACHE_REDIS_URL.*scheme"),
        ("KUBECACHE_STALE_AFTER", "-5", r"\$KUBECACHE_STALE_AFTER.*positive"),
        ("KUBECACHE_STALE_AFTER", "soon", "KUBECACHE_STALE_AFTER='soon' is not a number"),
    ],
)
def test_a_bad_cache_setting_in_the_environment_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(TraitError, match=message):
        configured()


def test_a_good_configuration_constructs(monkeypatch: pytest.MonkeyPatch) -> None:
    spawner = configured(
        redis_url="redis+sentinel://s1:26379,s2:26379/kubecache/0",
        redis_key_prefix="team-a:v1:",
        cache_stale_after=7.5,
    )
    assert spawner.redis_key_prefix == "team-a:v1:"
    assert spawner.cache_stale_after == 7.5


def test_spawners_of_one_configuration_share_one_validated_settings_object() -> None:
    first, second = configured(), configured()
    assert first.redis_settings() is second.redis_settings()
    # the environment-derived options were not stored on the objects to get there
    assert not first.trait_has_value("redis_password")
    other = configured(redis_url="redis://elsewhere:6379/0")
    assert other.redis_settings().url == "redis://elsewhere:6379/0"
    assert other.redis_settings() is not first.redis_settings()


def test_an_option_set_on_the_object_is_used_not_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUBECACHE_REDIS_USERNAME", "from-env")
    spawner = configured()
    assert spawner.redis_settings().username == "from-env"
    spawner.redis_username = "set-here"
    assert spawner.redis_settings().username == "set-here"


def test_the_coverage_labels_are_computed_once_and_again_when_their_options_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kubecache.spawner import manifests

    spawner = configured()
    calls = []
    real = manifests.pod_labels
    monkeypatch.setattr(manifests, "pod_labels", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = spawner.coverage_labels()
    assert spawner.coverage_labels() is first and len(calls) == 1
    spawner.extra_labels = {"team": "{username}"}
    assert spawner.coverage_labels()["team"] == "alice" and len(calls) == 2
    spawner.component_label = "other"
    assert spawner.coverage_labels()["component"] == "other"
    spawner.load_state({})
    spawner.coverage_labels()
    assert len(calls) == 4
