"""The object store: every object, one global resourceVersion, bounded per-resource history.

Like etcd behind kube-apiserver: each committed change gets the next revision (the global
``resource_version``); each resource keeps a bounded history of its changes so watches can
resume and paginated lists can read a consistent snapshot, until the history is compacted
(then 410 Expired). The API server's write semantics that are not HTTP-specific live here
too: create defaults, optimistic concurrency on replace, status subresource rules,
graceful deletion, finalizers, namespace termination and ownerReference garbage collection.

Objects are stored as a dict plus their orjson bytes: readers get deep copies via
``orjson.loads`` and LIST/watch send the stored bytes without re-serialising.
Single-threaded by design: call it from the event loop thread only.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from kubesim import errors, validation
from kubesim.controllers import Controllers
from kubesim.object_meta import format_time, owner_uids
from kubesim.resources import RESOURCES, apply_create_defaults, generated_name, prepare_update

__all__ = ["Change", "ObjectStore", "format_time", "owner_uids"]

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace or "", name)
Listener = Callable[[str, str, dict[str, Any]], None]
ChangeListener = Callable[["Change"], None]
Item = tuple[Key, dict[str, Any], bytes]
_List = list  # the builtin, since ObjectStore.list shadows it in the class body

TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})
FIRST_RESOURCE_VERSION = 100  # clients treat "0" specially; start well clear of it


@dataclass(slots=True)
class Change:
    """One committed change. ``obj``/``prev`` are the store's own dicts: never mutate them."""

    type: str  # ADDED | MODIFIED | DELETED
    resource: str
    key: Key
    rv: int
    obj: dict[str, Any]
    raw: bytes
    prev: dict[str, Any] | None
    prev_raw: bytes | None


@dataclass(slots=True)
class _Stored:
    obj: dict[str, Any]
    raw: bytes


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
        obj["metadata"] = meta
    return meta


