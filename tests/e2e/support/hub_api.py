"""A JupyterHub REST API client with a service token, and the progress event stream (SSE)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson


class HubApiError(AssertionError):
    """The hub answered a request with an unexpected status."""


class HubApi:
    """Talks to a hub through its public URL (the proxy), as a client would."""

    def __init__(self, public_url: str, token: str) -> None:
        self.public_url = public_url.rstrip("/")
        self.api_url = self.public_url + "/hub/api"
        self.token = token
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers={"Authorization": f"token {self.token}"},
                timeout=aiohttp.ClientTimeout(total=30),
                # configurable-http-proxy closes a connection idle for 5 s (its
                # keepAliveTimeout); a request sent on one as it closes fails with no
                # answer (aiohttp#9138), so the client lets idle ones go first. Seen in
                # CI: a failover test's checks came ~5 s after the last ones (a standby's
                # preload) and one got status 0 through a healthy proxy.
                connector=aiohttp.TCPConnector(keepalive_timeout=2),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self, method: str, path: str, body: Any = None, *, expect: tuple[int, ...] = (200,)
    ) -> Any:
        data = None if body is None else orjson.dumps(body)
        async with self.session.request(method, self.api_url + path, data=data) as response:
            raw = await response.read()
            if response.status not in expect:
                raise HubApiError(
                    f"{method} {path} answered {response.status} (expected {expect}): "
                    f"{raw[:500].decode(errors='replace')}"
                )
            return orjson.loads(raw) if raw else None

    async def answers(self) -> bool:
        """Whether the hub's API answers through the proxy."""
        try:
            async with self.session.get(
                self.api_url + "/", timeout=aiohttp.ClientTimeout(total=2)
            ) as response:
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def create_user(self, name: str) -> None:
        await self.request("POST", f"/users/{name}", expect=(201, 409))

    async def user(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", f"/users/{name}")
        return result

    async def server(self, name: str, server_name: str = "") -> dict[str, Any] | None:
        """The user's server model, None when the hub has no such server."""
        servers: dict[str, Any] = (await self.user(name)).get("servers") or {}
        return servers.get(server_name)

    def server_path(self, name: str, server_name: str = "") -> str:
        """The API path of a user's default server, or of a named one."""
        return f"/users/{name}/servers/{server_name}" if server_name else f"/users/{name}/server"

    async def start_server(
        self, name: str, options: dict[str, Any] | None = None, server_name: str = ""
    ) -> int:
        """Request a spawn; 202 while pending (the usual case with slow_spawn_timeout 0)."""
        async with self.session.post(
            self.api_url + self.server_path(name, server_name), data=orjson.dumps(options or {})
        ) as response:
            if response.status not in (201, 202):
                raise HubApiError(
                    f"spawning {name}'s server answered {response.status}: {await response.text()}"
                )
            return response.status

    async def stop_server(self, name: str, server_name: str = "") -> int:
        async with self.session.delete(
            self.api_url + self.server_path(name, server_name)
        ) as response:
            if response.status not in (202, 204):
                raise HubApiError(
                    f"stopping {name}'s server answered {response.status}: {await response.text()}"
                )
            return response.status

    async def delete_user(self, name: str) -> None:
        """Delete a user (JupyterHub calls each spawner's delete_forever, e.g. removing PVCs)."""
        await self.request("DELETE", f"/users/{name}", expect=(204,))

    async def server_ready(self, name: str, server_name: str = "") -> bool:
        server = await self.server(name, server_name)
        return bool(server and server.get("ready"))

    async def spawned(self, name: str, server_name: str = "") -> bool:
        """Whether a requested spawn is ready; raises when it failed (the server went away)."""
        server = await self.server(name, server_name)
        if server is None:
            raise HubApiError(f"{name}'s spawn failed: the hub no longer lists the server")
        return bool(server.get("ready"))

    async def server_gone(self, name: str, server_name: str = "") -> bool:
        return await self.server(name, server_name) is None

    async def progress(self, name: str, *, timeout: float = 120) -> AsyncIterator[dict[str, Any]]:
        """The events of ``/hub/api/users/{name}/server/progress`` until the stream ends."""
        async with self.session.get(
            f"{self.api_url}/users/{name}/server/progress",
            headers={"Accept": "text/event-stream"},
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            if response.status != 200:
                raise HubApiError(f"progress of {name} answered {response.status}")
            async for line in response.content:
                if line.startswith(b"data:"):
                    yield orjson.loads(line[5:])

    async def new_token(self, name: str, scopes: list[str]) -> str:
        """A new API token of user ``name`` limited to ``scopes`` (the service needs ``tokens``)."""
        model = await self.request(
            "POST", f"/users/{name}/tokens", {"scopes": scopes, "note": "e2e"}, expect=(201, 200)
        )
        return str(model["token"])

    async def as_user(
        self, token: str, method: str, path: str, body: Any = None
    ) -> tuple[int, Any]:
        """A request to a public path (e.g. a user's server) with ``token``, not the service's.

        Returns (status, decoded JSON body or the text when it is not JSON); status 0 when the
        connection failed.
        """
        data = None if body is None else orjson.dumps(body)
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
                session.request(
                    method,
                    self.public_url + path,
                    data=data,
                    headers={"Authorization": f"token {token}"},
                    allow_redirects=False,
                ) as response,
            ):
                raw = await response.read()
        except aiohttp.ClientError as e:
            return 0, repr(e)
        try:
            return response.status, orjson.loads(raw)
        except orjson.JSONDecodeError:
            return response.status, raw.decode(errors="replace")

    async def get_through_proxy(self, path: str) -> tuple[int, str]:
        """GET a path of the public URL (e.g. /user/alice/api/status) with the token."""
        try:
            async with self.session.get(self.public_url + path, allow_redirects=False) as response:
                return response.status, await response.text()
        except aiohttp.ClientError as e:
            return 0, repr(e)
