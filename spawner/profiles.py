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
``StopIteration`` half way through ``start()``, and against the profile that will be applied
in every case: 7.1 skips validation without a ``profile`` key and then applies the default
profile's unlisted choice unchecked (any image). Rejected: a body larger than
``user_options_max_bytes``, a non-string profile or option value, an unknown profile, an
unknown choice, an unlisted choice that is not enabled, and free text that does not *fully*
match ``validation_regex`` (7.1 only anchors at the start), is longer than 1024 characters or
holds braces or control characters; the error then uses ``validation_message`` with
``{value}`` substituted when configured. The admin's profile list itself is checked when it is
loaded (:mod:`kubecache.spawner.profile_list`); its mistakes are shown on the form instead of a 500.

Everything here takes values; setting the overrides on a spawner (resolving callables of it) is the
spawner's ``_apply_overrides``/``_load_profile`` (:mod:`kubecache.spawner.kubespawner_methods`)."""

from __future__ import annotations

import copy
import html
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader
from tornado import web
from traitlets import TraitError

from kubecache.spawner.hub_log import Logger
from kubecache.spawner.option_values import sorted_values
from kubecache.spawner.profile_list import (
    ProfileListError,
    check_profile_list,
    duplicate_slugs,
    initialize_profile_list,
)

UNLISTED_SUFFIX = "--unlisted-choice"
FORM_PREFIX = "profile-option-"
#: default bound of a user_options body (JSON-encoded bytes); the spawner's
#: user_options_max_bytes option sets it
DEFAULT_MAX_BYTES = 64 * 1024
#: longest free text (unlisted choice) accepted: image names, tags, URLs fit easily
MAX_FREE_TEXT = 1024
#: how much of a refused value an error message repeats
SHOWN_CHARACTERS = 120
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


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


def loaded_profile_list(
    raw: Any, *, is_option: Callable[[str], bool], log: Logger
) -> list[dict[str, Any]]:
    """The configured (already called) profile list checked and initialised; ``is_option``
    says whether a ``kubespawner_override`` key names an option of the spawner.

    Raises ProfileListError naming every mistake; nothing is half-applied.
    """
    profile_list = sorted_values(raw) or []
    problems = check_profile_list(profile_list, is_option=is_option)
    if problems:
        error = ProfileListError(problems)
        log.error("%s", error.message)
        raise error
    profiles = initialize_profile_list(profile_list)
    for slug in duplicate_slugs(profiles):
        log.warning(
            "profile_list: several profiles have the slug %r; users can only pick the first", slug
        )
    return profiles


def get_profile(slug: str | None, profile_list: list[dict[str, Any]]) -> dict[str, Any]:
    """The profile called ``slug``, or the default profile when ``slug`` is empty."""
    if not slug:
        return next(p for p in profile_list if p.get("default"))
    for profile in profile_list:
        if profile["slug"] == slug:
            return profile
    slugs = ", ".join(p["slug"] for p in profile_list)
    raise InvalidUserOptions(f"No such profile: {shown(slug)}. Options include: {slugs}")


# ------------------------------------------------------------------ validation


def shown(text: str, limit: int = SHOWN_CHARACTERS) -> str:
    """User text as echoed in an error message: cut to ``limit`` characters."""
    return text if len(text) <= limit else text[:limit] + "..."


def _unlisted_failure(option_name: str, unlisted: Mapping[str, Any], value: str) -> str:
    message = unlisted.get("validation_message")
    if message:
        return f"Invalid value for {option_name}: " + str(message).replace("{value}", shown(value))
    return (
        f"Received unlisted_choice for {option_name} that failed validation regex: "
        f"{shown(value)!r} does not match {unlisted.get('validation_regex')!r}."
    )


def _payload_size(user_options: Mapping[str, Any]) -> int:
    return len(json.dumps(user_options, default=repr, ensure_ascii=False).encode())


