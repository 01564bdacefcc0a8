"""Misconfigured cache options are an error when the spawner is configured, saying what to fix.

Before, an invalid prefix or URL made every poll fall back to the
Kubernetes API silently (issue 9 item 7).
"""

from __future__ import annotations

import pytest
from traitlets import TraitError, default
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


class _DecoratedDefault(KubeCacheSpawner):
    """A z2jh-style subclass whose default depends on the user (a @default of its own)."""

    @default("redis_username")
    def _per_user_username(self) -> str:
        return f"hub-{self.user.name}"


class _MagicNameDefault(KubeCacheSpawner):
    """A subclass overriding the default by traitlets' ``_<name>_default`` convention."""

    def _redis_key_prefix_default(self) -> str:
        return f"{self.user.name}:v1:"


def test_a_subclass_default_is_honoured_by_the_shortcut_past_traitlets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUBECACHE_REDIS_USERNAME", "from-env")
    plain = configured()
    assert plain.redis_settings().username == "from-env"
    decorated = _DecoratedDefault(user=mock_user("bob"), hub=mock_hub(), config=Config())
    assert decorated.redis_settings().username == "hub-bob" == decorated.redis_username
    magic = _MagicNameDefault(user=mock_user("carol"), hub=mock_hub(), config=Config())
    magic._cache_target = None
    assert magic._option_value("redis_key_prefix") == "carol:v1:" == magic.redis_key_prefix
    # the base class's shortcut still reads the environment as its generator does
    monkeypatch.setenv("KUBECACHE_REDIS_USERNAME", "changed")
    assert configured().redis_settings().username == "changed"


def test_a_value_set_per_instance_is_honoured_before_and_after_the_first_poll(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUBECACHE_REDIS_PASSWORD", "from-env")
    config = Config()
    first = KubeCacheSpawner(user=mock_user("a"), hub=mock_hub(), config=config)
    second = KubeCacheSpawner(
        user=mock_user("b"), hub=mock_hub(), config=config, redis_password="kwarg"
    )
    assert first.redis_settings().password == "from-env"
    assert second.redis_settings().password == "kwarg"
    # hub.extraConfig / a hook setting it on one object; also a set equal to the trait's
    # static default (None), which traitlets does not notify
    first.redis_password = None
    assert first.redis_settings().password is None
    assert (
        KubeCacheSpawner(user=mock_user("c"), hub=mock_hub(), config=config)
        .redis_settings()
        .password
        == "from-env"
    )


def test_the_environment_is_read_once_per_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    """Spawners of one Config (a hub's) read the environment's defaults once between them;
    a new Config reads it again; a value that fails to validate is not remembered."""
    from kubecache.spawner import options

    reads: list[str] = []
    real = options._env
    monkeypatch.setattr(options, "_env", lambda name: reads.append(name) or real(name))
    monkeypatch.setenv("KUBECACHE_REDIS_USERNAME", "first")
    config = Config()
    spawners = [KubeCacheSpawner(user=mock_user(n), hub=mock_hub(), config=config) for n in "abc"]
    reads.clear()  # construction validates the URL and prefix (their own reads)
    assert spawners[0].redis_settings().username == "first"
    once = sorted(reads)
    assert "REDIS_USERNAME" in once
    monkeypatch.setenv("KUBECACHE_REDIS_USERNAME", "second")
    assert [s.redis_settings().username for s in spawners[1:]] == ["first", "first"]
    assert sorted(reads) == once  # no spawner after the first read the environment
    fresh = KubeCacheSpawner(user=mock_user("d"), hub=mock_hub(), config=Config())
    assert fresh.redis_settings().username == "second"


def test_a_forgotten_configuration_takes_its_remembered_environment_with_it() -> None:
    from kubecache.spawner import options

    config = Config()
    KubeCacheSpawner(user=mock_user("a"), hub=mock_hub(), config=config).redis_settings()
    key = (id(config), KubeCacheSpawner)
    assert key in options._READ_FROM_ENVIRONMENT
    del config
    import gc

    gc.collect()  # the spawner and its config may sit in a reference cycle
    assert key not in options._READ_FROM_ENVIRONMENT
