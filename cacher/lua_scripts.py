"""The Lua scripts that are the cacher's only writes to Redis.

Every script runs atomically in Redis and starts with the same fence: the
caller's epoch must equal ``P health``'s epoch. The record and event writes
take a whole batch per call (one EVALSHA per up to ``batch_size`` items:
packing one command per item cost three times more client CPU), and each
item's record and feed entry are written together. Codes:

- ``1`` written (``2``/``3``: written with a detail, see each script)
- ``0`` stale: Redis already holds newer data, nothing written
- ``-1`` fenced: another writer owns the cache (its epoch is newer)
- ``-2`` lost: ``P health`` is missing, Redis was flushed or restarted empty
- ``-3`` failed over: the node running the script is not the primary the
  epoch was taken on (its ``master_replid`` differs from ``P health``'s
  ``primary_replid``): a promoted replica, or a reconnect to another node

Feed entries follow :class:`kubecache.contract.FeedEntry` (kind, key, rv,
epoch); the stream is capped with ``MAXLEN ~``. Resource versions are compared
as numbers (etcd revisions; Lua doubles are exact up to 2^53).

Event log entries are matched by their orjson prefix ``{"uid":"<uid>","rv":<rv>``:
:func:`kubecache.contract.encode_event_record` writes those two keys first
(tests/contract/test_stored_form.py runs these scripts' patterns on its output).
"""

from __future__ import annotations

FENCED = -1
LOST = -2
FAILED_OVER = -3
STALE = 0
WRITTEN = 1

# The replication ID of the node running the script (a primary's own; a
# replica reports its primary's). A promoted replica gets a new one.
_NODE_REPLID = """
local function node_replid()
  return string.match(redis.call('INFO', 'replication'), 'master_replid:(%x+)') or ''
end
"""

# KEYS[1] is always P health, ARGV[1] the writer's epoch.
_FENCE = (
    _NODE_REPLID
    + """
local current = redis.call('HGET', KEYS[1], 'epoch')
if not current then return -2 end
if current ~= ARGV[1] then return -1 end
local primary = redis.call('HGET', KEYS[1], 'primary_replid')
if primary and primary ~= '' and primary ~= node_replid() then return -3 end
"""
)

# Fingerprint of a stored pod record: the first 8 hex digits of its SHA-1
# (kubecache.cacher.writer computes the same from the bytes it writes).
_FINGERPRINT = """
local function fingerprint(stored)
  return string.sub(redis.sha1hex(stored), 1, 8)
end
"""

_FEED = """
local function feed(stream, maxlen, kind, key, rv, epoch)
  redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*',
             'kind', kind, 'key', key, 'rv', rv, 'epoch', epoch)
end
"""

# The resourceVersion of a stored pod record, read without decoding it: the
# first '"rv":' is the record's own (kubecache.contract.encode_pod_record
# writes only the string key uid before it, and JSON escapes every quote
# inside a string). nil for a record without one.
_RECORD_RV = """
local function record_rv(stored)
  if not stored then return nil end
  return tonumber(string.match(stored, '"rv":(%d+)'))
end
"""

