"""kubesim: a local Kubernetes API emulator (HTTP API server, store, simulated kubelet)."""
