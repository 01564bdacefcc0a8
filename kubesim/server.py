"""The kubesim HTTP API server: routing, verbs, Status errors, discovery and admin endpoints.

Paths follow the Kubernetes REST layout (``/api/v1/namespaces/{ns}/pods/{name}/status``,
``/apis/coordination.k8s.io/v1/...``); the store applies the write semantics and the watch
hub streams changes. Admin endpoints (``/kubesim/stats``, ``/kubesim/faults``) and the health
and version endpoints need no token; everything under ``/api`` and ``/apis`` does.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from aiohttp import web

from kubesim import discovery, errors, tables
from kubesim.auth import ANONYMOUS, ANONYMOUS_USER, Authenticator
from kubesim.exec_stream import exec_request, serve_exec
from kubesim.faults import Faults
from kubesim.kubelet_runtime import ExecRefused, ExecRequest, ExecRunner
from kubesim.listing import decode_continue, encode_continue, list_body
from kubesim.patch import apply_patch
from kubesim.resources import RESOURCES, ResourceInfo
from kubesim.selectors import FieldSelector, LabelSelector
from kubesim.stats import Stats
from kubesim.store import ObjectStore
from kubesim.unknown_fields import StrictDecodingError, check_fields, field_validation
from kubesim.watch import ETCD_PROGRESS_NOTIFY_INTERVAL, WatchHub

__all__ = ["KubeSimServer", "Kubelet"]

log = logging.getLogger(__name__)

JSON = "application/json"


class Kubelet(Protocol):
    """What the server needs of a simulated kubelet (see kubesim.kubelet_fake/process)."""

    def attach(self, store: ObjectStore, auth: Authenticator | None = None) -> None: ...
    async def start(self) -> None: ...
    async def close(self) -> None: ...
    def read_log(self, namespace: str, name: str, container: str | None) -> bytes | None: ...
    def prepare_exec(self, namespace: str, name: str, request: ExecRequest) -> ExecRunner: ...


@dataclass(frozen=True)
class Target:
    """What a resource path names."""

    info: ResourceInfo
    namespace: str | None
    name: str | None
    subresource: str | None
    watch_path: bool  # the legacy /watch/ prefix


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type=JSON, headers=headers)


def _with_warnings(response: web.Response, warnings: list[str]) -> web.Response:
    """One ``Warning: 299 - "<text>"`` header per warning, as apiserver's warning recorder."""
    for text in warnings:
        response.headers.add("Warning", f"299 - {_go_quote(text)}")
    return response


def _go_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _checked_fields(
    resource: str, body: dict[str, Any], query: dict[str, str], options_kind: str, *, patch: bool
) -> list[str]:
    """Apply the request's fieldValidation to ``body`` (unknown fields are dropped); the
    warnings to send. Strict: 400 ``... strict decoding error: unknown field "spec.foo"``."""
    directive = field_validation(query.get("fieldValidation"), options_kind=options_kind)
    try:
        return check_fields(resource, body, directive)
    except StrictDecodingError as err:
        if patch:
            raise errors.bad_request(str(err)) from None
        info = RESOURCES[resource]
        raise errors.bad_request(
            f'{info.kind} in version "{info.version}" cannot be handled as a {info.kind}: {err}'
        ) from None


def error_response(err: errors.ApiError) -> web.Response:
    headers = {"Retry-After": str(err.retry_after)} if err.retry_after is not None else None
    return json_response(err.status(), err.code, headers)


def _not_found_path(path: str) -> errors.ApiError:
    return errors.ApiError(
        404,
        "NotFound",
        "the server could not find the requested resource",
        details={
            "causes": [
                {"reason": "UnexpectedServerResponse", "message": f"404 page not found: {path}"}
            ]
        },
    )


def _anonymous_path_forbidden(method: str, path: str) -> errors.ApiError:
    """RBAC's 403 for system:anonymous on a path that names no resource (discovery)."""
    verb = {"GET": "get", "POST": "post", "PUT": "put", "DELETE": "delete"}.get(
        method, method.lower()
    )
    return errors.ApiError(
        403,
        "Forbidden",
        f'forbidden: User "{ANONYMOUS_USER}" cannot {verb} path "{path}"',
        details={},
    )


