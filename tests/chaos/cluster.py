"""The chaos suite's cluster: kubesim in-process, a real redis-server, two cachers as processes.

The cachers run as ``python3 -m cacher`` (as in production), so a fault can
``kill -9`` or ``SIGSTOP`` the leader. Every fault the suite injects is one
method here; each returns once the fault is in place, and ``heal`` (where
a fault has an end) undoes it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from kubecache.contract import CacheHealth, Keys
from kubesim.testing import KubeSim
from tests.support.redis_server import RedisServer

KEYS = Keys()


@dataclass
class CacherProcess:
    """One ``python3 -m cacher`` replica writing its log to a file."""

    identity: str
    kubeconfig: Path
    redis_url: str
    log_dir: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.identity}.log"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "cacher",
            "--kubeconfig", str(self.kubeconfig),
            "--redis-url", self.redis_url,
            "--identity", self.identity,
            "--namespaces", "jhub",
            "--lease-namespace", "default",
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
                self.command(), stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ)
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


@dataclass
class ChaosCluster:
    sim: KubeSim
    redis_server: RedisServer
    redis: aioredis.Redis
    cachers: list[CacherProcess] = field(default_factory=list)

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
        self.redis_server.restart()
        return "redis-server restarted empty"

    def freeze_redis(self) -> str:
        """SIGSTOP redis-server: connections hang (socket timeouts, not refusals)."""
        assert self.redis_server.process is not None
        os.kill(self.redis_server.process.pid, signal.SIGSTOP)
        return "redis-server frozen (SIGSTOP)"

    def thaw_redis(self) -> None:
        if self.redis_server.process is not None:
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

    async def clear_api_faults(self) -> None:
        await self.fault({"action": "clear"})

    def close(self) -> None:
        self.thaw_redis()
        for cacher in self.cachers:
            cacher.stop()


__all__ = ["KEYS", "CacherProcess", "ChaosCluster"]
