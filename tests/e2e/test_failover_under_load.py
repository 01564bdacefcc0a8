"""Hub failover under load, measured: each fault in the middle of a burst of spawns and stops.

Two hub replicas under ``kubecache hub-standby`` share a PostgreSQL database,
an external configurable-http-proxy and a hub Service (a probed forwarder:
only the replica whose ``/hub/health`` answers gets connections). Each
replica reaches Redis through a forwarder of its own. With ``SERVERS`` user
servers running, each phase sends a burst of ``SPAWNS`` spawns and ``STOPS``
stops and, half-way through it, injects one fault into the active replica:

- ``kill -9``: the whole replica (wrapper and hub) is SIGKILLed;
- ``SIGSTOP``: the replica is frozen for longer than the lease, then resumed;
- ``redis-cut``: its Redis connections are black-holed (the standby's work);
- ``rolling``: both replicas are replaced one after the other (SIGTERM).

After each: the time until the new hub answers through the proxy; no running
server lost or restarted (same pod UID, same server process); every route
answering; every in-flight spawn ready and reachable, or gone without leftovers
and then started again by a retry; every stop done or retryable; nothing
pending; at most one hub answering ``/hub/health`` at any probe; and not one
pod LIST or WATCH by the hubs. A replaced replica comes back as a new standby,
as Kubernetes restarts a pod.

Servers are a tiny HTTP server (tests/e2e/support/tiny_server.py) rather than
jupyterhub-singleuser, so hundreds fit on two cores. Sizes: CI runs 30 servers,
10 spawns and 5 stops per fault; ``KUBECACHE_HA_LONG=1`` runs 200, 50 and 20
(docs/ha.md, "Measured takeover times"). The figures are printed and written
to ``test-artifacts/ha-takeover.json``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from kubecache.hub_standby_state import decode_lease
from kubesim.cluster import default_nodes
from kubesim.kubeconfig import write_kubeconfig
from tests.e2e.support.hub_service import HubService
from tests.e2e.support.processes import ManagedProcess
from tests.e2e.support.stack import REPO, STANDBY_TIMING, Cluster, Hub, Proxy
from tests.support.redis_server import free_port
from tests.support.tcp_forwarder import TcpForwarder

LONG = os.environ.get("KUBECACHE_HA_LONG") == "1"
SERVERS = int(os.environ.get("KUBECACHE_HA_SERVERS", "200" if LONG else "30"))
SPAWNS = int(os.environ.get("KUBECACHE_HA_SPAWNS", "50" if LONG else "10"))
STOPS = int(os.environ.get("KUBECACHE_HA_STOPS", "20" if LONG else "5"))
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3600 if LONG else 1200)]
#: the replicas import JupyterHub while standing by (hub-standby --preload); 0: they do not
PRELOAD = os.environ.get("KUBECACHE_HA_PRELOAD", "1") == "1"
#: PostgreSQL's idle_in_transaction_session_timeout (ms) for the hubs' sessions; 0: off
IDLE_TX_TIMEOUT_MS = int(os.environ.get("KUBECACHE_HA_PG_IDLE_TX_TIMEOUT_MS", "0"))
NAMESPACE = "e2e-ha"
#: room for every server of the long run (a quarter CPU each) and the bursts' retries
KUBESIM_NODES = default_nodes(4, cpu="64", memory="256Gi", pods="250")
LEASE_DURATION = float(STANDBY_TIMING[1])
#: how long the SIGSTOP phase freezes the active replica: longer than the lease
FREEZE = LEASE_DURATION + 5
TINY_SERVER = str(Path(__file__).parent / "support" / "tiny_server.py")
#: how long an in-flight spawn may take to end: a spawn the new hub cannot reach is
#: given up after the spawner's http_timeout (60 s in jupyterhub_config.py)
SETTLE = 180.0


@dataclass
class Replica:
    name: str
    process: ManagedProcess
    redis: TcpForwarder
    metrics_port: int


@dataclass
class Phase:
    fault: str
    takeover_s: float = 0.0
    settled_s: float = 0.0
    spawns_ready: int = 0
    spawns_failed_then_retried: int = 0
    stops_done: int = 0
    stops_retried: int = 0
    servers_kept: int = 0
    routes_checked: int = 0
    new_hub: str = ""
    #: pod LISTs + WATCHes of the new hub since it started (the deposed one may fall back
    #: to the API when its Redis is cut: that is by design, see docs/spawner-safety.md)
    pod_list_watch: int = 0
    #: pod LISTs + WATCHes of the new hub from its start until it first answered
    pod_list_watch_at_answer: int = 0
    #: polls of the new hub, until it first answered, that found a pod absent (a spawn the
    #: old hub never got to create) and confirmed it with the API
    absent_at_answer: int = 0
    #: stops the new hub had begun (routes removed) when it was first seen answering: users
    #: retry until a hub accepts, so it may take stops before the test sees it answer, and a
    #: stop's "gone" is confirmed with the API (a GET, or one LIST for several at once)
    stops_at_answer: int = 0
    #: absent pods and stopped servers the new hub confirmed with the API
    confirmations: int = 0
    overlaps: int = 0
    notes: list[str] = field(default_factory=list)


class HaDeployment:
    """The hub deployment of the test: its replicas, Service, proxy and users."""

    def __init__(self, cluster: Cluster, hub: Hub, proxy: Proxy, service: HubService) -> None:
        self.cluster, self.hub, self.proxy, self.service = cluster, hub, proxy, service
        self.replicas: dict[str, Replica] = {}
        self.generation = 0
        self.lease_key = cluster.keys.hub_lease(hub.name)

    # -------------------------------------------------------------- replicas

    def start_replica(self, letter: str) -> Replica:
        self.generation += 1
        name = f"{letter}{self.generation}"
        port = free_port()
        self.hub.settings.replica_hub_urls[name] = f"http://127.0.0.1:{port}"
        self.hub.save_settings()
        self.service.add(name, "127.0.0.1", port)
        host, redis_port = self.cluster.redis_url.split("//")[1].split("/")[0].split(":")
        forwarder = TcpForwarder((host, int(redis_port)))
        metrics_port = free_port()
        # each replica is a pod of its own with its own service account token, so kubesim
        # counts its requests apart
        token = self.cluster.sim.server.auth.issue_service_account_token(NAMESPACE, f"hub-{name}")
        kubeconfig = self.cluster.work_dir / f"{name}.kubeconfig"
        write_kubeconfig(kubeconfig, self.cluster.sim.url, token, ca_cert=self.cluster.sim.ca_cert)
        process = self.cluster.start_replica(
            self.hub,
            name,
            standby=True,
            kubeconfig=kubeconfig,
            redis_url=f"redis://{forwarder.address}/0",
            standby_args=(
                *(("--preload",) if PRELOAD else ()),
                "--metrics-port",
                str(metrics_port),
                "--metrics-host",
                "127.0.0.1",
            ),
        )
        replica = Replica(name, process, forwarder, metrics_port)
        self.replicas[name] = replica
        return replica

    async def holder(self) -> str | None:
        record = decode_lease(await self.cluster.redis.get(self.lease_key))
        return None if record is None else record.holder

    async def active(self) -> Replica:
        name = await self.cluster.wait(
            self.holder, timeout=30, message="a lease holder", watching=None
        )
        return self.replicas[name]

    def standbys(self, active: Replica) -> list[Replica]:
        return [r for r in self.replicas.values() if r is not active and r.process.running]

    async def wait_standing_by(self, replica: Replica) -> None:
        """Until ``replica`` stands by, with JupyterHub imported when it preloads (a standby
        in service has had the time)."""
        await self.cluster.wait(
            lambda: (
                "standing by: the hub runs on" in replica.process.log_text()
                and (not PRELOAD or "JupyterHub imported in" in replica.process.log_text())
            ),
            timeout=120,
            message=f"replica {replica.name} to stand by",
            watching=[replica.process],
        )

    async def new_hub_answers(self, old: Replica) -> bool:
        holder = await self.holder()
        return (
            holder not in (None, old.name)
            and self.service.ready() == [holder]
            and await self.hub.api.answers()
        )

    # -------------------------------------------------------------- users

    async def servers(self) -> dict[str, dict[str, Any]]:
        """user -> default server model, of every user that has one."""
        found: dict[str, dict[str, Any]] = {}
        offset = 0
        while True:
            page = await self.hub.api.request("GET", f"/users?offset={offset}&limit=200")
            for user in page:
                server = (user.get("servers") or {}).get("")
                if server is not None:
                    found[user["name"]] = server
            if len(page) < 200:
                return found
            offset += 200

    async def spawn(self, user: str, *, deadline: float) -> bool:
        """Ask for ``user``'s server until the hub accepts (a user retrying); False when the
        server already exists or is pending."""
        while True:
            try:
                async with self.hub.api.session.post(
                    f"{self.hub.api.api_url}/users/{user}/server",
                    data=b"{}",
                    timeout=aiohttp.ClientTimeout(total=5),
                ) as response:
                    if response.status in (201, 202):
                        return True
                    if response.status == 400 and "already" in await response.text():
                        return False
            except (aiohttp.ClientError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"no hub accepted {user}'s spawn")
            await asyncio.sleep(0.5)

    async def stop(self, user: str, *, deadline: float) -> None:
        while True:
            try:
                async with self.hub.api.session.delete(
                    f"{self.hub.api.api_url}/users/{user}/server",
                    timeout=aiohttp.ClientTimeout(total=5),
                ) as response:
                    if response.status in (202, 204, 400, 404):
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"no hub accepted stopping {user}'s server")
            await asyncio.sleep(0.5)

    async def through_proxy(self, user: str) -> tuple[int, Any]:
        """(status, the server's status document) or, when it is not 200, (status, what
        came back instead: the body, or the client's error when status is 0)."""
        status, text = await self.hub.api.get_through_proxy(f"/user/{user}/api/status")
        if status != 200:
            return status, text[:300]
        try:
            return status, orjson.loads(text)
        except orjson.JSONDecodeError:
            return status, None

    async def routes(self) -> set[str]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                self.proxy.api_url + "/api/routes",
                headers={"Authorization": f"token {self.proxy.token}"},
            ) as response,
        ):
            return set(await response.json())

    def pods(self) -> dict[str, str]:
        """user -> pod UID of every pod of the namespace."""
        found = {}
        for pod in self.cluster.sim.store.list("pods", NAMESPACE):
            labels = pod["metadata"].get("labels") or {}
            found[labels.get("hub.jupyter.org/username", pod["metadata"]["name"])] = pod[
                "metadata"
            ]["uid"]
        return found

    async def list_watch(self, replica: str) -> tuple[int, int]:
        """(pod LISTs, pod WATCHes) ``replica``'s hub has sent."""
        stats = await self.cluster.sim.stats()
        verbs = stats["requests_by_user"].get(
            f"system:serviceaccount:{NAMESPACE}:hub-{replica}", {}
        )
        return verbs.get("list", {}).get("pods", 0), verbs.get("watch", {}).get("pods", 0)

    def absent_confirmations(self, replica: str) -> int:
        """Polls in which ``replica``'s hub confirmed with the API that a pod is absent."""
        return self.replicas[replica].process.log_text().count("the API says the pod is absent")

    def stops_begun(self, replica: str) -> int:
        """Stops ``replica``'s hub has begun: JupyterHub removes the route before it stops."""
        return self.replicas[replica].process.log_text().count("Removing user ")

    def confirmations(self, replica: str) -> int:
        """Verdicts ``replica``'s hub confirmed with the API, as it must before giving a
        server up (docs/spawner-safety.md): a pod absent in a poll, a pod gone in a stop."""
        log = self.replicas[replica].process.log_text()
        return log.count("the API says the pod is absent") + log.count(") stopped\n")


