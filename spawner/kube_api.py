"""The spawner's direct Kubernetes API calls: create and delete objects, read one pod.

One :class:`KubeApi` (one ``ApiClient`` and connection pool) per hub
process and API configuration, configured like KubeSpawner's
``load_config``: in-cluster service account first, else the kubeconfig
(``KUBECONFIG`` or ``~/.kube/config``), then ``k8s_api_host``,
``k8s_api_ssl_ca_cert`` and ``k8s_api_verify_ssl`` on top.

Every call follows KubeSpawner's semantics: each attempt may take
``request_timeout`` seconds; timeouts, connection errors, 429 and 5xx are
retried with exponential back-off and jitter until ``retry_timeout``
seconds have passed. Other API errors are not retried. Errors leave this
module only as :class:`KubeApiError`, translated once here.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import aiohttp
import orjson
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.rest import ApiException

from kubecache.backoff import Backoff, parse_retry_after
from kubecache.spawner.hub_log import Logger, hub_logger

T = TypeVar("T")

_RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})


class KubeApiError(Exception):
    """A Kubernetes API call failed; ``status`` is None when no answer came."""

    def __init__(self, message: str, *, status: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409


@dataclass(frozen=True)
class Timeouts:
    """KubeSpawner's k8s_api_request_timeout and k8s_api_request_retry_timeout."""

    request: float = 3.0
    retry: float = 30.0


def _api_message(e: ApiException) -> tuple[str, str]:
    """(message, reason) of a Status error body, else the HTTP reason."""
    try:
        body = orjson.loads(e.body) if e.body else {}
    except (orjson.JSONDecodeError, TypeError):
        body = {}
    if isinstance(body, dict):
        return str(body.get("message") or e.reason or ""), str(body.get("reason") or "")
    return str(e.reason or ""), ""


def _retry_after(e: ApiException) -> float | None:
    headers: Any = e.headers or {}
    return parse_retry_after(headers.get("Retry-After") if hasattr(headers, "get") else None)


async def _load_configuration(
    *, host: str, ssl_ca_cert: str, verify_ssl: bool | None
) -> client.Configuration:
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException:
        # KUBECONFIG as it is now (the library reads it once, at import)
        await config.load_kube_config(
            config_file=os.environ.get("KUBECONFIG") or None,
            client_configuration=configuration,
            persist_config=False,
        )
    if ssl_ca_cert:
        configuration.ssl_ca_cert = ssl_ca_cert
    if host:
        configuration.host = host
    if verify_ssl is not None:
        configuration.verify_ssl = verify_ssl
    # returned objects are read as data; a field the client does not know must not fail a call
    configuration.client_side_validation = False
    return configuration


def _json_object(data: bytes) -> dict[str, Any]:
    """A JSON object (ValueError when ``data`` is not one)."""
    body = orjson.loads(data)
    if not isinstance(body, dict):
        raise ValueError("not an object")
    return body


async def _body(response: Any) -> bytes:
    """The body of a raw (``_preload_content=False``) response; errors as ApiException."""
    async with response:
        data: bytes = await response.read()
        if not 200 <= response.status <= 299:
            error = ApiException(status=response.status, reason=response.reason)
            error.body = data
            error.headers = response.headers
            raise error
    return data


def _parsed(data: bytes, what: str, parse: Callable[[bytes], T]) -> T:
    """``parse(data)``; a body it refuses with ValueError as ApiException 500 (retried)."""
    try:
        return parse(data)
    except ValueError as e:  # orjson.JSONDecodeError is one
        raise ApiException(status=500, reason=f"malformed {what} from the API: {e}") from e


async def _json_body(response: Any, what: str) -> dict[str, Any]:
    """The JSON object of a raw (``_preload_content=False``) response; errors as ApiException."""
    return _parsed(await _body(response), what, _json_object)


