"""Two shapes a KubeSpawner option value may take, read the way KubeSpawner 7.1 reads them.

- a callable of the spawner (``uid``, ``profile_list``, ``kubespawner_override`` values...),
  possibly async: :func:`resolve` calls it;
- a dict where a list is expected (``Union([List(), Dict()])``, so config fragments can be
  merged): :func:`sorted_values` takes its values in the order of their sorted keys.
"""

from __future__ import annotations

import inspect
from typing import Any


async def resolve(spawner: Any, value: Any) -> Any:
    """A config value that may be a callable of the spawner, possibly async."""
    if callable(value):
        value = value(spawner)
        if inspect.isawaitable(value):
            value = await value
    return value


def sorted_values(src: Any) -> Any:
    """A dict-form list option (Union([List(), Dict()])) as its values in key order."""
    if isinstance(src, dict):
        return [src[key] for key in sorted(src)]
    return src
