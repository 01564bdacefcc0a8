"""The cacher reads kubeconfigs as kubectl does: tls-server-name and KUBECONFIG lists.

Checked against real TLS (a server on 127.0.0.2 whose certificate names
``api.internal``, not the address) and against kubectl itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from kubecache.cacher.credentials import load_kubeconfig
from kubecache.cacher.kube_api import ApiStatusError, KubeHttp
from kubesim.tls import self_signed
from tests.support.redis_server import free_port

HOST = "127.0.0.2"


@pytest.fixture
async def tls_api(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """An HTTPS endpoint answering /api like an API server; (URL, CA file)."""
    cert, key = self_signed(tmp_path, host="api.internal")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))

    async def versions(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer t0ken":
            return web.json_response({"kind": "Status", "code": 401}, status=401)
        return web.json_response({"kind": "APIVersions", "versions": ["v1"]})

    app = web.Application()
    app.router.add_get("/api", versions)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port(HOST)
    site = web.TCPSite(runner, HOST, port, ssl_context=context)
    await site.start()
    try:
        yield f"https://{HOST}:{port}", cert
    finally:
        await runner.cleanup()


def _kubeconfig(path: Path, server: str, ca: Path, server_name: str | None) -> str:
    cluster: dict[str, Any] = {"server": server, "certificate-authority": str(ca)}
    if server_name:
        cluster["tls-server-name"] = server_name
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": cluster}],
                "users": [{"name": "u", "user": {"token": "t0ken"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return str(path)


async def _get_api(kubeconfig: str) -> dict[str, Any]:
    http = KubeHttp(load_kubeconfig(kubeconfig), request_timeout=10)
    try:
        return await http.request("GET", "/api")
    finally:
        await http.close()


async def _kubectl_get_api(kubeconfig: str) -> tuple[int, str]:
    """kubectl's answer (run without blocking the loop that serves the API)."""
    process = await asyncio.create_subprocess_exec(
        *("kubectl", "--kubeconfig", kubeconfig, "get", "--raw", "/api"),
        "--request-timeout=10s",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    return process.returncode or 0, out.decode()


async def test_tls_server_name_is_what_the_certificate_is_checked_against(
    tls_api: tuple[str, Path], tmp_path: Path
) -> None:
    url, ca = tls_api
    named = _kubeconfig(tmp_path / "named", url, ca, "api.internal")
    assert (await _get_api(named))["kind"] == "APIVersions"
    for name, server_name in (("plain", None), ("wrong", "other.internal")):
        with pytest.raises(ApiStatusError, match=r"(?i)certificate"):
            await _get_api(_kubeconfig(tmp_path / name, url, ca, server_name))
    if shutil.which("kubectl"):  # kubectl agrees on all three
        code, out = await _kubectl_get_api(named)
        assert code == 0 and json.loads(out)["kind"] == "APIVersions"
        assert (await _kubectl_get_api(str(tmp_path / "plain")))[0] != 0
        assert (await _kubectl_get_api(str(tmp_path / "wrong")))[0] != 0


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl")
def test_a_kubeconfig_list_resolves_to_the_context_kubectl_uses(tmp_path: Path) -> None:
    def write(name: str, **config: Any) -> str:
        path = tmp_path / name
        path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", **config}))
        return str(path)

    files = [
        write(
            "one",
            clusters=[{"name": "prod", "cluster": {"server": "https://one:6443"}}],
            users=[{"name": "me", "user": {"token": "one-token"}}],
        ),
        str(tmp_path / "absent"),
        write(
            "two",
            clusters=[
                {"name": "prod", "cluster": {"server": "https://two:6443"}},
                {"name": "dev", "cluster": {"server": "https://dev:6443"}},
            ],
            users=[{"name": "me", "user": {"token": "two-token"}}],
            contexts=[
                {"name": "work", "context": {"cluster": "prod", "user": "me", "namespace": "jh"}},
                {"name": "play", "context": {"cluster": "dev", "user": "me"}},
            ],
            **{"current-context": "work"},
        ),
        write("three", **{"current-context": "play"}),
    ]
    for order in (files, files[::-1]):
        listed = os.pathsep.join(order)
        view = subprocess.run(
            ["kubectl", "config", "view", "--minify", "--raw", "-o", "json"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
            env={**os.environ, "KUBECONFIG": listed},
        )
        kubectl = json.loads(view.stdout)
        ours = load_kubeconfig(listed)
        assert ours.server == kubectl["clusters"][0]["cluster"]["server"]
        assert ours.token == kubectl["users"][0]["user"]["token"]
        assert ours.namespace == (kubectl["contexts"][0]["context"].get("namespace") or "default")