#: Pod writes and deletions, one batch per call.
#: KEYS: health, pods, pod-rv, feed, then the event log of each item's pod.
#: ARGV: epoch, feed maxlen, event log ttl (s), then 6 per item:
#:   op ("w" write, "f" forced write, "d" delete), pod key, rv, record
#:   (orjson, "" for d), pod uid, check uid ("1"/"0").
#: Returns {code, fingerprint} per item, flattened (1 written, 0 stale; the
#: fingerprint of the record left in place by a stale op, else ''), or a bare
#: fence code.
#: "w" and "d" are skipped unless newer than both the ``rv`` of the stored
#: record and the deletion tombstone in ``P pod-rv`` (so a late write never
#: resurrects a deleted pod). "f" (a rewrite from a full list after the cache
#: diverged or failed over) ignores both and writes unless the stored record
#: is already the same bytes.
#: Write: stores the record and removes the tombstone (``P pod-rv`` holds
#: tombstones only). With check uid, a pod uid other than the stored one
#: clears the event log; a live pod's log loses any expiry.
#: Delete: removes the record, writes the tombstone rv, lets the log expire.
WRITE_PODS = (
    _FENCE
    + _FEED
    + _RECORD_RV
    + _FINGERPRINT
    + """
local function previous_uid(stored, log)
  if stored then
    local ok, value = pcall(cjson.decode, stored)
    if ok and type(value) == 'table' then return value['uid'] end
    return nil
  end
  local last = redis.call('LINDEX', log, -1)
  if last then
    local ok, value = pcall(cjson.decode, last)
    if ok and type(value) == 'table' then return value['pod_uid'] end
  end
  return nil
end

local codes = {}
local n = (#ARGV - 3) / 6
for i = 1, n do
  local a = 3 + (i - 1) * 6
  local op, key, rv, log = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], KEYS[4 + i]
  local new = tonumber(rv)
  local stored = redis.call('HGET', KEYS[2], key)
  local current = record_rv(stored)
  local tombstone = tonumber(redis.call('HGET', KEYS[3], key))
  codes[2 * i] = ''
  if op == 'f' and stored == ARGV[a + 4] then
    if tombstone then redis.call('HDEL', KEYS[3], key) end
    codes[2 * i - 1] = 0
  elseif op ~= 'f' and ((current and current >= new) or (tombstone and tombstone >= new)) then
    codes[2 * i - 1] = 0
    if stored then codes[2 * i] = fingerprint(stored) end
  elseif op == 'd' then
    if stored then redis.call('HDEL', KEYS[2], key) end
    redis.call('HSET', KEYS[3], key, rv)
    redis.call('EXPIRE', log, ARGV[3])
    feed(KEYS[4], ARGV[2], 'gone', key, rv, ARGV[1])
    codes[2 * i - 1] = 1
  else
    if ARGV[a + 6] == '1' then
      local before = previous_uid(stored, log)
      if type(before) == 'string' and before ~= '' and before ~= ARGV[a + 5] then
        redis.call('DEL', log)
      else
        redis.call('PERSIST', log)
      end
    end
    redis.call('HSET', KEYS[2], key, ARGV[a + 4])
    if tombstone then redis.call('HDEL', KEYS[3], key) end
    feed(KEYS[4], ARGV[2], 'pod', key, rv, ARGV[1])
    codes[2 * i - 1] = 1
  end
end
return codes
"""
)

#: Keys absent from a full LIST (records and tombstones), one batch per call.
#: KEYS: health, pods, pod-rv, feed, then the event log of each item's pod.
#: ARGV: epoch, feed maxlen, event log ttl (s), list rv, then one pod key per item.
#: Per item: 1 = record deleted, 2 = tombstone removed, 0 = nothing to do.
#: The list is the whole truth: no resourceVersion is compared (they are opaque,
#: and a cluster's history can restart below what Redis holds). Nothing writes
#: pods while a list is reconciled (the watch starts after it), and the writer
#: ignores watch changes up to the list's own resourceVersion afterwards.
FORGET_PODS = (
    _FENCE
    + _FEED
    + """
local codes = {}
for i = 1, #ARGV - 4 do
  local key, log = ARGV[4 + i], KEYS[4 + i]
  if redis.call('HDEL', KEYS[2], key) == 1 then
    redis.call('HDEL', KEYS[3], key)
    redis.call('EXPIRE', log, ARGV[3])
    feed(KEYS[4], ARGV[2], 'gone', key, ARGV[4], ARGV[1])
    codes[i] = 1
  elseif redis.call('HDEL', KEYS[3], key) == 1 then
    codes[i] = 2
  else
    codes[i] = 0
  end
end
return codes
"""
)

#: Expire deletion tombstones by age or count (no full list needed), one batch per call.
#: KEYS: health, pod-rv, then the event log of each item's pod (unused: it names the
#: item's slot). ARGV: epoch, then 2 per item: pod key, the tombstone's rv as written.
#: Per item: 1 = removed, 0 = not there or another rv (a later deletion's).
EXPIRE_TOMBSTONES = (
    _FENCE
    + """
local codes = {}
for i = 1, (#ARGV - 1) / 2 do
  local key, rv = ARGV[2 * i], ARGV[2 * i + 1]
  if redis.call('HGET', KEYS[2], key) == rv then
    redis.call('HDEL', KEYS[2], key)
    codes[i] = 1
  else
    codes[i] = 0
  end
end
return codes
"""
)

