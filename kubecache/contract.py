"""The Redis contract between the cacher and its readers.

The cacher's leader is the only writer. Readers are the spawners of every hub
replica and the ``kubecache`` CLI. Nothing outside this module spells a key or
a record field; both sides import it.

Key layout (``P`` is the deployment's prefix, default ``kubecache:v1:``; two
deployments with different prefixes share one Redis without touching each
other):

=========================  ======  ============================================
key                        type    content
=========================  ======  ============================================
``P health``               hash    cache health, see :class:`CacheHealth`
``P pods``                 hash    field ``namespace/name`` -> :class:`PodRecord`
                                   (orjson, without namespace and name: the
                                   field holds them; see decode_pod_record)
``P pod-rv``               hash    field ``namespace/name`` -> resourceVersion of
                                   the pod's deletion (tombstones only: a live
                                   pod's resourceVersion is the ``rv`` of its
                                   record). The fenced write script compares
                                   against both; tombstones older than the last
                                   full list are trimmed.
``P events:namespace/name`` list   the pod's capped event log, oldest first,
                                   :class:`EventRecord` entries (orjson)
``P feed``                 stream  change feed, :class:`FeedEntry` fields,
                                   capped (approximate MAXLEN)
``P hub-lease:name``       string  identity of the hub replica allowed to run,
                                   with a TTL (written by ``kubecache hub-standby``,
                                   not by the cacher)
=========================  ======  ============================================

Guarantees the writer gives:

- A record and the feed entry announcing it are written in one atomic step
  (one Lua script), so a reader woken by the feed always reads the new record.
- Writes are fenced: a write carries the writer's epoch and is refused unless
  it equals ``P health``'s epoch, and a pod write or delete is refused unless
  its resourceVersion is newer than both the stored record's ``rv`` and the
  pod's tombstone in ``P pod-rv``. A deposed leader, or a late write from an
  old watch, can never overwrite a newer record or resurrect a deleted pod.
- ``epoch`` changes on every full resync and whenever Redis comes back empty;
  it never repeats (it is at least the current Unix time in milliseconds).
- ``heartbeat_ms`` and the ``now_ms`` a reader compares it with are both
  Redis server time (``TIME``), so hub and cacher clocks may disagree.

Readers tell "pod absent" (fresh cache, no record) from "cache unknown or
stale" with :meth:`CacheHealth.freshness`.

Operators read a user's state with redis-cli, e.g.::

    redis-cli HGET kubecache:v1:pods jhub/jupyter-alice
    redis-cli LRANGE kubecache:v1:events:jhub/jupyter-alice 0 -1
    redis-cli HGETALL kubecache:v1:health
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, NotRequired, TypedDict, cast

import orjson

from kubecache.selector import SelectorError, parsed_selector

SCHEMA_VERSION = 1
DEFAULT_PREFIX = f"kubecache:v{SCHEMA_VERSION}:"

#: Labels copied from the pod into its record (all others are dropped). Only
#: per-pod labels: the deployment-wide ones (app, release, chart, heritage,
#: app.kubernetes.io/*) are the same on every pod and would cost ~270 bytes per
#: record. The name labels are left out when the pod carries the raw-name
#: annotation of the same key (KubeSpawner >= 7), see :func:`user_and_server`.
RECORD_LABELS: frozenset[str] = frozenset(
    {
        "component",
        "hub.jupyter.org/username",
        "hub.jupyter.org/servername",
    }
)
#: Label/annotation keys naming the hub user and server of a pod.
USERNAME_KEY = "hub.jupyter.org/username"
SERVERNAME_KEY = "hub.jupyter.org/servername"
#: Annotations copied into the record: every key with this prefix.
RECORD_ANNOTATION_PREFIX = "hub.jupyter.org/"
#: Longest label or annotation value kept in a record (longer ones are cut;
#: the SHA-256 of a cut annotation's full value is kept in ``cut_sha256``, so
#: readers still match full user and server names exactly, see :func:`names_match`).
MAX_META_VALUE = 256
#: Longest message kept in a record or event entry (longer ones are cut).
MAX_MESSAGE = 1024
#: Default number of entries kept in a pod's event log.
DEFAULT_EVENT_LOG_CAP = 50
#: Default approximate length of the change feed.
DEFAULT_FEED_MAXLEN = 100_000


class ContractError(ValueError):
    """Data in Redis does not follow this contract (malformed or foreign)."""


# --------------------------------------------------------------------------
# Keys


@dataclass(frozen=True)
class Keys:
    """The key layout of one deployment."""

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        problem = prefix_problem(self.prefix)
        if problem:
            raise ValueError(problem)

    @property
    def health(self) -> str:
        return self.prefix + "health"

    @property
    def pods(self) -> str:
        return self.prefix + "pods"

    @property
    def pod_rv(self) -> str:
        return self.prefix + "pod-rv"

    @property
    def feed(self) -> str:
        return self.prefix + "feed"

    def events(self, pod_key: str) -> str:
        """The event log key of the pod ``pod_key`` (``namespace/name``)."""
        return self.prefix + "events:" + pod_key

    def hub_lease(self, name: str) -> str:
        """The lease that decides which of several hub replicas runs (``kubecache hub-standby``)."""
        return self.prefix + "hub-lease:" + name

    @property
    def events_pattern(self) -> str:
        """SCAN pattern matching every event log of this deployment."""
        return self.prefix + "events:*"


def prefix_problem(prefix: str) -> str | None:
    """Why ``prefix`` cannot be a key prefix, or None when it can."""
    if not prefix:
        return "the Redis key prefix must not be empty (default: kubecache:v1:)"
    if not prefix.endswith(":"):
        return f"the Redis key prefix {prefix!r} must end with ':' (e.g. 'kubecache:v1:')"
    if len(prefix) > 64 or any(c.isspace() or c in "*?[]" for c in prefix):
        return (
            f"the Redis key prefix {prefix!r} must be at most 64 characters "
            "without whitespace or glob characters (*?[])"
        )
    return None


def user_and_server(record: PodRecord) -> tuple[str, str]:
    """The hub user and server name of a pod record.

    The raw names from the annotations (KubeSpawner >= 7), else the
    (escaped) names from the labels of older pods.
    """
    labels, annotations = record["labels"], record["annotations"]
    user = annotations.get(USERNAME_KEY) or labels.get(USERNAME_KEY, "")
    server = annotations.get(SERVERNAME_KEY)
    if server is None:
        server = labels.get(SERVERNAME_KEY, "")
    return user, server


def full_value_sha256(value: str) -> str:
    """The digest kept in ``cut_sha256`` for a value longer than :data:`MAX_META_VALUE`."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def names_match(record: PodRecord, *, user: str | None = None, server: str | None = None) -> bool:
    """Whether the pod's full user (and server) name equal ``user`` (``server``) exactly.

    A name cut to :data:`MAX_META_VALUE` in the record is compared by the
    SHA-256 of its full value, so a long name never matches another name that
    shares its first characters; a cut name without a digest (an older
    cacher) matches nothing longer than what was kept.
    """
    record_user, record_server = user_and_server(record)
    digests = record.get("cut_sha256", {})
    wanted_names = ((USERNAME_KEY, user, record_user), (SERVERNAME_KEY, server, record_server))
    for key, wanted, kept in wanted_names:
        if wanted is None:
            continue
        digest = digests.get(key) if record["annotations"].get(key) == kept else None
        if digest is not None:
            if len(wanted) <= len(kept) or full_value_sha256(wanted) != digest:
                return False
        elif wanted != kept:
            return False
    return True


