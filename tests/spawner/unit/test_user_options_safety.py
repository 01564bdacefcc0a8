"""Nothing a user sends escapes the admin's profile_list (issue 10, item 1).

Every body is checked against the profile that will be applied, with or without a ``profile``
key; what passes is applied, and the property tests below check that the applied result only
holds values the admin allowed.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tornado import web

from kubecache.spawner import profiles
from kubecache.spawner.kubespawner_methods import KubeSpawnerMethods
from kubecache.spawner.profiles import InvalidUserOptions
from tests.spawner.unit.golden import FakeHub, FakeOrmSpawner, FakeUser

BASE_IMAGE = "admin/base:1"
IMAGE_REGEX = r"jupyter/[a-z]+:[0-9]+"


def admin_profiles() -> list[dict[str, Any]]:
    """The default profile itself offers an unlisted image (the KubeSpawner 7.1 hole)."""
    return [
        {
            "display_name": "Default",
            "profile_options": {
                "image": {
                    "display_name": "Image",
                    "choices": {"lab": {"kubespawner_override": {"image": "jupyter/lab:1"}}},
                    "unlisted_choice": {
                        "enabled": True,
                        "validation_regex": IMAGE_REGEX,
                        "kubespawner_override": {"image": "{value}"},
                    },
                },
                "tag": {
                    "display_name": "Disabled free text",
                    "choices": {"stable": {"kubespawner_override": {"cmd": ["stable"]}}},
                    "unlisted_choice": {
                        "enabled": False,
                        "kubespawner_override": {"image": "{value}"},
                    },
                },
            },
        },
        {"display_name": "Other", "slug": "other", "kubespawner_override": {"cpu_limit": 2.0}},
    ]


def spawner_with(profile_list: Any, user_options: Any = None, **config: Any) -> KubeSpawnerMethods:
    from traitlets.config import Config

    cfg = Config({"KubeSpawner": {"profile_list": profile_list, "image": BASE_IMAGE, **config}})
    spawner = KubeSpawnerMethods(
        user=FakeUser("alice"), hub=FakeHub(), orm_spawner=FakeOrmSpawner(""), config=cfg
    )
    spawner.user_options = user_options if user_options is not None else {}
    return spawner


async def refused(user_options: Any, match: str, profile_list: Any = None) -> InvalidUserOptions:
    """Both JupyterHub's early hook and start()'s load refuse, with a 400 and nothing applied."""
    spawner = spawner_with(profile_list or admin_profiles(), user_options)
    with pytest.raises(InvalidUserOptions, match=match) as early:
        await spawner.apply_user_options(spawner, user_options)
    with pytest.raises(InvalidUserOptions, match=match):
        await spawner.load_user_options()
    assert spawner.image == BASE_IMAGE
    assert isinstance(early.value, web.HTTPError)
    assert early.value.status_code == 400
    return early.value


@pytest.mark.parametrize("profile_key", [{}, {"profile": ""}, {"profile": None}])
async def test_an_unlisted_image_without_a_profile_key_meets_the_default_profiles_regex(
    profile_key: dict[str, Any],
) -> None:
    await refused(
        {**profile_key, "image--unlisted-choice": "evil.example/miner:latest"},
        "failed validation regex",
    )


async def test_a_callable_profile_list_is_held_to_the_same_rules() -> None:
    async def dynamic(spawner: Any) -> list[dict[str, Any]]:
        return admin_profiles()

    await refused(
        {"image--unlisted-choice": "evil.example/miner:latest"}, "failed validation regex", dynamic
    )


async def test_an_unlisted_choice_that_is_disabled_is_refused_without_a_profile_key() -> None:
    await refused({"tag--unlisted-choice": "evil/miner:1"}, "tag without being enabled")


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("jupyter/lab:1{username}", "failed validation regex"),
        ("jupyter/lab:1\nevil", "failed validation regex"),
        ("jupyter/lab:1 ", "failed validation regex"),
        ("x" * 2000, "at most 1024"),
    ],
)
async def test_free_text_must_fully_match_and_stay_short(value: str, match: str) -> None:
    await refused({"image--unlisted-choice": value}, match)


async def test_braces_and_control_characters_are_refused_even_without_a_regex() -> None:
    open_list = admin_profiles()
    del open_list[0]["profile_options"]["image"]["unlisted_choice"]["validation_regex"]
    await refused({"image--unlisted-choice": "a{username}"}, "must not contain '{'", open_list)
    await refused({"image--unlisted-choice": "a\x1b[31m"}, "control characters", open_list)


@pytest.mark.parametrize(
    ("user_options", "match"),
    [
        (["profile", "other"], "user_options must be an object, not list"),
        ("other", "user_options must be an object, not str"),
        ({"profile": ["other"]}, "profile must be a string"),
        ({"profile": True}, "profile must be a string"),
        ({"image": 3}, "image must be a string"),
        ({"image--unlisted-choice": {"a": 1}}, "image--unlisted-choice must be a string"),
        ({"image": "nope"}, "No such choice for image in profile default: nope"),
        ({"profile": "missing"}, "No such profile: missing"),
        ({"junk": "x" * 70_000}, "at most 65536 allowed"),
    ],
)
async def test_wrong_shapes_are_a_400_not_a_500(user_options: Any, match: str) -> None:
    await refused(user_options, match)


@pytest.mark.parametrize("saved", ["string", ["profile"], 7, "", []])
async def test_saved_options_that_are_not_an_object_never_fail_the_spawners_creation(
    saved: Any,
) -> None:
    """JupyterHub 5 saves any JSON body as user_options and gives it to every later
    constructor (the hub's start included): refused with a 400 at the start, never a
    TraitError that fails the request or keeps the hub from starting."""
    spawner = KubeSpawnerMethods(
        user=FakeUser("alice"),
        hub=FakeHub(),
        orm_spawner=FakeOrmSpawner(""),
        user_options=saved,
    )
    assert spawner.user_options == saved
    with pytest.raises(InvalidUserOptions, match="user_options must be an object"):
        await spawner.apply_user_options(spawner, saved)
    with pytest.raises(InvalidUserOptions, match="user_options must be an object"):
        await spawner.load_user_options()


async def test_error_messages_repeat_at_most_a_little_of_the_users_text() -> None:
    error = await refused({"profile": "x" * 5000}, "No such profile")
    assert len(error.message) < 400


async def test_the_size_bound_is_an_option() -> None:
    from kubecache.spawner import KubeCacheSpawner

    assert KubeCacheSpawner.user_options_max_bytes.default_value == 64 * 1024
    profile_list = profiles.initialize_profile_list(admin_profiles())
    with pytest.raises(InvalidUserOptions, match="at most 10 allowed"):
        profiles.validate_user_options({"junk": "long enough"}, profile_list, max_bytes=10)


async def test_an_option_without_a_default_refuses_an_empty_body() -> None:
    only_free_text = [
        {
            "display_name": "Free",
            "profile_options": {
                "image": {"unlisted_choice": {"enabled": True, "kubespawner_override": {}}}
            },
        }
    ]
    await refused({}, "Unable to determine a default choice for image", only_free_text)


async def test_an_allowed_unlisted_image_and_extra_keys_are_accepted() -> None:
    spawner = spawner_with(
        admin_profiles(), {"image--unlisted-choice": "jupyter/scipy:2024", "junk": "x"}
    )
    await spawner.load_user_options()
    assert spawner.image == "jupyter/scipy:2024"
    assert spawner.cmd == ["stable"]


async def test_options_of_a_profile_not_applied_are_ignored_not_applied() -> None:
    spawner = spawner_with(admin_profiles(), {"profile": "other", "image--unlisted-choice": "x"})
    await spawner.load_user_options()
    assert spawner.image == BASE_IMAGE
    assert spawner.cpu_limit == 2.0


async def test_a_value_the_option_refuses_is_the_users_400_when_it_is_their_text() -> None:
    cpu = [
        {
            "display_name": "CPU",
            "profile_options": {
                "cpu": {
                    "unlisted_choice": {
                        "enabled": True,
                        "kubespawner_override": {"cpu_limit": "{value}"},
                    }
                }
            },
        }
    ]
    spawner = spawner_with(cpu, {"cpu--unlisted-choice": "lots"})
    with pytest.raises(InvalidUserOptions, match="does not fit cpu_limit"):
        await spawner.load_user_options()


# ------------------------------------------------------------------ property-based

REGEXES = [IMAGE_REGEX, r"[a-z]{1,8}", r"v[0-9]\.[0-9]"]
TEMPLATES = ["{value}", "registry.example/{value}", "{value}-{{x}}", "pre/{value!s}"]

texts = st.one_of(
    st.from_regex(IMAGE_REGEX, fullmatch=True),
    st.from_regex(r"[a-z]{1,8}", fullmatch=True),
    st.text(max_size=30),
    st.sampled_from(["{username}", "a}", "jupyter/lab:1\n", "", "evil/x:1", "v1.2"]),
)
values = st.one_of(texts, st.none(), st.integers(), st.lists(texts, max_size=2), st.booleans())


@st.composite
def admin_profile_lists(draw: st.DrawFn) -> list[dict[str, Any]]:
    profile_list = []
    for index in range(draw(st.integers(1, 3))):
        options: dict[str, Any] = {}
        for name in ("image", "tag"):
            choices = {
                f"c{n}": {"kubespawner_override": {"image": f"choice/{name}-{n}:1"}}
                for n in range(draw(st.integers(0, 2)))
            }
            enabled = draw(st.booleans()) or not choices
            unlisted: dict[str, Any] = {
                "enabled": enabled,
                "kubespawner_override": {"image": draw(st.sampled_from(TEMPLATES))},
            }
            regex = draw(st.sampled_from([None, *REGEXES]))
            if regex:
                unlisted["validation_regex"] = regex
            options[name] = {"display_name": name, "choices": choices, "unlisted_choice": unlisted}
        profile = {
            "display_name": f"P {index}",
            "kubespawner_override": {"image": f"profile/{index}:1"},
            "profile_options": options,
        }
        if draw(st.booleans()):
            profile["default"] = True
        profile_list.append(profile)
    return profile_list


def free_texts(regexes: list[str]) -> st.SearchStrategy[Any]:
    """Text that matches the admin's regexes, almost matches them, or is anything at all."""
    near = [st.from_regex(regex, fullmatch=True) for regex in regexes]
    # a match followed by more passes a regex anchored only at the start (7.1's re.match)
    longer = [st.builds(str.__add__, n, st.text(min_size=1, max_size=4)) for n in near]
    return st.one_of(*near, *longer, values)


@st.composite
def bodies(draw: st.DrawFn, profile_list: list[dict[str, Any]]) -> dict[str, Any]:
    regexes = [
        option["unlisted_choice"]["validation_regex"]
        for profile in profile_list
        for option in profile["profile_options"].values()
        if option["unlisted_choice"].get("validation_regex")
    ]
    keys = ["profile", "image", "tag", "image--unlisted-choice", "tag--unlisted-choice", "junk"]
    # option-like names of spawner traits: sent by a hostile client, never applied
    keys += ["cmd", "cpu_limit", "environment", "cmd--unlisted-choice"]
    body = {}
    for key in (key for key in keys if draw(st.booleans())):
        if key == "profile":
            body[key] = draw(st.one_of(st.sampled_from(["", "p-0", "p-1", "p-2", "nope"]), values))
        elif key in ("image", "tag"):
            body[key] = draw(st.one_of(st.sampled_from(["c0", "c1", "c9"]), values))
        else:
            body[key] = draw(free_texts(regexes))
    return body


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    profile_list = draw(admin_profile_lists())
    return profile_list, draw(bodies(profile_list))


def allowed_images(profile_list: list[dict[str, Any]], body: dict[str, Any]) -> set[str]:
    """Every image the admin allowed for this body: the base, profile and choice images, and an
    enabled unlisted choice's template filled with text that passes its regex."""
    allowed = {BASE_IMAGE}
    for profile in profile_list:
        allowed.add(profile["kubespawner_override"]["image"])
        for name, option in profile["profile_options"].items():
            allowed.update(c["kubespawner_override"]["image"] for c in option["choices"].values())
            unlisted = option["unlisted_choice"]
            text = body.get(f"{name}--unlisted-choice")
            regex = unlisted.get("validation_regex")
            if not (unlisted["enabled"] and isinstance(text, str) and text):
                continue
            if (regex and not re.fullmatch(regex, text)) or re.search(r"[{}\x00-\x1f]", text):
                continue
            allowed.add(profiles.format_value(unlisted["kubespawner_override"]["image"], text))
    return allowed


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios())
def test_no_accepted_body_yields_an_image_the_admin_did_not_allow(
    scenario: tuple[list[dict[str, Any]], dict[str, Any]],
) -> None:
    profile_list, body = scenario

    async def apply() -> tuple[str, set[str]] | None:
        spawner = spawner_with(profile_list, body)
        before = dict(spawner.trait_values())
        try:
            await spawner.apply_user_options(spawner, body)
        except InvalidUserOptions:
            with pytest.raises(InvalidUserOptions):
                await spawner.load_user_options()
            assert spawner.image == BASE_IMAGE
            return None
        await spawner.load_user_options()
        after = spawner.trait_values()
        changed = {name for name, value in after.items() if before.get(name) != value}
        return str(spawner.image), changed

    applied = asyncio.run(apply())
    if applied is not None:
        image, changed = applied
        assert image in allowed_images(profile_list, body)
        assert not re.search(r"[\x00-\x1f]", image)
        # the admin's overrides only name the image: nothing else a body says is applied
        assert changed <= {"image"}, changed


@settings(max_examples=200, deadline=None)
@given(body=st.dictionaries(st.text(max_size=12), values, max_size=5))
def test_any_json_body_is_accepted_or_refused_with_a_400_never_an_exception(
    body: dict[str, Any],
) -> None:
    profile_list = profiles.initialize_profile_list(admin_profiles())
    try:
        profiles.validate_user_options(body, profile_list)
    except InvalidUserOptions as e:
        assert e.status_code == 400
        assert e.jupyterhub_message