#: Event log appends, one batch per call.
#: KEYS: health, feed, then the event log of each item's pod.
#: ARGV: epoch, feed maxlen, log cap, then 5 per item:
#:   pod key, event rv, entry (orjson), event uid, scan ("1": read the log first).
#: Returns {code, newest rv in the log} per item, flattened, or a bare fence
#: code. With scan, an entry is stale (0) when the log holds this event uid at
#: this rv or newer, or when the log is full and the entry is older than all
#: of it (an old event listed again).
WRITE_EVENTS = (
    _FENCE
    + _FEED
    + """
local cap = tonumber(ARGV[3])
local out = {}
local n = (#ARGV - 3) / 5
for i = 1, n do
  local a = 3 + (i - 1) * 5
  local key, rv, entry, uid = ARGV[a + 1], tonumber(ARGV[a + 2]), ARGV[a + 3], ARGV[a + 4]
  local log = KEYS[2 + i]
  local newest = rv
  local stale = false
  if ARGV[a + 5] == '1' then
    local prefix = '{"uid":"' .. uid .. '","rv":'
    local items = redis.call('LRANGE', log, 0, -1)
    local oldest = nil
    for j = 1, #items do
      local item = items[j]
      local seen = tonumber(string.match(item, '^{"uid":"[^"]*","rv":(%d+)'))
      if seen then
        if seen > newest then newest = seen end
        if oldest == nil or seen < oldest then oldest = seen end
        if seen >= rv and string.sub(item, 1, #prefix) == prefix then stale = true end
      end
    end
    if #items >= cap and oldest and rv < oldest then stale = true end
  end
  if stale then
    out[2 * i - 1] = 0
  else
    redis.call('RPUSH', log, entry)
    redis.call('LTRIM', log, -cap, -1)
    feed(KEYS[2], ARGV[2], 'event', key, ARGV[a + 2], ARGV[1])
    out[2 * i - 1] = 1
  end
  out[2 * i] = string.format('%d', newest)
end
return out
"""
)

#: KEYS: health, feed, pods. ARGV: identity, schema, namespaces, pod selector,
#: maxlen, progress promise (ms), primary address, failovers, last failover
#: ("now": this take-over follows one; else the ms to keep).
#: Records the node's replication ID as ``primary_replid``: every fenced
#: script then refuses to run on another node (FAILED_OVER).
#: Returns {new epoch, primary replid, now ms}; the epoch is
#: max(previous + 1, Redis time in ms).
TAKE_OVER = (
    _FEED
    + _NODE_REPLID
    + """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local previous = tonumber(redis.call('HGET', KEYS[1], 'epoch')) or 0
local epoch = string.format('%d', math.max(previous + 1, now))
local replid = node_replid()
local last_failover = ARGV[9]
if last_failover == 'now' then last_failover = string.format('%d', now) end
redis.call('HSET', KEYS[1],
  'schema', ARGV[2], 'leader', ARGV[1], 'epoch', epoch, 'synced', '0',
  'heartbeat_ms', string.format('%d', now), 'pods_rv', '', 'events_rv', '',
  'pods_watch', 'ok', 'events_watch', 'ok', 'namespaces', ARGV[3],
  'pod_selector', ARGV[4], 'lag_ms', '0', 'records', redis.call('HLEN', KEYS[3]),
  'pods_progress_ms', '0', 'events_progress_ms', '0', 'progress_stale_ms', ARGV[6],
  'primary_replid', replid, 'primary_addr', ARGV[7], 'failovers', ARGV[8],
  'last_failover_ms', last_failover)
feed(KEYS[2], ARGV[5], 'health', '', '0', epoch)
return {epoch, replid, string.format('%d', now)}
"""
)

