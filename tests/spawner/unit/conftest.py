from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from kubernetes_asyncio.config import kube_config
from kubespawner.clients import shared_client

from tests.spawner.unit.golden import write_kubeconfig


@pytest.fixture
async def reference_kubespawner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[None]:
    """KubeSpawner 7.1 builds its API client in __init__: give it a kubeconfig (never used)."""
    path = str(write_kubeconfig(tmp_path))
    monkeypatch.setenv("KUBECONFIG", path)
    # the client library reads KUBECONFIG once, at import
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", path)
    yield
    # KubeSpawner caches one API client per loop: close it so no session leaks
    client = shared_client("CoreV1Api")
    await client.api_client.close()
