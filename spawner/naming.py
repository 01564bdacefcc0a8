"""Names of a server's objects: template expansion and the naming part of the saved state.

Pure functions of values (no spawner, no I/O except :func:`hub_namespace`, which reads the
service account's namespace file once per call). The spawner's KubeSpawner-compatible methods
(``_expand_user_properties``, ``_expand_all``, ``names_state``, ...) in
:mod:`kubecache.spawner.kubespawner_methods` gather the values and call these.

Templates are KubeSpawner 7.1's: ``str.format`` fields ``{username}`` ``{servername}``
``{user_server}`` ``{userid}`` ``{unescaped_username}`` ``{unescaped_servername}``
``{hubnamespace}`` ``{pod_name}`` ``{pvc_name}`` ``{namespace}``, plus the ``{safe_*}`` and
``{escaped_*}`` variants of the first three (:func:`kubecache.spawner.slugs.template_fields`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from kubecache.spawner import slugs

SERVICE_ACCOUNT_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
#: The ``kubespawner_version`` a state is saved with: the naming scheme we reproduce.
KUBESPAWNER_COMPAT_VERSION = "7.1.0"


class TemplateError(ValueError):
    """A ``{field}`` template of the configuration that cannot be expanded."""


def hub_namespace() -> str:
    """The hub's own namespace when running in a pod with a service account, else default."""
    if os.path.exists(SERVICE_ACCOUNT_NAMESPACE_FILE):
        with open(SERVICE_ACCOUNT_NAMESPACE_FILE) as f:
            return f.read().strip()
    return "default"


def template_fields(
    *,
    user_name: str,
    server_name: str,
    slug_scheme: str,
    user_id: Any,
    hub_namespace: str,
    known_names: Mapping[str, str],
) -> dict[str, Any]:
    """Every field a template may use; ``known_names`` holds pod_name/pvc_name/namespace as
    far as they are computed (a missing one reads ``<name>_unavailable!``, as in 7.1)."""
    fields: dict[str, Any] = slugs.template_fields(user_name, server_name, slug_scheme)
    fields["hubnamespace"] = "user" if hub_namespace == "default" else hub_namespace
    fields["userid"] = user_id
    for attr in ("pod_name", "pvc_name", "namespace"):
        fields[attr] = known_names.get(attr, f"{attr}_unavailable!")
    return fields


def expand_template(template: str, fields: Mapping[str, Any], *, user_name: str) -> str:
    """``template`` with its fields filled; TemplateError says which template and what to do."""
    try:
        rendered = template.format(**fields)
    except (KeyError, IndexError, AttributeError, ValueError) as e:
        # KubeSpawner 7.1 raises the bare KeyError ('X'): say which template and what to do
        raise TemplateError(
            f"cannot expand {template!r} for {user_name}: {type(e).__name__} {e}. "
            f"Known fields: {', '.join('{' + name + '}' for name in sorted(fields))}; "
            "write {{ and }} for a literal brace (e.g. '${{HOME}}' for the shell's ${HOME})."
        ) from e
    if not template.endswith("-"):
        # an empty servername must not leave "jupyter-alice-" from an old
        # "{username}-{servername}" template
        rendered = rendered.rstrip("-")
    return rendered


def expand_all(src: Any, expand: Callable[[str], str]) -> Any:
    """``expand`` applied to every string of a nested list/dict structure."""
    if isinstance(src, list):
        return [expand_all(item, expand) for item in src]
    if isinstance(src, dict):
        return {key: expand_all(value, expand) for key, value in src.items()}
    if isinstance(src, str):
        return expand(src)
    return src


def expand_env(env: Mapping[str, Any], expand_all: Callable[[Any], Any]) -> dict[str, Any]:
    """The admin's environment with templates expanded; callables were already resolved
    by Spawner.get_env, so values of other types are left to its result."""
    return {
        key: expand_all(value) for key, value in env.items() if isinstance(value, list | dict | str)
    }


def dns_name(template: str, *, namespace: str, pod_name: str) -> str:
    return template.format(namespace=namespace, name=pod_name)


def names_state(
    *,
    pod_name: str,
    namespace: str,
    dns_name: str,
    pvc_name: str,
    pvc_exists: bool,
    legacy_lookup_pending: bool,
) -> dict[str, Any]:
    """The naming part of get_state(), with KubeSpawner's keys.

    ``pvc_name`` is saved only once the claim is known to exist, whatever
    ``remember_pvc_name`` says, so a later load_state can still decide to use it.
    Until then a KubeSpawner 6 state stays "unknown": saving 7.1.0 (as KubeSpawner 7.1
    does, its #937) would skip the legacy claim lookup on the next load and give the user
    a new, empty claim. KubeSpawner 7.1 reads "unknown" the same way.
    """
    state: dict[str, Any] = {
        "kubespawner_version": "unknown" if legacy_lookup_pending else KUBESPAWNER_COMPAT_VERSION,
        "pod_name": pod_name,
        "namespace": namespace,
        "dns_name": dns_name,
    }
    if pvc_exists:
        state["pvc_name"] = pvc_name
    return state


def saved_kubespawner_version(state: Mapping[str, Any]) -> str | None:
    """None: a fresh server; "unknown": state written by KubeSpawner < 7; else that version."""
    if "kubespawner_version" in state:
        return str(state["kubespawner_version"])
    return "unknown" if state else None


def needs_legacy_pvc_lookup(
    *,
    handle_legacy_names: bool,
    remember_pvc_name: bool,
    pvc_exists: bool,
    saved_version: str | None,
) -> bool:
    """Whether a KubeSpawner 6 ("escape" scheme) claim name is to be looked for: only for
    state written by KubeSpawner < 7 with both options on, while the claim is not yet known."""
    if not (handle_legacy_names and remember_pvc_name):
        return False
    return not pvc_exists and saved_version == "unknown"


def pvc_is_shared(*, server_name: str, pvc_name_template: str) -> bool:
    """True when a named server uses the default server's claim (delete_forever keeps it)."""
    return bool(server_name) and "{user_server}" not in pvc_name_template
