"""kubesim: a local Kubernetes API emulator (HTTP API server, store, simulated kubelet)."""

__version__ = "0.1.0"  # the emulator's own (pip install ./kubesim)

__all__ = ["__version__"]
