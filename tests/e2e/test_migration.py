"""Live migration: KubeSpawner 7.1 -> kubecache -> KubeSpawner 7.1, servers running throughout.

One hub deployment (same sqlite database, same external configurable-http-proxy,
z2jh-like dynamic storage, a profile list, named servers) runs first with the
unmodified ``kubespawner.KubeSpawner``, then with ``spawner_class = "kubecache"``
(nothing else changed), then with KubeSpawner again. Each switch is a hub
restart with users' servers running: none may restart (same pod uid), every
user keeps their PVC (same claim uid), and at the end nothing is left over.

The PVC holds the home (z2jh's mount at /home/jovyan, the server's root
directory; kubesim's process kubelet mounts a claim as a directory that outlives
the pod). Under KubeSpawner each server writes a file there through the proxy
with the Jupyter server's contents API and its user's own token; it is read back
the same way after each switch and after each stop and start.

Two users come from KubeSpawner 6 (a state without ``kubespawner_version``, a
claim with a legacy "escape" name): fay, whose server runs at the switch, keeps
her claim through a stop and start under kubecache; gus, who never started
since, is deleted under kubecache, and his claim with him.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import secrets
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from kubesim.auth import Rule
from kubesim.kubeconfig import write_kubeconfig
from kubesim.kubelet_process import ProcessKubelet
from kubesim.volumes import claim_directory
from tests.e2e.support.stack import Cluster, Hub

pytestmark = pytest.mark.e2e

NAMESPACE = "e2e-migration"
Z2JH_STORAGE = Path(__file__).with_name("support") / "z2jh_storage_config.py"
KUBESPAWNER = "kubespawner.KubeSpawner"
#: (user, server name, profile): a default server, a named one, a name the safe scheme hashes
SERVERS = (("alice", "", "small"), ("alice", "lab", "large"), ("ed.o", "", "small"))
FAY, GUS = "fay.b", "gus.c"
#: the names KubeSpawner 7.1 gives them (jupyter-{user_server}, claim-{user_server}); fay keeps
#: her KubeSpawner 6 ("escape") claim, which 7.1 would have named claim-fay-b---fa052537
KUBESPAWNER_NAMES = {
    ("alice", ""): ("jupyter-alice", "claim-alice"),
    ("alice", "lab"): ("jupyter-alice--lab", "claim-alice--lab"),
    ("ed.o", ""): ("jupyter-ed-o---a9cdecf5", "claim-ed-o---a9cdecf5"),
    (FAY, ""): ("jupyter-fay-b---fa052537", "claim-fay-2eb"),
}
#: gus has not started a server since KubeSpawner 6 made his claim
GUS_CLAIM = "claim-gus-2ec"
#: the file each server writes in its home (the root directory of its contents API)
NOTE = "notes.txt"
#: The hub's Role once the cacher is trusted (charts/README.md): no list or watch at all.
HUB_ROLE = (
    Rule.of(("create", "delete", "get"), ("pods", "persistentvolumeclaims"), (NAMESPACE,)),
    Rule.of(("create", "delete"), ("services", "secrets"), (NAMESPACE,)),
)


def hub_role_kubeconfig(cluster: Cluster, directory: Path) -> Path:
    """Credentials of a hub ServiceAccount bound to HUB_ROLE only."""
    token = secrets.token_hex(16)
    cluster.sim.server.auth.add_token(token, f"system:serviceaccount:{NAMESPACE}:hub", HUB_ROLE)
    return write_kubeconfig(
        directory / "hub-role.kubeconfig", cluster.sim.url, token, ca_cert=cluster.sim.ca_cert
    )


async def forbidden_requests(cluster: Cluster) -> int:
    return int((await cluster.sim.stats())["errors"].get("403", 0))


def kubespawner_6_state(pod_name: str) -> dict[str, str]:
    """What KubeSpawner 6 saved: no kubespawner_version, no pvc_name."""
    return {
        "pod_name": pod_name,
        "namespace": NAMESPACE,
        "dns_name": f"{pod_name}.{NAMESPACE}.svc.cluster.local",
    }


Server = tuple[str, str]


def user_path(user: str, server_name: str) -> str:
    return f"/user/{user}/{server_name}/" if server_name else f"/user/{user}/"


def note_text(user: str, server_name: str) -> str:
    """What a server writes: its own words, so a server mounting another's claim shows."""
    return f"{user}'s {server_name or 'default'} server wrote this under KubeSpawner 7.1\n"