def name_was_cut(record: PodRecord, key: str) -> bool:
    """Whether the record keeps only the first :data:`MAX_META_VALUE` characters of ``key``."""
    return key in record.get("cut_sha256", {})


def pod_key(namespace: str, name: str) -> str:
    """The field naming a pod in ``P pods``, ``P pod-rv`` and the feed."""
    return f"{namespace}/{name}"


def split_pod_key(key: str) -> tuple[str, str]:
    namespace, sep, name = key.partition("/")
    if not sep or not namespace or not name:
        raise ContractError(f"malformed pod key {key!r}: expected 'namespace/name'")
    return namespace, name


# --------------------------------------------------------------------------
# Records


class ContainerSummary(TypedDict):
    """State of one container (init containers are not summarised).

    ``state`` is ``running``, ``waiting`` or ``terminated``; ``reason`` is the
    waiting or terminated reason (``ContainerCreating``, ``ImagePullBackOff``,
    ``CrashLoopBackOff``, ``OOMKilled``, ``Completed``, ``Error`` ...);
    ``exit_code`` is set when terminated (the last termination, for a waiting
    container that crashed before). The stored JSON leaves out ``restarts``
    when it is 0; :func:`decode_pod_record` restores it.
    """

    name: str
    ready: bool
    state: Literal["running", "waiting", "terminated"]
    restarts: int
    reason: NotRequired[str]
    message: NotRequired[str]
    exit_code: NotRequired[int]


