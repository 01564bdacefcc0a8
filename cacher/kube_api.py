"""The cacher's connection to the Kubernetes API.

Credentials come from a kubeconfig file or the pod's service account
(:mod:`kubecache.cacher.credentials`). Requests go through one aiohttp session and
return raw JSON: no kubernetes_asyncio model objects anywhere (importing
that client alone would cost ~70 MB of the cacher's memory, and the cacher
image does not install it). Every request has a timeout; watches have none
overall but a read timeout per chunk (see :mod:`kubecache.cacher.watcher`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson

from kubecache.backoff import parse_retry_after
from kubecache.cacher.credentials import (
    Authorizer,
    ClusterAccess,
    CredentialsError,
    load_incluster,
    load_kubeconfig,
)
from kubecache.cacher.settings import Settings


class ApiStatusError(Exception):
    """The API server answered with a non-2xx status (or the request failed).

    ``status`` is 0 for transport errors (connection refused, reset, timeout).
    """

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        *,
        retry_after: float | None = None,
    ) -> None:
        # status 0 is no HTTP answer at all: say so instead of printing a meaningless 0
        summary = f"{status} {reason}" if status else f"API server not reachable ({reason})"
        super().__init__(f"{summary}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after = retry_after


def status_error(status: int, body: bytes, headers: Mapping[str, str]) -> ApiStatusError:
    """An :class:`ApiStatusError` from a response's status, body and headers."""
    reason, message = "", body[:300].decode(errors="replace")
    try:
        parsed = orjson.loads(body)
        if isinstance(parsed, dict):
            reason = str(parsed.get("reason") or "")
            message = str(parsed.get("message") or message)
    except orjson.JSONDecodeError:
        pass
    return ApiStatusError(
        status,
        reason or _REASONS.get(status, "Error"),
        message,
        retry_after=parse_retry_after(headers.get("Retry-After")),
    )


_REASONS = {
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    410: "Expired",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
}


def load_access(settings: Settings) -> ClusterAccess:
    """Server and credentials from the kubeconfig or the service account."""
    if settings.in_cluster:
        return load_incluster()
    if not settings.kubeconfig:
        raise CredentialsError("no kubeconfig given and not in a cluster")
    return load_kubeconfig(settings.kubeconfig)


class KubeHttp:
    """Raw JSON access to the API server over one aiohttp session."""

    def __init__(self, access: ClusterAccess, *, request_timeout: float = 30.0) -> None:
        self.access = access
        self.authorizer = Authorizer(access)
        self.base = access.server.rstrip("/")
        self.request_timeout = request_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=32, ssl=self.access.ssl_context()),
                read_bufsize=2**21,  # one watch line may hold a 1.5 MiB object
                json_serialize=lambda o: orjson.dumps(o).decode(),
            )
        return self._session

    def _refused(self, status: int, sent: Mapping[str, str]) -> None:
        """Re-read the credentials before the next request when the server refused ours:
        401, or 403 for a request sent without any (an empty token file): with anonymous
        auth on (kube-apiserver's default) that is system:anonymous, forbidden, not 401."""
        if status == 401 or (status == 403 and "Authorization" not in sent):
            self.authorizer.invalidate()

    async def headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "kubecache-cacher"}
        authorization = await self.authorizer.header()
        if authorization:
            headers["Authorization"] = authorization
        return headers

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """One request; the parsed JSON body, or :class:`ApiStatusError`."""
        headers = await self.headers()
        data = None
        if body is not None:
            data = orjson.dumps(body)
            headers["Content-Type"] = "application/json"
        try:
            async with self.session.request(
                method,
                self.base + path,
                params=params,
                data=data,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout or self.request_timeout),
            ) as response:
                raw = await response.read()
                if response.status >= 300:
                    self._refused(response.status, headers)
                    raise status_error(response.status, raw, response.headers)
        except (aiohttp.ClientError, TimeoutError) as e:
            raise ApiStatusError(0, type(e).__name__, str(e) or "request failed") from e
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise ApiStatusError(0, "BadResponse", f"{method} {path}: not JSON: {e}") from e
        if not isinstance(parsed, dict):
            raise ApiStatusError(0, "BadResponse", f"{method} {path}: not a JSON object")
        return parsed

    @asynccontextmanager
    async def stream(
        self, path: str, *, params: Mapping[str, str], connect_timeout: float | None = None
    ) -> AsyncIterator[aiohttp.StreamReader]:
        """Open a watch; yields the body reader once the server said 200."""
        headers = await self.headers()
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout or self.request_timeout
        )
        try:
            response = await self.session.get(
                self.base + path, params=params, headers=headers, timeout=timeout
            )
        except (aiohttp.ClientError, TimeoutError) as e:
            raise ApiStatusError(0, type(e).__name__, str(e) or "connect failed") from e
        try:
            if response.status != 200:
                self._refused(response.status, headers)
                try:
                    raw = await response.read()
                except (aiohttp.ClientError, TimeoutError):
                    raw = b""
                raise status_error(response.status, raw, response.headers)
            yield response.content
        finally:
            response.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


async def connect_kube(settings: Settings) -> KubeHttp:
    return KubeHttp(load_access(settings), request_timeout=settings.request_timeout)


__all__ = [
    "ApiStatusError",
    "KubeHttp",
    "connect_kube",
    "load_access",
    "status_error",
]
