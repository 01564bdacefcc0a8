"""Writing a kubeconfig that kubernetes_asyncio and kubectl load (server URL + bearer token)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

__all__ = ["kubeconfig", "write_kubeconfig"]


def kubeconfig(
    url: str,
    token: str,
    *,
    name: str = "kubesim",
    namespace: str = "default",
    ca_cert: Path | None = None,
) -> dict[str, Any]:
    """A kubeconfig with one cluster, user and context, all called ``name``."""
    cluster: dict[str, Any] = {"server": url}
    if ca_cert is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_cert.read_bytes()).decode()
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [
            {"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}
        ],
        "current-context": name,
        "preferences": {},
    }


def write_kubeconfig(
    path: Path, url: str, token: str, *, name: str = "kubesim", ca_cert: Path | None = None
) -> Path:
    """Write the kubeconfig to ``path`` (mode 0600, it holds the token)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(kubeconfig(url, token, name=name, ca_cert=ca_cert), sort_keys=False)
    # Written aside and renamed, so a reader polling for the file never sees half of it.
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.chmod(0o600)
    partial.replace(path)
    return path
