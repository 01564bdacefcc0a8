"""docs/ha.md's recipe, applied to zero-to-jupyterhub's hub Deployment, gives what it says.

z2jh's hub Deployment is built as its template renders it (tests/docs/z2jh.py); the
post-renderer and the kustomize overlay run with the real kustomize built into kubectl.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as syncredis
import yaml

from kubecache.contract import Keys
from tests.docs import z2jh
from tests.docs.reading import REPO, Source, code_blocks, commands, split
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_until

RECIPE = REPO / "charts" / "z2jh-ha"
VALUES_FILE = RECIPE / "z2jh-values.yaml"
DOC = REPO / "docs" / "ha.md"
HUB_COMMAND = [
    "kubecache",
    "hub-standby",
    "--preload",
    "--",
    "jupyterhub",
    "--config",
    "/usr/local/etc/jupyterhub/jupyterhub_config.py",
]

needs_kustomize = pytest.mark.skipif(
    shutil.which("kubectl") is None and shutil.which("kustomize") is None,
    reason="needs kubectl (its built-in kustomize) or kustomize",
)


def recipe_values() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(VALUES_FILE.read_text())
    return loaded


def operator_values() -> dict[str, Any]:
    """What an operator's config.yaml holds after docs/z2jh.md, plus a database password."""
    return {
        "hub": {
            "image": {"name": "registry.example.org/kubecache-hub", "tag": "0.1.0"},
            "config": {"JupyterHub": {"spawner_class": "kubecache"}},
            "extraEnv": {"KUBECACHE_REDIS_URL": "redis://kubecache-redis.jhub.svc:6379/0"},
        }
    }


def post_render(manifests: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(RECIPE / "post-render.sh")],
        input=yaml.safe_dump_all(manifests),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def rendered_objects(text: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(text) if d}


def hub_container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = [
        c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "hub"
    ]
    return container


def test_the_values_the_doc_shows_are_the_shipped_file() -> None:
    shown = [
        yaml.safe_load(body)
        for _, body in code_blocks(Source("docs/ha.md", DOC.read_text()), "yaml")
        if "hub-standby" in body
    ]
    assert shown == [recipe_values()]


def test_the_doc_shows_the_hub_command_and_it_parses() -> None:
    from kubecache.cli_args import build_parser

    text = DOC.read_text()
    assert " ".join(HUB_COMMAND) in " ".join(text.split())
    args = build_parser().parse_args(HUB_COMMAND[1:])
    assert args.command == "hub-standby"
    assert args.preload is True
    assert args.hub_command == ["--", *HUB_COMMAND[4:]]


def test_without_the_patch_z2jh_renders_one_replica_under_its_own_command() -> None:
    deployment = z2jh.hub_deployment(operator_values())
    assert deployment["spec"]["replicas"] == 1
    assert hub_container(deployment)["args"][0] == "jupyterhub"


