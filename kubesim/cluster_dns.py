"""What cluster DNS would answer for a Service name: the IPs of its ready pods.

kubesim runs no DNS server and no Service proxy (a ClusterIP is a made-up address nothing
listens on). A client that should reach ``jupyter-alice.jhub.svc.cluster.local`` — the URL
KubeSpawner gives the hub with internal_ssl or services_enabled — can map the name to the
addresses of the pods the Service selects, as a headless Service's DNS record would, and
connect there (tornado's ``hostname_mapping``, an aiohttp resolver); TLS still verifies the
name. Pure: reads the store only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubesim.store import ObjectStore

__all__ = ["hostname_mapping", "service_addresses"]

CLUSTER_DOMAIN = "cluster.local"


def _service_key(hostname: str) -> tuple[str, str] | None:
    """(namespace, service) of ``svc.ns``, ``svc.ns.svc`` or ``svc.ns.svc.cluster.local``."""
    parts = hostname.rstrip(".").split(".")
    if len(parts) == 2 or (len(parts) == 3 and parts[2] == "svc"):
        return parts[1], parts[0]
    if len(parts) > 3 and parts[2] == "svc" and ".".join(parts[3:]) == CLUSTER_DOMAIN:
        return parts[1], parts[0]
    return None


def _selected(selector: dict[str, Any], labels: dict[str, Any]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def _ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def service_addresses(store: ObjectStore, hostname: str) -> list[str]:
    """The pod IPs behind a Service's DNS name (ready pods, sorted); [] when none or no name."""
    key = _service_key(hostname)
    if key is None:
        return []
    namespace, name = key
    service = store.get("services", namespace, name)
    selector = ((service or {}).get("spec") or {}).get("selector")
    if not selector:
        return []
    addresses = {
        str(pod["status"]["podIP"])
        for pod in store.list("pods", namespace)
        if _selected(selector, pod.get("metadata", {}).get("labels") or {})
        and _ready(pod)
        and not pod["metadata"].get("deletionTimestamp")
        and pod.get("status", {}).get("podIP")
    }
    return sorted(addresses)


def hostname_mapping(store: ObjectStore, *hostnames: str) -> dict[str, str]:
    """{hostname: first address} for the names that resolve (tornado's hostname_mapping)."""
    mapping = {}
    for hostname in hostnames:
        addresses = service_addresses(store, hostname)
        if addresses:
            mapping[hostname] = addresses[0]
    return mapping
