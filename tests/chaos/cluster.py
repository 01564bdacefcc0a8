"""The chaos suite's cluster: kubesim in-process, Redis, two cachers as processes.

Redis is one real redis-server, or a Sentinel deployment (a primary, a
replica, three sentinels: tests/support/sentinel.py) that the cachers and
the hub reach through ``redis+sentinel://``. The cachers run as ``python3 -m
kubecache.cacher`` (as in production), so a fault can ``kill -9`` or ``SIGSTOP`` the
leader. Every fault the suite injects is one method here; each returns once
the fault is in place, and ``heal`` (where a fault has an end) undoes it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from kubecache.cacher.watcher import cancel_and_wait
from kubecache.contract import CacheHealth, Keys
from kubecache.redis_connection import RedisSettings, connect
from kubecache.spawner.cache_client import CacheClient
from kubecache.spawner.kube_api import KubeApi
from kubesim.testing import KubeSim, running_kubesim
from tests.cacher.integration.checker import Checker
from tests.support.fleet import NAMESPACE
from tests.support.lifetime import die_with_parent
from tests.support.redis_server import RedisServer
from tests.support.sentinel import SentinelDeployment, client, wait_until
from tests.support.tcp_cut import TcpCut

KEYS = Keys()


@dataclass
class CacherProcess:
    """One ``python3 -m kubecache.cacher`` replica writing its log to a file."""

    identity: str
    kubeconfig: Path
    redis_url: str
    log_dir: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    link: TcpCut | None = None  # its own network path to Redis, one the suite can cut
    lease_name: str = "kubecache-cacher"
    namespaces: str = "jhub"

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.identity}.log"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "kubecache.cacher",
            "--kubeconfig", str(self.kubeconfig),
            "--redis-url", self.redis_url,
            "--identity", self.identity,
            "--namespaces", self.namespaces,
            "--lease-namespace", "default",
            "--lease-name", self.lease_name,
            "--lease-duration", "2",
            "--renew-deadline", "1.5",
            "--retry-period", "0.2",
            "--health-host", "127.0.0.1",
            "--health-port", "0",
            "--stall-timeout", "3",
            "--heartbeat-interval", "0.5",
            "--request-timeout", "5",
        ]  # fmt: skip

    def start(self) -> None:
        self.starts += 1
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(os.environ),
                preexec_fn=die_with_parent(),  # noqa: PLW1509 (one libc call, no locks)
            )

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        if self.running():
            assert self.process is not None
            os.kill(self.process.pid, sig)

    def kill(self) -> None:
        """kill -9, and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def tracebacks(self) -> int:
        if not self.log_path.exists():
            return 0
        return self.log_path.read_bytes().count(b"Traceback (most recent call last)")

    def traceback_excerpts(self, limit: int = 3) -> list[str]:
        """Each traceback in the log with the line before it (a failed run must say which)."""
        if not self.log_path.exists():
            return []
        lines = self.log_path.read_text(errors="replace").splitlines()
        starts = [i for i, line in enumerate(lines) if "Traceback (most recent call last)" in line]
        return [
            f"{self.identity}: " + "\n".join(lines[max(0, i - 1) : i + 40])[-6000:]
            for i in starts[:limit]
        ]

    def log_count(self, text: str) -> int:
        if not self.log_path.exists():
            return 0
        return self.log_path.read_bytes().count(text.encode())