class PodRecord(TypedDict):
    """The compact state of one pod; orjson, keys with no value are omitted.

    Times are Unix seconds (int, the API's second precision).

    - ``namespace``, ``name``, ``uid``: identity; ``rv``: resourceVersion (int)
    - ``phase``: Pending, Running, Succeeded, Failed or Unknown
    - ``ready``: the Ready condition is True
    - ``ip``: status.podIP; ``node``: spec.nodeName
    - ``created``: metadata.creationTimestamp; ``started``: status.startTime
    - ``deleted``: metadata.deletionTimestamp (the pod is terminating)
    - ``grace``: metadata.deletionGracePeriodSeconds
    - ``reason``/``message``: status.reason/message (e.g. Evicted)
    - ``unschedulable``: message of PodScheduled=False/Unschedulable
    - ``containers``: :class:`ContainerSummary` per container, spec order
    - ``labels``: the :data:`RECORD_LABELS` the pod has (name labels only
      when no annotation of the same key exists)
    - ``annotations``: the ``hub.jupyter.org/*`` annotations the pod has
    - ``cut_sha256``: for each annotation whose value was cut to
      :data:`MAX_META_VALUE`, the SHA-256 (hex) of the full UTF-8 value;
      absent when nothing was cut (records written before it existed never
      have it: a cut name in them matches no full name)

    Size: a ready pod's stored record is about 360 bytes of JSON; with its
    hash entry it costs about 460 bytes of Redis memory (473 on a realistic
    mix of states; benchmarks/record_size.py).
    """

    namespace: str
    name: str
    uid: str
    rv: int
    phase: str
    ready: bool
    created: NotRequired[int]
    ip: NotRequired[str]
    node: NotRequired[str]
    started: NotRequired[int]
    deleted: NotRequired[int]
    grace: NotRequired[int]
    reason: NotRequired[str]
    message: NotRequired[str]
    unschedulable: NotRequired[str]
    containers: list[ContainerSummary]
    labels: dict[str, str]
    annotations: dict[str, str]
    cut_sha256: NotRequired[dict[str, str]]


class EventRecord(TypedDict):
    """One Kubernetes Event about a pod, as kept in the pod's event log.

    The same Event object updated later (``count`` incremented, e.g. BackOff)
    is appended again with its new ``rv``; readers that show each event once
    keep the last entry per ``uid``.

    - ``uid``: the Event's uid; ``rv``: its resourceVersion (int)
    - ``pod_uid``: involvedObject.uid (readers ignore entries of another pod
      that had the same name)
    - ``type``: Normal or Warning; ``reason``: e.g. Scheduled, FailedScheduling
    - ``message``: cut to :data:`MAX_MESSAGE`
    - ``first``/``last``: the API's RFC 3339 strings (``last`` is
      lastTimestamp, else eventTime, else firstTimestamp; what KubeSpawner
      shows in progress messages)
    - ``count``: how often it happened (1 when the API gives none)
    """

    uid: str
    rv: int
    pod_uid: str
    type: str
    reason: str
    message: str
    first: NotRequired[str]
    last: NotRequired[str]
    count: int


