"""The Redis contract between the cacher and its readers.

The cacher's leader is the only writer. Readers are the spawners of every hub
replica and the ``kubecache`` CLI. Nothing outside this package spells a key or
a record field; both sides import it, by the names below (``from
kubecache.contract import Keys``). This docstring is the one description of
the layout; the modules of the package define it:

- :mod:`~kubecache.contract.keys`: the key names and the prefix
- :mod:`~kubecache.contract.records`: the pod record, event entry and feed
  entry, documented field by field, and reading names from a record
- :mod:`~kubecache.contract.reduce`: raw Pods and Events from the API into
  records (the one translation: the cacher's watch and the spawner's API reads)
- :mod:`~kubecache.contract.encoding`: records to and from Redis, checked
- :mod:`~kubecache.contract.health`: the cache health record and freshness
- :mod:`~kubecache.contract.errors`: :class:`ContractError`

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

from kubecache.contract.encoding import (
    EVENT_RECORD_LEADING_KEYS,
    POD_RECORD_LEADING_KEYS,
    decode_event_record,
    decode_feed_entry,
    decode_pod_record,
    encode_event_record,
    encode_pod_record,
)
from kubecache.contract.errors import ContractError
from kubecache.contract.health import (
    HEALTH_FIELDS,
    CacheHealth,
    Freshness,
    WatchState,
    health_freshness,
    redis_time_ms,
)
from kubecache.contract.keys import (
    DEFAULT_PREFIX,
    SCHEMA_VERSION,
    Keys,
    pod_key,
    prefix_problem,
    split_pod_key,
)
from kubecache.contract.records import (
    DEFAULT_EVENT_LOG_CAP,
    DEFAULT_FEED_MAXLEN,
    MAX_MESSAGE,
    MAX_META_VALUE,
    MIN_FEED_MAXLEN,
    RECORD_ANNOTATION_PREFIX,
    RECORD_LABELS,
    SERVERNAME_KEY,
    USERNAME_KEY,
    ContainerSummary,
    EventRecord,
    FeedEntry,
    FeedKind,
    PodRecord,
    full_value_sha256,
    name_was_cut,
    names_match,
    user_and_server,
)
from kubecache.contract.reduce import (
    MalformedObject,
    describe,
    event_entry,
    lenient_pod_record,
    object_key,
    pod_record,
    unix_seconds,
)

__all__ = [
    "DEFAULT_EVENT_LOG_CAP",
    "DEFAULT_FEED_MAXLEN",
    "DEFAULT_PREFIX",
    "EVENT_RECORD_LEADING_KEYS",
    "HEALTH_FIELDS",
    "MAX_MESSAGE",
    "MAX_META_VALUE",
    "MIN_FEED_MAXLEN",
    "POD_RECORD_LEADING_KEYS",
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
    "MalformedObject",
    "PodRecord",
    "WatchState",
    "decode_event_record",
    "decode_feed_entry",
    "decode_pod_record",
    "describe",
    "encode_event_record",
    "encode_pod_record",
    "event_entry",
    "full_value_sha256",
    "health_freshness",
    "lenient_pod_record",
    "name_was_cut",
    "names_match",
    "object_key",
    "pod_key",
    "pod_record",
    "prefix_problem",
    "redis_time_ms",
    "split_pod_key",
    "unix_seconds",
    "user_and_server",
]