@needs_kustomize
def test_the_post_renderer_gives_two_standby_replicas_ready_only_while_active() -> None:
    values = [operator_values(), recipe_values(), {"hub": {"db": {"password": "s3cret"}}}]
    manifests = [z2jh.hub_deployment(*values), z2jh.hub_service()]
    result = post_render(manifests)
    assert result.returncode == 0, result.stderr
    objects = rendered_objects(result.stdout)
    deployment = objects[("Deployment", "hub")]
    assert deployment["spec"]["replicas"] == 2
    container = hub_container(deployment)
    assert container["args"] == HUB_COMMAND
    assert "livenessProbe" not in container
    probe = container["readinessProbe"]
    assert probe["httpGet"] == {"path": "/hub/health", "port": "http"}
    assert probe["periodSeconds"] * probe["failureThreshold"] <= 10  # not z2jh's 33 minutes
    strategy = deployment["spec"]["strategy"]
    assert strategy == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": "100%", "maxUnavailable": "100%"},
    }
    volumes = {v["name"] for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert "hub-db-dir" not in volumes  # no sqlite PVC that only one pod could mount
    assert "PGPASSWORD" in {e["name"] for e in container["env"]}
    assert z2jh.hub_pdb(*values) is None
    # the hub Service selects the hub pods: endpoints are the Ready (active) one only
    selector = objects[("Service", "hub")]["spec"]["selector"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items()
    assert objects[("Service", "hub")] == z2jh.hub_service()  # other objects pass unchanged


@needs_kustomize
def test_the_patch_refuses_a_hub_not_run_under_hub_standby() -> None:
    """Two replicas of a plain jupyterhub would both be active on one database."""
    result = post_render([z2jh.hub_deployment(operator_values())])
    assert result.returncode != 0
    assert "hub-standby" in result.stderr
    assert result.stdout == ""


@needs_kustomize
def test_the_kustomize_overlay_does_the_same(tmp_path: Path) -> None:
    overlay = tmp_path / "z2jh-ha"
    shutil.copytree(RECIPE, overlay)
    manifests = [z2jh.hub_deployment(operator_values(), recipe_values())]
    (overlay / "z2jh.yaml").write_text(yaml.safe_dump_all(manifests))
    kubectl = shutil.which("kubectl")
    argv = [kubectl, "kustomize", str(overlay)] if kubectl else ["kustomize", "build", str(overlay)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    deployment = rendered_objects(result.stdout)[("Deployment", "hub")]
    assert deployment["spec"]["replicas"] == 2
    assert hub_container(deployment)["args"] == HUB_COMMAND


def test_the_helm_4_plugin_runs_the_post_renderer() -> None:
    plugin = yaml.safe_load((RECIPE / "plugin.yaml").read_text())
    assert plugin["apiVersion"] == "v1"
    assert plugin["type"] == "postrenderer/v1"
    assert plugin["runtime"] == "subprocess"
    (command,) = plugin["runtimeConfig"]["platformCommand"]
    script = RECIPE / command["command"].replace("${HELM_PLUGIN_DIR}/", "")
    assert script.exists() and script.stat().st_mode & 0o111
    text = DOC.read_text()
    assert f"--post-renderer {plugin['name']}" in text


def test_the_docs_helm_commands_use_the_shipped_files() -> None:
    for command in commands(Source("docs/ha.md", DOC.read_text()), "helm"):
        words = split(command)
        for i, word in enumerate(words):
            if word in ("-f", "--post-renderer") and words[i + 1].startswith("charts/"):
                assert (REPO / words[i + 1]).exists(), command


# -- what the readiness probe sees: a standby listens on nothing, the active hub answers --

HEALTH_SERVER = """
import http.server, sys
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/hub/health" else 404)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Health).serve_forever()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def probe(port: int) -> int | None:
    """The readiness probe: the HTTP status of /hub/health, None when refused."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/hub/health", timeout=2) as r:
            return int(r.status)
    except OSError:
        return None


def listening_ports(pid: int) -> set[int]:
    """TCP ports in LISTEN state held by the process ``pid`` (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink()
        except OSError:
            continue
        if str(target).startswith("socket:["):
            inodes.add(str(target)[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@pytest.fixture
def lease_redis(redis_server: RedisServer) -> Iterator[syncredis.Redis]:
    client = syncredis.Redis.from_url(redis_server.url)
    client.flushall()
    yield client
    client.close()


def test_a_standby_is_not_ready_until_it_holds_the_lease(
    redis_server: RedisServer, lease_redis: syncredis.Redis, tmp_path: Path
) -> None:
    key = Keys().hub_lease("jupyterhub")
    lease_redis.set(key, "the-active-pod", px=120_000)  # another replica is active
    port = free_port()
    log = tmp_path / "standby.log"
    standby = subprocess.Popen(
        [sys.executable, "-m", "kubecache.cli", "--redis-url", redis_server.url, "hub-standby",
         "--lease-duration", "3", "--renew-deadline", "2", "--retry-period", "0.25",
         "--", sys.executable, "-c", HEALTH_SERVER, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )  # fmt: skip
    try:
        wait_until(
            lambda: "standing by" in log.read_text(), timeout=30, message="the replica to stand by"
        )
        assert probe(port) is None  # refused: the readiness probe fails, the pod is not Ready
        assert listening_ports(standby.pid) == set()  # the wrapper itself serves nothing
        assert standby.poll() is None
        lease_redis.delete(key)  # the active replica is gone
        wait_until(lambda: probe(port) == 200, timeout=30, message="the hub to answer")
        assert "acquired lease" in log.read_text()
    finally:
        standby.terminate()
        standby.wait(30)
