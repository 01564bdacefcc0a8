"""kubecache spawns real servers on kubesim's process kubelet: internal_ssl over HTTPS with the
mounted certificate, and a zero-to-jupyterhub style pod with extra files and a home volume.

The kubesim here runs the notebook container as a local process with its volumes mounted
(kubesim.volumes); the test plays the hub's part with the hub's own TLS client code.
"""

from __future__ import annotations

import base64
import json
import ssl
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from jupyterhub.app import JupyterHub
from jupyterhub.utils import make_ssl_context
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from traitlets.config import Config

from kubecache.spawner import KubeCacheSpawner
from kubesim.cluster_dns import hostname_mapping
from kubesim.testing import KubeSim, running_kubesim
from tests.spawner.integration.conftest import NAMESPACE

# A jupyterhub-singleuser stand-in: serves JUPYTERHUB_SERVICE_URL's address, over HTTPS with
# client certificates required when JUPYTERHUB_SSL_* name the mounted files (as singleuser
# does), answering with $ANSWER_FILE's content (or "hello <user>").
SERVER = """
import os, signal, ssl, sys, urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

url = urllib.parse.urlsplit(os.environ["JUPYTERHUB_SERVICE_URL"])


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        path = os.environ.get("ANSWER_FILE")
        body = open(path).read() if path else "hello " + os.environ["JUPYTERHUB_USER"]
        if os.environ.get("NOTES"):
            with open(os.environ["NOTES"], "a") as notes:
                notes.write("visited\\n")
        self.send_response(200)
        self.send_header("Content-Length", str(len(body.encode())))
        self.end_headers()
        self.wfile.write(body.encode())


signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
server = HTTPServer((url.hostname, url.port), Handler)
if os.environ.get("JUPYTERHUB_SSL_CERTFILE"):
    context = ssl.create_default_context(
        ssl.Purpose.CLIENT_AUTH, cafile=os.environ["JUPYTERHUB_SSL_CLIENT_CA"]
    )
    context.load_cert_chain(
        os.environ["JUPYTERHUB_SSL_CERTFILE"], os.environ["JUPYTERHUB_SSL_KEYFILE"]
    )
    context.verify_mode = ssl.CERT_REQUIRED
    server.socket = context.wrap_socket(server.socket, server_side=True)
print("serving", url.scheme, url.hostname, url.port, flush=True)
server.serve_forever()
"""


@pytest.fixture
async def kubesim(tmp_path: Path) -> AsyncIterator[KubeSim]:
    """kubesim whose notebook containers run as processes (overrides the fake one)."""
    async with running_kubesim(kubelet="process") as sim:
        yield sim


def server_spawner(make_spawner: Callable[..., KubeCacheSpawner], **config: Any) -> Any:
    config.setdefault("start_timeout", 30)
    return make_spawner(cmd=[sys.executable, "-c", SERVER], **config)


