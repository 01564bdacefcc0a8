"""The real cacher, configured and authorised exactly as the chart renders it.

The cacher runs in-cluster style (service-account token and CA, the
KUBERNETES_SERVICE_* variables) against kubesim over TLS, with the rendered
environment, and with a token whose permissions are the rendered Roles and
ClusterRoles bound to its ServiceAccount — nothing else. It must sync Redis
and hold and renew its Lease: the chart's RBAC is enough, and since the
granted set is pinned by test_chart_rbac.py, the cacher needs no more.
(kubesim's rules have no resourceNames: the Lease rule is checked by verb.)
"""

from __future__ import annotations

import json
import os
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
import redis.asyncio as aioredis

from kubecache.cacher import credentials
from kubecache.cacher import settings as cacher_settings
from kubesim.auth import Authenticator, Rule
from kubesim.testing import running_kubesim
from tests.cacher.integration.checker import Checker
from tests.charts.rendering import NAMESPACE, POD_NAME, Rendered, container_environment, render
from tests.support.cacher import running_cacher
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_for

CACHER_TOKEN = "cacher-service-account-token"
ADMIN_TOKEN = "admin-token"


def user_pod(name: str) -> dict[str, Any]:
    """A pod with KubeSpawner's labels (the chart's default pod selector matches it)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {
                "app": "jupyterhub",
                "component": "singleuser-server",
                "hub.jupyter.org/username": name,
            },
        },
        "spec": {
            "containers": [{"name": "notebook", "image": "quay.io/jupyter/base-notebook"}],
            "terminationGracePeriodSeconds": 1,
        },
    }


def rules_bound_to(rendered: Rendered, account: str) -> list[Rule]:
    """kubesim rules equal to the chart's roles bound to ``account`` (namespace/name)."""
    roles = {
        (m["kind"], m["metadata"].get("namespace"), m["metadata"]["name"]): m
        for m in rendered
        if m["kind"] in ("Role", "ClusterRole")
    }
    rules: list[Rule] = []
    for binding in rendered:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        subjects = {f"{s['namespace']}/{s['name']}" for s in binding["subjects"]}
        if account not in subjects:
            continue
        ref = binding["roleRef"]
        namespace = binding["metadata"].get("namespace") if ref["kind"] == "Role" else None
        role = roles[(ref["kind"], namespace, ref["name"])]
        scope = (namespace,) if namespace else ()
        rules += [Rule.of(r["verbs"], r["resources"], scope) for r in role["rules"]]
    return rules


@pytest.fixture
def service_account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "serviceaccount"
    directory.mkdir()
    (directory / "token").write_text(CACHER_TOKEN)
    (directory / "namespace").write_text(NAMESPACE)
    monkeypatch.setattr(credentials, "SERVICE_ACCOUNT", directory)
    return directory


async def status_as(sim: Any, token: str, method: str, path: str) -> int:
    """The HTTP status kubesim answers ``token`` for one request."""
    assert sim.ca_cert is not None
    context = ssl.create_default_context(cafile=str(sim.ca_cert))
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    body = json.dumps(user_pod("mallory")) if method == "POST" else None
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, sim.url + path, headers=headers, data=body, ssl=context
        ) as response,
    ):
        return response.status


@pytest.mark.parametrize(
    ("watch", "watched"),
    [
        ({}, [NAMESPACE]),
        ({"namespaces": ["jhub-users"]}, ["jhub-users"]),
        ({"clusterWide": True}, []),
    ],
    ids=["release-namespace", "namespaced", "cluster-wide"],
)
async def test_the_cacher_syncs_and_leads_with_only_the_charts_config_and_rbac(
    watch: dict[str, Any],
    watched: list[str],
    *,
    redis_server: RedisServer,
    redis: aioredis.Redis,
    service_account: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values: dict[str, Any] = {
        "redis": {"enabled": False},
        "externalRedis": {"url": redis_server.url},
        "cacher": {
            "watch": watch,
            "leaderElection": {
                "leaseDuration": "3s",
                "renewDeadline": "2s",
                "retryPeriod": "300ms",
            },
        },
    }
    rendered = render(values)
    account = f"{NAMESPACE}/hub-kubecache-cacher"
    auth = Authenticator.single(ADMIN_TOKEN)
    auth.add_token(
        CACHER_TOKEN,
        f"system:serviceaccount:{account.replace('/', ':')}",
        rules_bound_to(rendered, account),
    )

    namespaces = ("default", NAMESPACE, "jhub-users", "elsewhere")
    async with running_kubesim(
        tls=True, auth=auth, token=ADMIN_TOKEN, namespaces=namespaces, fake_step_delay=0.01
    ) as sim:
        assert sim.ca_cert is not None
        os.symlink(sim.ca_cert, service_account / "ca.crt")
        server = urlsplit(sim.url)
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", str(server.hostname))
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(server.port))

        env, args = container_environment(values, tmp_path / "mounted")
        env.update(KUBECACHE_HEALTH_HOST="127.0.0.1", KUBECACHE_HEALTH_PORT="0")
        env["KUBERNETES_SERVICE_HOST"] = str(server.hostname)
        settings = cacher_settings.load_settings(args, env)

        for namespace, name in (
            ("jhub-users", "alice"),
            ("jhub-users", "bob"),
            ("elsewhere", "carol"),
            (NAMESPACE, "dave"),
        ):
            sim.store.create("pods", namespace, user_pod(name))
        checker = Checker(redis, sim.store, namespaces=watched)
        async with running_cacher(settings):
            await checker.converged(timeout=30)

            def lease() -> dict[str, Any]:
                found = sim.store.get("leases", NAMESPACE, settings.lease_name)
                return (found or {}).get("spec", {})

            await wait_for(
                lambda: lease().get("holderIdentity") == POD_NAME,
                timeout=10,
                message="the cacher to hold its Lease under its pod name",
            )
            first = lease().get("renewTime")
            await wait_for(
                lambda: lease().get("renewTime") not in (None, first),
                timeout=10,
                message="the cacher to renew its Lease",
            )
            # anything beyond the rendered rules is refused
            for method, path in (
                ("POST", "/api/v1/namespaces/jhub-users/pods"),
                ("DELETE", "/api/v1/namespaces/jhub-users/pods/alice"),
                ("GET", "/api/v1/namespaces/jhub-users/secrets"),
                ("GET", "/api/v1/namespaces/jhub-users/pods/alice"),
            ):
                assert await status_as(sim, CACHER_TOKEN, method, path) == 403, (method, path)
            if watched:
                assert await status_as(sim, CACHER_TOKEN, "GET", "/api/v1/pods") == 403
                listing = "/api/v1/namespaces/elsewhere/pods"
                assert await status_as(sim, CACHER_TOKEN, "GET", listing) == 403
        tracked = {k.decode() for k in await redis.hkeys(checker.keys.pods)}
        everywhere = {"jhub-users/alice", "jhub-users/bob", "elsewhere/carol", f"{NAMESPACE}/dave"}
        expected = {key for key in everywhere if not watched or key.split("/")[0] in watched}
        assert tracked == expected