class ObjectStore:
    """All objects, one global monotonically increasing resourceVersion (like the etcd
    revision), bounded history."""

    def __init__(self, *, history: int = 10_000, event_history: int = 1_000) -> None:
        self._objects: dict[str, dict[Key, _Stored]] = {r: {} for r in RESOURCES}
        self._sorted_keys: dict[str, _List[Key] | None] = {r: None for r in RESOURCES}
        self._history: dict[str, deque[Change]] = {
            r: deque(maxlen=event_history if r == "events" else history) for r in RESOURCES
        }
        # Changes with rv > horizon are all retained; older resourceVersions are 410.
        self._horizon: dict[str, int] = dict.fromkeys(RESOURCES, 0)
        self._rv = FIRST_RESOURCE_VERSION
        self._dependents: dict[str, set[tuple[str, Key]]] = {}
        self._namespace_counts: dict[str, int] = {}  # objects per namespace
        self._uids: set[str] = set()
        self.controllers = Controllers(self)
        self._listeners: _List[Listener] = []
        self._change_listeners: _List[ChangeListener] = []
        self._pending: deque[Change] = deque()
        self._notifying = False
        # Set when a kubelet is attached: scheduled pods then terminate gracefully.
        self.graceful_pods = False

    def start_history_at(self, rv: int) -> None:
        """Start an empty store's revisions at ``rv`` (a cluster whose history is further
        along, or a new one after an etcd restore without a revision bump)."""
        if any(self._objects.values()) or rv < 1:
            raise ValueError("only an empty store's history can be moved, to rv >= 1")
        self._rv = rv

    # --- reading ---------------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        return self._rv

    def get(self, resource: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        stored = self._objects[resource].get((namespace or "", name))
        return None if stored is None else orjson.loads(stored.raw)

    def list(self, resource: str, namespace: str | None = None) -> _List[dict[str, Any]]:
        return [orjson.loads(raw) for _, _, raw in self.items(resource, namespace)]

    def items(self, resource: str, namespace: str | None = None) -> _List[Item]:
        """Current (key, obj, raw) sorted by key; obj is the store's own dict (read-only)."""
        objects = self._objects[resource]
        keys = self._keys(resource)
        if namespace:
            keys = [k for k in keys if k[0] == namespace]
        return [(k, objects[k].obj, objects[k].raw) for k in keys]

    def snapshot(self, resource: str, namespace: str | None, rv: int) -> _List[Item]:
        """The objects as they were at revision ``rv`` (sorted by key); 410 past the history."""
        if rv >= self._rv:
            return self.items(resource, namespace)
        if rv < self._horizon[resource]:
            raise errors.expired(errors.CONTINUE_EXPIRED_MESSAGE)
        state: dict[Key, tuple[dict[str, Any], bytes]] = {
            k: (s.obj, s.raw) for k, s in self._objects[resource].items()
        }
        for change in reversed(self._history[resource]):
            if change.rv <= rv:
                break
            if change.prev is None or change.prev_raw is None:
                state.pop(change.key, None)
            else:
                state[change.key] = (change.prev, change.prev_raw)
        keys = sorted(k for k in state if not namespace or k[0] == namespace)
        return [(k, state[k][0], state[k][1]) for k in keys]

    def changes_since(self, resource: str, rv: int) -> _List[Change]:
        """Every change of ``resource`` after ``rv``; 410 Expired when not all are retained."""
        horizon = self._horizon[resource]
        if rv < horizon:
            raise errors.expired(f"too old resource version: {rv} ({horizon + 1})")
        found: _List[Change] = []
        for change in reversed(self._history[resource]):
            if change.rv <= rv:
                break
            found.append(change)
        found.reverse()
        return found

    def horizon(self, resource: str) -> int:
        return self._horizon[resource]

    def _keys(self, resource: str) -> _List[Key]:
        keys = self._sorted_keys[resource]
        if keys is None:
            keys = sorted(self._objects[resource])
            self._sorted_keys[resource] = keys
        return keys

    # --- listeners -------------------------------------------------------------------------

    def add_listener(self, fn: Listener) -> None:
        """fn(event_type, resource, obj copy) after each committed change, in order."""
        self._listeners.append(fn)

    def add_change_listener(self, fn: ChangeListener) -> None:
        """fn(Change) with the store's own objects and bytes (the watch fan-out)."""
        self._change_listeners.append(fn)

    def remove_change_listener(self, fn: ChangeListener) -> None:
        self._change_listeners.remove(fn)

    def _notify(self, change: Change) -> None:
        # Listeners may write to the store; their changes are delivered after this one.
        self._pending.append(change)
        if self._notifying:
            return
        self._notifying = True
        try:
            while self._pending:
                current = self._pending.popleft()
                for change_listener in list(self._change_listeners):
                    try:
                        change_listener(current)
                    except Exception:
                        log.exception("watch listener failed on %s", current.key)
                for listener in list(self._listeners):
                    try:
                        listener(current.type, current.resource, orjson.loads(current.raw))
                    except Exception:
                        log.exception(
                            "store listener failed on %s %s/%s", current.type, *current.key
                        )
        finally:
            self._notifying = False

    # --- committing ------------------------------------------------------------------------

    def _commit(
        self,
        event_type: str,
        resource: str,
        key: Key,
        obj: dict[str, Any] | None,
        prev: _Stored | None,
    ) -> Change:
        self._rv += 1
        if obj is None:  # DELETED: the final state with a new resourceVersion
            assert prev is not None
            obj = orjson.loads(prev.raw)
        _meta(obj)["resourceVersion"] = str(self._rv)
        raw = orjson.dumps(obj)
        objects = self._objects[resource]
        uid = obj["metadata"].get("uid")
        if event_type == "DELETED":
            del objects[key]
            self._sorted_keys[resource] = None
            self._uids.discard(uid)
            if key[0]:
                self._namespace_counts[key[0]] -= 1
        else:
            if key not in objects:
                self._sorted_keys[resource] = None
                self._uids.add(uid)
                if key[0]:
                    self._namespace_counts[key[0]] = self._namespace_counts.get(key[0], 0) + 1
            objects[key] = _Stored(obj, raw)
        self._index_owners(resource, key, prev.obj if prev else None, obj, event_type)
        change = Change(
            event_type,
            resource,
            key,
            self._rv,
            obj,
            raw,
            prev.obj if prev else None,
            prev.raw if prev else None,
        )
        history = self._history[resource]
        if history.maxlen is not None and len(history) == history.maxlen:
            self._horizon[resource] = history[0].rv
        history.append(change)
        self._notify(change)
        return change

    def _index_owners(
        self,
        resource: str,
        key: Key,
        old: dict[str, Any] | None,
        new: dict[str, Any],
        event_type: str,
    ) -> None:
        old_uids = owner_uids(old) if old else set()
        new_uids = set() if event_type == "DELETED" else owner_uids(new)
        for uid in old_uids - new_uids:
            deps = self._dependents.get(uid)
            if deps is not None:
                deps.discard((resource, key))
                if not deps:
                    del self._dependents[uid]
        for uid in new_uids - old_uids:
            self._dependents.setdefault(uid, set()).add((resource, key))

    def compact(self) -> None:
        """Forget all history: every older resourceVersion becomes 410 (etcd compaction)."""
        for resource, history in self._history.items():
            history.clear()
            self._horizon[resource] = self._rv

    # --- writes ----------------------------------------------------------------------------

    def _check_namespace(self, resource: str, namespace: str | None) -> str:
        if not RESOURCES[resource].namespaced:
            return ""
        if not namespace:
            raise errors.bad_request("the server could not find the requested resource")
        stored = self._objects["namespaces"].get(("", namespace))
        if stored is None:
            raise errors.not_found("namespaces", namespace)
        return namespace

    def create(self, resource: str, namespace: str | None, obj: dict[str, Any]) -> dict[str, Any]:
        """Create; fills uid, resourceVersion, creationTimestamp, generateName; validates."""
        info = RESOURCES[resource]
        obj = orjson.loads(orjson.dumps(obj))
        meta = _meta(obj)
        ns = self._check_namespace(resource, namespace or meta.get("namespace"))
        if ns:
            terminating = self._objects["namespaces"][("", ns)].obj
            if terminating.get("status", {}).get("phase") == "Terminating":
                raise errors.ApiError(
                    403,
                    "Forbidden",
                    f'{resource} "{meta.get("name") or meta.get("generateName", "")}" is '
                    f"forbidden: unable to create new content in namespace {ns} because it is "
                    "being terminated",
                    details={"name": meta.get("name", ""), "kind": resource},
                )
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = generated_name(str(meta["generateName"]))
        if not meta.get("name"):
            raise errors.invalid(
                info.kind,
                "",
                [
                    {
                        "reason": "FieldValueRequired",
                        "message": "Required value: name or generateName is required",
                        "field": "metadata.name",
                    }
                ],
                group=info.group,
            )
        for field in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(field, None)
        apply_create_defaults(resource, obj)
        validation.decode(resource, obj)
        validation.validate_create(resource, obj)
        key = (ns, str(meta["name"]))
        if key in self._objects[resource]:
            raise errors.already_exists(resource, key[1], group=info.group)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = format_time()
        return orjson.loads(self._commit("ADDED", resource, key, obj, None).raw)

    def mutate(
        self, resource: str, namespace: str | None, name: str, fn: Callable[[dict[str, Any]], None]
    ) -> dict[str, Any]:
        """fn mutates a copy; the store bumps resourceVersion and records MODIFIED.

        404 when absent. A change that leaves the object as it was writes nothing (as
        kube-apiserver skips no-op updates). Anything fn raises aborts the write.
        """
        key = (namespace or "", name) if RESOURCES[resource].namespaced else ("", name)
        prev = self._objects[resource].get(key)
        if prev is None:
            raise errors.not_found(resource, name, group=RESOURCES[resource].group)
        obj = orjson.loads(prev.raw)
        fn(obj)
        meta = _meta(obj)
        meta["resourceVersion"] = prev.obj["metadata"]["resourceVersion"]
        if obj == prev.obj:
            return obj
        change = self._commit("MODIFIED", resource, key, obj, prev)
        if (
            meta.get("deletionTimestamp")
            and prev.obj["metadata"].get("finalizers")
            and not meta.get("finalizers")
            and (resource != "pods" or not self._awaits_kubelet(change.obj))
        ):
            self.remove(resource, namespace, name)
        return orjson.loads(change.raw)

    def replace(
        self,
        resource: str,
        namespace: str | None,
        name: str,
        new: dict[str, Any],
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """An update (PUT) as the API server applies it.

        Conflict when ``metadata.resourceVersion`` is set and stale; ``subresource="status"``
        changes only status; main-resource writes keep status for resources with a status
        subresource; uid/creationTimestamp/deletion fields stay the server's.
        """
        info = RESOURCES[resource]
        meta_new = new.get("metadata") or {}
        if meta_new.get("name") not in (None, name):
            raise errors.bad_request(
                f"the name of the object ({meta_new.get('name')}) does not match the name on "
                f"the URL ({name})"
            )

        def apply(obj: dict[str, Any]) -> None:
            wanted_rv = meta_new.get("resourceVersion")
            if wanted_rv not in (None, "") and str(wanted_rv) != obj["metadata"]["resourceVersion"]:
                raise errors.conflict(resource, name, group=info.group)
            updated = prepare_update(resource, obj, new, subresource=subresource)
            validation.decode(resource, updated)
            validation.validate_update(resource, obj, updated, subresource=subresource or "")
            obj.clear()
            obj.update(updated)

        return self.mutate(resource, namespace, name, apply)

    # --- deletion --------------------------------------------------------------------------

    def _awaits_kubelet(self, pod: dict[str, Any]) -> bool:
        return (
            self.graceful_pods
            and bool(pod.get("spec", {}).get("nodeName"))
            and pod.get("status", {}).get("phase") not in TERMINAL_PHASES
        )

    def delete(
        self,
        resource: str,
        namespace: str | None,
        name: str,
        *,
        grace_period_seconds: int | None = None,
        preconditions: dict[str, Any] | None = None,
        propagation_policy: str | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """A DELETE as the API server applies it: (object, removed_now).

        Scheduled pods with a kubelet attached and a grace period > 0 only get
        deletionTimestamp/deletionGracePeriodSeconds (the kubelet removes them); objects with
        finalizers wait for them; namespaces terminate and remove their contents first.
        """
        info = RESOURCES[resource]
        key = (namespace or "", name) if info.namespaced else ("", name)
        stored = self._objects[resource].get(key)
        if stored is None:
            raise errors.not_found(resource, name, group=info.group)
        meta = stored.obj["metadata"]
        for field, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
            wanted = (preconditions or {}).get(field)
            if wanted not in (None, "") and str(wanted) != str(meta.get(field)):
                raise errors.conflict(
                    resource,
                    name,
                    f"Precondition failed: {label} in precondition: {wanted}, "
                    f"{label} in object meta: {meta.get(field)}",
                    group=info.group,
                )
        if resource == "namespaces":
            return self.controllers.terminate_namespace(name), False
        if propagation_policy == "Orphan":
            self.controllers.orphan_dependents(str(meta["uid"]))
        now = datetime.now(UTC)
        if resource == "pods" and self._awaits_kubelet(stored.obj):
            spec_grace = stored.obj.get("spec", {}).get("terminationGracePeriodSeconds")
            grace = grace_period_seconds if grace_period_seconds is not None else spec_grace
            grace = 30 if grace is None else max(int(grace), 0)
            current = meta.get("deletionGracePeriodSeconds")
            if grace > 0 and (current is None or grace < int(current)):

                def terminate(obj: dict[str, Any]) -> None:
                    obj["metadata"]["deletionTimestamp"] = format_time(
                        now + timedelta(seconds=grace)
                    )
                    obj["metadata"]["deletionGracePeriodSeconds"] = grace

                return self.mutate(resource, namespace, name, terminate), False
            if grace > 0:
                return self.get(resource, namespace, name) or {}, False
        if meta.get("finalizers"):
            if meta.get("deletionTimestamp"):
                return self.get(resource, namespace, name) or {}, False

            def mark(obj: dict[str, Any]) -> None:
                obj["metadata"]["deletionTimestamp"] = format_time(now)
                obj["metadata"]["deletionGracePeriodSeconds"] = 0

            return self.mutate(resource, namespace, name, mark), False
        if propagation_policy == "Foreground":
            self.controllers.collect_dependents(str(meta["uid"]))
        removed = self.remove(resource, namespace, name)
        return removed or {}, True

    def remove(self, resource: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """Final removal now: DELETED (new resourceVersion), then dependents are collected."""
        key = (namespace or "", name) if RESOURCES[resource].namespaced else ("", name)
        stored = self._objects[resource].get(key)
        if stored is None:
            return None
        change = self._commit("DELETED", resource, key, None, stored)
        uid = str(change.obj["metadata"].get("uid", ""))
        if uid in self._dependents:
            self._later(lambda: self.controllers.collect_dependents(uid))
        if key[0] and self.namespace_terminating(key[0]):
            self._later(lambda: self.controllers.finish_namespace(key[0]))
        return orjson.loads(change.raw)

    def _later(self, fn: Callable[[], None]) -> None:
        """Run controller work after the current request, as the real controllers lag."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            fn()
            return
        loop.call_soon(fn)

    # --- what the controllers read ---------------------------------------------------------

    def dependents_of(self, owner_uid: str) -> _List[tuple[str, Key]]:
        """(resource, key) of the objects whose ownerReferences name ``owner_uid``."""
        return sorted(self._dependents.get(owner_uid, set()))

    def uid_exists(self, uid: str) -> bool:
        return uid in self._uids

    def keys_in_namespace(self, resource: str, namespace: str) -> _List[Key]:
        return [k for k in self._keys(resource) if k[0] == namespace]

    def namespace_object_count(self, namespace: str) -> int:
        return self._namespace_counts.get(namespace, 0)

    def namespace_terminating(self, namespace: str) -> bool:
        """True while the namespace exists with phase Terminating."""
        stored = self._objects["namespaces"].get(("", namespace))
        return stored is not None and stored.obj.get("status", {}).get("phase") == "Terminating"
