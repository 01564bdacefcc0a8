"""Every c.KubeSpawner option of KubeSpawner 7.1 (and of the published reference) is ours too."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from kubespawner import KubeSpawner as ReferenceSpawner
from traitlets.config import Config

from kubecache.spawner.config import KubeSpawner
from kubecache.spawner.kubespawner_methods import KubeSpawnerMethods
from kubecache.spawner.naming import TemplateError
from tests.spawner.unit.golden import FakeHub, FakeOrmSpawner, FakeUser

SEED_000 = Path("/work/shared/seeds/000_7ec37396af568058.txt")
REFERENCE_OPTIONS = ReferenceSpawner.class_traits(config=True)
OUR_OPTIONS = KubeSpawner.class_traits(config=True)


def make(
    config: dict[str, object] | None = None, cls: type = KubeSpawnerMethods
) -> KubeSpawnerMethods:
    section = cls.__name__
    return cls(  # type: ignore[no-any-return]
        user=FakeUser("alice"),
        hub=FakeHub(),
        orm_spawner=FakeOrmSpawner(""),
        config=Config({section: dict(config or {})}),
    )


@pytest.mark.parametrize("name", sorted(REFERENCE_OPTIONS))
def test_option_has_kubespawners_type_default_help_and_config_tag(name: str) -> None:
    ours, reference = OUR_OPTIONS[name], REFERENCE_OPTIONS[name]
    assert type(ours).__name__ == type(reference).__name__
    assert repr(ours.default()) == repr(reference.default())
    assert ours.allow_none == reference.allow_none
    assert ours.help == reference.help
    assert ours.metadata.get("config") is True


def test_every_option_of_the_published_reference_exists() -> None:
    if not SEED_000.exists():
        pytest.skip("reference document not available")
    documented = set(re.findall(r"^(\w+) c\.KubeSpawner\.\w+ = ", SEED_000.read_text(), re.M))
    assert len(documented) > 100
    assert documented <= set(OUR_OPTIONS)


def test_kubespawner_7_additions_are_declared() -> None:
    for name in (
        "slug_scheme",
        "remember_pvc_name",
        "handle_legacy_names",
        "slow_spawn_message",
        "slow_spawn_message_threshold",
        "slow_spawn_message_frequency",
        "get_pod_url",
        "services_enabled",
    ):
        assert name in KubeSpawner.class_own_traits()


def test_kubespawner_section_applies_to_subclasses() -> None:
    class KubeCacheSpawner(KubeSpawner):
        pass

    spawner = KubeCacheSpawner(
        user=FakeUser("alice"),
        hub=FakeHub(),
        orm_spawner=FakeOrmSpawner(""),
        config=Config({"KubeSpawner": {"image": "img:1", "cpu_limit": 2.0}}),
    )
    assert (spawner.image, spawner.cpu_limit) == ("img:1", 2.0)


def test_dynamic_defaults_match_kubespawner() -> None:
    spawner = make()
    assert spawner.namespace == "default"
    assert spawner.env_keep == []
    assert spawner.ssl_alt_names_include_local is False
    assert spawner.port == 8888
    assert spawner.options_form == ""
    assert spawner.ssl_alt_names == [
        "DNS:jupyter-alice.default.svc.cluster.local",
        "DNS:jupyter-alice",
        "DNS:jupyter-alice.default",
        "DNS:jupyter-alice.default.svc",
    ]


def test_image_pull_secrets_string_becomes_a_list_with_a_warning() -> None:
    with pytest.warns(DeprecationWarning, match="image_pull_secrets"):
        spawner = make({"image_pull_secrets": "regcred"})
    assert spawner.image_pull_secrets == [{"name": "regcred"}]


def test_working_dir_is_expanded_at_construction() -> None:
    assert make({"working_dir": "/home/{username}"}).working_dir == "/home/alice"


def test_template_fields_cover_the_documented_set() -> None:
    spawner = make({"enable_user_namespaces": True})
    template = (
        "{username}|{userid}|{servername}|{user_server}|{hubnamespace}|{unescaped_username}|"
        "{unescaped_servername}|{safe_username}|{escaped_username}|{pod_name}|{pvc_name}|"
        "{namespace}"
    )
    assert spawner._expand_user_properties(template) == (
        "alice|7||alice|user|alice||alice|alice|jupyter-alice|claim-alice|user-alice"
    )


def test_runtime_methods_are_left_to_the_runtime_class() -> None:
    with pytest.raises(NotImplementedError, match="KubeCacheSpawner"):
        make().start().send(None)


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("${X}-{username}", "KeyError 'X'"),
        ("{0}", "IndexError"),
        ("{username.x}", "AttributeError"),
    ],
)
def test_a_template_that_cannot_be_expanded_says_which_and_what_to_write(
    template: str, problem: str
) -> None:
    spawner = make({"environment": {"TAG": template}})
    with pytest.raises(TemplateError) as raised:
        spawner.get_env()
    message = str(raised.value)
    assert repr(template) in message and problem in message, message
    assert "{username}" in message and "write {{ and }}" in message, message