@dataclass
class ChaosCluster:
    sim: KubeSim
    redis_url: str  # what the cachers and the hub connect to
    redis: aioredis.Redis  # the suite's own client, through the same URL
    redis_server: RedisServer | None = None  # the single redis-server, or
    sentinel: SentinelDeployment | None = None  # the Sentinel deployment
    cachers: list[CacherProcess] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what some faults measured, for the report

    async def differences(self) -> list[str]:
        """How the pod records on the primary differ from the API (empty: converged).

        Under Sentinel, read on the node the sentinels name now, not through a
        client that may still hold a connection to the old primary.
        """
        if self.sentinel is None:
            return await self._checker(self.redis).differences()
        port = await asyncio.to_thread(self.sentinel.primary_port)
        # kubecache's client: a frozen node times out once (redis-py's own client
        # retries a timeout for half a minute)
        primary = connect(RedisSettings(url=f"redis://127.0.0.1:{port}/0", socket_timeout=1.0))
        try:
            return await self._checker(primary).differences()
        finally:
            await primary.aclose()

    def _checker(self, redis: aioredis.Redis) -> Checker:
        return Checker(redis, self.sim.store, namespaces=[NAMESPACE], check_events=False)

    async def health(self) -> CacheHealth | None:
        try:
            return CacheHealth.from_redis(await self.redis.hgetall(KEYS.health))
        except Exception:
            return None

    async def leader(self) -> CacherProcess | None:
        health = await self.health()
        for cacher in self.cachers:
            if health is not None and cacher.identity == health.leader and cacher.running():
                return cacher
        return None

    def ensure_cachers_running(self) -> None:
        for cacher in self.cachers:
            if not cacher.running():
                cacher.start()

    async def fault(self, action: dict[str, Any]) -> None:
        await self.sim.fault(action)

    # ---- the faults (each named as the report names it)

    async def kill_leader(self) -> str:
        leader = await self.leader()
        if leader is None:
            return "no leader to kill"
        leader.kill()
        return f"kill -9 {leader.identity}"

    async def stop_leader(self) -> tuple[str, CacherProcess | None]:
        leader = await self.leader()
        if leader is None:
            return "no leader to stop", None
        leader.signal(signal.SIGSTOP)
        return f"SIGSTOP {leader.identity}", leader

    def restart_redis_empty(self) -> str:
        assert self.redis_server is not None
        self.redis_server.restart()
        return "redis-server restarted empty"

    def freeze_redis(self) -> str:
        """SIGSTOP redis-server: connections hang (socket timeouts, not refusals)."""
        assert self.redis_server is not None and self.redis_server.process is not None
        os.kill(self.redis_server.process.pid, signal.SIGSTOP)
        return "redis-server frozen (SIGSTOP)"

    def thaw_redis(self) -> None:
        if self.redis_server is not None and self.redis_server.process is not None:
            os.kill(self.redis_server.process.pid, signal.SIGCONT)

    async def flushall(self) -> str:
        await self.redis.flushall()
        return "FLUSHALL"

    async def delete_pod_hash(self) -> str:
        await self.redis.delete(KEYS.pods)
        return f"DEL {KEYS.pods}"

    async def delete_some_records(self, count: int) -> str:
        fields = (await self.redis.hkeys(KEYS.pods))[:count]
        if fields:
            await self.redis.hdel(KEYS.pods, *fields)
        return f"HDEL of {len(fields)} records"

    async def cut_leader_from_redis(self, how: str) -> tuple[str, CacherProcess | None]:
        """Cut the leader's own path to Redis (``reset`` or a silent ``drop``); the
        standby still reaches Redis. Healed by :meth:`heal_links`."""
        leader = await self.leader()
        if leader is None or leader.link is None:
            return "no leader to cut off", None
        leader.link.reset() if how == "reset" else leader.link.drop()
        verb = "connections reset" if how == "reset" else "packets dropped"
        return f"leader cut off from Redis ({verb}) while the standby reaches it", leader

    def heal_links(self) -> None:
        for cacher in self.cachers:
            if cacher.link is not None:
                cacher.link.heal()

    async def eviction_pressure(self) -> tuple[int, asyncio.Task[None]]:
        """allkeys-lru and maxmemory just above what Redis holds, and junk written until
        the returned task is cancelled; returns evicted_keys before, and the task."""
        before = int((await self.redis.info("stats"))["evicted_keys"])
        used = int((await self.redis.info("memory"))["used_memory"])
        await self.redis.config_set("maxmemory-policy", "allkeys-lru")
        await self.redis.config_set("maxmemory", str(used + 300_000))

        async def junk() -> None:
            n = 0
            while True:
                await self.redis.set(f"chaos-junk:{n % 5000}", b"x" * 2000)
                n += 1
                await asyncio.sleep(0.005)  # load pacing, not synchronisation

        return before, asyncio.create_task(junk(), name="eviction-pressure")

    async def end_eviction_pressure(self, pressure: asyncio.Task[None], before: int) -> int:
        """Stop the junk, lift the limit; returns the keys evicted meanwhile."""
        # cancelled again until it ends: Python 3.11's asyncio.wait_for (inside redis-py's
        # socket writes) drops a cancellation that arrives as the write completes, and the
        # loop would go on writing forever (seen in CI: the heal waited past the timeout)
        await cancel_and_wait(pressure)
        evicted = int((await self.redis.info("stats"))["evicted_keys"]) - before
        await self.redis.config_set("maxmemory", "0")
        await self.redis.config_set("maxmemory-policy", "noeviction")
        keys = [k async for k in self.redis.scan_iter(match="chaos-junk:*", count=1000)]
        if keys:
            await self.redis.delete(*keys)
        return evicted

    def start_other_deployment(self) -> CacherProcess:
        """A second deployment (another Lease and namespace) on the same prefix."""
        other = CacherProcess(
            "other-release",
            self.cachers[0].kubeconfig,
            self.redis_url,
            self.cachers[0].log_dir,
            lease_name="other-release-cacher",
            namespaces="other-release",
        )
        other.start()
        return other

    async def stall_watches(self) -> str:
        await self.fault({"action": "stall_watches"})
        return "watches stalled"

    async def expire_watches(self) -> str:
        await self.fault({"action": "compact"})
        await self.fault({"action": "drop_watches"})
        return "history compacted and watches dropped (410 on resume)"

    async def api_errors(self) -> str:
        for rule in (
            {"action": "fail", "verb": "watch", "resource": "pods", "status": 429, "count": 4},
            {"action": "fail", "verb": "list", "resource": "pods", "status": 503, "count": 4},
            {"action": "fail", "verb": "get", "resource": "pods", "status": 500, "count": 20},
            {"action": "fail", "verb": "create", "resource": "pods", "status": 503, "count": 3},
            {"action": "latency", "ms": 150},
        ):
            await self.fault(rule)
        return "429/503/500 bursts and 150 ms latency"

    # ---- Sentinel faults

    async def sentinel_failover(self) -> str:
        """SENTINEL FAILOVER (the old primary stays up), returning once every sentinel agrees."""
        assert self.sentinel is not None
        old = self.sentinel.primary_port()
        new = await asyncio.to_thread(self.sentinel.failover)
        return f"SENTINEL FAILOVER ({old} to {new})"

    async def kill_primary(self) -> str:
        """kill -9 of the Redis primary (:meth:`ensure_replica` restarts it later)."""
        assert self.sentinel is not None
        old = await asyncio.to_thread(self.sentinel.kill_primary)
        return f"kill -9 of the Redis primary ({old})"

    async def freeze_primary(self) -> tuple[str, RedisServer]:
        """SIGSTOP the Redis primary: Sentinel promotes the replica while the old primary
        holds the cachers' connections; once thawed it takes writes until it is demoted."""
        assert self.sentinel is not None
        primary = await asyncio.to_thread(self.sentinel.primary)
        self.sentinel.pause(primary)
        return f"Redis primary frozen (SIGSTOP {primary.port})", primary

    def thaw_node(self, node: RedisServer) -> None:
        assert self.sentinel is not None
        self.sentinel.resume(node)

    async def ensure_replica(self) -> None:
        """A synced replica every sentinel could fail over to: a killed node is restarted
        empty as a replica of the new primary (as an operator would), an old primary
        waits to be turned into one (Sentinel does it some seconds after a switch)."""
        assert self.sentinel is not None
        sentinel = self.sentinel
        for node in sentinel.nodes:
            if node.process is None:
                new = await asyncio.to_thread(sentinel.wait_for_switch, node.port)
                await asyncio.to_thread(node.start, "--replicaof", "127.0.0.1", str(new))

        def synced() -> bool:
            # which node is the replica is asked each time: Sentinel may switch again
            # meanwhile (CI15: the sentinels came to list the other node as their replica)
            port = sentinel.replica().port
            return all(self._sentinel_sees_a_good_replica(p, port) for p in sentinel.sentinel_ports)

        try:
            await asyncio.to_thread(
                wait_until,
                synced,
                timeout=60,
                what="the sentinels to see the node that is not the primary as a synced replica",
            )
        except RuntimeError as e:
            state = await asyncio.to_thread(self._sentinels_state)
            raise RuntimeError(f"{e}; the sentinels say: {state}") from e

    def _sentinels_state(self) -> list[str]:
        """What each sentinel thinks (TILT mode, its replicas' flags), for a failure message."""
        assert self.sentinel is not None
        state = []
        for port in self.sentinel.sentinel_ports:
            try:
                with client(port) as c:
                    tilt = c.info("sentinel").get("sentinel_tilt")
                    replicas = [
                        f"{r.get('port')} {r.get('flags')} link {r.get('master-link-status')}"
                        for r in c.sentinel_slaves("mymaster")
                    ]
                state.append(f"{port}: tilt {tilt}, replicas {replicas}")
            except Exception as e:
                state.append(f"{port}: {e}")
        return state

    @staticmethod
    def _sentinel_sees_a_good_replica(sentinel_port: int, port: int) -> bool:
        with client(sentinel_port) as c:
            replicas = c.sentinel_slaves("mymaster")
        return any(
            int(r.get("port", 0)) == port
            and not r.get("is_sdown")
            and not r.get("is_odown")
            and r.get("master-link-status") == "ok"
            for r in replicas
        )

    async def clear_api_faults(self) -> None:
        await self.fault({"action": "clear"})

    def close(self) -> None:
        self.thaw_redis()
        for cacher in self.cachers:
            cacher.stop()
        for cacher in self.cachers:
            if cacher.link is not None:
                cacher.link.reset()
        if self.sentinel is not None:
            self.sentinel.close()
        if self.redis_server is not None:
            self.redis_server.close()


