"""The server URL JupyterHub connects to, built as KubeSpawner 7.1 builds it (pure)."""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Callable
from typing import Any
from urllib.parse import ParseResult, urlparse


def pod_url(
    *,
    pod_ip: str,
    port: int,
    dns_name: str,
    internal_ssl: bool,
    services_enabled: bool,
    pod_connect_ip: str,
    expand: Callable[[str], str],
) -> str:
    """https to the service DNS name with internal_ssl, http to it with services_enabled,
    else http to the pod IP ([v6] bracketed); pod_connect_ip (its dotted parts expanded
    as templates) replaces the host."""
    if internal_ssl:
        proto, hostname = "https", dns_name
    elif services_enabled:
        proto, hostname = "http", dns_name
    else:
        proto, hostname = "http", pod_ip
        with contextlib.suppress(ValueError):
            if isinstance(ipaddress.ip_address(hostname), ipaddress.IPv6Address):
                hostname = f"[{hostname}]"
    if pod_connect_ip:
        hostname = ".".join(expand(s) if "{" in s else s for s in pod_connect_ip.split("."))
    return f"{proto}://{hostname}:{port}"


def notebook_port(pod: dict[str, Any]) -> int | None:
    """The ``notebook-port`` of a pod manifest (KubeSpawner's _get_pod_port)."""
    for container in pod.get("spec", {}).get("containers", []):
        for port in container.get("ports") or []:
            if port.get("name") == "notebook-port":
                return int(port["containerPort"])
    return None


def normalized(url: str) -> ParseResult:
    """The URL with its port always present, so two netlocs compare."""
    parsed = urlparse(url)
    if parsed.port is None:
        default_port = 443 if parsed.scheme.lower() == "https" else 80
        parsed = parsed._replace(netloc=f"{parsed.hostname}:{default_port}")
    return parsed


__all__ = ["normalized", "notebook_port", "pod_url"]
