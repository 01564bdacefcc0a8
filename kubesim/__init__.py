"""kubesim: a local Kubernetes API emulator (HTTP API server, store, simulated kubelet)."""

from kubecache import __version__  # one version for the whole distribution

__all__ = ["__version__"]