class Journey:
    """The hub under test, what the cluster holds, and what the hub saved."""

    def __init__(self, cluster: Cluster, hub: Hub) -> None:
        self.cluster = cluster
        self.hub = hub
        self.api = hub.api
        self.timings: dict[str, float] = {}
        #: user -> their own API token (access to their servers only)
        self.tokens: dict[str, str] = {}

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

    @property
    def claims_dir(self) -> Path:
        """Where kubesim's process kubelet keeps the namespace's claims' data."""
        kubelet = self.cluster.sim.server.kubelet
        assert isinstance(kubelet, ProcessKubelet), kubelet
        return kubelet.root_dir / "claims"

    def notes_on_claims(self) -> dict[Server, str | None]:
        """(user, server) -> the note in the claim its pod mounts, read from kubesim's disk."""
        uids = self.objects("persistentvolumeclaims")
        found: dict[Server, str | None] = {}
        for key, claim in self.claims().items():
            path = claim_directory(self.claims_dir, NAMESPACE, claim, uids[claim]) / NOTE
            found[key] = path.read_text() if path.exists() else None
        return found

    def claim_directories(self) -> list[str]:
        """The claims whose data kubesim still keeps in the namespace."""
        directory = self.claims_dir / NAMESPACE
        return sorted(p.name for p in directory.iterdir()) if directory.exists() else []

    # ------------------------------------------------------------------ the hub

    def state(self, user: str, server_name: str) -> dict[str, Any]:
        """The spawner state the hub saved in its database."""
        with contextlib.closing(sqlite3.connect(self.hub.settings.db_path)) as db:
            (raw,) = db.execute(
                "SELECT spawners.state FROM spawners JOIN users ON users.id = spawners.user_id"
                " WHERE users.name = ? AND spawners.name = ?",
                (user, server_name),
            ).fetchone()
        return json.loads(raw) if raw else {}

    def write_state(self, user: str, server_name: str, state: dict[str, Any]) -> None:
        """Replace a saved spawner state (only while no hub runs)."""
        with contextlib.closing(sqlite3.connect(self.hub.settings.db_path)) as db, db:
            db.execute(
                "UPDATE spawners SET state = ? WHERE name = ? AND user_id ="
                " (SELECT id FROM users WHERE name = ?)",
                (json.dumps(state), server_name, user),
            )

    async def stop_hub(self) -> None:
        """Stop the hub; users' servers and the proxy keep running (cleanup_servers False)."""
        for process in self.running_hubs:
            await process.stop()

    async def restart_hub_with(
        self, spawner_class: str, replica: str, *, kubeconfig: Path | None = None
    ) -> None:
        """Stop the running hub, switch the spawner, start again (``kubeconfig``: its RBAC)."""
        await self.stop_hub()
        self.hub.settings.spawner_class = spawner_class
        self.hub.save_settings()
        began = time.monotonic()
        await self.cluster.start_hub(self.hub, replica, kubeconfig=kubeconfig)
        self.timings[f"{replica} hub answers"] = time.monotonic() - began

    @property
    def running_hubs(self) -> list[Any]:
        return [p for p in self.hub.replicas.values() if p.running]

    def make_claim(self, name: str) -> None:
        """A claim as an earlier KubeSpawner left it."""
        self.cluster.sim.store.create(
            "persistentvolumeclaims",
            NAMESPACE,
            {
                "metadata": {"name": name, "labels": {"component": "singleuser-storage"}},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "10Gi"}},
                },
            },
        )

    async def spawn(self, servers: list[tuple[str, str, str]], step: str) -> None:
        """Start (user, server name, profile) servers together; wait until all are ready."""
        began = time.monotonic()
        for user, server_name, profile in servers:
            await self.api.start_server(user, {"profile": profile}, server_name)
        for user, server_name, _ in servers:
            await self.cluster.wait(
                lambda u=user, s=server_name: self.api.spawned(u, s),  # type: ignore[misc]
                timeout=90,
                message=f"{user}/{server_name} to be ready",
                watching=self.running_hubs,
            )
        self.timings[step] = time.monotonic() - began

    async def stop(self, servers: list[Server], step: str) -> None:
        began = time.monotonic()
        for user, server_name in servers:
            await self.api.stop_server(user, server_name)
        for user, server_name in servers:
            await self.cluster.wait(
                lambda u=user, s=server_name: self.api.server_gone(u, s),  # type: ignore[misc]
                timeout=60,
                message=f"{user}/{server_name} to stop",
                watching=self.running_hubs,
            )
        self.timings[step] = time.monotonic() - began

    async def restart_servers(self, servers: list[Server], step: str) -> None:
        """Stop and start again (the small profile), e.g. to see which claim a start uses."""
        await self.stop(servers, f"{step}: stop")
        await self.spawn([(u, s, "small") for u, s in servers], f"{step}: start")

    async def all_ready(self, servers: list[Server]) -> None:
        for user, server_name in servers:
            await self.cluster.wait(
                lambda u=user, s=server_name: self.api.server_ready(u, s),  # type: ignore[misc]
                timeout=30,
                message=f"the hub to report {user}/{server_name} running",
                watching=self.running_hubs,
            )

    async def kubecache_servers(self) -> dict[Server, tuple[str, bool]]:
        """(user, server) -> (pod, ready) as ``kubecache servers`` shows them."""
        status, out = await self.cluster.kubecache_cli(
            "--json", "servers", "--namespace", NAMESPACE
        )
        assert status == 0, out
        return {(row["user"], row["server"]): (row["pod"], row["ready"]) for row in json.loads(out)}

    # ------------------------------------------------------------------ the users' files

    async def issue_tokens(self, users: list[str]) -> None:
        """Each user's own token, allowed to reach only their servers."""
        for user in users:
            self.tokens[user] = await self.api.new_token(user, [f"access:servers!user={user}"])

    def contents_path(self, user: str, server_name: str, name: str = NOTE) -> str:
        return user_path(user, server_name) + f"api/contents/{name}"

    async def write_notes(self, servers: list[Server]) -> dict[Server, int]:
        """Each server writes its note in its home, as its user through the proxy."""
        results = await asyncio.gather(
            *(
                self.api.as_user(
                    self.tokens[u],
                    "PUT",
                    self.contents_path(u, s),
                    {"type": "file", "format": "text", "content": note_text(u, s)},
                )
                for u, s in servers
            )
        )
        return {key: status for key, (status, _) in zip(servers, results, strict=True)}

    async def notes(self, servers: list[Server]) -> dict[Server, str | int]:
        """(user, server) -> the note its server reads from its home (else the HTTP status)."""
        results = await asyncio.gather(
            *(
                self.api.as_user(
                    self.tokens[u], "GET", self.contents_path(u, s) + "?format=text&type=file"
                )
                for u, s in servers
            )
        )
        found: dict[Server, str | int] = {}
        for key, (status, body) in zip(servers, results, strict=True):
            found[key] = body["content"] if status == 200 else status
        return found

    async def notes_kept(self, servers: list[Server], step: str) -> None:
        expected = {key: note_text(*key) for key in servers}
        assert await self.notes(servers) == expected, f"{step}: a user's file is not in their home"

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

    # ------------------------------------------------ 0. users, two of them from KubeSpawner 6
    await cluster.start_hub(hub, "kubespawner-users")
    for user in ("alice", "ed.o", FAY, GUS):
        await api.create_user(user)
    await journey.stop_hub()
    for user, escaped in ((FAY, "fay-2eb"), (GUS, "gus-2ec")):
        journey.make_claim(f"claim-{escaped}")
        journey.write_state(user, "", kubespawner_6_state(f"jupyter-{escaped}"))

    # ------------------------------------------------ 1. KubeSpawner 7.1 runs the hub
    await journey.restart_hub_with(KUBESPAWNER, "kubespawner")
    await journey.spawn([*SERVERS, (FAY, "", "small")], "KubeSpawner: 4 spawns")
    servers: list[Server] = list(KUBESPAWNER_NAMES)
    assert await journey.through_the_proxy(servers) == dict.fromkeys(servers, 200)
    pods = journey.server_pods()
    names = {key: (pod["metadata"]["name"], journey.claims()[key]) for key, pod in pods.items()}
    assert names == KUBESPAWNER_NAMES  # fay's legacy claim found by KubeSpawner 7.1 itself
    for user, server_name in servers:
        state = journey.state(user, server_name)
        assert state["kubespawner_version"] == "7.1.0", state
        assert state["pvc_name"] == KUBESPAWNER_NAMES[user, server_name][1], state
    uids = journey.pod_uids()
    claims = journey.objects("persistentvolumeclaims")
    assert set(claims) == {claim for _, claim in KUBESPAWNER_NAMES.values()} | {GUS_CLAIM}

    # each server writes a file in its home, as its user; the file is in the claim the pod
    # mounts (the home is the claim), and a user's token does not reach another user's server
    await journey.issue_tokens(["alice", "ed.o", FAY])
    assert await journey.notes(servers) == dict.fromkeys(servers, 404)
    assert await journey.write_notes(servers) == dict.fromkeys(servers, 201)
    await journey.notes_kept(servers, "KubeSpawner")
    assert journey.notes_on_claims() == {key: note_text(*key) for key in servers}
    status, _ = await api.as_user(journey.tokens["alice"], "GET", journey.contents_path(FAY, ""))
    assert status == 403, f"alice's token read fay's home: {status}"
    # the cacher already shows KubeSpawner's servers with their users, before the switch
    assert await journey.kubecache_servers() == {
        key: (pod, True) for key, (pod, _) in KUBESPAWNER_NAMES.items()
    }

    # ------------------------------------------------ 2. the same hub with kubecache
    await journey.stop_hub()
    assert journey.pod_uids() == uids, "stopping the hub stopped servers"
    # fay's running server as KubeSpawner 6 would have left it: its state without a version
    journey.write_state(FAY, "", kubespawner_6_state(KUBESPAWNER_NAMES[FAY, ""][0]))
    pod_requests = await cluster.api_requests("pods")
    event_requests = await cluster.api_requests("events")
    began = time.monotonic()
    await journey.restart_hub_with("kubecache", "kubecache")
    polls_wanted = collections.Counter(user for user, _ in servers)
    await cluster.wait(
        lambda: collections.Counter(hub.polls("kubecache")) >= polls_wanted,
        timeout=30,
        message="the kubecache hub to poll every server",
        watching=journey.running_hubs,
    )
    await journey.all_ready(servers)
    journey.timings["kubecache: hub start to every server polled and ready"] = (
        time.monotonic() - began
    )
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
    await journey.notes_kept(servers, "kubecache, after the switch")

    assert await journey.kubecache_servers() == {
        key: (pod, True) for key, (pod, _) in KUBESPAWNER_NAMES.items()
    }

    # ------------------------------------------------ 2b. the cacher is trusted: no list/watch
    forbidden = await forbidden_requests(cluster)
    pod_lists = (await cluster.api_requests("pods")).get("list", 0)
    role = hub_role_kubeconfig(cluster, hub.state_dir)
    await journey.restart_hub_with("kubecache", "kubecache-role", kubeconfig=role)
    await journey.all_ready(servers)
    assert journey.pod_uids() == uids

    # alice and fay restart under kubecache: KubeSpawner's names, the same claims. For fay the
    # state saved at the stop must still lead to her legacy claim after JupyterHub drops the
    # spawner (KubeSpawner 7.1 would make her a new, empty claim-fay-b---fa052537: its #937).
    restarted: list[Server] = [("alice", ""), (FAY, "")]
    await journey.restart_servers(restarted, "kubecache: restart 2 servers")
    for key in restarted:
        pod = journey.server_pods()[key]
        assert pod["metadata"]["name"] == KUBESPAWNER_NAMES[key][0]
        assert pod["metadata"]["uid"] != uids[key]
        assert journey.claims()[key] == KUBESPAWNER_NAMES[key][1]
        state = journey.state(*key)
        assert state["pvc_name"] == KUBESPAWNER_NAMES[key][1], state
        assert state["pod_name"] == KUBESPAWNER_NAMES[key][0], state
    assert journey.objects("persistentvolumeclaims") == claims, "a claim was made or replaced"
    # new pods, the same homes: what the users wrote under KubeSpawner is there
    await journey.notes_kept(servers, "kubecache, after a stop and start")
    uids = journey.pod_uids()

    # ed.o and gus leave under kubecache: delete_forever removes the claim KubeSpawner 7.1 made
    # and the one KubeSpawner 6 made (7.1 would leave gus's behind: its #924)
    await journey.stop([("ed.o", "")], "kubecache: stop ed.o")
    for user in ("ed.o", GUS):
        await api.delete_user(user)
    servers.remove(("ed.o", ""))
    del uids["ed.o", ""]
    del claims[KUBESPAWNER_NAMES["ed.o", ""][1]], claims[GUS_CLAIM]
    await cluster.wait(
        lambda: journey.objects("persistentvolumeclaims") == claims,
        timeout=30,
        message="ed.o's and gus's claims to be deleted and every other claim kept",
    )

    # The Role has no list: a burst of direct pod reads tries one LIST, is refused, and the
    # hub reads those pods one by one from then on (kubecache.spawner.pod_reads). Nothing else
    # is refused.
    refused = await forbidden_requests(cluster) - forbidden
    lists_tried = (await cluster.api_requests("pods")).get("list", 0) - pod_lists
    assert lists_tried <= 1, f"a refused LIST was tried again: {lists_tried}"
    assert refused == lists_tried, f"the hub's Role was not enough: {refused} refused requests"

    # ------------------------------------------------ 3. back to KubeSpawner 7.1 (and its RBAC)
    pod_requests = await cluster.api_requests("pods")
    began = time.monotonic()
    await journey.restart_hub_with(KUBESPAWNER, "kubespawner-again")
    await journey.all_ready(servers)
    journey.timings["KubeSpawner: hub start to every server ready"] = time.monotonic() - began
    print(
        f"hub restart under KubeSpawner: pod requests {pod_requests} -> "
        f"{await cluster.api_requests('pods')}"
    )
    assert journey.pod_uids() == uids, "switching back restarted servers"
    assert await journey.through_the_proxy(servers) == dict.fromkeys(servers, 200)
    await journey.notes_kept(servers, "KubeSpawner again, after the switch")

    # KubeSpawner stops and starts servers whose state kubecache wrote: the same claims
    await journey.restart_servers(restarted, "KubeSpawner: restart 2 servers")
    assert journey.claims() == {key: KUBESPAWNER_NAMES[key][1] for key in servers}
    assert journey.objects("persistentvolumeclaims") == claims
    assert await journey.through_the_proxy(servers) == dict.fromkeys(servers, 200)
    await journey.notes_kept(servers, "KubeSpawner again, after a stop and start")

    # ------------------------------------------------ 4. nothing left behind
    await journey.stop(servers, "KubeSpawner: stop all")
    for user in ("alice", FAY):
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
    assert journey.claim_directories() == [], "a deleted claim's data is still kept"

    async def cache_empty() -> bool:
        return int(await cluster.redis.hlen(cluster.keys.pods)) == 0

    await cluster.wait(cache_empty, timeout=30, message="no pod records left in the cache")
    print("timings:", {step: round(seconds, 1) for step, seconds in journey.timings.items()})
