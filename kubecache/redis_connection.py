"""How every kubecache process (cacher, spawner, CLI) connects to Redis.

URL forms:

- ``redis://[user:password@]host:port/db`` and ``rediss://...`` (TLS; give
  ``ca_file`` for a private CA)
- ``unix:///path/to/redis.sock?db=0``
- ``redis+sentinel://[user:password@]host1:26379,host2:26379/service/db``:
  the master of ``service`` as known to those Sentinels (``rediss+sentinel``
  for TLS to the data nodes)

Credentials may also come from ``username`` / ``password`` or from files
(``password_file``: a mounted Kubernetes Secret), which take precedence over
the URL so secrets stay out of command lines and environment dumps.
"""

from __future__ import annotations

import asyncio
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.exceptions import NoPermissionError

DEFAULT_URL = "redis://127.0.0.1:6379/0"
_SCHEMES = ("redis", "rediss", "unix", "redis+sentinel", "rediss+sentinel")


class RedisConfigError(ValueError):
    """The Redis settings cannot work; the message says what to change."""


@dataclass(frozen=True)
class RedisSettings:
    url: str = DEFAULT_URL
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    password_file: str | None = None
    username_file: str | None = None
    ca_file: str | None = None
    #: Seconds a command may take before it fails (blocking reads set their own).
    socket_timeout: float = 5.0
    connect_timeout: float = 5.0
    client_name: str = "kubecache"

    def validate(self) -> None:
        """Raise :class:`RedisConfigError` for settings that cannot work."""
        scheme = urlsplit(self.url).scheme
        if scheme not in _SCHEMES:
            raise RedisConfigError(
                f"unsupported Redis URL {redacted(self.url)!r}: the scheme must be one of "
                f"{', '.join(s + '://' for s in _SCHEMES)}"
            )
        if scheme.endswith("+sentinel"):
            _sentinel_parts(self.url)
        for label, path in (
            ("password_file", self.password_file),
            ("username_file", self.username_file),
            ("ca_file", self.ca_file),
        ):
            if path and not Path(path).is_file():
                raise RedisConfigError(f"Redis {label} {path!r} does not exist or is not a file")
        if self.socket_timeout <= 0 or self.connect_timeout <= 0:
            raise RedisConfigError("Redis timeouts must be positive numbers of seconds")

    def credentials(self) -> tuple[str | None, str | None]:
        """(username, password): files first, then explicit values, then the URL."""
        parts = urlsplit(self.url)
        username = self.username or (unquote(parts.username) if parts.username else None)
        password = self.password or (unquote(parts.password) if parts.password else None)
        if self.username_file:
            username = Path(self.username_file).read_text().strip() or None
        if self.password_file:
            password = Path(self.password_file).read_text().strip() or None
        return username, password


