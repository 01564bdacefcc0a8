"""The admin's profile_list is checked when the spawner loads it (issue 10, item 2), and an
unlisted choice's override is formatted exactly as KubeSpawner 7.1 formats it (issue 8, item 3).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubecache.spawner.profile_list import ProfileListError
from tests.spawner.unit.golden import make_pair
from tests.spawner.unit.test_user_options_safety import spawner_with

pytestmark = pytest.mark.usefixtures("reference_kubespawner")


def z2jh_profile_list() -> list[dict[str, Any]]:
    """Shapes from zero-to-jupyterhub's and KubeSpawner's documentation, all accepted."""
    return [
        {
            "display_name": "Datascience environment",
            "slug": "datascience",
            "description": "<b>HTML</b> allowed",
            "default": True,
            "kubespawner_override": {
                "image": "jupyter/datascience-notebook:2343e33dec46",
                "cpu_limit": 2,
                "mem_guarantee": "1G",
                "extra_resource_limits": {"nvidia.com/gpu": "1"},
                "lifecycle_hooks": {"postStart": {"exec": {"command": ["true"]}}},
                "singleuser_image_pull_policy": "Always",  # a deprecated alias
                "environment": lambda spawner: {"X": "1"},
            },
            "profile_options": {
                "image": {
                    "display_name": "Image",
                    "choices": {
                        "pytorch": {
                            "display_name": "PyTorch",
                            "default": True,
                            "kubespawner_override": {"image": "pangeo/pytorch-notebook:master"},
                        },
                        "tf": {"display_name": "TensorFlow"},
                    },
                    "unlisted_choice": {
                        "enabled": True,
                        "display_name": "Custom image",
                        "validation_regex": "^pangeo/.*$",
                        "validation_message": "Must be a pangeo image, matching ^pangeo/.*$",
                        "display_name_in_choices": "Other...",
                        "kubespawner_override": {"image": "{value}"},
                    },
                }
            },
            "custom_template_field": ["admins' own keys are kept for their templates"],
        },
        {"display_name": "Minimal", "kubespawner_override": {"image_spec": "minimal:1"}},
    ]


def problems(profile_list: Any) -> list[str]:
    # as a callable profile_list would return it: the trait's own type check does not apply
    spawner = spawner_with([])
    with pytest.raises(ProfileListError) as raised:
        spawner._get_initialized_profile_list(profile_list)
    assert raised.value.status_code == 500
    return raised.value.problems


async def test_zero_to_jupyterhub_style_profile_lists_are_accepted() -> None:
    spawner = spawner_with(z2jh_profile_list(), {"image--unlisted-choice": "pangeo/x:1"})
    await spawner.load_user_options()
    assert spawner.image == "pangeo/x:1"
    assert spawner.image_pull_policy == "Always"
    assert 'value="datascience" checked' in spawner.options_form
    assert "has mistakes" not in spawner.options_form


def broken(path: str, value: Any, profile_list: Any = None) -> Any:
    """The z2jh list with one key set (``a.b.c``) or deleted (value ``...``)."""
    if profile_list is None:
        profile_list = copy.deepcopy(z2jh_profile_list())
    *parents, last = path.split(".")
    target: Any = profile_list
    for key in parents:
        target = target[int(key)] if key.isdigit() else target[key]
    index: Any = int(last) if last.isdigit() else last
    if value is ...:
        del target[index]
    else:
        target[index] = value
    return profile_list


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (
            "1.display_name",
            ...,
            "profile_list[1]: display_name is missing (every profile needs one)",
        ),
        ("1.display_name", 3, "profile_list[1] display_name: must be a string, not int"),
        (
            "0.profile_options.image.choices",
            ["pytorch", "tf"],
            "profile_list[0] ('Datascience environment') profile_options.image.choices: "
            "must be a dict of choice name -> choice, not a list",
        ),
        (
            "0.profile_options",
            [{"image": {}}],
            "profile_list[0] ('Datascience environment') profile_options: "
            "must be a dict of option name -> option, not a list",
        ),
        (
            "0.kubespawner_override.cpu_limt",
            2,
            "profile_list[0] ('Datascience environment') kubespawner_override.cpu_limt: "
            "no such KubeSpawner option",
        ),
        (
            "0.profile_options.image.choices.tf.kubespawner_override",
            {"imag": "x"},
            "profile_options.image.choices.tf kubespawner_override.imag: no such KubeSpawner",
        ),
        (
            "0.profile_options.image.unlisted_choice.validation_regex",
            "pangeo/(",
            "unlisted_choice.validation_regex: 'pangeo/(' does not compile",
        ),
        (
            "0.profile_options.image.unlisted_choice.kubespawner_override",
            {"environment": {"PATH": "${PATH}:{value"}},
            "unlisted_choice kubespawner_override.environment.PATH: '${PATH}:{value' is no "
            "valid format string: expected '}' before end of string",
        ),
        (
            "0.profile_options.image.unlisted_choice.kubespawner_override",
            {"image": "{}"},
            "positional '{}' fields have no value",
        ),
        ("1.kubespawner_override", ["image"], "kubespawner_override: must be a dict"),
        ("1", "not a profile", "profile_list[1]: must be a dict, not str"),
    ],
)
async def test_each_mistake_is_named_by_profile_and_key(
    path: str, value: Any, expected: str
) -> None:
    found = problems(broken(path, value))
    assert len(found) == 1, found
    assert expected in found[0]


async def test_an_option_nobody_can_pick_is_a_mistake() -> None:
    profile_list = broken("0.profile_options.image.unlisted_choice.enabled", False)
    found = problems(broken("0.profile_options.image.choices", ..., profile_list))
    assert found == [
        "profile_list[0] ('Datascience environment') profile_options.image: "
        "has no choices and no enabled unlisted_choice: nobody can pick it"
    ]


async def test_all_mistakes_are_reported_at_once() -> None:
    profile_list = broken("1.display_name", ...)
    profile_list[0]["kubespawner_override"]["nope"] = 1
    assert len(problems(profile_list)) == 2


async def test_the_form_shows_the_mistakes_instead_of_a_500() -> None:
    spawner = spawner_with(broken("0.profile_options.image.choices", ["a", "<b>"]))
    form = spawner.options_form
    assert "profile_options.image.choices: must be a dict" in form
    assert "<b>" not in form.replace("<b>This", "")  # admin text is escaped in the error list


async def test_a_callable_profile_list_is_checked_when_called() -> None:
    async def dynamic(spawner: Any) -> list[dict[str, Any]]:
        return broken("1.display_name", ...)

    spawner = spawner_with(dynamic)
    form = await spawner.options_form(spawner)
    assert "display_name is missing" in form
    with pytest.raises(ProfileListError, match="display_name is missing"):
        await spawner.apply_user_options(spawner, {})
    with pytest.raises(ProfileListError, match="display_name is missing"):
        await spawner.load_user_options()


async def test_a_value_an_option_refuses_names_the_profile() -> None:
    profile_list = broken("1.kubespawner_override.cpu_limit", "two")
    spawner = spawner_with(profile_list, {"profile": "minimal"})
    where = r"profile 'minimal' kubespawner_override\.cpu_limit"
    with pytest.raises(ProfileListError, match=where):
        await spawner.load_user_options()


# ------------------------------------------------------------------ formatting as 7.1 does


TEMPLATES: list[Any] = [
    "${{JUPYTER_USER}}",
    "{value}",
    "{{value}}",
    "{username}/{value}",
    "{value!r}",
    "{value:>12}",
    "}}{{",
    ["{value}", "{{x}}"],
    {"{value}-key": "{{v}}", "nested": {"deep": "{value}{{"}},
    7,
]


@pytest.mark.parametrize("template", TEMPLATES)
async def test_unlisted_overrides_are_formatted_exactly_as_kubespawner_71(template: Any) -> None:
    unlisted = {
        "enabled": True,
        "kubespawner_override": {"environment": {"VALUE": template}, "extra_labels": template},
    }
    if not isinstance(template, dict):
        del unlisted["kubespawner_override"]["extra_labels"]
    profile_list = [{"display_name": "P", "profile_options": {"o": {"unlisted_choice": unlisted}}}]
    pair = make_pair({"profile_list": profile_list}, user_options={"o--unlisted-choice": "v1"})
    await pair.reference.load_user_options()
    await pair.ours.load_user_options()
    assert pair.ours.environment == pair.reference.environment
    assert pair.ours.extra_labels == pair.reference.extra_labels
    if template == "${{JUPYTER_USER}}":
        assert pair.ours.environment["VALUE"] == "${JUPYTER_USER}"
