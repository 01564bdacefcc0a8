"""profile_list: the spawn form, form data -> user_options, validation, and applying overrides.

Same semantics and form field names as KubeSpawner 7.1, so saved ``user_options`` and
REST API clients keep working:

- form data ``profile=<slug>`` and ``profile-option-<slug>--<option>=<choice>`` (or
  ``...--<option>--unlisted-choice=<free text>``) become ``{"profile": slug, option: choice,
  "<option>--unlisted-choice": text}``;
- a profile without ``slug`` gets ``slugify(display_name)``; without a ``default`` profile the
  first is the default; an option without a default choice defaults to its first choice;
- ``kubespawner_override`` values may be callables of the spawner (async allowed); dict values
  are merged recursively into the current option value, ``None`` removes a key; in an
  unlisted choice's override ``{value}`` is replaced by the user's text.

Stricter than KubeSpawner 7.1 (deliberately): ``user_options`` are fully validated before
anything is created, with a 400 error the user can read, instead of a ``KeyError`` or
``StopIteration`` half way through ``start()``. Rejected: a non-string profile or option value,
an unknown profile, an unknown choice, an unlisted choice that is not enabled, and free text
that does not *fully* match ``validation_regex`` (7.1 only anchors at the start); the error then
uses ``validation_message`` with ``{value}`` substituted when configured.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader
from slugify import slugify
from tornado import web

from spawner.manifests import resolve, sorted_values

if TYPE_CHECKING:
    from spawner.config import KubeSpawner

UNLISTED_SUFFIX = "--unlisted-choice"
FORM_PREFIX = "profile-option-"


class InvalidUserOptions(web.HTTPError, ValueError):
    """user_options that do not fit the profile list: a 400 whose message JupyterHub shows."""

    def __init__(self, message: str) -> None:
        super().__init__(400, "%s", message, reason="Invalid server options")
        self.message = message
        # JupyterHub shows this attribute of a spawn failure to the user verbatim
        self.jupyterhub_message = message

    def __str__(self) -> str:
        return self.message


# ------------------------------------------------------------------ the profile list


def initialize_profile_list(profile_list: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A deep copy with every implicit default made explicit (slugs, default profile/choices)."""
    profiles = copy.deepcopy(profile_list)
    for profile in profiles:
        if "slug" not in profile:
            profile["slug"] = slugify(profile["display_name"])
        for option in (profile.get("profile_options") or {}).values():
            choices = option.get("choices") or {}
            if choices and not any(c.get("default") for c in choices.values()):
                next(iter(choices.values()))["default"] = True
            unlisted = option.setdefault("unlisted_choice", {})
            unlisted.setdefault("enabled", False)
            if unlisted["enabled"]:
                unlisted.setdefault("display_name_in_choices", "Other...")
    if profiles and not any(p.get("default") for p in profiles):
        profiles[0]["default"] = True
    return profiles


async def current_profile_list(spawner: KubeSpawner) -> list[dict[str, Any]]:
    """The configured profile list (calling it when callable) initialised."""
    raw = sorted_values(spawner.profile_list)
    if callable(raw):
        raw = await resolve(spawner, raw)
    return initialize_profile_list(sorted_values(raw) or [])


def get_profile(slug: str | None, profile_list: list[dict[str, Any]]) -> dict[str, Any]:
    """The profile called ``slug``, or the default profile when ``slug`` is empty."""
    if not slug:
        return next(p for p in profile_list if p.get("default"))
    for profile in profile_list:
        if profile["slug"] == slug:
            return profile
    raise InvalidUserOptions(
        f"No such profile: {slug}. Options include: " + ", ".join(p["slug"] for p in profile_list)
    )


# ------------------------------------------------------------------ validation


def _unlisted_failure(option_name: str, unlisted: Mapping[str, Any], value: str) -> str:
    message = unlisted.get("validation_message")
    if message:
        return f"Invalid value for {option_name}: " + str(message).replace("{value}", value)
    return (
        f"Received unlisted_choice for {option_name} that failed validation regex: "
        f"{value!r} does not match {unlisted.get('validation_regex')!r}."
    )


