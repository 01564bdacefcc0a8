"""How far one spawner may trust the cache's answer about its own pod.

The cache health says whether the cacher is alive and synced; this adds
whether the cacher watches pods like this spawner's at all. A cacher whose
``--namespaces`` or ``--pod-selector`` leave the hub's pods out would report
every server absent, and JupyterHub would stop them; such an answer is
untrusted (:data:`Freshness.UNCOVERED`), so the spawner reads the API instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kubecache.contract import Freshness

if TYPE_CHECKING:
    from spawner.cache_client import PodSnapshot
    from spawner.spawner import KubeCacheSpawner

_warned: set[tuple[str, str, str]] = set()


def snapshot_freshness(
    spawner: KubeCacheSpawner, snapshot: PodSnapshot, *, stale_after_ms: int
) -> Freshness:
    freshness = snapshot.freshness(stale_after_ms=stale_after_ms)
    health = snapshot.health
    if freshness is not Freshness.FRESH or health is None:
        return freshness
    labels = spawner.coverage_labels()
    if health.covers(spawner.namespace, labels):
        return freshness
    seen = (spawner.namespace, health.namespaces, health.pod_selector)
    if seen not in _warned:  # once per process and cacher configuration, not per poll
        _warned.add(seen)
        spawner.log.error(
            "kubecache: the cacher (%s) does not watch pod %s/%s: its namespaces (%s) and pod "
            "selector (%r) leave out namespace %s or labels %s. Every read of such pods goes to "
            "the Kubernetes API. Make the cacher's --namespaces and --pod-selector cover the "
            "hub's pods (c.KubeSpawner.namespace, component_label, extra_labels).",
            health.leader,
            spawner.namespace,
            spawner.pod_name,
            health.namespaces or "all",
            health.pod_selector,
            spawner.namespace,
            labels,
        )
    return Freshness.UNCOVERED