FeedKind = Literal["pod", "gone", "event", "health"]


class FeedEntry(TypedDict):
    """One change feed entry (stream fields, all strings in Redis).

    - ``kind``: ``pod`` (record written), ``gone`` (record deleted),
      ``event`` (event appended to the pod's log), ``health`` (epoch or
      synced changed: every waiter re-reads)
    - ``key``: ``namespace/name`` (empty for ``health``)
    - ``rv``: resourceVersion of the change (0 for ``health``)
    - ``epoch``: the writer's epoch
    """

    kind: FeedKind
    key: str
    rv: int
    epoch: int


def encode(record: PodRecord | EventRecord) -> bytes:
    """orjson bytes of a record, keys with value None dropped."""
    return orjson.dumps({k: v for k, v in record.items() if v is not None})


def _load_object(raw: bytes | str, what: str) -> dict[str, Any]:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise ContractError(f"malformed {what} in Redis (not JSON): {e}") from e
    if not isinstance(value, dict):
        raise ContractError(f"malformed {what} in Redis: expected an object")
    return value


def _require(value: dict[str, Any], what: str, fields: dict[str, type | tuple[type, ...]]) -> None:
    for field, kind in fields.items():
        if not isinstance(value.get(field), kind) or isinstance(value.get(field), bool) != (
            kind is bool
        ):
            raise ContractError(
                f"malformed {what} in Redis: field {field!r} missing or not "
                f"{getattr(kind, '__name__', kind)}"
            )


def _require_optional(value: dict[str, Any], what: str, fields: dict[str, type]) -> None:
    """Like :func:`_require` for fields that may be absent (or null).

    Exact types: orjson makes only str, int, bool, float, list and dict, and a
    bool is not an int here. (Hot path: the spawner decodes on every poll.)
    """
    for field, kind in fields.items():
        got = value.get(field)
        if got is not None and type(got) is not kind:
            raise ContractError(
                f"malformed {what} in Redis: field {field!r} is not {kind.__name__}"
            )


_POD_FIELDS: dict[str, type | tuple[type, ...]] = {
    "namespace": str,
    "name": str,
    "uid": str,
    "rv": int,
    "phase": str,
    "ready": bool,
}
_OPTIONAL_POD_FIELDS: dict[str, type] = {
    "created": int,
    "ip": str,
    "node": str,
    "started": int,
    "deleted": int,
    "grace": int,
    "reason": str,
    "message": str,
    "unschedulable": str,
}
_CONTAINER_FIELDS: dict[str, type] = {
    "name": str,
    "ready": bool,
    "state": str,
    "restarts": int,
}
_OPTIONAL_CONTAINER_FIELDS: dict[str, type] = {
    "reason": str,
    "message": str,
    "exit_code": int,
}
_CONTAINER_STATES = ("running", "waiting", "terminated")
_OPTIONAL_EVENT_FIELDS: dict[str, type] = {"first": str, "last": str}
_EVENT_FIELDS: dict[str, type | tuple[type, ...]] = {
    "uid": str,
    "rv": int,
    "pod_uid": str,
    "type": str,
    "reason": str,
    "message": str,
    "count": int,
}


