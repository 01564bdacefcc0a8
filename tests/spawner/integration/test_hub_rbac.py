"""A hub with exactly the Kubernetes RBAC documented in docs/SECURITY.md spawns and stops a
server (with its PVC), and is refused a list or a watch.

The API server is kubesim with per-token rules; the cacher runs with an admin token, as it
would with its own service account.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
import yaml

from kubecache.spawner import KubeCacheSpawner
from kubecache.spawner.cache_client import CacheClient
from kubecache.spawner.kube_api import KubeApi
from kubesim.auth import Authenticator, Rule
from kubesim.kubeconfig import write_kubeconfig
from kubesim.testing import running_kubesim
from tests.spawner.integration.conftest import NAMESPACE, cache_is_fresh, cacher_settings
from tests.spawner.support import mock_hub, mock_user
from tests.support.cacher import running_cacher
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_for

SECURITY_DOC = Path(__file__).resolve().parents[3] / "docs" / "SECURITY.md"
ADMIN_TOKEN = "cacher-admin-token"
HUB_TOKEN = "hub-service-account-token"


def documented_hub_role() -> dict[str, Any]:
    text = SECURITY_DOC.read_text()
    pattern = r"<!-- hub-rbac:start.*?```yaml\n(.*?)```.*?<!-- hub-rbac:end -->"
    block = re.search(pattern, text, re.S)
    assert block, "docs/SECURITY.md lost its hub-rbac block"
    role: dict[str, Any] = yaml.safe_load(block.group(1))
    return role


def hub_rules() -> list[Rule]:
    role = documented_hub_role()
    assert role["kind"] == "Role"
    verbs = {verb for rule in role["rules"] for verb in rule["verbs"]}
    assert not verbs & {"list", "watch", "*"}, "the documented hub role must not list or watch"
    return [Rule.of(r["verbs"], r["resources"], (NAMESPACE,)) for r in role["rules"]]


@pytest.fixture
async def restricted_cluster(
    redis: aioredis.Redis,
    redis_server: RedisServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Any]:
    auth = Authenticator.single(ADMIN_TOKEN)
    auth.add_token(HUB_TOKEN, f"system:serviceaccount:{NAMESPACE}:hub", hub_rules())
    async with running_kubesim(
        auth=auth, token=ADMIN_TOKEN, namespaces=("default", NAMESPACE), fake_step_delay=0.01
    ) as sim:
        hub_kubeconfig = tmp_path / "hub-kubeconfig"
        write_kubeconfig(hub_kubeconfig, sim.url, HUB_TOKEN)
        monkeypatch.setenv("KUBECONFIG", str(hub_kubeconfig))
        async with running_cacher(cacher_settings(sim, redis_server.url)):
            await wait_for(lambda: cache_is_fresh(redis), timeout=20, message="a fresh cache")
            yield sim
        await CacheClient.close_all()
        await KubeApi.close_all()


async def status_as_hub(sim: Any, path: str) -> int:
    headers = {"Authorization": f"Bearer {HUB_TOKEN}"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(sim.url + path, headers=headers) as response,
    ):
        return response.status


async def test_the_documented_hub_role_suffices_to_spawn_and_stop_and_refuses_a_list(
    restricted_cluster: Any, redis_server: RedisServer
) -> None:
    sim = restricted_cluster
    spawner = KubeCacheSpawner(
        user=mock_user("alice"),
        hub=mock_hub(),
        redis_url=redis_server.url,
        namespace=NAMESPACE,
        image="quay.io/jupyter/base-notebook:latest",
        start_timeout=20,
        cache_stale_after=2.0,
        storage_pvc_ensure=True,
        storage_capacity="1Gi",
    )
    spawner.api_token = "token-alice"
    await asyncio.wait_for(spawner.start(), 30)
    assert sim.store.get("pods", NAMESPACE, "jupyter-alice") is not None
    assert sim.store.get("persistentvolumeclaims", NAMESPACE, "claim-alice") is not None
    assert await spawner.poll() is None
    await spawner.stop()
    assert sim.store.get("pods", NAMESPACE, "jupyter-alice") is None
    assert await spawner.poll() == 1

    for path in (
        f"/api/v1/namespaces/{NAMESPACE}/pods",
        f"/api/v1/namespaces/{NAMESPACE}/pods?watch=true",
        f"/api/v1/namespaces/{NAMESPACE}/events",
        f"/api/v1/namespaces/{NAMESPACE}/secrets",
        "/api/v1/pods",
        "/api/v1/namespaces/default/pods/anything",
    ):
        assert await status_as_hub(sim, path) == 403, path
