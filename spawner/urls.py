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
        if ":" in hostname:  # only an IPv6 address can be one (skips parsing every IPv4)
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


def netloc(url: str) -> str:
    """``normalized(url).netloc``, without parsing the plain ``scheme://host:port/...`` URLs
    JupyterHub and the spawner build (every poll of a fresh hub compares two of them).

    Anything else (no explicit port, user info, non-ASCII, whitespace or control
    characters, a port out of range) goes through :func:`normalized`.
    """
    scheme, sep, rest = url.partition("://")
    if sep and scheme.isalpha() and rest.isascii() and rest.isprintable() and " " not in rest:
        end = len(rest)
        for stop in "/?#":
            at = rest.find(stop, 0, end)
            if at != -1:
                end = at
        host = rest[:end]
        name, colon, port = host.rpartition(":")
        if (
            colon
            and name
            and "@" not in host
            and port.isdigit()
            and int(port) <= 65535
            and (name.endswith("]") or ":" not in name)
        ):
            return host
    return normalized(url).netloc


def plainly_same(pod_ip: object, port: int, server: Any) -> bool:
    """True when JupyterHub's URL of ``server`` and the plain pod URL (``http://`` the pod
    IP ``:port``) have the same netloc, decided without building or parsing either.

    False means "not decided here": build both and compare them (an IPv6 or missing
    address, a server with ``connect_url``, ``connect_ip`` or ``connect_port``, or another
    address). A fresh hub asks this once per running server.
    """
    return (
        isinstance(pod_ip, str)
        and pod_ip not in ("", "0.0.0.0")  # JupyterHub connects to its hostname then
        and ":" not in pod_ip
        and server.ip == pod_ip
        and server.port == port
        and not server.connect_url
        and not server.connect_ip
        and not server.connect_port
    )


def recorded(server: Any) -> bool:
    """Whether JupyterHub recorded where the server runs (start() returned its URL).

    A spawn interrupted by a hub crash or failover never returned: its database row
    still holds no address and a random port, not the pod's; the spawner's port is
    the pod's then, as KubeSpawner reads it from the pod's ``notebook-port``.
    """
    return getattr(server, "ip", "") not in ("", "0.0.0.0", "::", None)


__all__ = ["netloc", "normalized", "notebook_port", "plainly_same", "pod_url", "recorded"]