def decode_pod_record(raw: bytes | str, *, key: str | None = None) -> PodRecord:
    """Parse a pod record read from field ``key`` of ``P pods``.

    The stored form leaves out ``namespace`` and ``name``: the field
    (``namespace/name``) already holds them, so readers pass it as ``key``.
    Raises :class:`ContractError` when the record is malformed or names
    another pod than its field.
    """
    value = _load_object(raw, "pod record")
    if key is not None:
        namespace, name = split_pod_key(key)
        if value.setdefault("namespace", namespace) != namespace or (
            value.setdefault("name", name) != name
        ):
            raise ContractError(f"malformed pod record in Redis: field {key!r} holds another pod")
    _require(value, "pod record", _POD_FIELDS)
    _require_optional(value, "pod record", _OPTIONAL_POD_FIELDS)
    value.setdefault("containers", [])
    value.setdefault("labels", {})
    value.setdefault("annotations", {})
    if not isinstance(value["containers"], list):
        raise ContractError("malformed pod record in Redis: field 'containers' is not a list")
    for index, container in enumerate(value["containers"]):
        what = f"pod record (container {index})"
        if not isinstance(container, dict):
            raise ContractError(f"malformed {what} in Redis: not an object")
        container.setdefault("restarts", 0)  # left out of the stored JSON when 0
        for field, kind in _CONTAINER_FIELDS.items():
            if type(container.get(field)) is not kind:
                raise ContractError(
                    f"malformed {what} in Redis: field {field!r} missing or not {kind.__name__}"
                )
        _require_optional(container, what, _OPTIONAL_CONTAINER_FIELDS)
        if container["state"] not in _CONTAINER_STATES:
            raise ContractError(f"malformed {what} in Redis: unknown state {container['state']!r}")
    for field in ("labels", "annotations", "cut_sha256"):
        mapping = value.get(field, {})
        if type(mapping) is not dict or any(type(v) is not str for v in mapping.values()):
            raise ContractError(
                f"malformed pod record in Redis: field {field!r} is not an object of strings"
            )
    return cast(PodRecord, value)


def decode_event_record(raw: bytes | str) -> EventRecord:
    """Parse an event log entry; raises :class:`ContractError` when malformed."""
    value = _load_object(raw, "event record")
    _require(value, "event record", _EVENT_FIELDS)
    _require_optional(value, "event record", _OPTIONAL_EVENT_FIELDS)
    return cast(EventRecord, value)


def encode_feed_entry(entry: FeedEntry) -> dict[str, str]:
    return {k: str(v) for k, v in entry.items()}


def decode_feed_entry(fields: Mapping[Any, Any]) -> FeedEntry:
    """Parse stream fields of a feed entry; raises :class:`ContractError`."""
    try:
        text = {_text(k): _text(v) for k, v in fields.items()}
    except UnicodeDecodeError as e:
        raise ContractError(f"malformed feed entry in Redis: {e}") from e
    kind = text.get("kind")
    if kind not in ("pod", "gone", "event", "health"):
        raise ContractError(f"malformed feed entry in Redis: unknown kind {kind!r}")
    try:
        return FeedEntry(
            kind=cast(FeedKind, kind),
            key=text.get("key", ""),
            rv=int(text.get("rv", "0")),
            epoch=int(text.get("epoch", "0")),
        )
    except ValueError as e:
        raise ContractError(f"malformed feed entry in Redis: {e}") from e


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


# --------------------------------------------------------------------------
# Cache health


class Freshness(enum.Enum):
    """How far a reader may trust the cache right now."""

    FRESH = "fresh"  # synced, heartbeat recent, watches healthy
    NOT_SYNCED = "not-synced"  # a (re)sync is running: records may be missing
    STALE = "stale"  # no recent heartbeat, or a watch cannot recover
    UNKNOWN = "unknown"  # no health record: no cacher ever wrote, or Redis was flushed
    INCOMPATIBLE = "incompatible"  # written by another schema version
    UNCOVERED = "uncovered"  # the cacher's namespaces or pod selector leave this pod out
    FAILED_OVER = "failed-over"  # health was written on another Redis primary (a promoted replica)

    @property
    def trusted(self) -> bool:
        """Whether an absent record means the pod is absent."""
        return self is Freshness.FRESH


WatchState = Literal["ok", "retrying", "failed"]