class KubeApi:
    """Core/v1 calls the spawner makes; use :meth:`shared`."""

    _shared: ClassVar[dict[tuple[Any, ...], KubeApi]] = {}
    _lock: ClassVar[asyncio.Lock | None] = None
    #: requests sent, by verb (tests and metrics)
    requests: dict[str, int]

    def __init__(self, api_client: client.ApiClient, *, log: Logger | None = None) -> None:
        self.api_client = api_client
        #: the hub's logger (the ``log`` of the spawner that made this client)
        self.log = hub_logger(log, __name__)
        # typed as Any: bodies are API JSON dicts, which the client accepts as well as models
        self.core: Any = client.CoreV1Api(api_client)
        self.requests = {}
        #: set by close_all: whoever holds this client must get the loop's new one
        self.closed = False

    @classmethod
    async def shared(
        cls,
        *,
        host: str = "",
        ssl_ca_cert: str = "",
        verify_ssl: bool | None = None,
        log: Logger | None = None,
    ) -> KubeApi:
        """The client of this event loop for this API configuration (``log``: the hub's
        logger, used by the client made now)."""
        loop = asyncio.get_running_loop()
        key = (loop, host, ssl_ca_cert, verify_ssl, os.environ.get("KUBECONFIG", ""))
        api = cls._shared.get(key)
        if api is None:
            try:
                configuration = await _load_configuration(
                    host=host, ssl_ca_cert=ssl_ca_cert, verify_ssl=verify_ssl
                )
            except (config.ConfigException, OSError, ValueError) as e:
                raise KubeApiError(
                    "no Kubernetes API configuration: run the hub in a pod with a service "
                    f"account, or point KUBECONFIG at a kubeconfig ({e})"
                ) from e
            api = cls._shared.get(key)  # another spawner may have won the race
            if api is None:
                api = cls(client.ApiClient(configuration), log=log)
                cls._shared[key] = api
                api.log.info("kubecache: Kubernetes API at %s", configuration.host)
        return api

    @classmethod
    async def close_all(cls) -> None:
        loop = asyncio.get_running_loop()
        for key, api in list(cls._shared.items()):
            if key[0] is loop:
                cls._shared.pop(key, None)
                api.closed = True
                await api.api_client.close()

    # ---- the retry policy

    async def _call(
        self,
        what: str,
        verb: str,
        request: Callable[[], Awaitable[T]],
        timeouts: Timeouts,
        *,
        accept: frozenset[int] = frozenset(),
    ) -> T | KubeApiError:
        """Run ``request`` with KubeSpawner's timeout and retry semantics.

        Statuses in ``accept`` are returned as a :class:`KubeApiError`
        value instead of raised (e.g. 404 on delete, 409 on create).
        """
        deadline = time.monotonic() + timeouts.retry
        backoff = Backoff(initial=0.1, maximum=5.0)
        last = "no attempt made"
        while True:
            self.requests[verb] = self.requests.get(verb, 0) + 1
            pause: float | None = None
            try:
                # asyncio.timeout, not wait_for: wait_for can swallow a cancellation
                # that arrives as the response does (Python 3.11), losing a cancelled start
                async with asyncio.timeout(timeouts.request):
                    return await request()
            except ApiException as e:
                message, reason = _api_message(e)
                error = KubeApiError(f"{what}: {message}", status=e.status, reason=reason)
                if e.status in accept:
                    return error
                if e.status not in _RETRIED_STATUSES:
                    raise error from e
                last = f"HTTP {e.status} {message}"
                pause = _retry_after(e)
            except TimeoutError:
                last = f"no answer within {timeouts.request:.3g} s"
            except (aiohttp.ClientError, OSError) as e:
                last = f"{type(e).__name__}: {e}"
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise KubeApiError(
                    f"Could not {what} within {timeouts.retry:.3g} s "
                    f"(k8s_api_request_retry_timeout): {last}"
                )
            wait = min(remaining, backoff.next_delay(pause))
            self.log.info("kubecache: %s failed (%s); retrying in %.1f s", what, last, wait)
            await asyncio.sleep(wait)

    def _json(self, model: Any) -> dict[str, Any]:
        """The API JSON of a returned model (camelCase keys, like the raw object)."""
        value = self.api_client.sanitize_for_serialization(model)
        return value if isinstance(value, dict) else {}

    # ---- operations

    async def create_namespace(self, body: dict[str, Any], timeouts: Timeouts) -> bool:
        """Create a namespace; False when it exists already."""
        name = body["metadata"]["name"]
        result = await self._call(
            f"create namespace {name}",
            "create",
            lambda: self.core.create_namespace(body),
            timeouts,
            accept=frozenset({409}),
        )
        return not isinstance(result, KubeApiError)

    async def create_pod(
        self, namespace: str, body: dict[str, Any], timeouts: Timeouts
    ) -> dict[str, Any]:
        """Create a pod and return it as created (with its uid).

        Raises :class:`KubeApiError` with ``conflict`` when a pod of that
        name exists: the caller decides what to do with the leftover.
        """
        name = body["metadata"]["name"]
        result = await self._call(
            f"create pod {namespace}/{name}",
            "create",
            lambda: self.core.create_namespaced_pod(namespace, body),
            timeouts,
        )
        assert not isinstance(result, KubeApiError)
        return self._json(result)

    async def create_pvc(self, namespace: str, body: dict[str, Any], timeouts: Timeouts) -> bool:
        """Create a claim; False when it exists already (409, or 403 quota with the claim there)."""
        name = body["metadata"]["name"]
        result = await self._call(
            f"create PVC {namespace}/{name}",
            "create",
            lambda: self.core.create_namespaced_persistent_volume_claim(namespace, body),
            timeouts,
            accept=frozenset({403, 409}),
        )
        if not isinstance(result, KubeApiError):
            return True
        if result.status == 403 and not await self.pvc_exists(namespace, name, timeouts):
            # quota is checked before existence: only an absent claim makes 403 real
            raise result
        return False

    async def pvc_exists(self, namespace: str, name: str, timeouts: Timeouts) -> bool:
        result = await self._call(
            f"read PVC {namespace}/{name}",
            "get",
            lambda: self.core.read_namespaced_persistent_volume_claim(name, namespace),
            timeouts,
            accept=frozenset({404}),
        )
        return not isinstance(result, KubeApiError)

    async def replace_object(
        self, kind: str, namespace: str, body: dict[str, Any], timeouts: Timeouts
    ) -> None:
        """Delete any ``secret``/``service`` of that name, then create this one.

        KubeSpawner does the same: a leftover of an earlier pod is owned by
        that pod and would be garbage-collected under the new one.
        """
        name = body["metadata"]["name"]
        delete = getattr(self.core, f"delete_namespaced_{kind}")
        create = getattr(self.core, f"create_namespaced_{kind}")
        await self._call(
            f"delete {kind} {namespace}/{name}",
            "delete",
            lambda: delete(name, namespace),
            timeouts,
            accept=frozenset({404}),
        )
        await self._call(
            f"create {kind} {namespace}/{name}",
            "create",
            lambda: create(namespace, body),
            timeouts,
            accept=frozenset({409}),
        )

    async def delete_pod(
        self, namespace: str, name: str, *, grace_seconds: int, timeouts: Timeouts
    ) -> bool:
        """Delete a pod with that grace period; False when it did not exist."""
        body = client.V1DeleteOptions(grace_period_seconds=grace_seconds)

        async def request() -> dict[str, Any]:
            # the returned pod is not parsed into client models, whose validation refuses
            # e.g. a container status without imageID (the stop would fail on a deleted pod)
            return await _json_body(
                await self.core.delete_namespaced_pod(
                    name,
                    namespace,
                    body=body,
                    grace_period_seconds=grace_seconds,
                    _preload_content=False,
                ),
                "pod",
            )

        result = await self._call(
            f"delete pod {namespace}/{name}", "delete", request, timeouts, accept=frozenset({404})
        )
        return not isinstance(result, KubeApiError)

    async def delete_pvc(self, namespace: str, name: str, timeouts: Timeouts) -> bool:
        """Delete a claim; False when it did not exist."""
        result = await self._call(
            f"delete PVC {namespace}/{name}",
            "delete",
            lambda: self.core.delete_namespaced_persistent_volume_claim(name, namespace),
            timeouts,
            accept=frozenset({404}),
        )
        return not isinstance(result, KubeApiError)

    async def read_pod(
        self, namespace: str, name: str, timeouts: Timeouts
    ) -> dict[str, Any] | None:
        """The pod as the API has it now, or None when it does not exist.

        Parsed with orjson, not into client models, whose validation would
        refuse a pod with a field it deems required (e.g. a container
        status without imageID) and fail the read that decides a poll.
        """

        async def request() -> dict[str, Any]:
            return await _json_body(
                await self.core.read_namespaced_pod(name, namespace, _preload_content=False),
                "pod",
            )

        result = await self._call(
            f"read pod {namespace}/{name}", "get", request, timeouts, accept=frozenset({404})
        )
        if isinstance(result, KubeApiError):
            return None
        return result

    async def list_pods_page(
        self,
        namespace: str,
        *,
        label_selector: str,
        limit: int,
        continue_token: str | None,
        timeouts: Timeouts,
        parse: Callable[[bytes], T],
    ) -> T | KubeApiError:
        """One page of a pod LIST, its body (bytes) as ``parse`` returns it.

        The caller parses the body (orjson, not client models: a page of
        hundreds of pods would cost the hub's CPU seconds otherwise); a body
        ``parse`` refuses with ValueError is a malformed answer (HTTP 500,
        retried). An expired continue token is returned as a
        :class:`KubeApiError` with status 410 (the caller lists again from
        the start).
        """

        async def request() -> T:
            response = await self.core.list_namespaced_pod(
                namespace,
                label_selector=label_selector or None,
                limit=limit,
                _continue=continue_token or None,
                _preload_content=False,
            )
            return _parsed(await _body(response), "pod list", parse)

        return await self._call(
            f"list pods in {namespace}", "list", request, timeouts, accept=frozenset({410})
        )

    async def list_events_page(
        self,
        namespace: str,
        *,
        field_selector: str,
        limit: int,
        continue_token: str | None,
        timeouts: Timeouts,
    ) -> dict[str, Any]:
        """One page of an Event LIST as API JSON (parsed with orjson, not client models)."""

        async def request() -> dict[str, Any]:
            response = await self.core.list_namespaced_event(
                namespace,
                field_selector=field_selector or None,
                limit=limit,
                _continue=continue_token or None,
                _preload_content=False,
            )
            return await _json_body(response, "event list")

        result = await self._call(f"list events in {namespace}", "list", request, timeouts)
        assert not isinstance(result, KubeApiError)
        return result


__all__ = ["KubeApi", "KubeApiError", "Timeouts"]
