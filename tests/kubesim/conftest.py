"""Fixtures for the kubesim conformance tests: servers with and without a kubelet, clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from kubernetes_asyncio import client

from kubesim.testing import KubeSim, running_kubesim


@pytest.fixture
async def bare() -> AsyncIterator[KubeSim]:
    """kubesim without a kubelet: nothing but the clients writes to it."""
    async with running_kubesim(kubelet=None, history=200, event_history=20) as sim:
        yield sim


@pytest.fixture
async def api(bare: KubeSim) -> AsyncIterator[client.ApiClient]:
    async with bare.api_client() as api_client:
        yield api_client


@pytest.fixture
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


def pod_manifest(
    name: str = "", *, labels: dict[str, str] | None = None, generate_name: str = "", node: str = ""
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"labels": labels or {}}
    if name:
        metadata["name"] = name
    if generate_name:
        metadata["generateName"] = generate_name
    spec: dict[str, Any] = {"containers": [{"name": "notebook", "image": "jupyter/base:1.0"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


class RawWatch:
    """A raw watch stream (``_preload_content=False``) read line by line."""

    def __init__(self, response: Any) -> None:
        self.response = response

    async def next(self) -> dict[str, Any]:
        line = await self.response.content.readline()
        if not line:
            raise EOFError("the watch stream ended")
        event: dict[str, Any] = orjson.loads(line)
        return event

    async def rest(self) -> list[dict[str, Any]]:
        """Every event until the server ends the stream."""
        events = []
        async for line in self.response.content:
            if line.strip():
                events.append(orjson.loads(line))
        return events

    def close(self) -> None:
        self.response.close()


async def raw_watch(list_call: Any, *args: Any, **kwargs: Any) -> RawWatch:
    response = await list_call(*args, watch=True, _preload_content=False, **kwargs)
    return RawWatch(response)