#: Health hash fields (all strings in Redis).
HEALTH_FIELDS = (
    "schema",  # SCHEMA_VERSION
    "leader",  # identity of the cacher replica that writes
    "epoch",  # int, see module docstring
    "synced",  # "1" once the epoch's initial list of pods is complete
    "heartbeat_ms",  # Redis TIME of the leader's last heartbeat, ms
    "pods_rv",  # last pod resourceVersion applied
    "events_rv",  # last event resourceVersion applied
    "pods_watch",  # ok | retrying | failed, with the reason after a space
    "events_watch",
    "namespaces",  # comma-separated, empty for all
    "pod_selector",  # label selector of the pods the cacher tracks
    "lag_ms",  # recent event->Redis lag (p99 over the last heartbeat period), ms
    "records",  # number of pod records the leader holds
    "pods_progress_ms",  # Redis time of the pods watch's last sign of progress (line, bookmark)
    "events_progress_ms",  # the same for the events watch
    "progress_stale_ms",  # promise: a progressing watch shows a sign at least this often
    "primary_replid",  # master_replid of the Redis primary this epoch writes to ('' if unknown)
    "primary_addr",  # host:port of that primary, for operators
    "failovers",  # Redis failovers this cacher noticed (each one started a new epoch)
    "last_failover_ms",  # Redis time of the last one, 0 if none
)


@dataclass(frozen=True)
class CacheHealth:
    schema: int
    leader: str
    epoch: int
    synced: bool
    heartbeat_ms: int
    pods_rv: str = ""
    events_rv: str = ""
    pods_watch: str = "ok"
    events_watch: str = "ok"
    namespaces: str = ""
    pod_selector: str = ""
    lag_ms: int = 0
    records: int = 0
    pods_progress_ms: int = 0
    events_progress_ms: int = 0
    progress_stale_ms: int = 0
    primary_replid: str = ""
    primary_addr: str = ""
    failovers: int = 0
    last_failover_ms: int = 0

    def to_redis(self) -> dict[str, str]:
        return {
            "schema": str(self.schema),
            "leader": self.leader,
            "epoch": str(self.epoch),
            "synced": "1" if self.synced else "0",
            "heartbeat_ms": str(self.heartbeat_ms),
            "pods_rv": self.pods_rv,
            "events_rv": self.events_rv,
            "pods_watch": self.pods_watch,
            "events_watch": self.events_watch,
            "namespaces": self.namespaces,
            "pod_selector": self.pod_selector,
            "lag_ms": str(self.lag_ms),
            "records": str(self.records),
            "pods_progress_ms": str(self.pods_progress_ms),
            "events_progress_ms": str(self.events_progress_ms),
            "progress_stale_ms": str(self.progress_stale_ms),
            "primary_replid": self.primary_replid,
            "primary_addr": self.primary_addr,
            "failovers": str(self.failovers),
            "last_failover_ms": str(self.last_failover_ms),
        }

    @classmethod
    def from_redis(cls, fields: Mapping[Any, Any]) -> CacheHealth | None:
        """Parse ``P health``; None when the hash is empty (no cacher wrote)."""
        if not fields:
            return None
        try:
            text = {_text(k): _text(v) for k, v in fields.items()}
            return cls(
                schema=int(text.get("schema", "0")),
                leader=text.get("leader", ""),
                epoch=int(text.get("epoch", "0")),
                synced=text.get("synced") == "1",
                heartbeat_ms=int(text.get("heartbeat_ms", "0")),
                pods_rv=text.get("pods_rv", ""),
                events_rv=text.get("events_rv", ""),
                pods_watch=text.get("pods_watch", "ok"),
                events_watch=text.get("events_watch", "ok"),
                namespaces=text.get("namespaces", ""),
                pod_selector=text.get("pod_selector", ""),
                lag_ms=int(text.get("lag_ms") or 0),
                records=int(text.get("records") or 0),
                pods_progress_ms=int(text.get("pods_progress_ms") or 0),
                events_progress_ms=int(text.get("events_progress_ms") or 0),
                progress_stale_ms=int(text.get("progress_stale_ms") or 0),
                primary_replid=text.get("primary_replid", ""),
                primary_addr=text.get("primary_addr", ""),
                failovers=int(text.get("failovers") or 0),
                last_failover_ms=int(text.get("last_failover_ms") or 0),
            )
        except ValueError as e:
            raise ContractError(f"malformed cache health record in Redis: {e}") from e

    def covers(self, namespace: str, labels: Mapping[str, str]) -> bool:
        """Whether the cacher watches pods in ``namespace`` with ``labels``.

        An absent record only means an absent pod for pods the cacher
        watches; an unparsable selector covers nothing (never trusted).
        """
        watched = [n for n in self.namespaces.split(",") if n]
        if watched and namespace not in watched:
            return False
        try:
            return parsed_selector(self.pod_selector).matches(labels)
        except SelectorError:
            return False

    def heartbeat_age_ms(self, now_ms: int) -> int:
        return max(0, now_ms - self.heartbeat_ms)

    def pods_progress_age_ms(self, now_ms: int) -> int | None:
        """How long ago the pods watch last showed progress; None when not reported."""
        if not self.pods_progress_ms:
            return None
        return max(0, now_ms - self.pods_progress_ms)

    def freshness(
        self, *, now_ms: int, stale_after_ms: int, node_replid: str | None = None
    ) -> Freshness:
        """Whether the pod records can be trusted at Redis time ``now_ms``.

        ``node_replid`` is the ``master_replid`` of the Redis node the reader
        reads from (``INFO replication``); when it differs from the primary
        this health was written on, the node is a promoted replica that may
        miss the last writes: :data:`Freshness.FAILED_OVER` until the cacher
        has taken over there (and written its own ``primary_replid``).

        Fresh means the watches progress, not only that the cacher is alive:
        a pods watch without a sign of progress for ``progress_stale_ms``
        (the cacher's promise; bookmarks and bounded watch durations keep an
        idle but healthy watch within it) is stale although the heartbeat is
        recent. A failed pod watch makes the cache stale; a failed event
        watch only costs progress messages, so it does not.
        """
        if self.schema != SCHEMA_VERSION:
            return Freshness.INCOMPATIBLE
        if node_replid and self.primary_replid and node_replid != self.primary_replid:
            return Freshness.FAILED_OVER
        if self.heartbeat_age_ms(now_ms) > stale_after_ms:
            return Freshness.STALE
        if self.pods_watch.startswith("failed"):
            return Freshness.STALE
        progress_age = self.pods_progress_age_ms(now_ms)
        if progress_age is not None and 0 < self.progress_stale_ms < progress_age:
            return Freshness.STALE
        if not self.synced:
            return Freshness.NOT_SYNCED
        return Freshness.FRESH