def validate_user_options(
    user_options: Mapping[str, Any] | None, profile_list: list[dict[str, Any]]
) -> None:
    """Raise InvalidUserOptions when ``user_options`` cannot be applied to ``profile_list``.

    Keys that belong to no option are ignored (REST clients may send extra data), like 7.1.
    """
    if not user_options:
        return
    if not isinstance(user_options, Mapping):
        raise InvalidUserOptions(
            f"user_options must be an object, not {type(user_options).__name__}"
        )
    slug = user_options.get("profile")
    if not slug or not profile_list:
        return
    if not isinstance(slug, str):
        raise InvalidUserOptions(f"profile must be a string (a profile slug), got {slug!r}")
    profile = get_profile(slug, profile_list)
    for name, option in (profile.get("profile_options") or {}).items():
        choice = user_options.get(name)
        free_text = user_options.get(name + UNLISTED_SUFFIX)
        for key, value in ((name, choice), (name + UNLISTED_SUFFIX, free_text)):
            if value is not None and not isinstance(value, str):
                raise InvalidUserOptions(f"{key} must be a string, got {value!r}")
        unlisted = option.get("unlisted_choice") or {}
        if free_text:
            if not unlisted.get("enabled"):
                raise InvalidUserOptions(
                    f"Received unlisted_choice for {name} without being enabled."
                )
            regex = unlisted.get("validation_regex")
            if regex and not re.fullmatch(regex, free_text):
                raise InvalidUserOptions(_unlisted_failure(name, unlisted, free_text))
            # The value lands in fields that are later expanded as {username}-style
            # templates; a brace would fail there (KubeSpawner 7.1 raises KeyError).
            if "{" in free_text or "}" in free_text:
                raise InvalidUserOptions(
                    f"Invalid value for {name}: {free_text!r} must not contain '{{' or '}}'."
                )
        elif choice:
            choices = option.get("choices") or {}
            if choice not in choices:
                raise InvalidUserOptions(
                    f"No such choice for {name} in profile {slug}: {choice}. "
                    f"Options include: {', '.join(choices)}"
                )
        elif not option.get("choices"):
            raise InvalidUserOptions(
                f"Unable to determine a default choice for {name}: enter a value."
            )


# ------------------------------------------------------------------ applying a profile


def recursive_update(target: dict[str, Any], changes: Mapping[str, Any]) -> None:
    """Merge ``changes`` into ``target`` in place: dicts recursively, None deletes a key."""
    for key, value in changes.items():
        if isinstance(value, dict):
            if not isinstance(target.get(key), dict):
                target[key] = {}
            recursive_update(target[key], value)
        elif value is None:
            target.pop(key, None)
        else:
            target[key] = value


def format_value(obj: Any, value: str) -> Any:
    """Replace ``{value}`` in every string (keys too) of a nested structure; other fields stay."""
    if isinstance(obj, str):
        return obj.replace("{value}", value)
    if isinstance(obj, list):
        return [format_value(item, value) for item in obj]
    if isinstance(obj, set):
        return {format_value(item, value) for item in obj}
    if isinstance(obj, dict):
        return {format_value(k, value): format_value(v, value) for k, v in obj.items()}
    return obj


async def apply_overrides(spawner: KubeSpawner, overrides: Mapping[str, Any]) -> None:
    for name, raw in overrides.items():
        value = await resolve(spawner, raw)
        spawner.log.debug(
            ".. overriding KubeSpawner value %s=%s for %s", name, value, spawner.pod_name
        )
        current = getattr(spawner, name)
        if isinstance(value, dict) and isinstance(current, dict):
            merged = copy.deepcopy(current)
            recursive_update(merged, value)
            setattr(spawner, name, merged)
        else:
            setattr(spawner, name, value)


