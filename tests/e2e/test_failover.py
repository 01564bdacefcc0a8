"""Hub high availability: a standby hub takes over a crashed one without listing the cluster.

Two replicas of one hub deployment run under ``kubecache hub-standby`` (a
Redis lease); they share the database (PostgreSQL, as two hub pods must), the
hub URL and an external configurable-http-proxy, as two hub pods behind one
Service would. Failover under load and under each fault:
``test_failover_under_load.py``.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.e2e.support.stack import STANDBY_TIMING, Cluster, Hub

pytestmark = pytest.mark.e2e

NAMESPACE = "e2e-failover"
USERS = ("ann", "bob", "cyd")
LEASE_DURATION = float(STANDBY_TIMING[1])


async def spawn_and_wait(cluster: Cluster, hub: Hub, users: tuple[str, ...]) -> None:
    for user in users:
        await hub.api.create_user(user)
        await hub.api.start_server(user, {"profile": "small"})
    for user in users:
        await cluster.wait(
            lambda user=user: hub.api.spawned(user),  # type: ignore[misc]
            timeout=90,
            message=f"{user}'s server to be ready",
            watching=list(hub.replicas.values()),
        )


async def answer_through_the_proxy(hub: Hub, users: tuple[str, ...]) -> dict[str, int]:
    results = await asyncio.gather(
        *(hub.api.get_through_proxy(f"/user/{user}/api/status") for user in users)
    )
    return {user: status for user, (status, _) in zip(users, results, strict=True)}


async def test_a_standby_hub_takes_over_every_server_without_a_single_pod_list_or_watch(
    cluster: Cluster, hub_db_url: str
) -> None:
    proxy = await cluster.start_proxy()
    hub = cluster.hub("hub", proxy, namespace=NAMESPACE, db_url=hub_db_url)
    a = cluster.start_replica(hub, "a", standby=True)
    await cluster.wait(hub.api.answers, timeout=90, message="hub A to answer", watching=[a])
    b = cluster.start_replica(hub, "b", standby=True)
    await cluster.wait(
        lambda: "standing by: the hub runs on a" in b.log_text(),
        timeout=30,
        message="replica B to stand by",
        watching=[b],
    )

    await spawn_and_wait(cluster, hub, USERS)
    assert await answer_through_the_proxy(hub, USERS) == dict.fromkeys(USERS, 200)
    assert hub.polls("b") == []

    before = await cluster.api_requests()
    events_before = await cluster.api_requests("events")
    killed_at = time.monotonic()
    await a.kill()  # the whole replica: wrapper and hub, SIGKILL (a crashed node)

    await cluster.wait(
        lambda: "acquired lease" in b.log_text(),
        timeout=LEASE_DURATION + 10,
        message="replica B to take the lease over",
        watching=[b],
    )
    took_over = time.monotonic() - killed_at
    await cluster.wait(hub.api.answers, timeout=90, message="hub B to answer", watching=[b])
    # B's startup polled every server (the pre-poll hook records each poll)...
    await cluster.wait(
        lambda: set(hub.polls("b")) >= set(USERS),
        timeout=30,
        message="hub B to poll every server",
        watching=[b],
    )
    # ...and found them all running: a poll that said "stopped" would remove the server.
    for user in USERS:
        await cluster.wait(
            lambda user=user: hub.api.server_ready(user),  # type: ignore[misc]
            timeout=30,
            message=f"hub B to report {user}'s server running",
            watching=[b],
        )
    after = await cluster.api_requests()
    events_after = await cluster.api_requests("events")
    print(f"B took over {took_over:.1f} s after A was killed; pod requests {before} -> {after}")

    # Not one LIST, WATCH or GET of pods (nor LIST/WATCH of events): B answered every
    # poll from Redis.
    for verb in ("list", "watch", "get"):
        assert after.get(verb, 0) == before.get(verb, 0), (verb, before, after)
    for verb in ("list", "watch"):
        assert events_after.get(verb, 0) == events_before.get(verb, 0), (verb, events_after)

    # The users' servers kept working through the same proxy.
    assert await answer_through_the_proxy(hub, USERS) == dict.fromkeys(USERS, 200)

    # B stops a server A started; the others keep running.
    await hub.api.stop_server("ann")
    await cluster.wait(
        lambda: hub.api.server_gone("ann"), timeout=60, message="hub B to stop ann's server"
    )
    assert cluster.pod(NAMESPACE, "jupyter-ann") is None
    assert await cluster.record(NAMESPACE, "jupyter-ann") is None
    for user in ("bob", "cyd"):
        assert await hub.api.server_ready(user)
        assert cluster.pod(NAMESPACE, f"jupyter-{user}") is not None
    assert await answer_through_the_proxy(hub, ("bob", "cyd")) == {"bob": 200, "cyd": 200}
