"""profile_list: form, form data, validation before anything is created, overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tornado import web

from kubecache.spawner import profiles
from kubecache.spawner.profiles import InvalidUserOptions
from tests.spawner.unit.golden import make_pair

pytestmark = pytest.mark.usefixtures("reference_kubespawner")


def profile_list() -> list[dict[str, Any]]:
    return [
        {
            "display_name": "Small Server!",
            "description": "1 CPU",
            "kubespawner_override": {"cpu_limit": 1.0},
        },
        {
            "display_name": "GPU",
            "slug": "gpu",
            "kubespawner_override": {
                "environment": {"FROM_PROFILE": "1", "REMOVED": None, "NESTED": "x"},
                "mem_limit": lambda spawner: "8G",
            },
            "profile_options": {
                "image": {
                    "display_name": "Image",
                    "choices": {
                        "old": {"display_name": "Old", "kubespawner_override": {"image": "old:1"}},
                        "new": {"display_name": "New", "kubespawner_override": {"image": "new:2"}},
                    },
                    "unlisted_choice": {
                        "enabled": True,
                        "display_name": "Other image",
                        "validation_regex": "jupyter/[a-z]+:[a-z0-9.]+",
                        "validation_message": "{value} is not a jupyter/<name>:<tag> image",
                        "kubespawner_override": {"image": "{value}"},
                    },
                },
                "size": {
                    "display_name": "Size",
                    "choices": {"s": {"display_name": "S"}, "l": {"display_name": "L"}},
                },
                "free": {
                    "display_name": "Free text only",
                    "unlisted_choice": {
                        "enabled": True,
                        "kubespawner_override": {"extra_labels": {"free": "{value}"}},
                    },
                },
            },
        },
    ]


FREE = {"free--unlisted-choice": "text"}


def pair_with(user_options: dict[str, Any], **config: Any) -> Any:
    base = {"profile_list": profile_list(), "environment": {"REMOVED": "r", "KEPT": "k"}}
    base.update(config)
    return make_pair(base, user_options=user_options)


async def test_initialised_profile_list_equals_kubespawners() -> None:
    pair = pair_with({})
    expected = pair.reference._get_initialized_profile_list(profile_list())
    ours = profiles.initialize_profile_list(profile_list())
    for profile in (*expected, *ours):
        profile["kubespawner_override"].pop("mem_limit", None)
    assert ours == expected
    assert ours[0]["slug"] == "small-server"
    assert ours[0]["default"] is True


@pytest.mark.parametrize(
    "formdata",
    [
        {},
        {"profile": ["gpu"]},
        {
            "profile": ["gpu"],
            "profile-option-gpu--image": ["new"],
            "profile-option-gpu--size": ["l"],
        },
        {"profile": ["gpu"], "profile-option-gpu--image--unlisted-choice": ["jupyter/x:1"]},
        {"profile": ["gpu"], "profile-option-small--size": ["s"], "junk": ["1"]},
    ],
)
async def test_form_data_gives_kubespawners_user_options(formdata: dict[str, list[str]]) -> None:
    pair = pair_with({})
    assert pair.ours.options_from_form(formdata) == pair.reference.options_from_form(formdata)


@pytest.mark.parametrize(
    "user_options",
    [
        {"profile": "gpu", **FREE},
        {"profile": "gpu", "image": "new", "size": "l", **FREE},
        {"profile": "gpu", "image--unlisted-choice": "jupyter/scipy:2024.1", **FREE},
        {"profile": "small-server"},
        {},
    ],
)
async def test_applying_a_profile_matches_kubespawner(user_options: dict[str, Any]) -> None:
    pair = pair_with(user_options)
    await pair.reference.load_user_options()
    await pair.ours.load_user_options()
    for name in ("image", "cpu_limit", "mem_limit", "environment", "extra_labels"):
        assert getattr(pair.ours, name) == getattr(pair.reference, name), name


async def test_dict_overrides_merge_recursively_and_none_removes_a_key() -> None:
    pair = pair_with({"profile": "gpu", **FREE})
    await pair.ours.load_user_options()
    assert pair.ours.environment == {"KEPT": "k", "FROM_PROFILE": "1", "NESTED": "x"}
    assert pair.ours.extra_labels == {"free": "text"}


async def test_async_callables_are_awaited_in_overrides_and_profile_list() -> None:
    async def mem(spawner: Any) -> str:
        return "3G"

    async def dynamic(spawner: Any) -> list[dict[str, Any]]:
        return [
            {"display_name": f"For {spawner.user.name}", "kubespawner_override": {"mem_limit": mem}}
        ]

    pair = make_pair({"profile_list": dynamic})
    await pair.ours.load_user_options()
    assert pair.ours.mem_limit == 3 * 1024**3
    form = await pair.ours.options_form(pair.ours)
    assert 'value="for-mock-name"' in form


def _reject(user_options: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidUserOptions, match=match) as raised:
        profiles.validate_user_options(
            user_options, profiles.initialize_profile_list(profile_list())
        )
    assert isinstance(raised.value, web.HTTPError)
    assert raised.value.status_code == 400
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize(
    ("user_options", "match"),
    [
        ({"profile": "huge"}, "No such profile: huge. Options include: small-server, gpu"),
        ({"profile": "gpu", "image": "ancient", **FREE}, "No such choice for image .*old, new"),
        (
            {"profile": "gpu", "size--unlisted-choice": "xl", **FREE},
            "unlisted_choice for size without",
        ),
        (
            {"profile": "gpu", "image--unlisted-choice": "jupyter/x:1 && evil", **FREE},
            "jupyter/x:1 && evil is not a jupyter/<name>:<tag> image",
        ),
        ({"profile": 3}, "profile must be a string"),
        ({"profile": "gpu", "image": ["new"], **FREE}, "image must be a string"),
        ({"profile": "gpu"}, "Unable to determine a default choice for free"),
        (
            {"profile": "gpu", "free--unlisted-choice": "a{username}b"},
            "must not contain '{' or '}'",
        ),
    ],
)
async def test_invalid_user_options_are_refused_with_a_readable_400(
    user_options: dict[str, Any], match: str
) -> None:
    _reject(user_options, match)


async def test_regex_must_match_the_whole_value_without_a_message() -> None:
    options = profile_list()
    del options[1]["profile_options"]["image"]["unlisted_choice"]["validation_message"]
    with pytest.raises(InvalidUserOptions, match="failed validation regex"):
        profiles.validate_user_options(
            {"profile": "gpu", "image--unlisted-choice": "jupyter/a:1 trailing", **FREE},
            profiles.initialize_profile_list(options),
        )


async def test_rest_api_options_are_validated_before_any_change() -> None:
    pair = pair_with({"profile": "gpu", "image": "nope", **FREE})
    before = pair.ours.image
    with pytest.raises(InvalidUserOptions):
        await pair.ours.load_user_options()
    assert pair.ours.image == before
    assert pair.ours.environment == {"REMOVED": "r", "KEPT": "k"}


async def test_unknown_extra_options_are_ignored_like_kubespawner() -> None:
    pair = pair_with({"profile": "gpu", "garbage": {"any": 1}, **FREE})
    await pair.ours.load_user_options()


async def test_a_profile_without_a_profile_list_is_only_logged() -> None:
    pair = make_pair({}, user_options={"profile": "gpu"})
    await pair.ours.load_user_options()


async def test_form_has_kubespawners_field_names_and_preselects_saved_options() -> None:
    pair = pair_with({"profile": "gpu", "size": "l", **FREE})
    form = pair.ours.options_form
    for field in (
        'name="profile"',
        'id="profile-item-small-server"',
        'name="profile-option-gpu--image"',
        'name="profile-option-gpu--size"',
        'data-name="profile-option-gpu--image--unlisted-choice"',
        'name="profile-option-gpu--free--unlisted-choice"',
        'pattern="jupyter/[a-z]+:[a-z0-9.]+"',
        "Other...",
    ):
        assert field in form, field
    assert 'value="gpu" checked' in form
    assert '"size": "l"' in form


async def test_invalid_saved_options_are_not_preselected() -> None:
    form = pair_with({"profile": "gone"}).ours.options_form
    assert 'value="small-server" checked' in form


async def test_profile_form_template_replaces_the_form() -> None:
    template = "{% for p in profile_list %}[{{ p.slug }}]{% endfor %}"
    assert pair_with({}, profile_form_template=template).ours.options_form == "[small-server][gpu]"


async def test_additional_template_paths_are_searched_first(tmp_path: Path) -> None:
    (tmp_path / "form.html").write_text("custom {{ profile_list|length }}")
    pair = pair_with({}, additional_profile_form_template_paths=[str(tmp_path)])
    assert pair.ours.options_form == "custom 2"


async def test_no_profiles_means_no_form() -> None:
    assert make_pair({}).ours.options_form == ""


async def test_jupyterhub_checks_options_before_start_through_apply_user_options() -> None:
    pair = pair_with({})
    hook = pair.ours.apply_user_options
    await hook(pair.ours, {"profile": "gpu", **FREE})  # valid: no error, nothing applied
    before = pair.ours.image
    with pytest.raises(InvalidUserOptions, match="No such profile: huge"):
        await hook(pair.ours, {"profile": "huge"})
    assert pair.ours.image == before
