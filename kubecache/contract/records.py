"""The compact records kept in Redis: pod record, event entry, feed entry.

Their keys, units and formats are documented here, beside their definition;
:mod:`kubecache.contract.reduce` makes them from raw API objects,
:mod:`kubecache.contract.encoding` reads and writes them, and the helpers at
the end read a pod's hub user and server names from its record.
"""

from __future__ import annotations

import hashlib
from typing import Literal, NotRequired, TypedDict

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
#: The shortest feed a writer may keep (its approximate MAXLEN never goes below). Readers
#: rely on it: a read of fewer entries than this cannot have raced a trim of the feed.
MIN_FEED_MAXLEN = 100


class ContainerSummary(TypedDict):
    """State of one container (init containers are not summarised).

    ``state`` is ``running``, ``waiting`` or ``terminated``; ``reason`` is the
    waiting or terminated reason (``ContainerCreating``, ``ImagePullBackOff``,
    ``CrashLoopBackOff``, ``OOMKilled``, ``Completed``, ``Error`` ...);
    ``exit_code`` is the API's exit code when terminated (the last termination,
    for a waiting container that crashed before); absent when the API gives
    none, which readers take as 1. The stored JSON leaves out ``restarts``
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
    - ``deleted``: metadata.deletionTimestamp (the pod is terminating); 0 in a
      lenient read that could not parse it (see :mod:`kubecache.contract.reduce`)
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