def redacted(url: str) -> str:
    """The URL with any password replaced by ``***`` (for logs and errors)."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def _sentinel_parts(url: str) -> tuple[list[tuple[str, int]], str, int]:
    parts = urlsplit(url)
    hosts_part = parts.netloc.rpartition("@")[2]
    hosts: list[tuple[str, int]] = []
    for item in filter(None, hosts_part.split(",")):
        host, _, port = item.rpartition(":") if ":" in item else (item, "", "26379")
        try:
            hosts.append((host or item, int(port)))
        except ValueError as e:
            raise RedisConfigError(f"bad Sentinel address {item!r} in {redacted(url)!r}") from e
    path = [p for p in parts.path.split("/") if p]
    if not hosts or not path:
        raise RedisConfigError(
            f"Sentinel URL {redacted(url)!r} must look like "
            "redis+sentinel://host1:26379,host2:26379/service-name/db"
        )
    try:
        db = int(path[1]) if len(path) > 1 else 0
    except ValueError as e:
        raise RedisConfigError(f"bad database number in {redacted(url)!r}") from e
    return hosts, path[0], db


def _without_credentials(url: str) -> str:
    # redis-py lets credentials in the URL win over keyword arguments; strip
    # them so files and explicit values take precedence as documented.
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


# No CLIENT SETINFO on connect: kubecache's ACL users (kubecache.acl) are not granted it, and
# Redis < 7.2 does not know it (redis-py ignores the refusal; ACL LOG would record it).
# redis-py >= 7 takes driver_info=None; older versions lib_name/lib_version=None.
_WITHOUT_CLIENT_SETINFO: dict[str, object] = (
    {"driver_info": None}
    if "driver_info" in inspect.signature(aioredis.Redis.__init__).parameters
    else {"lib_name": None, "lib_version": None}
)


def _cancelling() -> int:
    task = asyncio.current_task()
    return 0 if task is None else task.cancelling()


def _raise_a_lost_cancellation(before: int, command: object) -> None:
    if _cancelling() > before:
        raise asyncio.CancelledError(
            f"cancelled during Redis {command!s}; the command's reply came back too"
        )


class Redis(aioredis.Redis):
    """redis-py's client, but a cancellation requested during a command is never lost.

    redis-py sends a command under ``asyncio.wait_for(..., socket_timeout)``; before
    Python 3.12, wait_for returns the inner result when a cancellation arrives in the
    same loop iteration as the send completes, and the cancellation is gone (measured
    here: ~1 cancelled command in 5 returned normally, cpython gh-86296). A cancelled
    task then ran on: JupyterHub's progress stream cancelled mid-read went on to end by
    itself, failing the request ("async generator raised StopAsyncIteration"). The task's
    cancel count tells: raised while the command ran and still not withdrawn (a
    timeout's own cancel is withdrawn when it becomes TimeoutError), it is raised here.
    """

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        before = _cancelling()
        reply = await super().execute_command(*args, **options)
        _raise_a_lost_cancellation(before, args[0] if args else "command")
        return reply

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        return _Pipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)


class _Pipeline(Pipeline):
    """A pipeline of :class:`Redis`: its ``execute`` keeps a cancellation the same way."""

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        before = _cancelling()
        replies = await super().execute(raise_on_error)
        _raise_a_lost_cancellation(before, "pipeline")
        return replies


def connect(settings: RedisSettings) -> aioredis.Redis:
    """A Redis client for ``settings`` (connections are made lazily).

    redis-py retries a command after a connection error, and a Sentinel
    client turns a READONLY reply from a demoted primary into one: a write
    may silently land on another node than the one before. The cacher does
    not rely on the client to notice; its scripts compare the node's
    replication ID with the one its epoch started on (cacher/lua_scripts.py).
    """
    settings.validate()
    username, password = settings.credentials()
    scheme = urlsplit(settings.url).scheme
    common = {
        "username": username,
        "password": password,
        "socket_timeout": settings.socket_timeout,
        "socket_connect_timeout": settings.connect_timeout,
        "client_name": settings.client_name,
        "health_check_interval": 15,
        **_WITHOUT_CLIENT_SETINFO,
    }
    if scheme.endswith("+sentinel"):
        hosts, service, db = _sentinel_parts(settings.url)
        tls = scheme.startswith("rediss")
        # Any: keyword arguments for the connections, not for Sentinel's own parameters
        # (typed as object, mypy would match them against min_other_sentinels: int)
        data_node_options: dict[str, Any] = {**common, "db": db}
        if tls:
            data_node_options["ssl"] = True
            data_node_options["ssl_ca_certs"] = settings.ca_file
        sentinel = Sentinel(
            hosts,
            sentinel_kwargs={
                "username": username,
                "password": password,
                "socket_timeout": settings.socket_timeout,
            },
            **data_node_options,
        )
        return sentinel.master_for(service, redis_class=Redis)
    options: dict[str, object] = dict(common)
    if scheme == "rediss" and settings.ca_file:
        options["ssl_ca_certs"] = settings.ca_file
    return Redis.from_url(_without_credentials(settings.url), **options)  # type: ignore[arg-type]


async def primary_address(client: aioredis.Redis) -> str:
    """host:port of the primary ``client`` writes to, as its configuration names it.

    With ``redis+sentinel://`` this asks the Sentinels now (raises a Redis
    error when none answers) and the pool drops its idle connections to a
    previous primary; otherwise it is the URL's address.
    """
    pool = client.connection_pool
    if isinstance(pool, SentinelConnectionPool):
        # Also drops idle connections to a previous primary.
        host, port = await pool.get_master_address()
        return f"{host}:{port}"
    options = pool.connection_kwargs
    if options.get("path"):
        return f"unix:{options['path']}"
    return f"{options.get('host', 'localhost')}:{options.get('port', 6379)}"


def connect_node(settings: RedisSettings, address: str) -> aioredis.Redis:
    """A client of the one data node ``address`` (host:port) with ``settings``'
    credentials and TLS, e.g. a primary Sentinel has just replaced."""
    username, password = settings.credentials()
    host, _, port = address.rpartition(":")
    options: dict[str, object] = {
        "host": host,
        "port": int(port),
        "db": _database(settings.url),
        "username": username,
        "password": password,
        "socket_timeout": settings.socket_timeout,
        "socket_connect_timeout": settings.connect_timeout,
        "client_name": settings.client_name,
    }
    if urlsplit(settings.url).scheme.startswith("rediss"):
        options["ssl"] = True
        options["ssl_ca_certs"] = settings.ca_file
    return Redis(**options)  # type: ignore[arg-type]


def _database(url: str) -> int:
    if urlsplit(url).scheme.endswith("+sentinel"):
        return _sentinel_parts(url)[2]
    path = urlsplit(url).path.strip("/")
    return int(path) if path.isdigit() else 0


def follows_sentinel(client: aioredis.Redis) -> bool:
    """Whether ``client`` finds its primary through Sentinel."""
    return isinstance(client.connection_pool, SentinelConnectionPool)


async def topology_problem(client: aioredis.Redis) -> str | None:
    """Why kubecache cannot use this Redis, or None.

    A user without ``+info`` is refused (see :mod:`kubecache.cacher.lua_scripts`). A Redis
    Cluster node is refused: the contract's keys (health, pods,
    feed, event logs) live in different hash slots and every write is one
    multi-key script.
    """
    try:
        info = await client.info("cluster")
    except NoPermissionError:
        return (
            "the Redis user may not run INFO; kubecache reads INFO replication to know "
            "which primary it writes to: grant it (ACL SETUSER <user> +info)"
        )
    if str(info.get("cluster_enabled", "0")) == "1":
        return (
            "the Redis server is a Redis Cluster node; kubecache needs a single Redis "
            "or a primary with replicas behind Sentinel (redis+sentinel://), see "
            "docs/redis-topologies.md"
        )
    return None


def node_replid(info_reply: object) -> str | None:
    """The ``master_replid`` in a parsed ``INFO replication`` reply; None when the reply
    is an error (e.g. NOPERM: a user without ``+info``) or carries none."""
    if isinstance(info_reply, dict):
        replid = info_reply.get("master_replid")
        return str(replid) if replid else None
    return None


__all__ = [
    "DEFAULT_URL",
    "RedisConfigError",
    "RedisSettings",
    "connect",
    "connect_node",
    "follows_sentinel",
    "node_replid",
    "primary_address",
    "redacted",
    "topology_problem",
]
