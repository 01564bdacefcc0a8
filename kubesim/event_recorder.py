"""Writes Events to the store the way client-go's recorders do: a repeat updates the same object.

The kubelet (core/v1 recorder) aggregates an identical event (same object,
container, reason, message, type) into ``count`` + ``lastTimestamp``; the
scheduler (events/v1 recorder) into ``series``. Writes are synchronous store
calls; a failure (namespace gone, fault injected) is logged and dropped, as a
real recorder drops events it cannot write.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kubesim import kubelet_events as ev
from kubesim.errors import ApiError

if TYPE_CHECKING:
    from kubesim.store import ObjectStore

log = logging.getLogger(__name__)

_Key = tuple[str, str, str, str, str, str]


class EventRecorder:
    """One per simulated component family; remembers the event written for each repeat key."""

    def __init__(self, store: ObjectStore, *, scheduler_instance: str = "kubesim") -> None:
        self._store = store
        self._instance = scheduler_instance
        # pod uid -> repeat key -> (namespace, event name)
        self._names: dict[str, dict[_Key, tuple[str, str]]] = {}

    def kubelet(
        self,
        pod: Mapping[str, Any],
        *,
        node: str,
        reason: str,
        message: str,
        type_: str = "Normal",
        field_path: str | None = None,
    ) -> dict[str, Any] | None:
        """Record (or count again) a kubelet event about ``pod``; returns the stored event."""
        key = self._key(pod, field_path or "", reason, message, type_, node)
        stored = self._bump(key, ev.bump_count)
        if stored is not None:
            return stored
        event = ev.kubelet_event(
            pod, node=node, reason=reason, message=message, type_=type_, field_path=field_path
        )
        return self._create(key, event)

    def scheduler(
        self,
        pod: Mapping[str, Any],
        *,
        reason: str,
        message: str,
        action: str,
        type_: str = "Normal",
    ) -> dict[str, Any] | None:
        """Record (or add to the series of) a default-scheduler event about ``pod``."""
        key = self._key(pod, "", reason, message, type_, ev.SCHEDULER)
        stored = self._bump(key, ev.bump_series)
        if stored is not None:
            return stored
        event = ev.scheduler_event(
            pod,
            reason=reason,
            message=message,
            action=action,
            type_=type_,
            instance=self._instance,
        )
        return self._create(key, event)

    def forget_pod(self, uid: str) -> None:
        """Stop aggregating into events of a pod that is gone."""
        self._names.pop(uid, None)

    @staticmethod
    def _key(pod: Mapping[str, Any], *parts: str) -> _Key:
        uid = str((pod.get("metadata") or {}).get("uid") or "")
        return (uid, *parts)  # type: ignore[return-value]

    def _bump(self, key: _Key, bump: Any) -> dict[str, Any] | None:
        where = self._names.get(key[0], {}).get(key)
        if where is None:
            return None
        namespace, name = where
        try:
            return self._store.mutate("events", namespace, name, bump)
        except ApiError:
            del self._names[key[0]][key]  # the event expired or was deleted: record a new one
            return None

    def _create(self, key: _Key, event: dict[str, Any]) -> dict[str, Any] | None:
        namespace = event["metadata"]["namespace"]
        try:
            stored = self._store.create("events", namespace, event)
        except ApiError as error:
            log.debug(
                "dropped event %s for %s/%s: %s",
                event["reason"],
                namespace,
                event["involvedObject"]["name"],
                error,
            )
            return None
        self._names.setdefault(key[0], {})[key] = (namespace, stored["metadata"]["name"])
        return stored