async def test_internal_ssl_the_server_serves_https_with_its_mounted_certificate(
    cluster: Any, make_spawner: Callable[..., KubeCacheSpawner], tmp_path: Path
) -> None:
    hub_config = Config()
    hub_config.JupyterHub.internal_ssl = True
    hub_config.JupyterHub.internal_certs_location = str(tmp_path / "internal-ssl")
    hub = JupyterHub(config=hub_config)
    hub.init_internal_ssl()
    spawner = server_spawner(
        make_spawner,
        internal_ssl=True,
        internal_trust_bundles=hub.internal_trust_bundles,
        internal_certs_location=hub.internal_certs_location,
    )
    spawner.cert_paths = await spawner.move_certs(await spawner.create_certs())
    url = await spawner.start()
    try:
        assert url == f"https://jupyter-alice.{NAMESPACE}.svc.cluster.local:8888"
        pod = cluster.store.get("pods", NAMESPACE, "jupyter-alice")
        volume = next(v for v in pod["spec"]["volumes"] if "secret" in v)
        assert volume["secret"]["secretName"] == spawner.secret_name

        # The hub's own client: its internal certificate, trusting the notebooks' CA; the
        # Service's DNS name resolves to the pod as cluster DNS would.
        context = make_ssl_context(
            hub.internal_ssl_key, hub.internal_ssl_cert, cafile=hub.internal_ssl_ca
        )
        hostname = f"jupyter-alice.{NAMESPACE}.svc.cluster.local"
        mapping = hostname_mapping(cluster.store, hostname)
        assert mapping == {hostname: pod["status"]["podIP"]}
        http = AsyncHTTPClient(force_instance=True, hostname_mapping=mapping)
        try:
            response = await http.fetch(url + "/user/alice/", ssl_options=context)
            assert response.body == b"hello alice"
            # Without a client certificate the server (CERT_REQUIRED) refuses the handshake.
            anonymous = ssl.create_default_context(cafile=hub.internal_ssl_ca)
            with pytest.raises((ssl.SSLError, ConnectionError, HTTPClientError, OSError)):
                await http.fetch(url + "/user/alice/", ssl_options=anonymous)
        finally:
            http.close()
    finally:
        await spawner.stop(now=True)


def z2jh_extra_files() -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """What the chart renders for singleuser.extraFiles: a Secret, a volume, subPath mounts."""
    settings = {"ServerApp": {"shutdown_no_activity_timeout": 3600}}
    secret = {
        "metadata": {"name": "singleuser", "labels": {"component": "singleuser"}},
        "type": "Opaque",
        "data": {
            "jupyter_server_config.json": base64.b64encode(json.dumps(settings).encode()).decode()
        },
    }
    volumes = [
        {
            "name": "files",
            "secret": {
                "secretName": "singleuser",
                "items": [
                    {
                        "key": "jupyter_server_config.json",
                        "path": "jupyter_server_config.json",
                        "mode": 0o444,
                    }
                ],
            },
        }
    ]
    mounts = [
        {
            "name": "files",
            "mountPath": "/usr/local/etc/jupyter/jupyter_server_config.json",
            "subPath": "jupyter_server_config.json",
        }
    ]
    return secret, volumes, mounts


async def test_a_z2jh_pod_reads_its_extra_files_and_keeps_its_home(
    cluster: Any, make_spawner: Callable[..., KubeCacheSpawner]
) -> None:
    secret, volumes, mounts = z2jh_extra_files()
    cluster.store.create("secrets", NAMESPACE, secret)
    config = {
        "volumes": [
            *volumes,
            {"name": "home", "persistentVolumeClaim": {"claimName": "claim-{username}"}},
        ],
        "volume_mounts": [*mounts, {"name": "home", "mountPath": "/home/jovyan"}],
        "storage_pvc_ensure": True,
        "storage_capacity": "1Gi",
        "environment": {
            "ANSWER_FILE": "/usr/local/etc/jupyter/jupyter_server_config.json",
            "NOTES": "/home/jovyan/notes.txt",
        },
    }
    for _visit in (1, 2):  # a second server finds what the first left in the home volume
        spawner = server_spawner(make_spawner, **config)
        url = await spawner.start()
        try:
            http = AsyncHTTPClient(force_instance=True)
            try:
                response = await http.fetch(url + "/user/alice/")
            finally:
                http.close()
            assert json.loads(response.body) == {
                "ServerApp": {"shutdown_no_activity_timeout": 3600}
            }
            pod = cluster.store.get("pods", NAMESPACE, "jupyter-alice")
            claim = cluster.store.get("persistentvolumeclaims", NAMESPACE, "claim-alice")
            assert pod is not None and claim is not None
        finally:
            await spawner.stop(now=True)
    kubelet = cluster.server.kubelet
    claim_dirs = list((kubelet.root_dir / "claims" / NAMESPACE).iterdir())
    assert [d.name for d in claim_dirs] == [f"claim-alice-{claim['metadata']['uid']}"]
    assert (claim_dirs[0] / "notes.txt").read_text() == "visited\nvisited\n"
