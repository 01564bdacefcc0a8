"""The admin's ``profile_list``: checked when the spawner loads it, then initialised.

:func:`check_profile_list` turns admin mistakes that KubeSpawner 7.1 only trips over when a user
opens the form or starts a server (a raw ``KeyError``, ``AttributeError`` or ``StopIteration``)
into one :class:`ProfileListError` that names each mistake by profile and key, e.g.::

    profile_list[1] ('GPU') profile_options.image.choices: must be a dict of choice name ->
    choice, not a list

Everything KubeSpawner 7.1 accepts in real zero-to-jupyterhub configs stays accepted: extra keys
in a profile (custom form templates read them), ``default``, ``slug``, ``description``, choices
without ``display_name``, callables anywhere in ``kubespawner_override`` and any option or
deprecated alias of the spawner as an override name. Refused: what cannot work for any user
(no ``display_name`` to derive a slug from, ``profile_options``/``choices`` that are not dicts,
an override name that is no option of the spawner, a ``validation_regex`` that does not compile,
an unlisted choice's override that is not a valid format string, an option nobody can choose).

:func:`initialize_profile_list` makes 7.1's implicit defaults explicit (slugs, default profile
and default choices) on a deep copy.
"""

from __future__ import annotations

import copy
import re
import string
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from slugify import slugify
from tornado import web

PROFILE_KEYS_THAT_ARE_STRINGS = ("display_name", "slug", "description")


