"""pods/exec over WebSocket: kubernetes_asyncio's WsApiClient and kubectl, both kubelets."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.stream import WsApiClient

from kubesim.auth import Authenticator, Rule
from kubesim.testing import KubeSim, running_kubesim
from tests.support.waiting import wait_for

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def ws_configuration(sim: KubeSim, token: str | None = None) -> client.Configuration:
    configuration = client.Configuration()
    configuration.host = sim.url
    configuration.api_key = {"BearerToken": token or sim.token}
    configuration.api_key_prefix = {"BearerToken": "Bearer"}
    if sim.ca_cert is not None:
        configuration.ssl_ca_cert = str(sim.ca_cert)
    return configuration


async def start_pod(sim: KubeSim, name: str, *, phase: str = "Running", **spec: Any) -> None:
    """Create a pod (its notebook container runs SLEEPER) and wait for ``phase``."""
    container = {"name": "notebook", "image": "python:3.11", "command": SLEEPER}
    container.update(spec.pop("container", {}))
    sidecars = spec.pop("sidecars", [])
    body = {
        "metadata": {"name": name, "annotations": spec.pop("annotations", {})},
        "spec": {"containers": [container, *sidecars], **spec},
    }
    async with sim.api_client() as api:
        core = client.CoreV1Api(api)
        await core.create_namespaced_pod("default", body)

        async def reached() -> bool:
            pod = await core.read_namespaced_pod(name, "default")
            if phase != "Running":
                return bool(pod.status.phase == phase)
            statuses = pod.status.container_statuses or []
            return bool(statuses) and all(s.state.running for s in statuses)

        await wait_for(reached, timeout=20, message=f"pod {name} {phase}")


@pytest.fixture
async def sim() -> AsyncIterator[KubeSim]:
    async with running_kubesim(kubelet="process", tls=True) as running:
        yield running


async def frames(sim: KubeSim, name: str, command: list[str], **options: Any) -> list[bytes]:
    """Every message of one exec, read to the end, stdin left closed."""
    async with WsApiClient(ws_configuration(sim)) as ws_api:
        connection = await client.CoreV1Api(ws_api).connect_get_namespaced_pod_exec(
            name,
            "default",
            command=command,
            stdout=True,
            stderr=True,
            _preload_content=False,
            **options,
        )
        async with connection as ws:
            return [bytes(message.data) async for message in ws]


async def test_exec_runs_in_the_containers_environment_with_its_mounts(sim: KubeSim) -> None:
    async with sim.api_client() as api:
        secret = {"metadata": {"name": "certs"}, "data": {"ssl.crt": base64.b64encode(b"PEM")}}
        secret["data"]["ssl.crt"] = secret["data"]["ssl.crt"].decode()  # type: ignore[index]
        await client.CoreV1Api(api).create_namespaced_secret("default", secret)
    await start_pod(
        sim,
        "envy",
        container={
            "env": [{"name": "GREETING", "value": "hello"}],
            "volumeMounts": [{"name": "ssl", "mountPath": "/etc/jupyterhub/ssl"}],
        },
        volumes=[{"name": "ssl", "secret": {"secretName": "certs"}}],
    )
    script = "echo $GREETING; cat /etc/jupyterhub/ssl/ssl.crt; echo; echo oops >&2; exit 3"
    received = await frames(sim, "envy", ["sh", "-c", script])
    assert received[0] == b"\x01"  # the empty "ready" message on stdout comes first
    stdout = b"".join(f[1:] for f in received if f[:1] == b"\x01")
    stderr = b"".join(f[1:] for f in received if f[:1] == b"\x02")
    assert stdout == b"hello\nPEM\n" and stderr == b"oops\n"
    assert received[-1][:1] == b"\x03"
    status = json.loads(received[-1][1:])
    assert status["reason"] == "NonZeroExitCode"
    assert WsApiClient.parse_error_data(received[-1][1:]) == 3
    success = await frames(sim, "envy", ["true"])
    assert json.loads(success[-1][1:]) == {"metadata": {}, "status": "Success"}


async def test_preloaded_exec_returns_the_output(sim: KubeSim) -> None:
    await start_pod(sim, "pre")
    async with WsApiClient(ws_configuration(sim)) as ws_api:
        output = await client.CoreV1Api(ws_api).connect_get_namespaced_pod_exec(
            "pre", "default", command=["sh", "-c", "pwd; echo done"], stdout=True, stderr=True
        )
    assert output.endswith("done\n")


async def test_stdin_reaches_the_command_and_a_tty_can_be_resized(sim: KubeSim) -> None:
    await start_pod(sim, "typing")
    async with WsApiClient(ws_configuration(sim)) as ws_api:
        core = client.CoreV1Api(ws_api)
        connection = await core.connect_get_namespaced_pod_exec(
            "typing",
            "default",
            command=["sh", "-c", "read line; echo got $line; stty size"],
            stdin=True,
            stdout=True,
            tty=True,
            _preload_content=False,
        )
        async with connection as ws:
            await ws.send_bytes(b"\x04" + orjson.dumps({"Width": 91, "Height": 27}))
            await ws.send_bytes(b"\x00hi\n")
            received = [bytes(message.data) async for message in ws]
    stdout = b"".join(f[1:] for f in received if f[:1] == b"\x01").replace(b"\r", b"")
    assert b"got hi\n27 91\n" in stdout
    assert json.loads(received[-1][1:])["status"] == "Success"


async def test_a_client_that_goes_away_ends_the_command(sim: KubeSim) -> None:
    await start_pod(sim, "left")
    async with WsApiClient(ws_configuration(sim)) as ws_api:
        connection = await client.CoreV1Api(ws_api).connect_get_namespaced_pod_exec(
            "left",
            "default",
            command=["sh", "-c", "echo $$; exec sleep 120"],
            stdout=True,
            _preload_content=False,
        )
        async with connection as ws:
            pid = 0
            async for message in ws:
                if message.data[1:].strip():
                    pid = int(message.data[1:])
                    break
    assert pid

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    await wait_for(gone, timeout=10, message="the exec'd process ended")


async def run_kubectl(sim: KubeSim, *args: str, stdin: bytes = b"") -> tuple[bytes, bytes, int]:
    process = await asyncio.create_subprocess_exec(
        "kubectl",
        "--kubeconfig",
        str(sim.kubeconfig_path),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), 60)
    assert process.returncode is not None
    return out, err, process.returncode


async def test_kubectl_exec_streams_stdin_and_returns_the_exit_code(sim: KubeSim) -> None:
    await start_pod(sim, "kube", container={"env": [{"name": "WHO", "value": "kubesim"}]})
    out, err, code = await run_kubectl(
        sim, "exec", "kube", "--", "sh", "-c", "echo $WHO; echo warn >&2; exit 7"
    )
    assert (out, code) == (b"kubesim\n", 7)
    assert err == b"warn\ncommand terminated with exit code 7\n"
    out, err, code = await run_kubectl(sim, "exec", "-i", "kube", "--", "wc", "-c", stdin=b"abcd")
    assert (out.strip(), code) == (b"4", 0), err  # v5's close signal ended wc's input
    out, err, code = await run_kubectl(sim, "exec", "kube", "--", "no-such-command")
    assert code == 1
    assert b'exec: "no-such-command": executable file not found in $PATH' in err


async def test_exec_requests_are_checked_as_the_api_server_checks_them(sim: KubeSim) -> None:
    await start_pod(sim, "two", sidecars=[{"name": "sidecar", "image": "x:1"}])
    await start_pod(
        sim, "done", phase="Succeeded", container={"command": ["true"]}, restartPolicy="Never"
    )

    async def refusal(name: str, **query: Any) -> tuple[int, str]:
        params = [("command", "true"), ("stdout", "true"), *query.items()]
        url = f"{sim.url}/api/v1/namespaces/default/pods/{name}/exec"
        headers = {"Authorization": f"Bearer {sim.token}"}
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, params=params, headers=headers, ssl=False) as response,
        ):
            body = await response.json()
            return response.status, body["message"]

    assert await refusal("missing") == (404, 'pods "missing" not found')
    assert await refusal("two", container="nope") == (
        400,
        "container nope is not valid for pod two",
    )
    assert await refusal("two") == (
        400,
        "a container name must be specified for pod two, choose one of: [notebook sidecar]",
    )
    assert await refusal("two", container="notebook") == (400, "Upgrade request required")
    assert await refusal("done") == (
        400,
        "cannot exec into a container in a completed pod; current phase is Succeeded",
    )


async def test_exec_needs_create_on_pods_exec() -> None:
    auth = Authenticator.single("admin")
    auth.add_token("reader", "reader", [Rule.of(["get", "list"], ["pods"])])
    async with running_kubesim(kubelet="fake", auth=auth, token="admin") as sim:
        await start_pod(sim, "guarded")
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            async with WsApiClient(ws_configuration(sim, "reader")) as ws_api:
                await client.CoreV1Api(ws_api).connect_get_namespaced_pod_exec(
                    "guarded", "default", command=["true"], stdout=True
                )
        assert caught.value.status == 403


async def test_the_fake_kubelet_answers_from_the_exec_annotation() -> None:
    async with running_kubesim(kubelet="fake") as sim:
        script = {"stdout": "scripted\n", "stderr": "", "exitCode": 2}
        await start_pod(sim, "fake", annotations={"kubesim.dev/exec": json.dumps(script)})
        received = await frames(sim, "fake", ["anything"])
        assert b"".join(f[1:] for f in received if f[:1] == b"\x01") == b"scripted\n"
        assert WsApiClient.parse_error_data(received[-1][1:]) == 2
        with pytest.raises(ApiException):
            async with sim.api_client() as api:
                await client.CoreV1Api(api).connect_get_namespaced_pod_exec(
                    "fake", "default", command=["x"], stdout=True
                )


async def test_a_container_that_is_not_running_cannot_be_exec_d_into() -> None:
    async with running_kubesim(kubelet="fake") as sim:
        async with sim.api_client() as api:
            core = client.CoreV1Api(api)
            body = {
                "metadata": {"name": "pulling", "annotations": {"kubesim.dev/pull-fails": "true"}},
                "spec": {"containers": [{"name": "notebook", "image": "x:1"}]},
            }
            await core.create_namespaced_pod("default", body)
            await wait_for(lambda: has_ip(core), timeout=10, message="sandbox")
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await frames(sim, "pulling", ["true"])
        assert caught.value.status == 400
        url = f"{sim.url}/api/v1/namespaces/default/pods/pulling/exec?command=true&stdout=1"
        async with (
            aiohttp.ClientSession(headers={"Authorization": f"Bearer {sim.token}"}) as session,
            session.get(url) as response,
        ):
            body = await response.json()
        assert body["message"] == 'unable to upgrade connection: container not found ("notebook")'


async def has_ip(core: client.CoreV1Api) -> bool:
    pod = await core.read_namespaced_pod("pulling", "default")
    return bool(pod.status.pod_ip)


async def test_the_base64_protocol_carries_text_messages() -> None:
    async with running_kubesim(kubelet="process") as sim:
        await start_pod(sim, "b64")
        url = (
            sim.url.replace("http", "ws", 1)
            + "/api/v1/namespaces/default/pods/b64/exec?command=head&command=-n1"
            + "&stdin=true&stdout=true"
        )
        async with (
            aiohttp.ClientSession(headers={"Authorization": f"Bearer {sim.token}"}) as session,
            session.ws_connect(url, protocols=["v4.base64.channel.k8s.io"]) as ws,
        ):
            assert ws.protocol == "v4.base64.channel.k8s.io"
            await ws.send_str("0" + base64.b64encode(b"line one\n").decode())
            received = [str(message.data) async for message in ws]
    decoded = [(text[0], base64.b64decode(text[1:])) for text in received]
    assert ("1", b"line one\n") in decoded
    assert decoded[-1][0] == "3"
    assert json.loads(decoded[-1][1]) == {"metadata": {}, "status": "Success"}


async def test_exec_into_a_simulated_sidecar_runs_in_its_specs_environment() -> None:
    async with running_kubesim(kubelet="process") as sim:
        sidecar = {"name": "sidecar", "image": "x:1", "env": [{"name": "ROLE", "value": "side"}]}
        await start_pod(sim, "pair", sidecars=[sidecar])
        received = await frames(sim, "pair", ["sh", "-c", "echo $ROLE"], container="sidecar")
        assert b"".join(f[1:] for f in received if f[:1] == b"\x01") == b"side\n"
