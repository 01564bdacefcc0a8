"""The objects that route one proxy path through a Kubernetes Ingress, as API JSON.

``kubespawner.objects.make_ingress`` 7.1 (used by ``KubeIngressProxy``) in pure form: for a
route (``routespec``) to a ``target`` URL it returns ``(endpoints, service, ingress)``:

- target is an IP (the pod's IP): Endpoints pointing at it and a ClusterIP Service without
  selector in front, so the Ingress can reach a pod by IP;
- target is a host name of a Service in ``namespace`` (``name``, ``name.namespace``,
  ``name.namespace.svc[.cluster[.local]]``) and ``reuse_existing_services``: no Endpoints and
  no Service, the Ingress uses that Service;
- any other host: an ExternalName Service for it.

The Ingress has one rule per host: the route's own host, else the hosts of
``ingress_specifications`` (a wildcard ``*.example.org`` matching the route's host is replaced
by it), else a rule without host; TLS for the specifications that name a ``tlsSecret``.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlparse

from kubecache.spawner.models import JSON

ROUTE_LABEL = "hub.jupyter.org/proxy-route"


def host_matches(host: str, pattern: str) -> bool:
    """``host`` equals ``pattern``, or ``pattern`` is ``*.rest`` and host is one label + rest."""
    if not pattern.startswith("*."):
        return host == pattern
    return host.split(".")[1:] == pattern.split(".")[1:]


def _service_in_namespace(hostname: str, namespace: str) -> str | None:
    """The Service name when ``hostname`` names a Service of ``namespace``, else None."""
    labels = hostname.split(".")
    if not labels[0]:
        return None
    if len(labels) > 1 and labels[1] and labels[1] != namespace:
        return None
    return labels[0]


def _rule_hosts(route_host: str | None, specifications: Sequence[Mapping[str, Any]]) -> list[Any]:
    hosts: list[Any] = []
    add_route_host = True
    for spec in specifications:
        if route_host and host_matches(route_host, spec["host"]):
            if add_route_host:
                hosts.append(route_host)
            add_route_host = False
        elif spec["host"] not in hosts:
            hosts.append(spec["host"])
    if add_route_host and (route_host or not hosts):
        hosts.insert(0, route_host)
    return hosts


def ingress_json(  # noqa: PLR0917 - KubeSpawner's positional signature
    name: str,
    routespec: str,
    target: str,
    data: dict[str, Any],
    namespace: str,
    common_labels: Mapping[str, str] | None = None,
    ingress_extra_labels: Mapping[str, str] | None = None,
    ingress_extra_annotations: Mapping[str, str] | None = None,
    ingress_class_name: str | None = None,
    ingress_specifications: Sequence[Mapping[str, Any]] | None = None,
    reuse_existing_services: bool = False,
) -> tuple[JSON | None, JSON | None, JSON]:
    """(Endpoints or None, Service or None, Ingress) for one proxy route, as API JSON."""
    labels = {**(common_labels or {}), ROUTE_LABEL: "true"}
    annotations = {
        "hub.jupyter.org/proxy-data": json.dumps(data),
        "hub.jupyter.org/proxy-routespec": routespec,
        "hub.jupyter.org/proxy-target": target,
    }

    def metadata() -> JSON:
        return {"name": name, "annotations": dict(annotations), "labels": dict(labels)}

    route = urlparse(routespec)
    route_host = route.netloc or None
    target_url = urlparse(target)
    port = target_url.port
    hostname = target_url.hostname or ""
    service_port = {"port": port, "targetPort": port}

    endpoints: JSON | None = None
    service: JSON | None = None
    backend_service = name
    try:
        target_ip: str | None = ipaddress.ip_address(hostname).compressed
    except ValueError:
        target_ip = None
    if target_ip is not None:
        endpoints = {
            "kind": "Endpoints",
            "metadata": metadata(),
            "subsets": [{"addresses": [{"ip": target_ip}], "ports": [{"port": port}]}],
        }
        service = {
            "kind": "Service",
            "metadata": metadata(),
            "spec": {"type": "ClusterIP", "externalName": "", "ports": [service_port]},
        }
    else:
        existing = _service_in_namespace(hostname, namespace)
        if reuse_existing_services and existing:
            backend_service = existing
        else:
            service = {
                "kind": "Service",
                "metadata": metadata(),
                "spec": {
                    "type": "ExternalName",
                    "externalName": hostname,
                    "clusterIP": "",
                    "ports": [service_port],
                },
            }

    specifications = list(ingress_specifications or [])
    path = {
        "path": route.path,
        "pathType": "Prefix",
        "backend": {"service": {"name": backend_service, "port": {"number": port}}},
    }
    rules: list[JSON] = []
    for host in _rule_hosts(route_host, specifications):
        rule: JSON = {"http": {"paths": [dict(path)]}}
        if host is not None:
            rule["host"] = host
        rules.append(rule)
    spec: JSON = {"rules": rules}
    tls = [
        {"hosts": [item["host"]], "secretName": item["tlsSecret"]}
        for item in specifications
        if "tlsSecret" in item
    ]
    if tls:
        spec["tls"] = tls
    if ingress_class_name is not None:
        spec["ingressClassName"] = ingress_class_name
    ingress = {
        "kind": "Ingress",
        "metadata": {
            "name": name,
            "annotations": {**annotations, **(ingress_extra_annotations or {})},
            "labels": {**labels, **(ingress_extra_labels or {})},
        },
        "spec": spec,
    }
    return endpoints, service, ingress


__all__ = ["host_matches", "ingress_json"]