async def load_profile(
    spawner: KubeSpawner, slug: str | None, profile_list: list[dict[str, Any]]
) -> None:
    profile = get_profile(slug, profile_list)
    spawner.log.debug(
        "Applying KubeSpawner override for profile '%s' to %s",
        profile.get("display_name"),
        spawner.pod_name,
    )
    await apply_overrides(spawner, profile.get("kubespawner_override") or {})
    user_options = spawner.user_options or {}
    for name, option in (profile.get("profile_options") or {}).items():
        free_text = user_options.get(name + UNLISTED_SUFFIX)
        choice = user_options.get(name)
        if free_text:
            raw = option["unlisted_choice"].get("kubespawner_override") or {}
            overrides = {k: format_value(v, free_text) for k, v in raw.items()}
        elif choice:
            overrides = option["choices"][choice].get("kubespawner_override") or {}
        else:
            default_choice = next(c for c in option["choices"].values() if c.get("default"))
            overrides = default_choice.get("kubespawner_override") or {}
        await apply_overrides(spawner, overrides)


async def check_user_options(spawner: KubeSpawner, user_options: Mapping[str, Any]) -> None:
    """Raise InvalidUserOptions (HTTP 400) when ``user_options`` fit no profile; change nothing."""
    validate_user_options(user_options, await current_profile_list(spawner))


async def load_user_options(spawner: KubeSpawner) -> None:
    """Validate, then apply the selected (or default) profile and its options' choices."""
    profile_list = await current_profile_list(spawner)
    user_options = spawner.user_options or {}
    validate_user_options(user_options, profile_list)
    selected = user_options.get("profile")
    if profile_list:
        await load_profile(spawner, selected, profile_list)
    elif selected:
        spawner.log.warning(
            "Profile %r requested for %s, but no profile_list is configured",
            selected,
            spawner.pod_name,
        )


# ------------------------------------------------------------------ the form


def options_from_form(spawner: KubeSpawner, formdata: Mapping[str, list[str]]) -> dict[str, Any]:
    """Form data -> user_options (no validation here; load_user_options validates)."""
    user_options: dict[str, Any] = {}
    slug = next(iter(formdata.get("profile") or []), None)
    if slug:
        user_options["profile"] = slug
        prefix = f"{FORM_PREFIX}{slug}--"
        for key, values in formdata.items():
            if key.startswith(prefix) and values:
                user_options[key[len(prefix) :]] = values[0]
    unknown = sorted(k for k in formdata if k != "profile" and not k.startswith(FORM_PREFIX))
    if unknown:
        spawner.log.warning(
            "Ignoring unrecognized form data in spawn request for %s: %s",
            spawner.pod_name,
            ", ".join(unknown),
        )
    return user_options


def template_environment(spawner: KubeSpawner) -> Environment:
    loader = ChoiceLoader(
        [
            FileSystemLoader(spawner.additional_profile_form_template_paths),
            PackageLoader("spawner", "templates"),
        ]
    )
    # no autoescape, like KubeSpawner: admins write HTML into descriptions and templates
    env = Environment(loader=loader, autoescape=False)
    # profiles are shown in the admin's order: |tojson must not sort keys
    env.policies["json.dumps_kwargs"] = {"sort_keys": False}
    return env


def render_form(spawner: KubeSpawner, profile_list: list[dict[str, Any]]) -> str:
    """The options form: profile_form_template, else form.html from the extra paths or ours."""
    profiles = initialize_profile_list(profile_list)
    user_options = spawner.user_options or {}
    if user_options:
        try:
            validate_user_options(user_options, profiles)
        except InvalidUserOptions as e:
            spawner.log.warning(
                "Not pre-selecting saved user_options of %s on the spawn form: %s",
                spawner.pod_name,
                e,
            )
            user_options = {}
    env = template_environment(spawner)
    if spawner.profile_form_template:
        template = env.from_string(spawner.profile_form_template)
    else:
        template = env.get_template("form.html")
    return template.render(profile_list=profiles, user_options=user_options)


def options_form_default(spawner: KubeSpawner) -> Any:
    """'' without profiles; the rendered form; or, for a callable profile_list, a coroutine
    function JupyterHub calls with the spawner to render the form just in time."""
    if not spawner.profile_list:
        return ""
    if callable(spawner.profile_list):

        async def render_dynamically(current: KubeSpawner) -> str:
            raw = await resolve(current, spawner.profile_list)
            return render_form(spawner, sorted_values(raw) or [])

        return render_dynamically
    return render_form(spawner, sorted_values(spawner.profile_list))