async def gather_bounded(calls: list[Awaitable[Any]], limit: int = 25) -> list[Any]:
    semaphore = asyncio.Semaphore(limit)

    async def one(call: Awaitable[Any]) -> Any:
        async with semaphore:
            return await call

    return await asyncio.gather(*(one(c) for c in calls))


@pytest.fixture
async def deployment(cluster: Cluster, hub_db_url: str) -> AsyncIterator[HaDeployment]:
    proxy = await cluster.start_proxy()
    service = HubService(int(proxy.hub_url.rsplit(":", 1)[1]))
    hub = cluster.hub(
        "hub",
        proxy,
        namespace=NAMESPACE,
        db_url=hub_db_url
        + (
            f"?options=-c%20idle_in_transaction_session_timeout%3D{IDLE_TX_TIMEOUT_MS}"
            if IDLE_TX_TIMEOUT_MS
            else ""
        ),
        hub_connect_url=service.url,
        server_cmd=[sys.executable, "-S", TINY_SERVER],
    )
    made = HaDeployment(cluster, hub, proxy, service)
    try:
        yield made
    finally:
        # stop the hubs before the forwarders they talk through
        for replica in made.replicas.values():
            await replica.process.stop(grace=10)
        for replica in made.replicas.values():
            replica.redis.close()
        service.close()


