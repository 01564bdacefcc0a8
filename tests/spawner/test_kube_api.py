"""Direct API calls: KubeSpawner's timeout and retry semantics, errors translated once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from aiohttp import web
from kubernetes_asyncio import client

from kubecache.spawner.kube_api import KubeApi, KubeApiError, Timeouts

FAST = Timeouts(request=1.0, retry=3.0)
POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "jupyter-alice"},
    "spec": {"containers": [{"name": "notebook", "image": "x"}]},
}


def _status(code: int, reason: str, message: str) -> web.Response:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return web.Response(status=code, body=orjson.dumps(body), content_type="application/json")


class ScriptedApi:
    """A loopback HTTP server answering each request with the next scripted response."""

    def __init__(self) -> None:
        self.script: list[Callable[[], Any]] = []
        self.seen: list[str] = []
        self.release = asyncio.Event()  # ends requests scripted to hang

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(f"{request.method} {request.path}")
        answer = self.script.pop(0)() if self.script else _status(500, "InternalError", "x")
        if asyncio.iscoroutine(answer):
            answer = await answer
        return answer


@pytest.fixture
async def scripted() -> AsyncIterator[tuple[ScriptedApi, KubeApi]]:
    api = ScriptedApi()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", api.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{port}"
    configuration.client_side_validation = False
    kube = KubeApi(client.ApiClient(configuration))
    yield api, kube
    api.release.set()
    await kube.api_client.close()
    await runner.cleanup()


def _created() -> web.Response:
    pod = {**POD, "metadata": {"name": "jupyter-alice", "namespace": "jhub", "uid": "u-1"}}
    return web.Response(status=201, body=orjson.dumps(pod), content_type="application/json")


async def test_a_503_is_retried_until_the_create_succeeds(
    scripted: tuple[ScriptedApi, KubeApi],
) -> None:
    api, kube = scripted
    api.script = [lambda: _status(503, "ServiceUnavailable", "busy"), _created]
    pod = await kube.create_pod("jhub", POD, FAST)
    assert pod["metadata"]["uid"] == "u-1"
    assert api.seen == ["POST /api/v1/namespaces/jhub/pods"] * 2


async def test_an_invalid_object_is_not_retried_and_says_why(
    scripted: tuple[ScriptedApi, KubeApi],
) -> None:
    api, kube = scripted
    api.script = [lambda: _status(422, "Invalid", 'Pod "jupyter-alice" is invalid: spec')]
    with pytest.raises(
        KubeApiError, match='create pod jhub/jupyter-alice: Pod "jupyter-alice"'
    ) as e:
        await kube.create_pod("jhub", POD, FAST)
    assert e.value.status == 422 and e.value.reason == "Invalid"
    assert len(api.seen) == 1


async def test_a_conflicting_pod_is_reported_as_a_conflict(
    scripted: tuple[ScriptedApi, KubeApi],
) -> None:
    api, kube = scripted
    api.script = [lambda: _status(409, "AlreadyExists", 'pods "jupyter-alice" already exists')]
    with pytest.raises(KubeApiError) as e:
        await kube.create_pod("jhub", POD, FAST)
    assert e.value.conflict


async def test_deleting_or_reading_an_absent_pod_is_fine(
    scripted: tuple[ScriptedApi, KubeApi],
) -> None:
    api, kube = scripted
    api.script = [lambda: _status(404, "NotFound", "gone")] * 2
    assert await kube.delete_pod("jhub", "jupyter-alice", grace_seconds=0, timeouts=FAST) is False
    assert await kube.read_pod("jhub", "jupyter-alice", FAST) is None


async def test_an_existing_pvc_is_fine_and_a_quota_403_with_the_claim_there_too(
    scripted: tuple[ScriptedApi, KubeApi],
) -> None:
    api, kube = scripted
    pvc = {"metadata": {"name": "claim-alice"}}
    claim = {"metadata": {"name": "claim-alice", "namespace": "jhub"}}
    api.script = [
        lambda: _status(409, "AlreadyExists", "exists"),
        lambda: _status(403, "Forbidden", "exceeded quota"),
        lambda: web.json_response(claim),
    ]
    assert await kube.create_pvc("jhub", pvc, FAST) is False
    assert await kube.create_pvc("jhub", pvc, FAST) is False


async def test_a_quota_403_without_the_claim_is_an_error(
    scripted: tuple[ScriptedApi, KubeApi],
) -> None:
    api, kube = scripted
    api.script = [
        lambda: _status(403, "Forbidden", "exceeded quota: compute"),
        lambda: _status(404, "NotFound", "no claim"),
    ]
    with pytest.raises(KubeApiError, match="exceeded quota"):
        await kube.create_pvc("jhub", {"metadata": {"name": "claim-alice"}}, FAST)


async def test_requests_that_never_answer_give_up_after_the_retry_timeout(
    scripted: tuple[ScriptedApi, KubeApi],
) -> None:
    api, kube = scripted

    async def hang() -> web.Response:
        await api.release.wait()
        return _created()

    api.script = [hang] * 20
    # timeouts left over from a deadline (not round numbers) are shown rounded
    timeouts = Timeouts(request=0.19999663670023438, retry=0.5999966367)
    with pytest.raises(KubeApiError, match=r"within 0.6 s .*no answer within 0.2 s$") as e:
        await kube.read_pod("jhub", "jupyter-alice", timeouts)
    assert e.value.status is None
    assert len(api.seen) >= 2
