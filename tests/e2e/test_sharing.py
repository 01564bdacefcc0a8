"""Sharding: two independent hubs share one cacher and one Redis and never touch each other.

Each hub is its own deployment, as two zero-to-jupyterhub releases in one
cluster: its own namespace, ``release`` label, database and proxy. The same
user name spawns on both.
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.support.stack import Cluster, Hub

pytestmark = pytest.mark.e2e

USER = "alice"
POD = "jupyter-alice"


async def test_two_hubs_sharing_one_cacher_and_redis_neither_list_poll_nor_stop_the_others_server(
    cluster: Cluster,
) -> None:
    proxies = [await cluster.start_proxy("proxy-one"), await cluster.start_proxy("proxy-two")]
    one, two = (
        cluster.hub(name, proxy, namespace=f"e2e-{name}", poll_interval=1)
        for name, proxy in zip(("one", "two"), proxies, strict=True)
    )
    hubs: tuple[Hub, Hub] = (one, two)
    for hub in hubs:
        cluster.start_replica(hub, "hub")
    for hub in hubs:
        await cluster.wait(
            hub.api.answers,
            timeout=90,
            message=f"hub {hub.name} to answer",
            watching=list(hub.replicas.values()),
        )
    baseline = await cluster.api_requests()
    events_baseline = await cluster.api_requests("events")

    # The same user spawns on both hubs, with different options.
    for hub, flavour in ((one, "plain"), (two, "spicy")):
        await hub.api.create_user(USER)
        await hub.api.start_server(USER, {"profile": "small", "flavour": flavour})
    for hub in hubs:
        await cluster.wait(
            lambda hub=hub: hub.api.spawned(USER),  # type: ignore[misc]
            timeout=90,
            message=f"{USER}'s server on hub {hub.name} to be ready",
            watching=list(hub.replicas.values()),
        )
    pod_one, pod_two = cluster.pod("e2e-one", POD), cluster.pod("e2e-two", POD)
    assert pod_one is not None and pod_two is not None
    assert pod_one["metadata"]["labels"]["release"] == "one"
    assert pod_one["metadata"]["labels"]["e2e/flavour"] == "plain"
    assert pod_two["metadata"]["labels"]["release"] == "two"
    assert pod_two["metadata"]["labels"]["e2e/flavour"] == "spicy"
    assert pod_one["status"]["podIP"] != pod_two["status"]["podIP"]
    for hub in hubs:
        status, body = await hub.api.get_through_proxy(f"/user/{USER}/api/status")
        assert status == 200, (hub.name, body)
    # One cache holds both servers; `kubecache servers` shows them from Redis alone.
    assert await cluster.record("e2e-one", POD) is not None
    assert await cluster.record("e2e-two", POD) is not None
    status, out = await cluster.kubecache_cli("servers", "--user", USER, "--json")
    assert status == 0, out
    assert {(r["namespace"], r["pod"], r["ready"]) for r in json.loads(out)} == {
        ("e2e-one", POD, True),
        ("e2e-two", POD, True),
    }

    # Hub one stops its server: hub two's server stays.
    await one.api.stop_server(USER)
    await cluster.wait(
        lambda: one.api.server_gone(USER), timeout=60, message="hub one to stop its server"
    )
    assert cluster.pod("e2e-one", POD) is None
    assert await cluster.record("e2e-one", POD) is None
    polled = len(two.polls("hub"))
    # Two more polls of hub two's server (a poll's answer is applied before the next starts).
    await cluster.wait(
        lambda: len(two.polls("hub")) >= polled + 2,
        timeout=30,
        message="hub two to poll its server twice more",
        watching=list(two.replicas.values()),
    )
    assert await two.api.server_ready(USER), "hub two's poll called its running server stopped"
    assert cluster.pod("e2e-two", POD) is not None
    record = await cluster.record("e2e-two", POD)
    assert record is not None and record["ready"]
    status, body = await two.api.get_through_proxy(f"/user/{USER}/api/status")
    assert status == 200, body
    assert set(one.polls("hub")) <= {USER}  # hub one never polled anything but its own user

    # Neither hub listed or watched pods or events: only the cacher does, and it had already.
    after = await cluster.api_requests()
    events_after = await cluster.api_requests("events")
    for verb in ("list", "watch"):
        assert after.get(verb, 0) == baseline.get(verb, 0), (verb, baseline, after)
        assert events_after.get(verb, 0) == events_baseline.get(verb, 0), (verb, events_after)