def _check_free_text(name: str, unlisted: Mapping[str, Any], free_text: str) -> None:
    if not unlisted.get("enabled"):
        raise InvalidUserOptions(f"Received unlisted_choice for {name} without being enabled.")
    if len(free_text) > MAX_FREE_TEXT:
        raise InvalidUserOptions(
            f"Invalid value for {name}: {len(free_text)} characters, at most {MAX_FREE_TEXT}."
        )
    regex = unlisted.get("validation_regex")
    if regex and not re.fullmatch(regex, free_text):
        raise InvalidUserOptions(_unlisted_failure(name, unlisted, free_text))
    # The value lands in fields that are later expanded as {username}-style
    # templates; a brace would fail there (KubeSpawner 7.1 raises KeyError).
    if "{" in free_text or "}" in free_text:
        raise InvalidUserOptions(
            f"Invalid value for {name}: {shown(free_text)!r} must not contain '{{' or '}}'."
        )
    if CONTROL_CHARACTERS.search(free_text):
        raise InvalidUserOptions(
            f"Invalid value for {name}: {shown(free_text)!r} must not contain control characters."
        )


def validate_user_options(
    user_options: Mapping[str, Any] | None,
    profile_list: list[dict[str, Any]],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> None:
    """Raise InvalidUserOptions when ``user_options`` cannot be applied to ``profile_list``.

    Checked against the profile that will be applied: the named one, else the default
    profile (no ``profile`` key, ``""`` or ``None`` included), so option values sent without
    a profile are held to the default profile's rules. Keys that belong to no option of that
    profile are ignored (REST clients may send extra data) and never applied, like 7.1.
    """
    if user_options is None:
        user_options = {}
    if not isinstance(user_options, Mapping):
        raise InvalidUserOptions(
            f"user_options must be an object, not {type(user_options).__name__}"
        )
    size = _payload_size(user_options)
    if size > max_bytes:
        raise InvalidUserOptions(f"user_options are {size} bytes, at most {max_bytes} allowed.")
    slug = user_options.get("profile")
    if slug is not None and not isinstance(slug, str):
        raise InvalidUserOptions(
            f"profile must be a string (a profile slug), got {shown(repr(slug))}"
        )
    if not profile_list:
        return
    profile = get_profile(slug, profile_list)
    for name, option in (profile.get("profile_options") or {}).items():
        choice = user_options.get(name)
        free_text = user_options.get(name + UNLISTED_SUFFIX)
        for key, value in ((name, choice), (name + UNLISTED_SUFFIX, free_text)):
            if value is not None and not isinstance(value, str):
                raise InvalidUserOptions(f"{shown(key)} must be a string, got {shown(repr(value))}")
        if free_text:
            _check_free_text(name, option.get("unlisted_choice") or {}, free_text)
        elif choice:
            choices = option.get("choices") or {}
            if choice not in choices:
                raise InvalidUserOptions(
                    f"No such choice for {name} in profile {profile['slug']}: {shown(choice)}. "
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


class _KeepUnknownFields(dict[str, str]):
    """format_map mapping: fields other than {value} stay as written ({username} survives)."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def format_value(obj: Any, value: str) -> Any:
    """An unlisted choice's override with the user's text filled in, as KubeSpawner 7.1 does.

    Every string (dict keys too) of a nested str/list/set/dict structure is formatted with
    ``str.format_map``: ``{value}`` becomes the text, ``{{``/``}}`` become ``{``/``}``
    (``"${{HOME}}"`` -> ``"${HOME}"``), other fields such as ``{username}`` stay as written
    for the later expansion; format specs and conversions (``{value!r}``) apply. Other
    types (numbers, tuples, callables) are returned as they are. The user's text itself is
    never parsed as a template.
    """
    if isinstance(obj, str):
        return obj.format_map(_KeepUnknownFields(value=value))
    if isinstance(obj, list):
        return [format_value(item, value) for item in obj]
    if isinstance(obj, set):
        return {format_value(item, value) for item in obj}
    if isinstance(obj, dict):
        return {format_value(k, value): format_value(v, value) for k, v in obj.items()}
    return obj


def _formatted_overrides(
    where: str, overrides: Mapping[str, Any], free_text: str
) -> dict[str, Any]:
    """Top-level override names are kept, their values formatted (7.1 formats values only)."""
    try:
        return {name: format_value(raw, free_text) for name, raw in overrides.items()}
    except (ValueError, LookupError, AttributeError) as e:
        raise ProfileListError([f"{where} kubespawner_override: cannot be formatted: {e}"]) from e


def merged_value(current: Any, value: Any) -> Any:
    """An override's value as set: a dict merges into the option's current dict."""
    if isinstance(value, dict) and isinstance(current, dict):
        merged = copy.deepcopy(current)
        recursive_update(merged, value)
        return merged
    return value


def refused_override(
    error: TraitError, *, name: str, where: str, users_value: bool
) -> InvalidUserOptions | ProfileListError:
    """A value the option refuses: the admin's mistake (ProfileListError), or the user's
    when it holds their free text (400)."""
    if users_value:
        return InvalidUserOptions(f"{where}: the value does not fit {name}: {error}")
    return ProfileListError([f"{where} kubespawner_override.{name}: {error}"])


@dataclass(frozen=True)
class OverrideStep:
    """One ``kubespawner_override`` to apply, where it comes from, and whether it holds the
    user's free text (then a refused value is the user's mistake)."""

    overrides: Mapping[str, Any]
    where: str
    users_value: bool = False


def profile_where(profile: Mapping[str, Any]) -> str:
    """How errors name a profile."""
    return f"profile {profile['slug']!r}"


def option_override_steps(
    profile: Mapping[str, Any], user_options: Mapping[str, Any] | None
) -> list[OverrideStep]:
    """The overrides of the chosen choices of ``profile``'s options, in the order they apply
    (after the profile's own ``kubespawner_override``; validate_user_options has accepted
    ``user_options``)."""
    where = profile_where(profile)
    steps = []
    user_options = user_options or {}
    for name, option in (profile.get("profile_options") or {}).items():
        free_text = user_options.get(name + UNLISTED_SUFFIX)
        choice = user_options.get(name)
        option_where = f"{where} profile_options.{name}"
        if free_text:
            raw = option["unlisted_choice"].get("kubespawner_override") or {}
            overrides = _formatted_overrides(f"{option_where} unlisted_choice", raw, free_text)
            steps.append(OverrideStep(overrides, option_where, users_value=True))
            continue
        if not choice:
            choice = next(key for key, c in option["choices"].items() if c.get("default"))
        overrides = option["choices"][choice].get("kubespawner_override") or {}
        steps.append(OverrideStep(overrides, f"{option_where}.choices.{choice}"))
    return steps


# ------------------------------------------------------------------ the form


def options_from_form(
    formdata: Mapping[str, list[str]], *, pod_name: str, log: Logger
) -> dict[str, Any]:
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
        log.warning(
            "Ignoring unrecognized form data in spawn request for %s: %s",
            pod_name,
            ", ".join(unknown),
        )
    return user_options


def template_environment(template_paths: list[str]) -> Environment:
    loader = ChoiceLoader(
        [
            FileSystemLoader(template_paths),
            PackageLoader("spawner", "templates"),
        ]
    )
    # no autoescape, like KubeSpawner: admins write HTML into descriptions and templates
    env = Environment(loader=loader, autoescape=False)
    # profiles are shown in the admin's order: |tojson must not sort keys
    env.policies["json.dumps_kwargs"] = {"sort_keys": False}
    return env


def error_form(error: ProfileListError) -> str:
    """What the spawn page shows instead of a 500 when the profile list is broken."""
    items = "".join(f"<li>{html.escape(problem)}</li>" for problem in error.problems)
    return (
        '<div class="alert alert-danger" role="alert">'
        "<p>This server cannot be configured: the hub's <code>profile_list</code> has mistakes. "
        "Please tell the hub's administrator:</p>"
        f"<ul>{items}</ul></div>"
    )


def render_form(
    raw_profile_list: Any,
    *,
    is_option: Callable[[str], bool],
    user_options: Mapping[str, Any] | None,
    template_paths: list[str],
    form_template: str,
    pod_name: str,
    log: Logger,
) -> str:
    """The options form: ``form_template`` (profile_form_template), else form.html from the
    extra paths or ours; the list of the profile list's mistakes when it has any."""
    try:
        profiles = loaded_profile_list(raw_profile_list, is_option=is_option, log=log)
    except ProfileListError as e:
        return error_form(e)
    user_options = user_options or {}
    if user_options:
        try:
            validate_user_options(user_options, profiles)
        except InvalidUserOptions as e:
            log.warning(
                "Not pre-selecting saved user_options of %s on the spawn form: %s",
                pod_name,
                e,
            )
            user_options = {}
    env = template_environment(template_paths)
    template = env.from_string(form_template) if form_template else env.get_template("form.html")
    return template.render(profile_list=profiles, user_options=user_options)
