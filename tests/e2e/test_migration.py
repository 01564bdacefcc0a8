"""Live migration: KubeSpawner 7.1 -> kubecache -> KubeSpawner 7.1, servers running throughout.

One hub deployment (same sqlite database, same external configurable-http-proxy,
z2jh-like dynamic storage, a profile list, named servers) runs first with the
unmodified ``kubespawner.KubeSpawner``, then with ``spawner_class = "kubecache"``
(nothing else changed), then with KubeSpawner again. Each switch is a hub
restart with users' servers running: none may restart (same pod uid), every
user keeps their PVC (same claim uid), and at the end nothing is left over.

A user whose state was written by KubeSpawner 6 (no ``kubespawner_version``,
legacy "escape" names) is migrated on the way, as KubeSpawner 7.1 itself would.
"""

from __future__ import annotations

import asyncio
import collections
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.support.stack import Cluster, Hub

pytestmark = pytest.mark.e2e

NAMESPACE = "e2e-migration"
Z2JH_STORAGE = Path(__file__).with_name("support") / "z2jh_storage_config.py"
KUBESPAWNER = "kubespawner.KubeSpawner"
#: (user, server name, profile): a default server, a named one, a name the safe scheme hashes
SERVERS = (("alice", "", "small"), ("alice", "lab", "large"), ("ed.o", "", "small"))
#: the names KubeSpawner 7.1 gives them (claim-{user_server}, jupyter-{user_server})
KUBESPAWNER_NAMES = {
    ("alice", ""): ("jupyter-alice", "claim-alice"),
    ("alice", "lab"): ("jupyter-alice--lab", "claim-alice--lab"),
    ("ed.o", ""): ("jupyter-ed-o---a9cdecf5", "claim-ed-o---a9cdecf5"),
}
#: a user last started by KubeSpawner 6: its "escape" names (KubeSpawner 7.1 would name the
#: claim claim-fay-b---fa052537; it must find and keep the legacy one)
LEGACY_USER = "fay.b"
LEGACY_POD, LEGACY_PVC = "jupyter-fay-2eb", "claim-fay-2eb"

Server = tuple[str, str]


def user_path(user: str, server_name: str) -> str:
    return f"/user/{user}/{server_name}/" if server_name else f"/user/{user}/"


class Journey:
    """The hub under test, what the cluster holds, and what the hub saved."""

    def __init__(self, cluster: Cluster, hub: Hub) -> None:
        self.cluster = cluster
        self.hub = hub
        self.api = hub.api
        self.timings: dict[str, float] = {}

    # ------------------------------------------------------------------ the cluster

    def objects(self, resource: str) -> dict[str, str]:
        """name -> uid of the namespace's objects of ``resource``."""
        return {
            o["metadata"]["name"]: o["metadata"]["uid"]
            for o in self.cluster.sim.store.list(resource, NAMESPACE)
        }

    def server_pods(self) -> dict[Server, dict[str, Any]]:
        """(user, server) -> pod, from the annotations KubeSpawner 7 and kubecache write."""
        pods = {}
        for pod in self.cluster.sim.store.list("pods", NAMESPACE):
            annotations = pod["metadata"].get("annotations") or {}
            user = annotations["hub.jupyter.org/username"]
            key = (user, annotations.get("hub.jupyter.org/servername", ""))
            pods[key] = pod
        return pods

    def claims(self) -> dict[Server, str]:
        """(user, server) -> the PVC its pod mounts."""
        claims = {}
        for key, pod in self.server_pods().items():
            (claim,) = [
                v["persistentVolumeClaim"]["claimName"]
                for v in pod["spec"].get("volumes") or []
                if "persistentVolumeClaim" in v
            ]
            claims[key] = claim
        return claims

    def pod_uids(self) -> dict[Server, str]:
        return {key: pod["metadata"]["uid"] for key, pod in self.server_pods().items()}

    # ------------------------------------------------------------------ the hub

    def state(self, user: str, server_name: str) -> dict[str, Any]:
        """The spawner state the hub saved in its database."""
        with sqlite3.connect(self.hub.settings.db_path) as db:
            (raw,) = db.execute(
                "SELECT spawners.state FROM spawners JOIN users ON users.id = spawners.user_id"
                " WHERE users.name = ? AND spawners.name = ?",
                (user, server_name),
            ).fetchone()
        return json.loads(raw) if raw else {}

    def write_state(self, user: str, server_name: str, state: dict[str, Any]) -> None:
        """Replace a saved spawner state (only while no hub runs)."""
        with sqlite3.connect(self.hub.settings.db_path) as db:
            db.execute(
                "UPDATE spawners SET state = ? WHERE name = ? AND user_id ="
                " (SELECT id FROM users WHERE name = ?)",
                (json.dumps(state), server_name, user),
            )

    async def restart_hub_with(self, spawner_class: str, replica: str) -> None:
        """Stop the running hub (servers and proxy stay), switch the spawner, start again."""
        for process in self.hub.replicas.values():
            await process.stop()
        self.hub.settings.spawner_class = spawner_class
        self.hub.save_settings()
        began = time.monotonic()
        await self.cluster.start_hub(self.hub, replica)
        self.timings[f"{replica} hub answers"] = time.monotonic() - began

    @property
    def running_hubs(self) -> list[Any]:
        return [p for p in self.hub.replicas.values() if p.running]

    async def spawn(self, user: str, server_name: str, profile: str = "small") -> None:
        began = time.monotonic()
        await self.api.start_server(user, {"profile": profile}, server_name)
        await self.cluster.wait(
            lambda: self.api.spawned(user, server_name),
            timeout=90,
            message=f"{user}/{server_name} to be ready",
            watching=self.running_hubs,
        )
        self.timings[f"spawn {user}/{server_name}"] = time.monotonic() - began

    async def stop(self, user: str, server_name: str) -> None:
        began = time.monotonic()
        await self.api.stop_server(user, server_name)
        await self.cluster.wait(
            lambda: self.api.server_gone(user, server_name),
            timeout=60,
            message=f"{user}/{server_name} to stop",
            watching=self.running_hubs,
        )
        self.timings[f"stop {user}/{server_name}"] = time.monotonic() - began

    async def all_ready(self, servers: list[Server]) -> None:
        for user, server_name in servers:
            await self.cluster.wait(
                lambda u=user, s=server_name: self.api.server_ready(u, s),  # type: ignore[misc]
                timeout=30,
                message=f"the hub to report {user}/{server_name} running",
                watching=self.running_hubs,
            )

    async def through_the_proxy(self, servers: list[Server]) -> dict[Server, int]:
        results = await asyncio.gather(
            *(self.api.get_through_proxy(user_path(u, s) + "api/status") for u, s in servers)
        )
        return {key: status for key, (status, _) in zip(servers, results, strict=True)}