#: KEYS: health, pods. ARGV: epoch, lag ms ('' to leave it), records, pods
#: progress age ms, events progress age ms ('' for either: none yet).
#: Progress times are written as Redis time minus the age (the cacher measures
#: ages on its monotonic clock, readers compare with Redis time).
#: Returns {1, now_ms, HLEN of pods} or {-1, current epoch, leader} or {-2}
#: or {-3, the epoch's primary replid, this node's replid}.
HEARTBEAT = (
    _NODE_REPLID
    + """
local current = redis.call('HGET', KEYS[1], 'epoch')
if not current then return {-2} end
if current ~= ARGV[1] then
  return {-1, current, redis.call('HGET', KEYS[1], 'leader') or ''}
end
local primary = redis.call('HGET', KEYS[1], 'primary_replid') or ''
local node = node_replid()
if primary ~= '' and primary ~= node then return {-3, primary, node} end
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local now = string.format('%d', ms)
redis.call('HSET', KEYS[1], 'heartbeat_ms', now, 'records', ARGV[3])
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'lag_ms', ARGV[2]) end
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[1], 'pods_progress_ms', string.format('%d', ms - tonumber(ARGV[4])))
end
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[1], 'events_progress_ms', string.format('%d', ms - tonumber(ARGV[5])))
end
return {1, now, redis.call('HLEN', KEYS[2])}
"""
)

#: Retire an epoch on a primary Sentinel has replaced (it keeps accepting
#: writes until demoted, and readers still connected to it would trust it):
#: synced=0 and a health feed entry, if the epoch still owns it.
#: KEYS: health, feed. ARGV: epoch, maxlen. Returns 1 retired, or a fence code.
RETIRE = (
    _FEED
    + """
local current = redis.call('HGET', KEYS[1], 'epoch')
if not current then return -2 end
if current ~= ARGV[1] then return -1 end
redis.call('HSET', KEYS[1], 'synced', '0')
feed(KEYS[2], ARGV[2], 'health', '', '0', ARGV[1])
return 1
"""
)

#: One step of the audit of ``P pods`` (read-only, one HSCAN page).
#: KEYS: pods. ARGV: cursor, count.
#: Returns {next cursor, key, fingerprint, key, fingerprint, ...}: the
#: writer compares each with what it wrote (no write runs in between).
AUDIT_PODS = (
    _FINGERPRINT
    + """
local page = redis.call('HSCAN', KEYS[1], ARGV[1], 'COUNT', ARGV[2])
local out = {page[1]}
local items = page[2]
for j = 1, #items, 2 do
  out[#out + 1] = items[j]
  out[#out + 1] = fingerprint(items[j + 1])
end
return out
"""
)

#: KEYS: health, feed. ARGV: epoch, rv field, rv, "1" to set synced, maxlen.
#: 2 = synced changed (a health feed entry was added), 1 = rv recorded.
MARK_SYNCED = (
    _FENCE
    + _FEED
    + """
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
if ARGV[4] == '1' and redis.call('HGET', KEYS[1], 'synced') ~= '1' then
  redis.call('HSET', KEYS[1], 'synced', '1')
  feed(KEYS[2], ARGV[5], 'health', '', '0', ARGV[1])
  return 2
end
return 1
"""
)

#: KEYS: health, feed. ARGV: epoch, watch field, state, maxlen.
#: 2 = the state's first word (ok/retrying/failed) changed: health feed entry.
SET_WATCH_STATE = (
    _FENCE
    + _FEED
    + """
local old = redis.call('HGET', KEYS[1], ARGV[2]) or ''
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
if string.match(old, '^%S*') ~= string.match(ARGV[3], '^%S*') then
  feed(KEYS[2], ARGV[4], 'health', '', '0', ARGV[1])
  return 2
end
return 1
"""
)

__all__ = [
    "AUDIT_PODS",
    "EXPIRE_TOMBSTONES",
    "FAILED_OVER",
    "FENCED",
    "FORGET_PODS",
    "HEARTBEAT",
    "LOST",
    "MARK_SYNCED",
    "RETIRE",
    "SET_WATCH_STATE",
    "STALE",
    "TAKE_OVER",
    "WRITE_EVENTS",
    "WRITE_PODS",
    "WRITTEN",
]