async def run_phase(
    ha: HaDeployment, fault: str, inject: Callable[[Replica], Awaitable[None]]
) -> Phase:
    phase = Phase(fault)
    cluster = ha.cluster
    active = await ha.active()
    before_servers = await ha.servers()
    established = sorted(u for u, s in before_servers.items() if s.get("ready"))
    pids = {}
    for user in established:
        status, body = await ha.through_proxy(user)
        assert status == 200 and body, (user, status, body)
        pids[user] = body["pid"]
    uids_before = ha.pods()
    stops = random.Random(fault).sample(established, STOPS)
    spawns = [f"{fault}-u{i}" for i in range(SPAWNS)]
    await ha.hub.api.request("POST", "/users", {"usernames": spawns}, expect=(201,))
    overlaps_before = len(ha.service.overlaps)

    # The burst: half of it, the fault, then the rest (users retry until a hub accepts).
    deadline = time.monotonic() + 120
    first = [ha.spawn(u, deadline=deadline) for u in spawns[: SPAWNS // 2]]
    first += [ha.stop(u, deadline=deadline) for u in stops[: STOPS // 2]]
    await gather_bounded(first)
    await inject(active)  # its last step is the fault itself (a rolling update: the SIGTERM)
    injected = time.monotonic()
    rest = [ha.spawn(u, deadline=deadline) for u in spawns[SPAWNS // 2 :]]
    rest += [ha.stop(u, deadline=deadline) for u in stops[STOPS // 2 :]]
    rest_done = asyncio.ensure_future(gather_bounded(rest))
    await cluster.wait(
        lambda: ha.new_hub_answers(active), timeout=90, message=f"a new hub after {fault}"
    )
    phase.takeover_s = round(time.monotonic() - injected, 2)
    answering = (await ha.active()).name
    phase.pod_list_watch_at_answer = sum(await ha.list_watch(answering))
    # read after the LISTs: a stop whose confirmation was counted has logged its start
    phase.absent_at_answer = ha.absent_confirmations(answering)
    phase.stops_at_answer = ha.stops_begun(answering)
    await rest_done

    # Every in-flight spawn ends ready or gone (cleanly failed), every stop done or not.
    async def settled() -> bool:
        servers = await ha.servers()
        return all(
            servers.get(u) is None or (servers[u].get("ready") and not servers[u]["pending"])
            for u in spawns + stops
        )

    await cluster.wait(settled, timeout=SETTLE, message=f"the burst to settle after {fault}")
    phase.settled_s = round(time.monotonic() - injected, 2)
    servers = await ha.servers()
    failed = [u for u in spawns if u not in servers]
    unstopped = [u for u in stops if u in servers]
    phase.spawns_failed_then_retried, phase.stops_retried = len(failed), len(unstopped)
    # A failed spawn left nothing behind, so the user's retry starts afresh.
    await cluster.wait(
        lambda: not (set(failed) & set(ha.pods())),
        timeout=60,
        message=f"the pods of failed spawns {failed} to be gone",
    )
    retry_deadline = time.monotonic() + 60
    await gather_bounded([ha.spawn(u, deadline=retry_deadline) for u in failed])
    await gather_bounded([ha.stop(u, deadline=retry_deadline) for u in unstopped])

    async def all_done() -> bool:
        servers = await ha.servers()
        return all(servers.get(u, {}).get("ready") for u in spawns) and not any(
            u in servers for u in stops
        )

    await cluster.wait(all_done, timeout=SETTLE, message=f"retries to finish after {fault}")
    phase.spawns_ready = len(spawns)
    phase.stops_done = len(stops)

    # Nothing lost, restarted, pending or orphaned; every route answers.
    servers = await ha.servers()
    assert not [u for u, s in servers.items() if s["pending"] or not s.get("ready")], servers
    kept = [u for u in established if u not in stops]
    uids = ha.pods()
    assert {u: uids.get(u) for u in kept} == {u: uids_before[u] for u in kept}, "pod replaced"
    checked = kept + spawns
    answers = dict(
        zip(checked, await gather_bounded([ha.through_proxy(u) for u in checked]), strict=True)
    )
    assert {u: (s, b) for u, (s, b) in answers.items() if s != 200} == {}
    restarted = {u: answers[u][1]["pid"] for u in kept if answers[u][1]["pid"] != pids[u]}  # type: ignore[index]
    assert restarted == {}, f"servers restarted: {restarted}"
    phase.servers_kept, phase.routes_checked = len(kept), len(answers)
    await cluster.wait(
        lambda: set(ha.pods()) == set(servers),
        timeout=60,
        message="pods to be exactly the hub's servers",
    )
    routes = {r.rstrip("/") for r in await ha.routes() if r.startswith("/user/")}
    expected = {f"/user/{u}" for u in servers}
    assert routes == expected, f"orphaned or missing routes: {routes ^ expected}"
    assert cluster.sim.store.list("persistentvolumeclaims", NAMESPACE) == []
    new = await ha.active()
    phase.new_hub = new.name
    lists, watches = await ha.list_watch(new.name)
    phase.pod_list_watch = lists + watches
    phase.confirmations = ha.confirmations(new.name)
    phase.overlaps = len(ha.service.overlaps) - overlaps_before
    # Taking over costs the new hub no LIST or WATCH: servers the cache knows as running
    # are answered from Redis (a LIST before it answers may only confirm an absent pod, or
    # a stopped one: users' stops reach the new hub before the test sees it answer).
    # Then a pod the cache says is absent (a spawn the old hub never got to create) or gone
    # (a stop) is confirmed with the API before the server is given up
    # (docs/spawner-safety.md): a GET, or one LIST for several at once; never a WATCH.
    confirming = phase.absent_at_answer + phase.stops_at_answer
    assert phase.pod_list_watch_at_answer <= confirming, "the new hub listed pods"
    assert watches == 0, "the new hub watched pods"
    assert lists <= phase.confirmations, (lists, phase.confirmations)
    assert phase.overlaps == 0, ha.service.overlaps[overlaps_before:]
    return phase


async def test_failover_in_the_middle_of_a_burst_loses_no_server_and_leaves_nothing_stuck(
    deployment: HaDeployment, hub_db_url: str
) -> None:
    ha, cluster = deployment, deployment.cluster
    first = ha.start_replica("a")
    await cluster.wait(
        lambda: ha.service.ready() == [first.name],
        timeout=120,
        message="the first hub to be ready",
        watching=[first.process],
    )
    await ha.wait_standing_by(ha.start_replica("b"))

    users = [f"user{i}" for i in range(SERVERS)]
    await ha.hub.api.request("POST", "/users", {"usernames": users}, expect=(201,))
    deadline = time.monotonic() + 600
    for chunk in range(0, SERVERS, 50):
        await gather_bounded([ha.spawn(u, deadline=deadline) for u in users[chunk : chunk + 50]])
        await cluster.wait(
            lambda chunk=chunk: _all_ready(ha, users[: chunk + 50]),
            timeout=300,
            message=f"{min(chunk + 50, SERVERS)} servers to be ready",
        )

    async def kill(active: Replica) -> None:
        await active.process.kill()

    async def freeze(active: Replica) -> None:
        # Frozen (a paused VM, a stopped container) for longer than the lease, then resumed:
        # its wrapper must kill its hub at once. While frozen, its hub's open database
        # transaction keeps its row locks (docs/ha.md, "Measured takeover times").
        active.process.signal_group(signal.SIGSTOP)

        async def thaw_later() -> None:
            try:
                await cluster.wait(
                    lambda: time.monotonic() - started >= FREEZE,
                    timeout=FREEZE + 5,
                    message="the freeze to outlast the lease",
                )
            finally:
                active.process.signal_group(signal.SIGCONT)

        started = time.monotonic()
        ha.thawing = asyncio.ensure_future(thaw_later())  # type: ignore[attr-defined]

    async def cut_redis(active: Replica) -> None:
        active.redis.blackhole()

    async def rolling(active: Replica) -> None:
        # The standby first (nothing changes for users), then the active one.
        for standby in ha.standbys(active):
            await standby.process.stop(grace=30)
        await ha.wait_standing_by(ha.start_replica("c"))
        active.process.signal_group(signal.SIGTERM)

    faults: list[tuple[str, Callable[[Replica], Awaitable[None]]]] = [
        ("kill9", kill),
        ("sigstop", freeze),
        ("rediscut", cut_redis),
        ("rolling", rolling),
    ]
    phases = []
    for fault, inject in faults:
        old = await ha.active()
        phase = await run_phase(ha, fault, inject)
        if fault == "sigstop":
            await ha.thawing  # type: ignore[attr-defined]
        # The deposed replica ends (killed, or its wrapper stepped down), and is replaced.
        exit_code = await old.process.wait_exit(30) if old.process.running else None
        code = old.process.process.returncode
        phase.notes.append(f"old replica {old.name} exit status {code}")
        if fault in ("sigstop", "rediscut"):
            assert code == 75, (fault, code, old.process.log_tail(30))
            assert "lost lease" in old.process.log_text()
        if fault == "rolling":
            assert code == 0, old.process.log_tail(30)
        del exit_code
        old.redis.pass_traffic()
        await ha.wait_standing_by(ha.start_replica("r"))
        phases.append(phase)
        print(f"{fault}: {phase}")

    # the PostgreSQL database is the hub's
    import psycopg2

    dsn = hub_db_url.replace("postgresql+psycopg2://", "postgresql://")
    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM users")
        (count,) = cursor.fetchone()
    assert count == SERVERS + SPAWNS * len(faults)
    report = {
        "servers": SERVERS,
        "spawns": SPAWNS,
        "stops": STOPS,
        "lease": " ".join(STANDBY_TIMING),
        "preload": PRELOAD,
        "idle_in_transaction_session_timeout_ms": IDLE_TX_TIMEOUT_MS,
        "phases": [p.__dict__ for p in phases],
    }
    out = REPO / "test-artifacts" / "ha-takeover.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


async def _all_ready(ha: HaDeployment, users: list[str]) -> bool:
    servers = await ha.servers()
    return all(servers.get(u, {}).get("ready") for u in users)
