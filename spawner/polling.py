"""``poll()`` of KubeCacheSpawner: answered from Redis, never raising, never dead on doubt.

The decisions are :mod:`spawner.poll_policy`'s; this module performs the
reads (one pipelined cache read, coalesced with the hub's other polls; a
bounded API read, coalesced by :mod:`spawner.pod_reads`, when the cache
cannot be trusted or says the server stopped) and the effects
KubeSpawner has: deleting a stopped pod (delete_stopped_pods) and updating
a running server's changed address.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import TYPE_CHECKING, Any

from tornado.ioloop import PeriodicCallback

from kubecache.contract import PodRecord, lenient_pod_record
from spawner import pod_state, urls
from spawner.cache_client import CacheUnavailable
from spawner.hooks import call_hook
from spawner.kube_api import KubeApiError
from spawner.pod_reads import POLL_MAX_AGE
from spawner.poll_policy import (
    PollAnswer,
    PrePoll,
    from_api,
    from_cache,
    interpret_pre_poll_hook,
    needs_confirmation,
    when_unknown,
)
from spawner.trust import snapshot_freshness

if TYPE_CHECKING:
    from spawner.spawner import KubeCacheSpawner


async def poll(spawner: KubeCacheSpawner) -> int | None:
    """None while the server runs (or its start is pending), its exit status once stopped."""
    try:
        start = spawner._start_future
        if start is not None and not start.done():
            # JupyterHub: a server that has not finished starting polls as running
            return None
        if spawner.pre_poll_hook:
            pre = interpret_pre_poll_hook(await call_hook(spawner.pre_poll_hook, spawner))
            if pre.action is PrePoll.KEEP_RUNNING:
                return None
            if pre.action is PrePoll.EXIT:
                return pre.status
        answer, record = await poll_answer(spawner)
        if answer.status is not None:
            spawner.log.info(
                "kubecache: poll of %s: %s -> %s", spawner._log_id, answer.why, answer.status
            )
            if record is not None:
                await _delete_if_stopped(spawner, record)
        elif record is not None:
            update_server_url(spawner, record)
        return answer.status
    except Exception:
        spawner.log.exception("kubecache: poll of %s failed", spawner._log_id)
        return None if spawner.request_failed_poll_keep_running else 1


async def poll_answer(spawner: KubeCacheSpawner) -> tuple[PollAnswer, PodRecord | None]:
    """The cache's "running", else the API's answer, else the policy's.

    A trusted cache answers "running" alone. Any other answer (stopped,
    absent) is confirmed by an API read sent after the question before it is
    given; an untrusted or unreachable cache is replaced by a (coalesced) API
    read, whose "stopped" is confirmed the same way when it was not fresh.
    """
    keep_on_404 = spawner.request_404_poll_keep_running
    asked = time.monotonic()
    max_age = POLL_MAX_AGE
    cache_answer: PollAnswer | None = None
    try:
        snapshot = await spawner._cache().get_pod(spawner._pod_key)
        freshness = snapshot_freshness(spawner, snapshot, stale_after_ms=spawner._stale_after_ms)
        cache_answer = from_cache(snapshot.record, freshness, keep_running_on_404=keep_on_404)
        if cache_answer is not None and not needs_confirmation(cache_answer, fresh=False):
            return cache_answer, snapshot.record
        if cache_answer is not None:
            problem = f"the cache says {cache_answer.why}"
            max_age = 0.0
        else:
            problem = f"the cache is {freshness.value}"
    except (CacheUnavailable, ValueError) as e:
        problem = str(e)
    while True:
        try:
            read = await spawner.read_pod_from_api(max_age=max_age)
        except KubeApiError as e:
            why = f"{problem}; reading the pod from the API failed: {e}"
            spawner.log.warning("kubecache: poll of %s: %s", spawner._log_id, why)
            keep = spawner.request_failed_poll_keep_running
            return when_unknown(keep_running=keep, why=why), None
        record = lenient_pod_record(read.pod) if read.pod is not None else None
        answer = from_api(record, found=read.pod is not None, keep_running_on_404=keep_on_404)
        if not needs_confirmation(answer, fresh=read.started >= asked) or max_age == 0:
            break
        max_age = 0.0  # a remembered LIST said "stopped": ask again, after the question
    if cache_answer is not None and answer.status is None:
        _contradicted.note(spawner, cache_answer.why, answer.why)
    return answer, record


class _Contradictions:
    """Logs when the API overrules a trusted cache: first time, then at most once a minute."""

    def __init__(self, interval: float = 60.0) -> None:
        self.interval = interval
        self.count = 0
        self._last_log = -interval

    def note(self, spawner: KubeCacheSpawner, cache_said: str, api_said: str) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self._last_log < self.interval:
            return
        self._last_log = now
        spawner.log.warning(
            "kubecache: poll of %s: the cache said %s but the API says %s: kept running "
            "(%d such polls so far in this hub; the cacher should heal its records)",
            spawner._log_id,
            cache_said,
            api_said,
            self.count,
        )


_contradicted = _Contradictions()


async def _delete_if_stopped(spawner: KubeCacheSpawner, record: PodRecord) -> None:
    notebook = pod_state.notebook_container(record)
    if not (spawner.delete_stopped_pods and notebook and notebook.get("state") == "terminated"):
        return
    try:
        await spawner.stop(now=True)
    except Exception:
        # the server has exited all the same; the next stop() tries again
        spawner.log.exception("kubecache: could not delete the stopped pod %s", spawner._pod_key)


def update_server_url(spawner: KubeCacheSpawner, record: PodRecord) -> None:
    """Tell JupyterHub when a running pod's address changed, as KubeSpawner does."""
    server = spawner.server
    if not server or not pod_state.is_running(record):
        return
    if not spawner._notebook_port and getattr(server, "port", None) and _recorded(server):
        # a hub restarted since the spawn: the port JupyterHub recorded from start()'s URL
        spawner._notebook_port = int(server.port)
    # Building and parsing both URLs was a third of a poll at 10,000 servers; they only
    # change with the pod's address or the hub's record of it, so compare those first.
    address = (record.get("ip"), server.ip, server.port, spawner._notebook_port)
    if address == spawner._checked_address:
        return
    pod_url_text, server_url_text = spawner._get_pod_url(record), server.url
    if urls.netloc(server_url_text) != urls.netloc(pod_url_text):
        pod_url = urls.normalized(pod_url_text)
        server_url = urls.normalized(server_url_text)
        spawner.log.warning(
            "kubecache: pod %s url changed! %s -> %s",
            spawner._pod_key,
            server_url.netloc,
            pod_url.netloc,
        )
        server.ip = pod_url.hostname
        server.port = pod_url.port
        spawner.db.commit()
    spawner._checked_address = (record.get("ip"), server.ip, server.port, spawner._notebook_port)


