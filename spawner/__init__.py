"""kubecache's JupyterHub spawner: ``c.JupyterHub.spawner_class = "kubecache"``.

:class:`KubeCacheSpawner` is imported lazily, so the pure modules of this
package (slugs, objects, pod_state, ...) load without JupyterHub's
machinery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubecache.spawner.spawner import KubeCacheSpawner

__all__ = ["KubeCacheSpawner"]


def __getattr__(name: str) -> Any:
    if name == "KubeCacheSpawner":
        from kubecache.spawner.spawner import KubeCacheSpawner

        return KubeCacheSpawner
    raise AttributeError(f"module 'spawner' has no attribute {name!r}")