def parse_target(group: str, version: str, segments: list[str], path: str) -> Target:
    """Resolve ``[watch/][namespaces/{ns}/]{resource}[/{name}[/{sub}]]`` within a group."""
    watch_path = bool(segments) and segments[0] == "watch"
    if watch_path:
        segments = segments[1:]
    namespace: str | None = None
    if (
        len(segments) >= 3
        and segments[0] == "namespaces"
        and segments[2] in RESOURCES
        and RESOURCES[segments[2]].namespaced
    ):
        namespace = segments[1]
        segments = segments[2:]
    if not segments or len(segments) > 3:
        raise _not_found_path(path)
    info = RESOURCES.get(segments[0])
    if info is None or info.group != group or info.version != version:
        raise _not_found_path(path)
    name = segments[1] if len(segments) > 1 else None
    sub = segments[2] if len(segments) > 2 else None
    if not info.namespaced and namespace is not None:
        raise _not_found_path(path)
    if info.namespaced and name is not None and namespace is None:
        raise _not_found_path(path)
    if sub is not None and not (
        (sub == "status" and info.has_status) or (sub in ("log", "exec") and info.plural == "pods")
    ):
        raise _not_found_path(path)
    return Target(info, namespace, name, sub, watch_path)


def _verb(method: str, target: Target, query: dict[str, str]) -> str:
    if target.subresource == "exec":
        # RBAC asks for "create" on pods/exec, for the WebSocket GET as for the SPDY POST.
        return "exec" if method in ("GET", "POST") else method.lower()
    if method == "GET":
        if target.name is None:
            watching = target.watch_path or query.get("watch", "").lower() in ("true", "1")
            return "watch" if watching else "list"
        return "get"
    if target.name is None:
        return {"POST": "create", "DELETE": "deletecollection"}.get(method, method.lower())
    return {"PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method, method.lower())


async def _json_body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise errors.bad_request(f"the request body is not valid JSON: {err}") from err


def _int_param(value: Any, name: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError) as err:
        raise errors.bad_request(f"invalid {name}: {value!r}") from err


class KubeSimServer:
    """The aiohttp application around one store, one watch hub and an optional kubelet."""

    def __init__(
        self,
        store: ObjectStore | None = None,
        *,
        auth: Authenticator,
        kubelet: Kubelet | None = None,
        bookmark_interval: float = 60.0,
        event_bookmark_interval: float | None = None,
        max_watch_queue: int = 10_000,
        consistent_list_from_cache: bool = True,
        progress_notify_interval: float | None = ETCD_PROGRESS_NOTIFY_INTERVAL,
        unconditional_bookmarks: bool = False,
    ) -> None:
        self.store = store or ObjectStore()
        self.auth = auth
        self.kubelet = kubelet
        self.stats = Stats()
        self.faults = Faults()
        self.hub = WatchHub(
            self.store,
            self.stats,
            self.faults,
            bookmark_interval=bookmark_interval,
            event_bookmark_interval=event_bookmark_interval,
            max_queue=max_watch_queue,
            consistent_list_from_cache=consistent_list_from_cache,
            progress_notify_interval=progress_notify_interval,
            unconditional_bookmarks=unconditional_bookmarks,
        )
        if kubelet is not None:
            kubelet.attach(self.store, self.auth)
            self.store.graceful_pods = True
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_get("/version", self._version)
        self.app.router.add_get("/version/", self._version)
        for probe in ("/healthz", "/livez", "/readyz"):
            self.app.router.add_get(probe, self._ok)
        self.app.router.add_get("/kubesim/stats", self._stats)
        self.app.router.add_post("/kubesim/faults", self._faults)
        self.app.router.add_route("*", "/api", self._dispatch)
        self.app.router.add_route("*", "/api/{tail:.*}", self._dispatch)
        self.app.router.add_route("*", "/apis", self._dispatch)
        self.app.router.add_route("*", "/apis/{tail:.*}", self._dispatch)
        self.app.on_startup.append(self._on_startup)
        self.app.on_shutdown.append(self._on_shutdown)

    async def _on_startup(self, app: web.Application) -> None:
        if self.kubelet is not None:
            await self.kubelet.start()

    async def _on_shutdown(self, app: web.Application) -> None:
        self.hub.drop_all()
        if self.kubelet is not None:
            await self.kubelet.close()

    # --- non-resource endpoints ------------------------------------------------------------

    async def _version(self, request: web.Request) -> web.Response:
        return json_response(discovery.version_info())

    async def _ok(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _stats(self, request: web.Request) -> web.Response:
        body = self.stats.snapshot()
        body["open_watches"] = self.hub.open_watches
        body["resource_version"] = self.store.resource_version
        return json_response(body)

    async def _faults(self, request: web.Request) -> web.Response:
        try:
            action = await _json_body(request)
            if not isinstance(action, dict):
                raise errors.bad_request('the fault body must be a JSON object {"action": ...}')
            kind = action.get("action")
            result: dict[str, Any] = {"action": kind}
            if kind == "drop_watches":
                result["dropped"] = self.hub.drop_all()
            elif kind == "compact":
                self.store.compact()
                result["resource_version"] = self.store.resource_version
            elif kind == "inject_watch_line":
                line = action.get("line")
                resource = action.get("resource")
                if not isinstance(line, dict) or resource not in RESOURCES:
                    raise errors.bad_request(
                        'inject_watch_line needs "resource" (e.g. "events") and "line" '
                        '(a JSON object such as {"type": "ADDED", "object": {...}})'
                    )
                result["sent"] = self.hub.inject(str(resource), orjson.dumps(line) + b"\n")
            else:
                self.faults.configure(action)
                if kind == "stall_watches":
                    self.hub.stall()
                elif kind == "clear":
                    self.hub.unstall()
            log.info("fault injected: %s", action)
            return json_response(result)
        except errors.ApiError as err:
            return error_response(err)

    # --- resource requests -----------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._handle(request)
        except errors.ApiError as err:
            self.stats.error(err.code)
            return error_response(err)

    def _discovery(self, segments: list[str], request: web.Request) -> web.Response | None:
        if segments == ["api"]:
            host = request.host
            return json_response(discovery.api_versions(host))
        if segments == ["api", "v1"]:
            return json_response(discovery.api_resource_list("", "v1"))
        if segments == ["apis"]:
            return json_response(discovery.api_group_list())
        if len(segments) == 2 and segments[0] == "apis":
            group = discovery.api_group(segments[1])
            return json_response(group) if group else None
        if len(segments) == 3 and segments[0] == "apis":
            found = discovery.api_resource_list(segments[1], segments[2])
            return json_response(found) if found else None
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        token = self.auth.authenticate(request.headers)
        path = request.path
        segments = [s for s in path.split("/") if s]
        if request.method == "GET":
            found = self._discovery(segments, request)
            if found is not None:
                if token == ANONYMOUS:
                    raise _anonymous_path_forbidden(request.method, path)
                return found
        try:
            if segments[0] == "api" and segments[1:2] == ["v1"]:
                target = parse_target("", "v1", segments[2:], path)
            elif segments[0] == "apis" and len(segments) >= 4:
                target = parse_target(segments[1], segments[2], segments[3:], path)
            else:
                raise _not_found_path(path)
        except errors.ApiError:
            if token == ANONYMOUS:  # authorization comes before routing
                raise _anonymous_path_forbidden(request.method, path) from None
            raise
        query = dict(request.query)
        verb = _verb(request.method, target, query)
        info = target.info
        resource = (
            info.plural if target.subresource is None else (f"{info.plural}/{target.subresource}")
        )
        self.stats.request(verb, resource, self.auth.user(token))
        if verb == "exec":
            self.auth.authorize(token, "create", resource, target.namespace, group=info.group)
        else:
            self.auth.authorize(token, verb, info.plural, target.namespace, group=info.group)
        if self.faults.latency_ms:
            await asyncio.sleep(self.faults.latency_ms / 1000)
        failure = self.faults.failure(verb, info.plural)
        if failure is not None:
            raise failure
        handler = {
            "list": self._list,
            "watch": self._watch,
            "get": self._get,
            "create": self._create,
            "update": self._update,
            "patch": self._patch,
            "delete": self._delete,
            "deletecollection": self._delete_collection,
            "exec": self._exec,
        }.get(verb)
        if handler is None:
            raise errors.method_not_allowed(info.plural, verb, group=info.group)
        return await handler(request, target, query)

    async def _watch(
        self, request: web.Request, target: Target, query: dict[str, str]
    ) -> web.StreamResponse:
        as_table = target.info.plural == "pods" and tables.wants_table(
            request.headers.get("Accept", "")
        )
        return await self.hub.serve(
            request, target.info.plural, target.namespace, query, as_table=as_table
        )

    async def _list(
        self, request: web.Request, target: Target, query: dict[str, str]
    ) -> web.Response:
        info = target.info
        label = LabelSelector.parse(query.get("labelSelector"))
        field = FieldSelector.parse(query.get("fieldSelector"), resource=info.plural)
        limit = _int_param(query.get("limit"), "limit") or 0
        token = query.get("continue", "")
        rv_text = query.get("resourceVersion", "")
        rv = errors.parse_resource_version(rv_text, watch=False)
        start: tuple[str, str] | None = None
        if token:
            if rv_text:
                raise errors.bad_request(
                    "specifying resource version is not allowed when using continue"
                )
            snapshot_rv, start = decode_continue(token)
            try:
                items = self.store.snapshot(info.plural, target.namespace, snapshot_rv)
            except errors.ApiError as err:
                # As the real server: the Status carries a token that continues, inconsistently,
                # from the same key at the current revision.
                status = err.status()
                fresh = encode_continue(self.store.resource_version, start)
                status["metadata"] = {"continue": fresh}
                self.stats.error(err.code)
                return json_response(status, err.code)
        elif rv_text and query.get("resourceVersionMatch") == "Exact":
            snapshot_rv = rv
            items = self.store.snapshot(info.plural, target.namespace, snapshot_rv)
        else:
            snapshot_rv = self.store.resource_version
            items = self.store.items(info.plural, target.namespace)
            if not rv_text:
                self.hub.consistent_read(info.plural)
        body = list_body(
            info,
            items,
            snapshot_rv=snapshot_rv,
            label=label,
            field=field,
            limit=limit,
            after=start,
        )
        if info.plural == "pods" and tables.wants_table(request.headers.get("Accept", "")):
            listed = orjson.loads(body)
            body = orjson.dumps(
                tables.pod_table(listed["items"], list_metadata=listed.get("metadata") or {})
            )
        self.stats.bytes_sent += len(body)
        return web.Response(body=body, content_type=JSON)

    async def _get(
        self, request: web.Request, target: Target, query: dict[str, str]
    ) -> web.StreamResponse:
        info = target.info
        assert target.name is not None
        obj = self.store.get(info.plural, target.namespace, target.name)
        if obj is None:
            raise errors.not_found(info.plural, target.name, group=info.group)
        if target.subresource == "log":
            return self._log(target, obj, query)
        if (
            target.subresource is None
            and info.plural == "pods"
            and tables.wants_table(request.headers.get("Accept", ""))
        ):
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            return json_response(tables.pod_table([obj], list_metadata={"resourceVersion": rv}))
        return json_response(obj)

    def _log(self, target: Target, pod: dict[str, Any], query: dict[str, str]) -> web.Response:
        assert target.namespace is not None and target.name is not None
        containers = [c.get("name") for c in pod.get("spec", {}).get("containers") or []]
        container = query.get("container") or None
        if container is None and len(containers) > 1:
            raise errors.bad_request(
                f"a container name must be specified for pod {target.name}, choose one of: "
                f"[{' '.join(str(c) for c in containers)}]"
            )
        data = None
        if self.kubelet is not None:
            data = self.kubelet.read_log(target.namespace, target.name, container)
        if data is None:
            shown = container or (containers[0] if containers else "")
            raise errors.bad_request(
                f'container "{shown}" in pod "{target.name}" is waiting to start: ContainerCreating'
            )
        tail = _int_param(query.get("tailLines"), "tailLines")
        if tail is not None:
            lines = data.splitlines(keepends=True)
            data = b"".join(lines[-tail:]) if tail > 0 else b""
        return web.Response(body=data, content_type="text/plain")

    async def _exec(
        self, request: web.Request, target: Target, query: dict[str, str]
    ) -> web.StreamResponse:
        """pods/exec: checked like the API server, then a WebSocket to the kubelet's runner."""
        assert target.namespace is not None and target.name is not None
        pod = self.store.get("pods", target.namespace, target.name)
        if pod is None:
            raise errors.not_found("pods", target.name)
        wanted = exec_request(pod, request.query)
        if self.kubelet is None:
            raise errors.bad_request(
                f"pod {target.name} cannot be exec'd into: kubesim runs without a kubelet"
            )
        try:
            runner = self.kubelet.prepare_exec(target.namespace, target.name, wanted)
        except ExecRefused as refused:
            raise errors.bad_request(f"unable to upgrade connection: {refused}") from refused
        if request.headers.get("Upgrade", "").lower() != "websocket":
            # SPDY/3.1 (the POST older clients use) is not spoken here.
            raise errors.bad_request("Upgrade request required")
        label = f"{target.namespace}/{target.name}/{wanted.container}"
        return await serve_exec(request, runner, wanted, label)

    async def _create(
        self, request: web.Request, target: Target, query: dict[str, str]
    ) -> web.Response:
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise errors.bad_request("the request body must be a JSON object")
        meta = body.get("metadata") or {}
        if target.namespace and meta.get("namespace") not in (None, "", target.namespace):
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on "
                "the request"
            )
        warnings = _checked_fields(target.info.plural, body, query, "CreateOptions", patch=False)
        created = self.store.create(target.info.plural, target.namespace, body)
        return _with_warnings(json_response(created, 201), warnings)

    async def _update(
        self, request: web.Request, target: Target, query: dict[str, str]
    ) -> web.Response:
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise errors.bad_request("the request body must be a JSON object")
        assert target.name is not None
        warnings = _checked_fields(target.info.plural, body, query, "UpdateOptions", patch=False)
        updated = self.store.replace(
            target.info.plural,
            target.namespace,
            target.name,
            body,
            subresource=target.subresource,
        )
        return _with_warnings(json_response(updated), warnings)

    async def _patch(
        self, request: web.Request, target: Target, query: dict[str, str]
    ) -> web.Response:
        info = target.info
        assert target.name is not None
        raw = await request.read()
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
        current = self.store.get(info.plural, target.namespace, target.name)
        if current is None:
            raise errors.not_found(info.plural, target.name, group=info.group)
        patched = apply_patch(current, raw, content_type, resource=info.plural)
        warnings = _checked_fields(info.plural, patched, query, "PatchOptions", patch=True)
        updated = self.store.replace(
            info.plural, target.namespace, target.name, patched, subresource=target.subresource
        )
        return _with_warnings(json_response(updated), warnings)

    async def _delete(
        self, request: web.Request, target: Target, query: dict[str, str]
    ) -> web.Response:
        info = target.info
        assert target.name is not None
        options = await _json_body(request)
        options = options if isinstance(options, dict) else {}
        grace = _int_param(
            query.get("gracePeriodSeconds", options.get("gracePeriodSeconds")),
            "gracePeriodSeconds",
        )
        propagation = query.get("propagationPolicy") or options.get("propagationPolicy")
        orphan = query.get("orphanDependents", options.get("orphanDependents"))
        if propagation is None and str(orphan).lower() == "true":
            propagation = "Orphan"
        if propagation not in (None, "Orphan", "Background", "Foreground"):
            raise errors.bad_request(f"invalid propagationPolicy {propagation!r}")
        obj, removed = self.store.delete(
            info.plural,
            target.namespace,
            target.name,
            grace_period_seconds=grace,
            preconditions=options.get("preconditions"),
            propagation_policy=propagation,
        )
        if info.plural in ("pods", "namespaces"):
            return json_response(obj)
        if not removed:
            return json_response(obj, 202)
        return json_response(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": {
                    "name": target.name,
                    "group": info.group,
                    "kind": info.plural,
                    "uid": obj.get("metadata", {}).get("uid", ""),
                },
            }
        )

    async def _delete_collection(
        self, request: web.Request, target: Target, query: dict[str, str]
    ) -> web.Response:
        info = target.info
        label = LabelSelector.parse(query.get("labelSelector"))
        field = FieldSelector.parse(query.get("fieldSelector"), resource=info.plural)
        options = await _json_body(request)
        options = options if isinstance(options, dict) else {}
        grace = _int_param(
            query.get("gracePeriodSeconds", options.get("gracePeriodSeconds")),
            "gracePeriodSeconds",
        )
        deleted: list[dict[str, Any]] = []
        for key, obj, _ in self.store.items(info.plural, target.namespace):
            if label.matches(obj.get("metadata", {}).get("labels")) and field.matches(obj):
                try:
                    final, _ = self.store.delete(
                        info.plural, key[0] or None, key[1], grace_period_seconds=grace
                    )
                except errors.ApiError:
                    continue
                deleted.append(final)
        return json_response(
            {
                "kind": info.list_kind,
                "apiVersion": info.api_version,
                "metadata": {"resourceVersion": str(self.store.resource_version)},
                "items": [
                    {k: v for k, v in item.items() if k not in ("kind", "apiVersion")}
                    for item in deleted
                ],
            }
        )