@asynccontextmanager
async def chaos_cluster(log_dir: Path, *, sentinel: bool = False) -> AsyncIterator[ChaosCluster]:
    """kubesim, Redis (one server, or Sentinel with ``sentinel``) and two running cachers
    logging into ``log_dir``.

    Sets ``KUBECONFIG`` to kubesim's (the caller restores it, e.g. with monkeypatch).
    """
    async with running_kubesim(kubelet="fake", fake_step_delay=0.02) as sim:
        os.environ["KUBECONFIG"] = str(sim.kubeconfig_path)
        sim.store.create("namespaces", None, {"metadata": {"name": NAMESPACE}})
        redis_server: RedisServer | None = None
        deployment: SentinelDeployment | None = None
        if sentinel:
            deployment = SentinelDeployment()
            deployment.start()
            url = deployment.url
        else:
            redis_server = RedisServer()
            redis_server.start()
            url = redis_server.url
        # bounded commands (kubecache's client does not retry): the suite's own reads
        # must not hang on a frozen redis-server
        redis = connect(RedisSettings(url=url, socket_timeout=2.0, connect_timeout=2.0))
        cluster = ChaosCluster(sim, url, redis, redis_server=redis_server, sentinel=deployment)
        await asyncio.to_thread(log_dir.mkdir, parents=True, exist_ok=True)
        for identity in ("chaos-a", "chaos-b"):
            link: TcpCut | None = None
            if redis_server is not None:  # each cacher's own path to Redis, to cut
                link = TcpCut(redis_server.port)
                await link.start()
            cluster.cachers.append(
                CacherProcess(
                    identity, sim.kubeconfig_path, link.url if link else url, log_dir, link=link
                )
            )
        cluster.ensure_cachers_running()
        try:
            yield cluster
        finally:
            await CacheClient.close_all()
            await KubeApi.close_all()
            cluster.close()
            for cacher in cluster.cachers:
                if cacher.link is not None:
                    await cacher.link.close()
            await redis.aclose()


__all__ = ["KEYS", "CacherProcess", "ChaosCluster", "chaos_cluster"]
