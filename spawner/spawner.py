"""KubeCacheSpawner: KubeSpawner's configuration, with state read from kubecache's Redis.

The hub never watches the cluster: objects are created and deleted through
the Kubernetes API (:mod:`kubecache.spawner.kube_api`); whether a pod runs, stopped or
failed, and its events, come from the cacher's records in Redis
(:mod:`kubecache.spawner.cache_client`), whose change feed wakes ``start()``,
``stop()`` and ``progress()``. When the cache cannot be trusted those fall
back to reading the pod from the API, and ``poll()`` never calls a running
server dead because of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import time
import weakref
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

from tornado.ioloop import PeriodicCallback
from traitlets import All, observe

from kubecache.contract import EventRecord, PodRecord, pod_key
from kubecache.redis_connection import RedisSettings
from kubecache.spawner import manifests, pod_state, urls
from kubecache.spawner.api_events import EventReads
from kubecache.spawner.cache_client import RECORD_CHANGES, CacheClient, CacheUnavailable, Watch
from kubecache.spawner.hooks import call_hook
from kubecache.spawner.hub_log import EveryInterval
from kubecache.spawner.kube_api import KubeApi, KubeApiError, Timeouts
from kubecache.spawner.kubespawner_methods import KubeSpawnerMethods
from kubecache.spawner.models import request_body
from kubecache.spawner.options import REDIS_OPTIONS, CacheSpawnerOptions
from kubecache.spawner.pod_reader import (
    MAX_FEED_WAIT,
    LazyLabels,
    PodReader,
    PodTarget,
    Unknown,
    pod_gone,
)
from kubecache.spawner.pod_reads import PodRead, PodReads
from kubecache.spawner.poll_policy import PrePoll, interpret_pre_poll_hook
from kubecache.spawner.progress import ProgressTracker, SlowSpawnTimer, slow_spawn_event

#: Attempts to create the pod when a leftover of the same name is in the way.
CREATE_ATTEMPTS = 4
#: How often an open progress page reads the API's events while the cache cannot serve them.
API_EVENTS_INTERVAL = 2.0
#: Seconds progress() goes on after JupyterHub's spawn ended, before it ends by itself.
#: JupyterHub (5 and 6, utils.iterate_until) cancels the generator when its spawn future
#: (our start, then the proxy route and the rest) resolves; a generator that ends in that
#: same tick makes the progress request fail with "async generator raised
#: StopAsyncIteration". So progress() outlives the spawn future, not only our start: a
#: fixed grace after the start raced with a slow proxy (seen in CI: the route took 1 s).
FINISHED_GRACE = 1.0
#: Options the shared cache client is looked up by (see _option_changed).
_REDIS_OPTIONS = frozenset(REDIS_OPTIONS)
#: Options the pod's labels (the cache coverage check) are made of.
_LABEL_OPTIONS = frozenset(
    {"extra_labels", "common_labels", "component_label", "namespace", "slug_scheme", "user"}
)
#: Further options a PodReader's target is made of.
_READER_OPTIONS = frozenset(
    {"cache_stale_after", "request_404_poll_keep_running", "request_failed_poll_keep_running"}
)
#: Options read_pod_from_api's reads are made of (namespace, component_label, the API
#: client's configuration, the request timeout): see _ApiReadTarget.
_API_READ_OPTIONS = frozenset(
    {
        "namespace",
        "component_label",
        "k8s_api_host",
        "k8s_api_ssl_ca_cert",
        "k8s_api_verify_ssl",
        "k8s_api_request_timeout",
    }
)
#: A pod whose labels leave the hub's LIST selector is logged once per this many seconds.
_unmatched_labels = EveryInterval(600.0)


class _ApiReadTarget(NamedTuple):
    """What read_pod_from_api reads through, looked up once per spawner (again when an
    option of :data:`_API_READ_OPTIONS` is set, the API client of the event loop was
    closed, or ``KUBECONFIG`` changed), not per question: thousands of polls ask at once
    when the cache cannot answer. One per configuration, shared by the spawners that have
    it (:func:`_api_read_target`): a hub of 3,000 servers holds a handful, not 3,000 more
    objects for the garbage collector."""

    loop: asyncio.AbstractEventLoop
    kubeconfig: str
    reads: PodReads
    label_selector: str
    timeout: float
    timeouts: Timeouts


_api_read_targets: weakref.WeakKeyDictionary[PodReads, dict[tuple[Any, ...], _ApiReadTarget]] = (
    weakref.WeakKeyDictionary()
)


def _api_read_target(
    kubeconfig: str, reads: PodReads, label_selector: str, timeout: float
) -> _ApiReadTarget:
    loop = asyncio.get_running_loop()
    targets = _api_read_targets.get(reads)
    if targets is None:
        targets = _api_read_targets[reads] = {}
    key = (loop, kubeconfig, label_selector, timeout)
    target = targets.get(key)
    if target is None:
        target = targets[key] = _ApiReadTarget(
            loop,
            kubeconfig,
            reads,
            label_selector,
            timeout,
            Timeouts(request=timeout, retry=timeout),
        )
    return target


class SpawnError(Exception):
    """A start failed; the message says why, with the pod's last warning events."""