def health_freshness(
    health: CacheHealth | None,
    *,
    now_ms: int,
    stale_after_ms: int,
    node_replid: str | None = None,
) -> Freshness:
    """:meth:`CacheHealth.freshness`, with UNKNOWN for a missing record."""
    if health is None:
        return Freshness.UNKNOWN
    return health.freshness(now_ms=now_ms, stale_after_ms=stale_after_ms, node_replid=node_replid)


def redis_time_ms(time_reply: tuple[int, int] | list[int] | list[bytes]) -> int:
    """Milliseconds from a Redis ``TIME`` reply (seconds, microseconds)."""
    seconds, micros = (int(x) for x in time_reply)
    return seconds * 1000 + micros // 1000


__all__ = [
    "DEFAULT_EVENT_LOG_CAP",
    "DEFAULT_FEED_MAXLEN",
    "DEFAULT_PREFIX",
    "HEALTH_FIELDS",
    "MAX_MESSAGE",
    "MAX_META_VALUE",
    "RECORD_ANNOTATION_PREFIX",
    "RECORD_LABELS",
    "SCHEMA_VERSION",
    "SERVERNAME_KEY",
    "USERNAME_KEY",
    "CacheHealth",
    "ContainerSummary",
    "ContractError",
    "EventRecord",
    "FeedEntry",
    "FeedKind",
    "Freshness",
    "Keys",
    "PodRecord",
    "WatchState",
    "decode_event_record",
    "decode_feed_entry",
    "decode_pod_record",
    "encode",
    "encode_feed_entry",
    "full_value_sha256",
    "health_freshness",
    "name_was_cut",
    "names_match",
    "pod_key",
    "prefix_problem",
    "redis_time_ms",
    "split_pod_key",
    "user_and_server",
]
