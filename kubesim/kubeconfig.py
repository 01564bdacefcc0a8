"""Writing a kubeconfig that kubernetes_asyncio and kubectl load (server URL + bearer token)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["kubeconfig", "write_kubeconfig"]


def kubeconfig(
    url: str, token: str, *, name: str = "kubesim", namespace: str = "default"
) -> dict[str, Any]:
    """A kubeconfig with one cluster, user and context, all called ``name``."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": url}}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [
            {"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}
        ],
        "current-context": name,
        "preferences": {},
    }


def write_kubeconfig(path: Path, url: str, token: str, *, name: str = "kubesim") -> Path:
    """Write the kubeconfig to ``path`` (mode 0600, it holds the token)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(kubeconfig(url, token, name=name), sort_keys=False)
    path.write_text(text)
    path.chmod(0o600)
    return path