async def test_live_migration_from_kubespawner_to_kubecache_and_back_restarts_nothing(
    cluster: Cluster,
) -> None:
    proxy = await cluster.start_proxy()
    hub = cluster.hub(
        "hub",
        proxy,
        namespace=NAMESPACE,
        spawner_class=KUBESPAWNER,
        extra_config=str(Z2JH_STORAGE),
    )
    journey = Journey(cluster, hub)
    api = hub.api
    servers: list[Server] = [(user, name) for user, name, _ in SERVERS]

    # ------------------------------------------------ 1. KubeSpawner 7.1 runs the hub
    await cluster.start_hub(hub, "kubespawner")
    for user in ("alice", "ed.o", LEGACY_USER):
        await api.create_user(user)
    for user, server_name, profile in SERVERS:
        await journey.spawn(user, server_name, profile)
    # fay's server ran once and is stopped; below its state becomes KubeSpawner 6's
    await journey.spawn(LEGACY_USER, "")
    await journey.stop(LEGACY_USER, "")

    assert await journey.through_the_proxy(servers) == dict.fromkeys(servers, 200)
    pods = journey.server_pods()
    assert {key: (pod["metadata"]["name"], journey.claims()[key]) for key, pod in pods.items()} == (
        KUBESPAWNER_NAMES
    )
    for user, server_name in servers:
        state = journey.state(user, server_name)
        assert state["kubespawner_version"] == "7.1.0", state
        assert state["pvc_name"] == KUBESPAWNER_NAMES[user, server_name][1], state
    uids = journey.pod_uids()
    claims = journey.objects("persistentvolumeclaims")
    assert set(claims) == {pvc for _, pvc in KUBESPAWNER_NAMES.values()} | {
        "claim-fay-b---fa052537"
    }

    # fay's PVC is the one KubeSpawner 6 made: legacy name, and her hub state is 6.x's
    cluster.sim.store.delete("persistentvolumeclaims", NAMESPACE, "claim-fay-b---fa052537")
    legacy_claim = cluster.sim.store.create(
        "persistentvolumeclaims",
        NAMESPACE,
        {
            "metadata": {"name": LEGACY_PVC, "labels": {"component": "singleuser-storage"}},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "10Gi"}},
            },
        },
    )
    del claims["claim-fay-b---fa052537"]
    claims[LEGACY_PVC] = legacy_claim["metadata"]["uid"]

    # ------------------------------------------------ 2. the same hub with kubecache
    await hub.replicas["kubespawner"].stop()
    assert journey.pod_uids() == uids, "stopping the hub stopped servers"
    journey.write_state(
        LEGACY_USER,
        "",
        {
            "pod_name": LEGACY_POD,
            "namespace": NAMESPACE,
            "dns_name": f"{LEGACY_POD}.{NAMESPACE}.svc.cluster.local",
        },
    )
    pod_requests = await cluster.api_requests("pods")
    event_requests = await cluster.api_requests("events")
    await journey.restart_hub_with("kubecache", "kubecache")
    polls_wanted = collections.Counter(user for user, _ in servers)
    await cluster.wait(
        lambda: collections.Counter(hub.polls("kubecache")) >= polls_wanted,
        timeout=30,
        message="the kubecache hub to poll every server",
        watching=journey.running_hubs,
    )
    await journey.all_ready(servers)
    pods_after = await cluster.api_requests("pods")
    events_after = await cluster.api_requests("events")
    print(f"hub restart under kubecache: pod requests {pod_requests} -> {pods_after}")

    # not restarted: the same pods; every poll answered from Redis, not one pod LIST or GET
    assert journey.pod_uids() == uids
    for verb in ("list", "watch", "get"):
        assert pods_after.get(verb, 0) == pod_requests.get(verb, 0), (verb, pods_after)
    for verb in ("list", "watch"):
        assert events_after.get(verb, 0) == event_requests.get(verb, 0), (verb, events_after)
    assert await journey.through_the_proxy(servers) == dict.fromkeys(servers, 200)

    status, out = await cluster.kubecache_cli("--json", "servers", "--namespace", NAMESPACE)
    assert status == 0, out
    shown = {(row["user"], row["server"]): (row["pod"], row["ready"]) for row in json.loads(out)}
    assert shown == {key: (names[0], True) for key, names in KUBESPAWNER_NAMES.items()}

    # alice restarts her default server under kubecache: same names, same claim
    await journey.stop("alice", "")
    assert ("alice", "") not in journey.server_pods()
    assert journey.state("alice", "")["pvc_name"] == "claim-alice"
    await journey.spawn("alice", "")
    pod = journey.server_pods()["alice", ""]
    assert pod["metadata"]["name"] == "jupyter-alice"
    assert pod["metadata"]["uid"] != uids["alice", ""]
    assert journey.claims()["alice", ""] == "claim-alice"
    uids = journey.pod_uids()
    state = journey.state("alice", "")
    assert state["pvc_name"] == "claim-alice" and state["pod_name"] == "jupyter-alice", state

    # fay (KubeSpawner 6 state) starts under kubecache: her legacy claim, as 7.1 would
    await journey.spawn(LEGACY_USER, "")
    fay = journey.server_pods()[LEGACY_USER, ""]
    # JupyterHub clears the state before a start: the pod takes the 7.x name, the claim stays
    assert fay["metadata"]["name"] == "jupyter-fay-b---fa052537"
    assert journey.claims()[LEGACY_USER, ""] == LEGACY_PVC
    state = journey.state(LEGACY_USER, "")
    assert state["pvc_name"] == LEGACY_PVC and "kubespawner_version" in state, state
    servers.append((LEGACY_USER, ""))
    uids = journey.pod_uids()

    # ed.o leaves under kubecache: delete_forever removes the claim KubeSpawner made
    await journey.stop("ed.o", "")
    await api.delete_user("ed.o")
    servers.remove(("ed.o", ""))
    del uids["ed.o", ""]
    del claims[KUBESPAWNER_NAMES["ed.o", ""][1]]
    await cluster.wait(
        lambda: journey.objects("persistentvolumeclaims") == claims,
        timeout=30,
        message="ed.o's claim to be deleted and every other claim kept",
    )

    # ------------------------------------------------ 3. back to KubeSpawner 7.1
    await journey.restart_hub_with(KUBESPAWNER, "kubespawner-again")
    await journey.all_ready(servers)
    assert journey.pod_uids() == uids, "switching back restarted servers"
    assert await journey.through_the_proxy(servers) == dict.fromkeys(servers, 200)

    # KubeSpawner stops and starts servers whose state kubecache wrote: same claims
    for user, server_name in (("alice", ""), (LEGACY_USER, "")):
        await journey.stop(user, server_name)
        await journey.spawn(user, server_name)
    assert journey.claims() == {
        ("alice", ""): "claim-alice",
        ("alice", "lab"): "claim-alice--lab",
        (LEGACY_USER, ""): LEGACY_PVC,
    }
    assert journey.objects("persistentvolumeclaims") == claims
    assert await journey.through_the_proxy(servers) == dict.fromkeys(servers, 200)

    # ------------------------------------------------ 4. nothing left behind
    for user, server_name in servers:
        await journey.stop(user, server_name)
    for user in ("alice", LEGACY_USER):
        await api.delete_user(user)

    def leftovers() -> dict[str, dict[str, str]]:
        found = {
            resource: journey.objects(resource)
            for resource in ("pods", "services", "secrets", "persistentvolumeclaims")
        }
        return {resource: objects for resource, objects in found.items() if objects}

    await cluster.wait(
        lambda: not leftovers(), timeout=30, message="no pods, services, secrets or PVCs left"
    )
    assert await cluster.redis.hkeys(cluster.keys.pods) == []
    print("timings:", {step: round(seconds, 1) for step, seconds in journey.timings.items()})
