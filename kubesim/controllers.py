"""The control loops kube-controller-manager runs that kubesim needs: the garbage collector
(ownerReferences) and the namespace controller (a Terminating namespace empties, then goes).

They act through the store's public write methods, after the request that triggered them
(the store schedules them with ``loop.call_soon``), as the real controllers lag the API.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from kubesim import errors
from kubesim.object_meta import format_time, owner_uids
from kubesim.resources import RESOURCES

__all__ = ["Controllers", "ObjectStore"]

Key = tuple[str, str]  # (namespace or "", name)


class ObjectStore(Protocol):
    """What the controllers use of :class:`kubesim.store.ObjectStore`, which runs them."""

    def get(self, resource: str, namespace: str | None, name: str) -> dict[str, Any] | None: ...

    def mutate(
        self, resource: str, namespace: str | None, name: str, fn: Callable[[dict[str, Any]], None]
    ) -> dict[str, Any]: ...

    def delete(
        self, resource: str, namespace: str | None, name: str
    ) -> tuple[dict[str, Any], bool]: ...

    def remove(self, resource: str, namespace: str | None, name: str) -> dict[str, Any] | None: ...

    def _later(self, fn: Callable[[], None]) -> None: ...

    def dependents_of(self, owner_uid: str) -> list[tuple[str, Key]]: ...

    def uid_exists(self, uid: str) -> bool: ...

    def keys_in_namespace(self, resource: str, namespace: str) -> list[Key]: ...

    def namespace_object_count(self, namespace: str) -> int: ...

    def namespace_terminating(self, namespace: str) -> bool: ...


log = logging.getLogger(__name__)


def _without_owner(owner_uid: str) -> Any:
    def drop(obj: dict[str, Any]) -> None:
        refs = [
            ref
            for ref in obj["metadata"].get("ownerReferences") or []
            if ref.get("uid") != owner_uid
        ]
        if refs:
            obj["metadata"]["ownerReferences"] = refs
        else:
            obj["metadata"].pop("ownerReferences", None)

    return drop


class Controllers:
    """Garbage collection and namespace termination for one store."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    # --- garbage collector -----------------------------------------------------------------

    def collect_dependents(self, owner_uid: str) -> None:
        """Background propagation: delete dependents whose owners are all gone; dependents
        with another live owner only lose the dangling reference."""
        store = self.store
        for resource, (namespace, name) in store.dependents_of(owner_uid):
            obj = store.get(resource, namespace or None, name)
            if obj is None:
                continue
            others = owner_uids(obj) - {owner_uid}
            if any(store.uid_exists(uid) for uid in others):
                store.mutate(resource, namespace or None, name, _without_owner(owner_uid))
                continue
            log.debug("garbage collecting %s %s/%s", resource, namespace, name)
            try:
                store.delete(resource, namespace or None, name)
            except errors.ApiError:
                log.debug("dependent %s %s/%s already gone", resource, namespace, name)

    def orphan_dependents(self, owner_uid: str) -> None:
        """Orphan propagation: dependents stay, without the reference to the owner."""
        for resource, (namespace, name) in self.store.dependents_of(owner_uid):
            self.store.mutate(resource, namespace or None, name, _without_owner(owner_uid))

    # --- namespace controller --------------------------------------------------------------

    def terminate_namespace(self, name: str) -> dict[str, Any]:
        """Mark the namespace Terminating (MODIFIED); its contents go after this request."""
        store = self.store
        if store.namespace_terminating(name):
            return store.get("namespaces", None, name) or {}

        def terminating(obj: dict[str, Any]) -> None:
            obj["metadata"]["deletionTimestamp"] = format_time()
            obj["metadata"]["deletionGracePeriodSeconds"] = 0
            obj.setdefault("status", {})["phase"] = "Terminating"

        namespace = store.mutate("namespaces", None, name, terminating)
        store._later(lambda: self.empty_namespace(name))
        return namespace

    def empty_namespace(self, name: str) -> None:
        """Delete every object in the namespace (pods gracefully), then the namespace."""
        for resource, info in RESOURCES.items():
            if not info.namespaced:
                continue
            for _, object_name in self.store.keys_in_namespace(resource, name):
                try:
                    self.store.delete(resource, name, object_name)
                except errors.ApiError:
                    log.debug("namespace %s: %s %s already gone", name, resource, object_name)
        self.finish_namespace(name)

    def finish_namespace(self, name: str) -> None:
        """Remove a Terminating namespace once nothing is left in it."""
        store = self.store
        if store.namespace_terminating(name) and store.namespace_object_count(name) == 0:
            log.info("namespace %s is empty: removing it", name)
            store.remove("namespaces", None, name)
