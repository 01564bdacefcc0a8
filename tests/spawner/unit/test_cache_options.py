"""Misconfigured cache options are an error when the spawner is configured, saying what to fix.

Before, an invalid prefix or URL made every poll fall back to the
Kubernetes API silently (issue 9 item 7).
"""

from __future__ import annotations

import pytest
from traitlets import TraitError
from traitlets.config import Config

from spawner import KubeCacheSpawner
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