def _recorded(server: Any) -> bool:
    """Whether JupyterHub recorded where the server runs (start() returned its URL).

    A spawn interrupted by a hub crash or failover never returned: its database row
    still holds no address and a random port, not the pod's; the spawner's port is
    the pod's then, as KubeSpawner reads it from the pod's ``notebook-port``.
    """
    return getattr(server, "ip", "") not in ("", "0.0.0.0", "::", None)


def start_polling(spawner: KubeCacheSpawner) -> None:
    """JupyterHub's periodic poll, every custom_poll_interval ms when that is set."""
    hook = spawner.custom_poll_interval
    value = hook(spawner, spawner.user_options) if callable(hook) else hook
    if inspect.isawaitable(value):
        awaitable = value

        async def later() -> None:
            _poll_every(spawner, await awaitable)

        spawner._poll_interval_task = asyncio.ensure_future(later())
        return
    _poll_every(spawner, value)


def _poll_every(spawner: KubeCacheSpawner, interval_ms: Any) -> None:
    if not interval_ms:
        spawner._start_default_polling()
        return
    spawner.stop_polling()
    spawner._poll_callback = PeriodicCallback(
        spawner.poll_and_notify, float(interval_ms), jitter=spawner.poll_jitter
    )
    spawner._poll_callback.start()


__all__ = ["poll", "poll_answer", "start_polling", "update_server_url"]
