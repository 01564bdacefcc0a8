"""A Sentinel deployment on loopback: one primary, one replica, three sentinels.

Quorum 2, down-after 1 s, failover-timeout 5 s (``redis-sentinel``, Debian's
package, or ``redis-server --sentinel``). Every process is ours and is killed
on :meth:`SentinelDeployment.close`; every wait is bounded.

    deployment = SentinelDeployment()
    deployment.start()
    url = deployment.url  # redis+sentinel://127.0.0.1:p1,...,127.0.0.1:p3/mymaster/0
    deployment.failover()  # SENTINEL FAILOVER, then wait for the switch
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import redis
from redis.exceptions import RedisError

from tests.support.lifetime import die_with_parent
from tests.support.redis_server import RedisServer, free_port

SERVICE = "mymaster"


def client(port: int) -> redis.Redis:
    """A synchronous client of 127.0.0.1:``port`` (a node or a sentinel), 2 s timeouts."""
    return redis.Redis(
        host="127.0.0.1",
        port=port,
        socket_timeout=2,
        socket_connect_timeout=2,
        decode_responses=True,
    )


def info_field(port: int, section: str, field: str) -> str:
    with client(port) as c:
        return str(c.info(section).get(field, ""))


def wait_until(condition: object, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            if condition():  # type: ignore[operator]
                return
        except (OSError, RedisError, ValueError) as e:
            last = e
        time.sleep(0.05)  # polling processes we started; bounded by the deadline
    raise RuntimeError(f"timed out after {timeout} s waiting for {what} (last error: {last})")


class SentinelDeployment:
    def __init__(self, *, down_after_ms: int = 1000, failover_timeout_ms: int = 5000) -> None:
        binary = shutil.which("redis-sentinel") or shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-sentinel is not installed: apt-get install -y redis-sentinel")
        self.sentinel_binary = binary
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.nodes = [RedisServer(), RedisServer()]
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.dir = Path(tempfile.mkdtemp(prefix="kubecache-sentinel-"))
        self.sentinels: list[subprocess.Popen[bytes]] = []
        self.stopped: set[int] = set()  # pids we SIGSTOPped (resumed on close)

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    # ------------------------------------------------------------------ start

    def start(self) -> None:
        primary, replica = self.nodes
        primary.start()
        replica.start("--replicaof", "127.0.0.1", str(primary.port))
        wait_until(
            lambda: info_field(replica.port, "replication", "master_link_status") == "up",
            timeout=10,
            what="the replica to sync",
        )
        for port in self.sentinel_ports:
            config = self.dir / f"sentinel-{port}.conf"
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {primary.port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} {self.down_after_ms}\n"
                f"sentinel failover-timeout {SERVICE} {self.failover_timeout_ms}\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            args = [self.sentinel_binary, str(config)]
            if not self.sentinel_binary.endswith("redis-sentinel"):
                args.append("--sentinel")
            self.sentinels.append(
                subprocess.Popen(
                    args,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    preexec_fn=die_with_parent(),  # noqa: PLW1509 (one libc call, no locks)
                )
            )
        for port in self.sentinel_ports:
            wait_until(
                lambda port=port: self._sentinel_knows_everyone(port),
                timeout=20,
                what=f"sentinel {port} to know the replica and the other sentinels",
            )

    def _sentinel_knows_everyone(self, port: int) -> bool:
        with client(port) as c:
            info = c.sentinel_master(SERVICE)
        return bool(info.get("num-slaves") == 1 and info.get("num-other-sentinels") == 2)

    # ---------------------------------------------------------------- queries

    def primary_port(self) -> int:
        """The primary's port as the first answering sentinel names it."""
        for port in self.sentinel_ports:
            try:
                with client(port) as c:
                    return int(c.sentinel_get_master_addr_by_name(SERVICE)[1])
            except (OSError, RedisError, TypeError):
                continue
        raise RuntimeError("no sentinel answers")

    def node(self, port: int) -> RedisServer:
        return next(n for n in self.nodes if n.port == port)

    def primary(self) -> RedisServer:
        return self.node(self.primary_port())

    def replica(self) -> RedisServer:
        return next(n for n in self.nodes if n.port != self.primary_port())

    def every_sentinel_names(self, port: int) -> bool:
        for sentinel in self.sentinel_ports:
            with client(sentinel) as c:
                if int(c.sentinel_get_master_addr_by_name(SERVICE)[1]) != port:
                    return False
        return info_field(port, "replication", "role") == "master"

    # ----------------------------------------------------------------- faults

    def failover(self, *, timeout: float = 15) -> int:
        """SENTINEL FAILOVER (the old primary stays up); returns the new primary's port."""
        old = self.primary_port()
        new = self.replica().port
        with client(self.sentinel_ports[0]) as c:
            c.sentinel_failover(SERVICE)
        wait_until(lambda: self.every_sentinel_names(new), timeout=timeout, what="the switch")
        assert new != old
        return new

    def kill_primary(self) -> int:
        """kill -9 of the primary; returns the port it had (wait for the switch yourself)."""
        primary = self.primary()
        assert primary.process is not None
        primary.process.send_signal(signal.SIGKILL)
        primary.process.wait(5)
        primary.process = None
        return primary.port

    def wait_for_switch(self, old_port: int, *, timeout: float = 20) -> int:
        new = next(n.port for n in self.nodes if n.port != old_port)
        wait_until(lambda: self.every_sentinel_names(new), timeout=timeout, what="the switch")
        return new

    def pause(self, node: RedisServer) -> None:
        assert node.process is not None
        os.kill(node.process.pid, signal.SIGSTOP)
        self.stopped.add(node.process.pid)

    def resume(self, node: RedisServer) -> None:
        assert node.process is not None
        os.kill(node.process.pid, signal.SIGCONT)
        self.stopped.discard(node.process.pid)

    # ---------------------------------------------------------------- cleanup

    def close(self) -> None:
        for pid in list(self.stopped):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        for process in self.sentinels:
            if process.poll() is None:
                process.kill()
                process.wait(5)
        for node in self.nodes:
            node.close()
        shutil.rmtree(self.dir, ignore_errors=True)