class ProfileListError(web.HTTPError, ValueError):
    """profile_list is misconfigured: a 500 (not the user's fault) with every mistake named.

    JupyterHub passes an HTTPError from ``apply_user_options`` through and shows
    ``jupyterhub_message`` on the spawn page; ``problems`` lists one line per mistake.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        message = (
            "The spawner's profile_list is misconfigured (ask the hub's admin to fix it): "
            + "; ".join(problems)
        )
        super().__init__(500, "%s", message, reason="Misconfigured profile_list")
        self.message = message
        self.jupyterhub_message = message

    def __str__(self) -> str:
        return self.message


def _type_name(value: Any) -> str:
    return "a list" if isinstance(value, list) else type(value).__name__


def format_problem(template: str) -> str | None:
    """Why ``template`` cannot be a str.format template, or None when it can."""
    try:
        for _literal, field, spec, _conversion in string.Formatter().parse(template):
            nested = format_problem(spec) if spec else None
            if nested:
                return nested
            if field is not None and field == "":
                return "positional '{}' fields have no value (use {value}; write {{ for '{')"
            if field is not None and field[0].isdigit():
                return f"positional '{{{field}}}' fields have no value (use {{value}})"
    except ValueError as e:
        return f"{e} (write {{{{ and }}}} for literal braces)"
    return None


def _strings_in(value: Any, path: str) -> Iterable[tuple[str, str]]:
    """(path, string) for every string, dict key included, the way overrides are formatted."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, (list, set)):
        for index, item in enumerate(value):
            yield from _strings_in(item, f"{path}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings_in(key, f"{path} key")
            yield from _strings_in(item, f"{path}.{key}")


class _Checker:
    def __init__(self, is_option: Callable[[str], bool]) -> None:
        self.is_option = is_option
        self.problems: list[str] = []

    def problem(self, where: str, text: str) -> None:
        self.problems.append(f"{where}: {text}")

    def overrides(self, where: str, overrides: Any, *, formatted: bool = False) -> None:
        where = f"{where} kubespawner_override"
        if overrides is None:
            return
        if not isinstance(overrides, Mapping):
            self.problem(
                where, f"must be a dict of option name -> value, not {_type_name(overrides)}"
            )
            return
        for name, value in overrides.items():
            if not isinstance(name, str) or not self.is_option(name):
                self.problem(f"{where}.{name}", "no such KubeSpawner option")
            elif formatted:
                for path, text in _strings_in(value, f"{where}.{name}"):
                    problem = format_problem(text)
                    if problem:
                        self.problem(path, f"{text!r} is no valid format string: {problem}")

    def unlisted(self, where: str, unlisted: Any) -> bool:
        """Check an unlisted_choice; True when it is enabled."""
        where = f"{where} unlisted_choice"
        if unlisted is None:
            return False
        if not isinstance(unlisted, Mapping):
            self.problem(where, f"must be a dict, not {_type_name(unlisted)}")
            return False
        regex = unlisted.get("validation_regex")
        if regex is not None:
            if not isinstance(regex, str):
                self.problem(f"{where}.validation_regex", "must be a string")
            else:
                try:
                    re.compile(regex)
                except re.error as e:
                    self.problem(f"{where}.validation_regex", f"{regex!r} does not compile: {e}")
        self.overrides(where, unlisted.get("kubespawner_override"), formatted=True)
        return bool(unlisted.get("enabled"))

    def option(self, where: str, option: Any) -> None:
        if not isinstance(option, Mapping):
            self.problem(where, f"must be a dict, not {_type_name(option)}")
            return
        choices = option.get("choices")
        if choices is not None and not isinstance(choices, Mapping):
            self.problem(
                f"{where}.choices",
                f"must be a dict of choice name -> choice, not {_type_name(choices)}",
            )
            choices = None
        for choice_name, choice in (choices or {}).items():
            choice_where = f"{where}.choices.{choice_name}"
            if not isinstance(choice, Mapping):
                self.problem(choice_where, f"must be a dict, not {_type_name(choice)}")
                continue
            self.overrides(choice_where, choice.get("kubespawner_override"))
        enabled = self.unlisted(where, option.get("unlisted_choice"))
        if not choices and not enabled:
            self.problem(where, "has no choices and no enabled unlisted_choice: nobody can pick it")

    def profile(self, index: int, profile: Any) -> None:
        if not isinstance(profile, Mapping):
            self.problem(f"profile_list[{index}]", f"must be a dict, not {_type_name(profile)}")
            return
        name = profile.get("display_name")
        where = f"profile_list[{index}]" + (f" ({name!r})" if isinstance(name, str) else "")
        if "display_name" not in profile:
            self.problem(where, "display_name is missing (every profile needs one)")
        for key in PROFILE_KEYS_THAT_ARE_STRINGS:
            if key in profile and not isinstance(profile[key], str):
                self.problem(f"{where} {key}", f"must be a string, not {_type_name(profile[key])}")
        if "slug" in profile and isinstance(profile["slug"], str) and not profile["slug"]:
            self.problem(f"{where} slug", "must not be empty")
        self.overrides(where, profile.get("kubespawner_override"))
        options = profile.get("profile_options")
        if options is None:
            return
        if not isinstance(options, Mapping):
            self.problem(
                f"{where} profile_options",
                f"must be a dict of option name -> option, not {_type_name(options)}",
            )
            return
        for option_name, option in options.items():
            self.option(f"{where} profile_options.{option_name}", option)


def check_profile_list(profile_list: Any, *, is_option: Callable[[str], bool]) -> list[str]:
    """Every mistake in ``profile_list`` (a list after dict-form sorting) as one line each.

    ``is_option(name)`` says whether a kubespawner_override name is an option of the spawner.
    """
    checker = _Checker(is_option)
    if not isinstance(profile_list, list):
        kind = _type_name(profile_list)
        return [f"profile_list: must be a list (or a dict) of profiles, not {kind}"]
    for index, profile in enumerate(profile_list):
        checker.profile(index, profile)
    return checker.problems


def duplicate_slugs(profile_list: list[dict[str, Any]]) -> list[str]:
    """Slugs held by more than one profile of an initialised list (only the first is reachable)."""
    seen: set[str] = set()
    duplicates: list[str] = []
    for profile in profile_list:
        slug = profile["slug"]
        if slug in seen and slug not in duplicates:
            duplicates.append(slug)
        seen.add(slug)
    return duplicates


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
            unlisted = option["unlisted_choice"] = option.get("unlisted_choice") or {}
            unlisted.setdefault("enabled", False)
            if unlisted["enabled"]:
                unlisted.setdefault("display_name_in_choices", "Other...")
    if profiles and not any(p.get("default") for p in profiles):
        profiles[0]["default"] = True
    return profiles


__all__ = [
    "ProfileListError",
    "check_profile_list",
    "duplicate_slugs",
    "format_problem",
    "initialize_profile_list",
]