class KubeCacheSpawner(KubeSpawnerMethods, CacheSpawnerOptions):
    """A drop-in KubeSpawner whose cluster state comes from kubecache's cacher via Redis.

    ``c.KubeSpawner.*`` options apply unchanged; kubecache's own options are
    ``c.KubeCacheSpawner.redis_*``, ``cache_stale_after``, the poll policies
    and OutpostSpawner's hooks (see :mod:`kubecache.spawner.options`).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # loud at configuration time, not a fall back to the API on every poll
        self.check_cache_options()
        self._start_future: asyncio.Future[str] | None = None
        #: uid of the pod this spawn created (progress shows only its events)
        self._pod_uid: str | None = None
        self._notebook_port: int | None = None
        self._cancelling = False
        self._poll_interval_task: asyncio.Future[None] | None = None
        self.pod_id: str | None = None
        #: (settings, key prefix) of the shared cache client, built once (see _cache)
        self._cache_target: tuple[RedisSettings, str] | None = None
        #: (pod IP, server ip, server port, notebook port) last found consistent by poll
        self._checked_address: tuple[Any, ...] | None = None
        #: the shared cache client last returned by _cache (CacheClient.loop: its event loop)
        self._cache_client: CacheClient | None = None
        #: the pod's labels for the cache coverage check (see coverage_labels)
        self._coverage_labels: dict[str, str] | None = None
        #: this spawner's reader of its pod, built once (see _reader)
        self._pod_reader: PodReader | None = None

    # ------------------------------------------------------------------ clients

    def _cache(self) -> CacheClient:
        # Every poll and wake-up comes here: building and validating the settings each
        # time was a quarter of a poll at 10,000 servers. Rebuilt when a redis_* option
        # changes. (getattr: traitlets may call in before __init__ has set the attribute.)
        # Nothing is allocated per spawner here: the target is one tuple per configuration
        # (kubecache.spawner.options), the client one per hub and loop.
        loop = asyncio.get_running_loop()
        held = getattr(self, "_cache_client", None)
        if held is not None and held.loop is loop and not held.closed:
            return held
        target = getattr(self, "_cache_target", None)
        if target is None:
            target = self._cache_target = self.redis_target()
        settings, prefix = target
        client = CacheClient.shared(settings, prefix=prefix, log=self.log)
        self._cache_client = client
        return client

    @observe(All)
    def _option_changed(self, change: Any) -> None:
        """Forget what was built from an option that changed: the cache target and client
        (:data:`_REDIS_OPTIONS`), the coverage labels (:data:`_LABEL_OPTIONS`), the reader
        (both, and :data:`_READER_OPTIONS`).

        One observer of every trait, not one per option: traitlets keeps a dict and a list
        per observed name on every instance (15 names here were 30 of a spawner object's
        70 garbage-collected objects, which a hub of 10,000 servers walks in every full
        collection). Trait changes after construction are rare (hooks, profiles).
        """
        name = change["name"]
        if name in _API_READ_OPTIONS:
            self._api_read_target: _ApiReadTarget | None = None
        if name in _REDIS_OPTIONS:
            self._cache_target = None
            self._cache_client = None
            self._pod_reader = None
        elif name in _LABEL_OPTIONS:
            self._coverage_labels = None
            self._pod_reader = None
        elif name in _READER_OPTIONS:
            self._pod_reader = None

    def coverage_labels(self) -> dict[str, str]:
        """The labels of this spawner's pod, for the cache coverage check (pod_reader).

        Computed once, not on every poll (expanding the templates was a sixth of a poll
        at 10,000 servers); again after an option they depend on is set, and at every
        start (a hook may have changed them in place).
        """
        labels = getattr(self, "_coverage_labels", None)
        if labels is None:
            labels = self._build_pod_labels(self._expand_all(self.extra_labels))
            self._coverage_labels = labels
        return labels

    async def _api(self) -> KubeApi:
        return await KubeApi.shared(
            host=self.k8s_api_host,
            ssl_ca_cert=self.k8s_api_ssl_ca_cert,
            verify_ssl=self.k8s_api_verify_ssl,
            log=self.log,
        )

    def _timeouts(self) -> Timeouts:
        return Timeouts(
            request=float(self.k8s_api_request_timeout),
            retry=float(self.k8s_api_request_retry_timeout),
        )

    @property
    def _pod_key(self) -> str:
        return pod_key(self.namespace, self.pod_name)

    @property
    def _log_id(self) -> str:
        return self._log_id_of(self._pod_key)

    def _log_id_of(self, key: str) -> str:
        name = self.name
        return f"{self.user.name}/{name} (pod {key})" if name else f"{self.user.name} (pod {key})"

    # ------------------------------------------------------------------ reading the pod

    @property
    def pod_list_selector(self) -> str:
        """The label selector of the LIST that answers many pod reads at once (KubeSpawner's
        pod reflector selects ``component=<component_label>``)."""
        return f"component={self.component_label}" if self.component_label else ""

    async def read_pod_from_api(
        self, *, max_age: float, must_answer: bool = False, within: float | None = None
    ) -> PodRead:
        """This pod from a (coalesced) API read sent at most ``max_age`` s ago.

        Bounded by one ``k8s_api_request_timeout`` (or ``within`` seconds, when
        less); raises :class:`KubeApiError`. ``must_answer``: a start or stop waits
        on it, so a lone GET answers when the shared LIST cannot in time.
        """
        target: _ApiReadTarget | None = getattr(self, "_api_read_target", None)
        kubeconfig = os.environ.get("KUBECONFIG", "")
        if (
            target is None
            or target.loop is not asyncio.get_running_loop()
            or target.reads.api.closed
            or target.kubeconfig != kubeconfig
        ):
            reads = PodReads.of(await self._api(), log=self.log)
            target = _api_read_target(
                kubeconfig, reads, self.pod_list_selector, float(self.k8s_api_request_timeout)
            )
            self._api_read_target = target
            self._api_read_namespace: str = self.namespace
        timeouts = target.timeouts
        if within is not None and within < target.timeout:
            timeout = max(within, 0.001)
            timeouts = Timeouts(request=timeout, retry=timeout)
        read = await target.reads.read(
            self._api_read_namespace,
            self.pod_name,
            label_selector=target.label_selector,
            timeouts=timeouts,
            max_age=max_age,
            must_answer=must_answer,
        )
        if read.unmatched_selector is not None:
            held_back = _unmatched_labels.due()
            if held_back is not None:
                self.log.warning(
                    "kubecache: pod of %s is not matched by the label selector %r (a "
                    "modify_pod_hook changed its labels?): it was found without it, so reads "
                    "of it when the cache cannot answer take a second request. Keep the "
                    "label component=%s on the pod (%d more such reads since the last "
                    "line like this).",
                    self._log_id,
                    read.unmatched_selector,
                    self.component_label,
                    held_back,
                )
        return read

    def _reader(self) -> PodReader:
        """The reader of this spawner's pod (:mod:`kubecache.spawner.pod_reader`), built once.

        Built again after an option its target is made of changes (traitlets
        observers), when the saved state is loaded or cleared, at every start (hooks
        and profiles may change names and labels), and when the pod's name changed
        (a plain attribute, not observed).
        """
        reader = getattr(self, "_pod_reader", None)
        if reader is not None and reader.target.pod_name == self.pod_name:
            return reader
        namespace, pod_name = self.namespace, self.pod_name
        key = pod_key(namespace, pod_name)
        target = PodTarget(
            namespace=namespace,
            pod_name=pod_name,
            key=key,
            labels=LazyLabels(self.coverage_labels),
            stale_after_ms=int(self.cache_stale_after * 1000),
            log_id=self._log_id_of(key),
            keep_running_on_404=bool(self.request_404_poll_keep_running),
            keep_running_on_failure=bool(self.request_failed_poll_keep_running),
        )
        reader = PodReader(target, cache=self._cache, read_api=self.read_pod_from_api, log=self.log)
        self._pod_reader = reader
        return reader

    # ------------------------------------------------------------------ start

    def start(self) -> asyncio.Future[str]:  # type: ignore[override]
        """Start the server; the future is kept so progress() knows when to end."""
        self._start_future = asyncio.ensure_future(self._start())
        return self._start_future

    async def _start(self) -> str:
        self._pod_uid = None
        self._coverage_labels = None
        self._pod_reader = None
        self._cancelling = False
        if self.check_allowed:
            await call_hook(self.check_allowed, self, self.user_options)
        await self.load_user_options()
        api = await self._api()
        timeouts = self._timeouts()
        if self.enable_user_namespaces:
            await api.create_namespace(self.get_namespace_manifest(), timeouts)
        if self.storage_pvc_ensure:
            await self._ensure_pvc(api, timeouts)
        pod = await self.pod_request_body()
        if self.modify_pod_hook:
            self.log.info("kubecache: %s: pod is being modified via modify_pod_hook", self._log_id)
            modified = await call_hook(self.modify_pod_hook, self, self._pod_model(pod))
            pod = request_body(modified, "modify_pod_hook")
        self._notebook_port = urls.notebook_port(pod) or self.port
        self._pod_reader = None  # hooks and profiles may have changed its names and labels
        # deadline a little before JupyterHub's own, leaving time for the API's last word on a
        # timeout, so our error (with events) is the one shown
        last_read = float(self.k8s_api_request_timeout)
        deadline = time.monotonic() + max(
            self.start_timeout * 0.95 - 1 - last_read, self.start_timeout * 0.5
        )
        async with self._cache().watch(self._pod_key, RECORD_CHANGES) as watch:
            try:
                # inside the try: a start cancelled while the create request is in flight
                # may have made the pod all the same
                created = await self._request_pod(api, watch, pod, timeouts, deadline=deadline)
                await self._create_dependents(api, created, timeouts)
                record = await self._wait_until_running(watch, deadline=deadline)
            except BaseException as e:
                await self._clean_up_failed_start(api, e)
                raise
        self.pod_id = record["uid"]
        url = self._get_pod_url(record)
        self.log.info("kubecache: %s is running at %s", self._log_id, url)
        return url

    async def _find_legacy_pvc(self, api: KubeApi, timeouts: Timeouts) -> None:
        """For a KubeSpawner 6 state: the claim of the current name if it exists, else the
        legacy ("escape") one if that exists, as KubeSpawner 7.1's start decides."""
        legacy = self.legacy_pvc_name()
        if not legacy:
            return
        if await api.pvc_exists(self.namespace, self.pvc_name, timeouts):
            self._pvc_exists = True
        elif await api.pvc_exists(self.namespace, legacy, timeouts):
            self.log.warning("kubecache: using legacy PVC %s for %s", legacy, self.user.name)
            self.pvc_name = legacy
            self._pvc_exists = True

    async def _ensure_pvc(self, api: KubeApi, timeouts: Timeouts) -> None:
        await self._find_legacy_pvc(api, timeouts)
        if not self._pvc_exists:
            self.log.info("kubecache: creating PVC %s/%s", self.namespace, self.pvc_name)
            await api.create_pvc(self.namespace, self.pvc_request_body(), timeouts)
            self._pvc_exists = True

    async def _request_pod(
        self,
        api: KubeApi,
        watch: Watch,
        pod: dict[str, Any],
        timeouts: Timeouts,
        *,
        deadline: float,
    ) -> dict[str, Any]:
        """The pod create request between OutpostSpawner's post/failed spawn request hooks."""
        try:
            created = await self._create_pod(api, watch, pod, timeouts, deadline=deadline)
        except (SpawnError, KubeApiError) as e:
            if self.failed_spawn_request_hook:
                try:
                    await call_hook(self.failed_spawn_request_hook, self, e)
                except Exception:
                    self.log.exception(
                        "kubecache: failed_spawn_request_hook of %s failed", self._log_id
                    )
            raise
        if self.post_spawn_request_hook:
            await call_hook(self.post_spawn_request_hook, self, created)
        return created

    async def _create_pod(
        self,
        api: KubeApi,
        watch: Watch,
        pod: dict[str, Any],
        timeouts: Timeouts,
        *,
        deadline: float,
    ) -> dict[str, Any]:
        """Create the pod; a leftover of the same name is deleted and awaited first."""
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            try:
                self.log.info("kubecache: creating pod for %s", self._log_id)
                created = await api.create_pod(self.namespace, pod, timeouts)
            except KubeApiError as e:
                if not e.conflict or attempt == CREATE_ATTEMPTS:
                    raise SpawnError(f"Could not create the pod of {self._log_id}: {e}") from e
                self.log.info(
                    "kubecache: found a leftover pod %s; deleting it before starting",
                    self._pod_key,
                )
                await api.delete_pod(
                    self.namespace, self.pod_name, grace_seconds=0, timeouts=timeouts
                )
                gone = await self._reader().wait(
                    watch, pod_gone, deadline=deadline, destructive=lambda _: True
                )
                if not gone:
                    raise SpawnError(
                        f"The leftover pod {self._pod_key} did not go away; "
                        "delete it (kubectl delete pod) and start again"
                    ) from e
                continue
            self._pod_uid = created.get("metadata", {}).get("uid")
            return created
        raise AssertionError("unreachable")

    async def _create_dependents(
        self, api: KubeApi, created: dict[str, Any], timeouts: Timeouts
    ) -> None:
        """internal_ssl secret, service and after_pod_created_hook, owned by the pod."""
        if not (self.internal_ssl or self.services_enabled or self.after_pod_created_hook):
            return
        owner = manifests.owner_reference_json(self.pod_name, created["metadata"]["uid"])
        if self.internal_ssl:
            await api.replace_object(
                "secret", self.namespace, self.secret_request_body(owner), timeouts
            )
        if self.internal_ssl or self.services_enabled:
            service = self.service_request_body(owner, self._notebook_port or self.port)
            await api.replace_object("service", self.namespace, service, timeouts)
        if self.after_pod_created_hook:
            self.log.info("kubecache: %s: running after_pod_created_hook", self._log_id)
            await call_hook(self.after_pod_created_hook, self, created)

    async def _wait_until_running(self, watch: Watch, *, deadline: float) -> PodRecord:
        uid = self._pod_uid
        seen = False
        reasons = tuple(self.start_failure_reasons)

        def outcome(record: PodRecord | None) -> tuple[str, Any] | None:
            nonlocal seen
            if record is None or record["uid"] != uid:
                if seen:
                    return ("failed", f"pod {self._pod_key} was deleted before it was ready")
                return None
            seen = True
            if pod_state.is_running(record):
                return ("running", record)
            why = pod_state.start_failure(record, failure_reasons=reasons)
            return ("failed", why) if why else None

        def failed(result: tuple[str, Any]) -> bool:
            return result[0] == "failed"

        result = await self._reader().wait(
            watch, outcome, deadline=deadline, destructive=failed, last_word=False
        )
        if result is None:
            # out of time: the API has the last word (a stalled cache may have missed readiness)
            last = await self._reader().read_api_view(max_age=0, why="the start timed out")
            if not isinstance(last.record, Unknown):
                result = outcome(last.record)
            if result is None:
                pending = (
                    pod_state.pending_reason(last.record)
                    if not isinstance(last.record, Unknown)
                    else "the Kubernetes API did not answer"
                )
                why = (
                    f"pod {self._pod_key} did not start in {self.start_timeout} seconds ({pending})"
                )
                raise TimeoutError(await self._with_warnings(why))
        if result[0] == "running":
            record: PodRecord = result[1]
            return record
        raise SpawnError(await self._with_warnings(str(result[1])))

    async def _with_warnings(self, why: str) -> str:
        """``why`` plus the pod's last Warning events, e.g. the scheduler's explanation."""
        if not self._pod_uid:
            return why
        events, _ = await self._spawn_events(self._pod_uid)
        return pod_state.with_warnings(why, pod_state.warning_messages(events))

    async def _spawn_events(self, pod_uid: str) -> tuple[list[EventRecord], bool]:
        """This spawn's pod events, and whether they come from the API: the cache's event
        log while the cache is trusted, else the API's (kubecache.spawner.api_events; [] when
        neither answers)."""
        snapshot, problem = await self._reader().trusted_snapshot()
        if snapshot is not None:
            try:
                return await self._cache().events(self._pod_key, pod_uid), False
            except (CacheUnavailable, ValueError) as e:
                problem = str(e)
        timeout = float(self.k8s_api_request_timeout)
        try:
            reads = EventReads.of(await self._api(), log=self.log)
            events = await reads.events(
                self.namespace,
                self.pod_name,
                pod_uid,
                timeouts=Timeouts(request=timeout, retry=timeout),
            )
        except KubeApiError as e:
            self.log.debug(
                "kubecache: %s: %s and its events could not be read from the API: %s",
                self._log_id,
                problem,
                e,
            )
            return [], True
        return events, True

    async def _clean_up_failed_start(self, api: KubeApi, error: BaseException) -> None:
        kind = "cancelled" if isinstance(error, asyncio.CancelledError) else "failed"
        self.log.warning(
            "kubecache: start of %s %s (%s); deleting its pod", self._log_id, kind, error
        )
        try:
            await api.delete_pod(
                self.namespace, self.pod_name, grace_seconds=0, timeouts=self._timeouts()
            )
        except Exception:
            self.log.exception("kubecache: could not delete the pod of %s", self._log_id)

    # ------------------------------------------------------------------ URL

    def _get_pod_url(self, record: PodRecord) -> str:
        """KubeSpawner's URL: pod IP, or the service DNS name with internal_ssl/services."""
        port = self._notebook_port or self.port
        if self.get_pod_url:
            return str(self.get_pod_url(self, pod_state.pod_like(record, port=port)))
        return urls.pod_url(
            pod_ip=record.get("ip", ""),
            port=port,
            dns_name=self.dns_name,
            internal_ssl=bool(getattr(self, "internal_ssl", False)),
            services_enabled=self.services_enabled,
            pod_connect_ip=self.pod_connect_ip,
            expand=self._expand_user_properties,
        )

    # ------------------------------------------------------------------ poll

    async def poll(self) -> int | None:
        """None while the server runs (or its start is pending), its exit status once
        stopped; never raises, never dead on doubt.

        The answer is the reader's (:meth:`PodReader.poll`: the cache may say "running"
        alone, never "stopped"); the effects are KubeSpawner's: deleting a stopped pod
        (delete_stopped_pods) and updating a running server's changed address.
        """
        try:
            start = self._start_future
            if start is not None and not start.done():
                # JupyterHub: a server that has not finished starting polls as running
                return None
            if self.pre_poll_hook:
                pre = interpret_pre_poll_hook(await call_hook(self.pre_poll_hook, self))
                if pre.action is PrePoll.KEEP_RUNNING:
                    return None
                if pre.action is PrePoll.EXIT:
                    return pre.status
            reader = self._reader()
            answer, record = await reader.poll()
            if answer.status is not None:
                self.log.info(
                    "kubecache: poll of %s: %s -> %s",
                    reader.target.log_id,
                    answer.why,
                    answer.status,
                )
                if record is not None:
                    await self._delete_if_stopped(record)
            elif record is not None:
                self._follow_pod_address(record)
            return answer.status
        except Exception:
            self.log.exception("kubecache: poll of %s failed", self._log_id)
            return None if self.request_failed_poll_keep_running else 1

    async def _delete_if_stopped(self, record: PodRecord) -> None:
        notebook = pod_state.notebook_container(record)
        if not (self.delete_stopped_pods and notebook and notebook.get("state") == "terminated"):
            return
        try:
            await self.stop(now=True)
        except Exception:
            # the server has exited all the same; the next stop() tries again
            self.log.exception("kubecache: could not delete the stopped pod %s", self._pod_key)

    def _follow_pod_address(self, record: PodRecord) -> None:
        """Tell JupyterHub when a running pod's address changed, as KubeSpawner does."""
        server = self.server
        if not server or not pod_state.is_running(record):
            return
        if not self._notebook_port and getattr(server, "port", None) and urls.recorded(server):
            # a hub restarted since the spawn: the port JupyterHub recorded from start()'s URL
            self._notebook_port = int(server.port)
        # Building and parsing both URLs was a third of a poll at 10,000 servers; they only
        # change with the pod's address or the hub's record of it, so compare those first.
        address = (record.get("ip"), server.ip, server.port, self._notebook_port)
        if address == self._checked_address:
            return
        if self._plain_pod_url() and urls.plainly_same(
            address[0], self._notebook_port or self.port, server
        ):
            # a fresh hub's first poll of each server: the same netloc for sure, without
            # building and parsing both URLs (21 of ~60 us per server)
            self._checked_address = address
            return
        pod_url_text, server_url_text = self._get_pod_url(record), server.url
        if urls.netloc(server_url_text) != urls.netloc(pod_url_text):
            pod_url = urls.normalized(pod_url_text)
            server_url = urls.normalized(server_url_text)
            self.log.warning(
                "kubecache: pod %s url changed! %s -> %s",
                self._pod_key,
                server_url.netloc,
                pod_url.netloc,
            )
            server.ip = pod_url.hostname
            server.port = pod_url.port
            self.db.commit()
        self._checked_address = (record.get("ip"), server.ip, server.port, self._notebook_port)

    def _plain_pod_url(self) -> bool:
        """Whether the pod's URL is ``http://`` its IP (no get_pod_url hook, services,
        internal_ssl or pod_connect_ip): see :meth:`_get_pod_url`."""
        return not (
            self.get_pod_url
            or self.services_enabled
            or getattr(self, "internal_ssl", False)
            or self.pod_connect_ip
        )

    def start_polling(self) -> None:
        """JupyterHub's periodic poll, every custom_poll_interval ms when that is set."""
        hook = self.custom_poll_interval
        value = hook(self, self.user_options) if callable(hook) else hook
        if inspect.isawaitable(value):
            awaitable = value

            async def later() -> None:
                self._poll_every(await awaitable)

            self._poll_interval_task = asyncio.ensure_future(later())
            return
        self._poll_every(value)

    def _poll_every(self, interval_ms: Any) -> None:
        if not interval_ms:
            super().start_polling()
            return
        self.stop_polling()
        self._poll_callback = PeriodicCallback(
            self.poll_and_notify, float(interval_ms), jitter=self.poll_jitter
        )
        self._poll_callback.start()

    # ------------------------------------------------------------------ progress

    async def _generate_progress(self) -> AsyncIterator[dict[str, Any]]:
        """JupyterHub's progress wrapper, whose first event (0 %, "Server requested") is shown
        only when show_first_default_event says so (OutpostSpawner's option)."""
        show = self.show_first_default_event
        if callable(show):
            show = await call_hook(show, self)
        first = True
        async with contextlib.aclosing(super()._generate_progress()) as events:
            async for event in events:
                if first and not show and event.get("progress") == 0:
                    first = False
                    continue
                first = False
                yield event

    async def progress(self) -> AsyncIterator[dict[str, Any]]:
        """This spawn's pod events from Redis, replayed then followed, until the start ends;
        from the API while the cache cannot serve them."""
        if not self.events_enabled:
            return
        tracker = ProgressTracker(namespace=self.namespace, pod_name=self.pod_name)
        timer = SlowSpawnTimer(
            threshold=self.slow_spawn_message_threshold,
            frequency=self.slow_spawn_message_frequency,
        )
        began = time.monotonic()
        cancelling_shown = False
        cache = self._cache()
        async with cache.watch(self._pod_key) as watch:
            start_future = self._start_future
            hooked: asyncio.Future[str] | None = None
            while True:
                start_future = start_future or self._start_future
                if start_future is not None and hooked is not start_future:
                    start_future.add_done_callback(lambda _: watch.wake("start ended"))
                    hooked = start_future
                finished = start_future is not None and start_future.done()
                elapsed = time.monotonic() - began
                if self._cancelling and not cancelling_shown:
                    cancelling_shown = True
                    event = self.cancelling_event
                    if callable(event):
                        event = await call_hook(event, self)
                    if event:
                        yield dict(event)
                elif timer.due(elapsed):
                    async for shown in self._filtered(
                        [slow_spawn_event(self.slow_spawn_message, elapsed)]
                    ):
                        yield shown
                longest_wait = MAX_FEED_WAIT
                if self._pod_uid:
                    events, from_api = await self._spawn_events(self._pod_uid)
                    if from_api:  # no feed tells of new events: read the API again soon
                        longest_wait = API_EVENTS_INTERVAL
                    async for shown in self._filtered(tracker.new_events(events)):
                        yield shown
                if finished:
                    await self._outlive_the_spawn()  # JupyterHub cancels us meanwhile
                    return
                next_message = timer.seconds_until_next(time.monotonic() - began)
                await watch.wait(
                    min(longest_wait, next_message if next_message is not None else longest_wait)
                )

    async def _outlive_the_spawn(self) -> None:
        """Wait until JupyterHub's spawn future (``Spawner._spawn_future``) has ended, then
        FINISHED_GRACE more: progress() must still be waiting when JupyterHub cancels it."""
        spawn = getattr(self, "_spawn_future", None)
        if isinstance(spawn, asyncio.Future) and not spawn.done():
            await asyncio.wait([spawn])
        await asyncio.sleep(FINISHED_GRACE)
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            # JupyterHub's cancel reached the generator but something on the way lost it
            # (asyncio.wait_for before Python 3.12 can): end as cancelled all the same
            raise asyncio.CancelledError(f"progress of {self._log_id}: cancelled")

    async def _filtered(self, events: list[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
        for event in events:
            shown = (
                await call_hook(self.filter_events, self, event) if self.filter_events else event
            )
            if shown:
                yield shown

    # ------------------------------------------------------------------ stop

    async def stop(self, now: bool = False) -> None:
        """Delete the pod (delete_grace_period, 0 when now) and wait until it is gone."""
        if self.pre_stop_hook:
            try:
                await call_hook(self.pre_stop_hook, self)
            except Exception:
                self.log.exception("kubecache: pre_stop_hook of %s failed", self._log_id)
        start = self._start_future
        if start is not None and not start.done():
            # interrupting a pending start: it cleans up after itself
            self._cancelling = True
            start.cancel()
            await asyncio.wait([start])  # its outcome is its own; our cancellation still counts
        grace = 0 if now else int(self.delete_grace_period)
        api = await self._api()
        async with self._cache().watch(self._pod_key, RECORD_CHANGES) as watch:
            existed = await api.delete_pod(
                self.namespace, self.pod_name, grace_seconds=grace, timeouts=self._timeouts()
            )
            if not existed:
                # the API's own 404: gone, nothing to wait for
                self.log.info(
                    "kubecache: no pod %s to delete; assuming already deleted", self._pod_key
                )
                gone: bool | None = True
            else:
                deadline = time.monotonic() + self.start_timeout
                gone = await self._reader().wait(
                    watch, pod_gone, deadline=deadline, destructive=lambda _: True
                )
        if not gone:
            raise TimeoutError(
                f"pod {self._pod_key} did not disappear in {self.start_timeout} seconds; "
                "check the node it runs on (kubectl describe pod)"
            )
        self.log.info("kubecache: %s stopped", self._log_id)

    async def delete_forever(self) -> None:
        """Delete the user's PVC when delete_pvc (not a claim shared with the default server)."""
        log_name = f"{self.user.name}/{self.name}" if self.name else self.user.name
        if not self.delete_pvc:
            self.log.info("kubecache: not deleting the PVC of %s: %s", log_name, self.pvc_name)
            return
        if self.pvc_is_shared():
            self.log.info(
                "kubecache: not deleting the shared PVC of named server %s: %s",
                log_name,
                self.pvc_name,
            )
            return
        api = await self._api()
        # a KubeSpawner 6 user never started since: the claim start would use, not an absent
        # 7.x name (KubeSpawner 7.1 leaves the legacy claim behind, its #924)
        await self._find_legacy_pvc(api, self._timeouts())
        await api.delete_pvc(self.namespace, self.pvc_name, self._timeouts())

    # ------------------------------------------------------------------ state

    def get_state(self) -> dict[str, Any]:
        """KubeSpawner's keys: kubespawner_version, pod_name, namespace, dns_name, pvc_name."""
        state: dict[str, Any] = super().get_state()
        state.update(self.names_state())
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.load_names_state(state)
        self._coverage_labels = None  # templates may name {pod_name}, {pvc_name}
        self._pod_reader = None

    def clear_state(self) -> None:
        super().clear_state()
        self.reset_transient_names()
        self._pod_uid = None
        self._coverage_labels = None
        self._pod_reader = None


__all__ = ["KubeCacheSpawner", "SpawnError"]
