"""A real JupyterHub spawns, streams progress of, serves and stops a server through kubecache."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.support.stack import Cluster

pytestmark = pytest.mark.e2e

NAMESPACE = "e2e-spawn"
#: JupyterHub's log format: "[I 2026-12-06 12:00:00.123 JupyterHub module:line] message"
HUB_LOG_LINE = re.compile(r"^\[[DIWEC] \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \S+ ")
#: KubeSpawner's progress message format: "{timestamp} [{type}] {message}"
EVENT_MESSAGE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)? \[(Normal|Warning)\] .+"
)


async def test_spawn_through_the_rest_api_streams_pod_events_serves_through_the_proxy_and_stops(
    cluster: Cluster,
) -> None:
    proxy = await cluster.start_proxy()
    hub = cluster.hub("hub", proxy, namespace=NAMESPACE)
    await cluster.start_hub(hub)
    api = hub.api

    await api.create_user("alice")
    assert await api.start_server("alice", {"profile": "large", "flavour": "spicy"}) == 202
    events: list[dict[str, Any]] = [event async for event in api.progress("alice")]

    # The stream carries the pod's own events, in KubeSpawner's format, and ends ready.
    pod_events = [e for e in events if "raw_event" in e]
    assert [e["raw_event"]["reason"] for e in pod_events] == [
        "Scheduled",
        "Pulling",
        "Pulled",
        "Created",
        "Started",
    ], events
    for event in pod_events:
        assert EVENT_MESSAGE.match(event["message"]), event["message"]
        assert event["raw_event"]["involvedObject"]["name"] == "jupyter-alice"
    assert "Successfully assigned e2e-spawn/jupyter-alice to " in pod_events[0]["message"]
    assert "Started container notebook" in pod_events[-1]["message"]
    assert events[-1].get("ready") is True, events[-1]
    assert not any(e.get("failed") for e in events), events
    progress = [e["progress"] for e in events if "progress" in e]
    assert progress == sorted(progress) and progress[-1] == 100

    # The profile and its option made the pod.
    pod = cluster.pod(NAMESPACE, "jupyter-alice")
    assert pod is not None
    assert pod["metadata"]["labels"]["e2e/flavour"] == "spicy"
    assert pod["metadata"]["labels"]["release"] == "hub"
    assert float(pod["spec"]["containers"][0]["resources"]["limits"]["cpu"]) == 1.0

    # The real server answers through the proxy on its own pod IP.
    assert await api.server_ready("alice")
    status, body = await api.get_through_proxy("/user/alice/api/status")
    assert status == 200, body
    assert '"started"' in body
    record = await cluster.record(NAMESPACE, "jupyter-alice")
    assert record is not None and record["ready"] and record["ip"] == pod["status"]["podIP"]

    # Stopping removes the pod from the cluster and its record from the cache.
    await api.stop_server("alice")
    await cluster.wait(
        lambda: api.server_gone("alice"), timeout=60, message="the hub to report alice stopped"
    )
    assert cluster.pod(NAMESPACE, "jupyter-alice") is None
    assert await cluster.record(NAMESPACE, "jupyter-alice") is None
    status, _ = await api.get_through_proxy("/user/alice/api/status")
    assert status != 200

    # kubecache logs through the hub's logger: its format (level, time), nothing bare, and
    # its INFO lines kept (issue 20: a module logger wrote bare lines and lost INFO)
    lines = [line for line in hub.replicas["hub"].log_text().splitlines() if "kubecache:" in line]
    assert any("following the change feed" in line for line in lines), lines
    assert any("creating pod for alice" in line for line in lines), lines
    bare = [line for line in lines if not HUB_LOG_LINE.match(line)]
    assert bare == [], bare
