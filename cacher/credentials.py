"""Where the API server is and how to authenticate: kubeconfig or service account.

A small loader instead of kubernetes_asyncio's: importing that client costs
the process about 70 MB (every model class), half the cacher's memory budget.
Supported: the current (or a named) context; server, certificate-authority
(-data), insecure-skip-tls-verify, tls-server-name (the name sent as SNI and
verified in the server's certificate instead of the URL's host); user token, tokenFile,
client-certificate(-data)/client-key(-data), username/password, and ``exec``
credential plugins (client.authentication.k8s.io ExecCredential). A
``KUBECONFIG``-style list of files (``a:b``) is merged as kubectl merges it:
missing files are skipped, the first file to name a cluster, user or context
wins, the first ``current-context`` wins, and relative paths are relative to
the file that holds them. In-cluster:
``KUBERNETES_SERVICE_HOST``/``PORT`` and the mounted service account, whose
token is re-read every minute (bound tokens rotate).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import ssl
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import yaml

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
_TOKEN_FILE_REFRESH = 60.0


class CredentialsError(ValueError):
    """The kubeconfig or service account cannot be used; the message says why."""


@dataclass(frozen=True)
class ClusterAccess:
    server: str
    ca_file: str | None = None
    insecure: bool = False
    tls_server_name: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    token: str | None = field(default=None, repr=False)
    token_file: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    exec_config: dict[str, Any] | None = None
    namespace: str = "default"

    def ssl_context(self) -> ssl.SSLContext | bool:
        if not self.server.startswith("https"):
            return False
        if self.tls_server_name:
            context: ssl.SSLContext = _ServerNameContext(self.tls_server_name)
            if self.ca_file:
                context.load_verify_locations(cafile=self.ca_file)
            else:
                context.load_default_certs()
        else:
            context = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file:
            context.load_cert_chain(self.cert_file, keyfile=self.key_file)
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


class _ServerNameContext(ssl.SSLContext):
    """Client TLS that sends and verifies a fixed server name (kubeconfig
    ``tls-server-name``) whatever host the URL connects to, like client-go."""

    server_name: str

    def __new__(cls, server_name: str) -> _ServerNameContext:
        context = super().__new__(cls, ssl.PROTOCOL_TLS_CLIENT)
        context.server_name = server_name
        return context

    def wrap_bio(
        self, incoming: Any, outgoing: Any, server_side: bool = False, *args: Any, **kwargs: Any
    ) -> ssl.SSLObject:
        kwargs["server_hostname"] = self.server_name
        return super().wrap_bio(incoming, outgoing, server_side, **kwargs)

    def wrap_socket(self, sock: Any, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        kwargs["server_hostname"] = self.server_name
        return super().wrap_socket(sock, **kwargs)


def _data_file(data: str, suffix: str) -> str:
    """Write base64 ``data`` to a private temporary file (ssl wants paths)."""
    handle, path = tempfile.mkstemp(prefix="kubecache-", suffix=suffix)
    with os.fdopen(handle, "wb") as out:
        out.write(base64.b64decode(data))
    return path


def _relative(base: Path, value: str | None) -> str | None:
    if not value:
        return None
    candidate = Path(value).expanduser()
    return str(candidate if candidate.is_absolute() else base / candidate)


@dataclass(frozen=True)
class _Merged:
    """Clusters, users and contexts of one or more kubeconfig files, kubectl-merged.

    Each entry keeps the directory of the file it came from (its relative
    paths are relative to that file).
    """

    path: str
    current_context: str | None
    entries: dict[str, dict[str, tuple[dict[str, Any], Path]]]


def _read_merged(path: str) -> _Merged:
    files = [p for p in path.split(os.pathsep) if p]
    existing = [p for p in files if Path(p).expanduser().is_file()]
    if not existing:
        raise CredentialsError(
            f"no kubeconfig file found at {path!r}; give --kubeconfig or set KUBECONFIG"
        )
    current: str | None = None
    entries: dict[str, dict[str, tuple[dict[str, Any], Path]]] = {
        "cluster": {},
        "user": {},
        "context": {},
    }
    for name in existing:
        file = Path(name).expanduser()
        try:
            config = yaml.safe_load(file.read_text())
        except (OSError, UnicodeDecodeError) as e:
            raise CredentialsError(f"cannot read kubeconfig {name}: {e}") from e
        except yaml.YAMLError as e:
            where = getattr(e, "problem_mark", None)
            line = f" (line {where.line + 1})" if where is not None else ""
            raise CredentialsError(
                f"kubeconfig {name} is not valid YAML{line}: "
                f"{getattr(e, 'problem', None) or type(e).__name__}"
            ) from e
        if config is None:
            continue  # an empty file adds nothing, as with kubectl
        if not isinstance(config, dict):
            raise CredentialsError(f"kubeconfig {name} is not a YAML mapping")
        if not current and config.get("current-context"):
            current = str(config["current-context"])
        base = file.resolve().parent
        for what in ("cluster", "user", "context"):
            items = config.get(what + "s") or []
            if not isinstance(items, list):
                raise CredentialsError(f"kubeconfig {name}: {what}s must be a list")
            for item in items:
                if isinstance(item, dict) and isinstance(item.get("name"), str):
                    value = item.get(what)
                    entries[what].setdefault(
                        item["name"], (value if isinstance(value, dict) else {}, base)
                    )
    return _Merged(path, current, entries)


def _entry(merged: _Merged, what: str, name: str) -> tuple[dict[str, Any], Path]:
    try:
        return merged.entries[what][name]
    except KeyError:
        raise CredentialsError(f"kubeconfig {merged.path}: no {what} named {name!r}") from None


def kubeconfig_problem(path: str, *, context: str | None = None) -> str | None:
    """Why the kubeconfig (or KUBECONFIG list) cannot be used, or None (no files written)."""
    try:
        _resolve(path, context)
    except CredentialsError as e:
        return str(e)
    return None


def _resolve(
    path: str, context: str | None
) -> tuple[dict[str, Any], dict[str, Any], Path, dict[str, Any], Path, str]:
    merged = _read_merged(path)
    context_name = context or merged.current_context
    if not context_name:
        raise CredentialsError(
            f"kubeconfig {path} has no current-context; set one with "
            "`kubectl config use-context NAME`"
        )
    ctx, _ = _entry(merged, "context", context_name)
    cluster, cluster_base = _entry(merged, "cluster", str(ctx.get("cluster")))
    user, user_base = (
        _entry(merged, "user", str(ctx.get("user"))) if ctx.get("user") else ({}, cluster_base)
    )
    server = cluster.get("server")
    if not isinstance(server, str) or not server:
        raise CredentialsError(f"kubeconfig {path}: cluster {ctx.get('cluster')!r} has no server")
    if user.get("auth-provider"):
        raise CredentialsError(
            f"kubeconfig {path}: auth-provider plugins are not supported; use an exec plugin"
        )
    return ctx, cluster, cluster_base, user, user_base, server


def load_kubeconfig(path: str, *, context: str | None = None) -> ClusterAccess:
    """Access for ``context`` (default: current-context) of a kubeconfig or a KUBECONFIG list."""
    ctx, cluster, cluster_base, user, user_base, server = _resolve(path, context)
    ca_file = _relative(cluster_base, cluster.get("certificate-authority"))
    if cluster.get("certificate-authority-data"):
        ca_file = _data_file(cluster["certificate-authority-data"], ".crt")
    cert_file = _relative(user_base, user.get("client-certificate"))
    if user.get("client-certificate-data"):
        cert_file = _data_file(user["client-certificate-data"], ".crt")
    key_file = _relative(user_base, user.get("client-key"))
    if user.get("client-key-data"):
        key_file = _data_file(user["client-key-data"], ".key")
    return ClusterAccess(
        server=server.rstrip("/"),
        ca_file=ca_file,
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        tls_server_name=cluster.get("tls-server-name") or None,
        cert_file=cert_file,
        key_file=key_file,
        token=user.get("token"),
        token_file=_relative(user_base, user.get("tokenFile")),
        username=user.get("username"),
        password=user.get("password"),
        exec_config=user.get("exec") if isinstance(user.get("exec"), dict) else None,
        namespace=str(ctx.get("namespace") or "default"),
    )


def load_incluster(env: dict[str, str] | None = None) -> ClusterAccess:
    env = dict(os.environ) if env is None else env
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        raise CredentialsError("KUBERNETES_SERVICE_HOST is not set: not running in a pod?")
    if ":" in host:  # IPv6
        host = f"[{host}]"
    namespace = "default"
    with contextlib.suppress(OSError):
        namespace = (SERVICE_ACCOUNT / "namespace").read_text().strip() or namespace
    return ClusterAccess(
        server=f"https://{host}:{port}",
        ca_file=str(SERVICE_ACCOUNT / "ca.crt"),
        token_file=str(SERVICE_ACCOUNT / "token"),
        namespace=namespace,
    )


class Authorizer:
    """The Authorization header for :class:`ClusterAccess`, refreshed as needed."""

    def __init__(self, access: ClusterAccess) -> None:
        self.access = access
        self._token: str | None = access.token
        self._expires = float("inf") if access.token else 0.0
        self._lock = asyncio.Lock()

    async def header(self) -> str | None:
        access = self.access
        if access.token_file or access.exec_config:
            if time.monotonic() >= self._expires:
                async with self._lock:
                    if time.monotonic() >= self._expires:
                        await self._refresh()
            return f"Bearer {self._token}" if self._token else None
        if self._token:
            return f"Bearer {self._token}"
        if access.username is not None:
            raw = f"{access.username}:{access.password or ''}".encode()
            return "Basic " + base64.b64encode(raw).decode()
        return None

    def invalidate(self) -> None:
        """Forget a token the server refused (401): the next request refreshes."""
        if self.access.token_file or self.access.exec_config:
            self._expires = 0.0

    async def _refresh(self) -> None:
        if self.access.token_file:
            try:
                text = await asyncio.to_thread(Path(self.access.token_file).read_text)
                self._token = text.strip()
            except OSError as e:
                raise CredentialsError(f"cannot read token file: {e}") from e
            self._expires = time.monotonic() + _TOKEN_FILE_REFRESH
            return
        assert self.access.exec_config is not None
        self._token, self._expires = await run_exec_plugin(self.access.exec_config)


async def run_exec_plugin(config: dict[str, Any]) -> tuple[str, float]:
    """Run a client-go credential plugin; (token, monotonic expiry)."""
    command = config.get("command")
    if not command:
        raise CredentialsError("kubeconfig exec plugin without a command")
    env = dict(os.environ)
    for item in config.get("env") or []:
        env[str(item.get("name"))] = str(item.get("value"))
    api_version = config.get("apiVersion", "client.authentication.k8s.io/v1")
    env["KUBERNETES_EXEC_INFO"] = orjson.dumps(
        {"apiVersion": api_version, "kind": "ExecCredential", "spec": {"interactive": False}}
    ).decode()
    process = await asyncio.create_subprocess_exec(
        str(command),
        *[str(a) for a in config.get("args") or []],
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    if process.returncode != 0:
        raise CredentialsError(
            f"exec plugin {command} failed ({process.returncode}): {err.decode()[:300]}"
        )
    try:
        status = orjson.loads(out).get("status") or {}
    except (orjson.JSONDecodeError, AttributeError) as e:
        raise CredentialsError(f"exec plugin {command} did not print an ExecCredential") from e
    token = status.get("token")
    if not token:
        raise CredentialsError(f"exec plugin {command} gave no token (client certs unsupported)")
    expires = float("inf")
    if status.get("expirationTimestamp"):
        when = datetime.fromisoformat(str(status["expirationTimestamp"]).replace("Z", "+00:00"))
        expires = time.monotonic() + max(0.0, when.timestamp() - time.time() - 30)
    return str(token), expires


__all__ = [
    "Authorizer",
    "ClusterAccess",
    "CredentialsError",
    "kubeconfig_problem",
    "load_incluster",
    "load_kubeconfig",
    "run_exec_plugin",
]
