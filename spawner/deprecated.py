"""The KubeSpawner 0.5.1-era option names (seed 001) as deprecated aliases of today's options.

``c.KubeSpawner.singleuser_uid = 1000`` keeps working: the value is moved to ``uid`` with a
warning when the config is loaded, and ``spawner.singleuser_uid`` reads/writes ``uid`` (with a
warning) for hooks and subclasses that set it at runtime. When both names are configured, the
new one wins and the collision is logged.

Unlike KubeSpawner 7.1, every old name maps to a real option: 7.1 maps
``singleuser_image_spec`` to the non-option ``image_spec`` and glues
``singleuser_allow_privilege_escalation`` and ``singleuser_lifecycle_hooks`` into one name by a
missing comma, so all three are silently ignored there.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from traitlets.config import Config

#: old name -> (current name, KubeSpawner version that deprecated it)
DEPRECATED_NAMES: dict[str, tuple[str, str]] = {
    "image_spec": ("image", "0.10"),
    "singleuser_image_spec": ("image", "0.9"),
    **{
        f"singleuser_{name}": (name, "0.9")
        for name in (
            "working_dir",
            "service_account",
            "extra_labels",
            "extra_annotations",
            "image_pull_policy",
            "image_pull_secrets",
            "node_selector",
            "uid",
            "fs_gid",
            "supplemental_gids",
            "privileged",
            "allow_privilege_escalation",
            "lifecycle_hooks",
            "extra_pod_config",
            "init_containers",
            "extra_container_config",
            "extra_containers",
        )
    },
    **{
        f"user_storage_{name}": (f"storage_{name}", "0.9")
        for name in ("class", "pvc_ensure", "capacity", "extra_labels", "access_modes")
    },
}


def move_deprecated_config(
    config: Config,
    log: logging.Logger | logging.LoggerAdapter[Any],
    sections: Iterable[str] = ("KubeSpawner",),
) -> Config:
    """Move old names in the given config sections to their new names, warning once each.

    Called from a ``@validate("config")`` handler, so it runs before traits read the config;
    ``sections`` are the spawner's class names (``KubeSpawner``, ``KubeCacheSpawner``, ...).
    """
    for section_name in sections:
        if section_name not in config:
            continue
        section = config[section_name]
        for old, (new, version) in DEPRECATED_NAMES.items():
            if old not in section:
                continue
            value = section.pop(old)
            log.warning(
                "%s.%s is deprecated in %s. Use %s.%s instead",
                section_name,
                old,
                version,
                section_name,
                new,
            )
            if new in section:
                log.warning(
                    "Ignoring deprecated config %s.%s = %r in favor of %s.%s = %r",
                    section_name,
                    old,
                    value,
                    section_name,
                    new,
                    section[new],
                )
            else:
                section[new] = value
    return config


def _alias(old: str, new: str, version: str) -> property:
    def read(self: Any) -> Any:
        self.log.warning(
            "KubeSpawner.%s is deprecated in %s. Use KubeSpawner.%s", old, version, new
        )
        return getattr(self, new)

    def write(self: Any, value: Any) -> None:
        self.log.warning(
            "KubeSpawner.%s is deprecated in %s. Use KubeSpawner.%s", old, version, new
        )
        setattr(self, new, value)

    return property(read, write, doc=f"Deprecated alias of ``{new}`` (since {version}).")


def install_aliases(cls: type) -> None:
    """Give ``cls`` a warning property per old name, reading and writing the new option."""
    for old, (new, version) in DEPRECATED_NAMES.items():
        setattr(cls, old, _alias(old, new, version))
