"""The Lua scripts that are the cacher's only writes to Redis.

Every script runs atomically in Redis and starts with the same fence: the
caller's epoch must equal ``P health``'s epoch. Return codes shared by the
write scripts:

- ``1`` written (``2``/``3``: written with a detail, see each script)
- ``0`` stale: Redis already holds newer data, nothing written
- ``-1`` fenced: another writer owns the cache (its epoch is newer)
- ``-2`` lost: ``P health`` is missing, Redis was flushed or restarted empty

Feed entries follow :class:`kubecache.contract.FeedEntry` (kind, key, rv,
epoch); the stream is capped with ``MAXLEN ~``. Resource versions are compared
as numbers (etcd revisions; Lua doubles are exact up to 2^53).

Event log entries are matched by their orjson prefix ``{"uid":"<uid>","rv":<rv>``:
:func:`cacher.reduce.event_entry` builds entries with those two keys first.
"""

from __future__ import annotations

FENCED = -1
LOST = -2
STALE = 0
WRITTEN = 1

# KEYS[1] is always P health, ARGV[1] the writer's epoch.
_FENCE = """
local current = redis.call('HGET', KEYS[1], 'epoch')
if not current then return -2 end
if current ~= ARGV[1] then return -1 end
"""

_FEED = """
local function feed(stream, maxlen, kind, key, rv, epoch)
  redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*',
             'kind', kind, 'key', key, 'rv', rv, 'epoch', epoch)
end
"""

#: KEYS: health, pods, pod-rv, events of the pod, feed.
#: ARGV: epoch, pod key, rv, record, pod uid, check uid ("1"/"0"), feed maxlen.
#: Writes the record unless ``P pod-rv`` holds the same or a newer rv (a
#: tombstone included: a late write never resurrects a deleted pod). With
#: check uid, a pod uid other than the stored one clears the event log, and
#: the log of a pod written again loses any expiry.
WRITE_POD = (
    _FENCE
    + _FEED
    + """
local stored = tonumber(redis.call('HGET', KEYS[3], ARGV[2]))
if stored and stored >= tonumber(ARGV[3]) then return 0 end
if ARGV[6] == '1' then
  local previous_uid = nil
  local old = redis.call('HGET', KEYS[2], ARGV[2])
  if old then
    local ok, value = pcall(cjson.decode, old)
    if ok and type(value) == 'table' then previous_uid = value['uid'] end
  else
    local last = redis.call('LINDEX', KEYS[4], -1)
    if last then
      local ok, value = pcall(cjson.decode, last)
      if ok and type(value) == 'table' then previous_uid = value['pod_uid'] end
    end
  end
  if type(previous_uid) == 'string' and previous_uid ~= '' and previous_uid ~= ARGV[5] then
    redis.call('DEL', KEYS[4])
  else
    redis.call('PERSIST', KEYS[4])  -- a live pod's log never expires
  end
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[4])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
feed(KEYS[5], ARGV[7], 'pod', ARGV[2], ARGV[3], ARGV[1])
return 1
"""
)

#: KEYS: health, pods, pod-rv, events of the pod, feed.
#: ARGV: epoch, pod key, rv of the deletion, event log ttl (s), feed maxlen.
#: Removes the record, leaves a tombstone rv, lets the event log expire.
DELETE_POD = (
    _FENCE
    + _FEED
    + """
local stored = tonumber(redis.call('HGET', KEYS[3], ARGV[2]))
if stored and stored >= tonumber(ARGV[3]) then return 0 end
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[4], ARGV[4])
feed(KEYS[5], ARGV[5], 'gone', ARGV[2], ARGV[3], ARGV[1])
return 1
"""
)

#: KEYS: health, pods, pod-rv, events of the pod, feed.
#: ARGV: epoch, pod key, list rv, event log ttl (s), feed maxlen.
#: For a key absent from a full LIST at ``list rv``: 1 = record deleted
#: (tombstone list rv), 2 = an old tombstone pruned, 3 = record kept because it
#: was written after the list (rv > list rv), 0 = nothing to do.
FORGET_POD = (
    _FENCE
    + _FEED
    + """
local stored = tonumber(redis.call('HGET', KEYS[3], ARGV[2]))
local list_rv = tonumber(ARGV[3])
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then
  if stored and stored > list_rv then return 3 end
  redis.call('HDEL', KEYS[2], ARGV[2])
  redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
  redis.call('EXPIRE', KEYS[4], ARGV[4])
  feed(KEYS[5], ARGV[5], 'gone', ARGV[2], ARGV[3], ARGV[1])
  return 1
end
if stored and stored < list_rv then
  redis.call('HDEL', KEYS[3], ARGV[2])
  return 2
end
return 0
"""
)

#: KEYS: health, events of the pod, feed.
#: ARGV: epoch, pod key, event rv, entry, event uid, log cap, feed maxlen,
#: scan ("1": read the log first).
#: Returns {code, newest rv in the log}. With scan, the entry is stale (0) when
#: the log holds this event uid at this rv or newer, or when the log is full
#: and the entry is older than all of it (an old event listed again).
WRITE_EVENT = (
    _FENCE
    + _FEED
    + """
local rv = tonumber(ARGV[3])
local newest = rv
if ARGV[8] == '1' then
  local prefix = '{"uid":"' .. ARGV[5] .. '","rv":'
  local items = redis.call('LRANGE', KEYS[2], 0, -1)
  local oldest = nil
  local duplicate = false
  for i = 1, #items do
    local item = items[i]
    local seen = tonumber(string.match(item, '^{"uid":"[^"]*","rv":(%d+)'))
    if seen then
      if seen > newest then newest = seen end
      if oldest == nil or seen < oldest then oldest = seen end
      if seen >= rv and string.sub(item, 1, #prefix) == prefix then duplicate = true end
    end
  end
  if duplicate or (#items >= tonumber(ARGV[6]) and oldest and rv < oldest) then
    return {0, string.format('%d', newest)}
  end
end
redis.call('RPUSH', KEYS[2], ARGV[4])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[6]), -1)
feed(KEYS[3], ARGV[7], 'event', ARGV[2], ARGV[3], ARGV[1])
return {1, string.format('%d', newest)}
"""
)

#: KEYS: health, feed, pods. ARGV: identity, schema, namespaces, pod selector, maxlen.
#: Returns the new epoch: max(previous + 1, Redis time in ms).
TAKE_OVER = (
    _FEED
    + """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local previous = tonumber(redis.call('HGET', KEYS[1], 'epoch')) or 0
local epoch = string.format('%d', math.max(previous + 1, now))
redis.call('HSET', KEYS[1],
  'schema', ARGV[2], 'leader', ARGV[1], 'epoch', epoch, 'synced', '0',
  'heartbeat_ms', string.format('%d', now), 'pods_rv', '', 'events_rv', '',
  'pods_watch', 'ok', 'events_watch', 'ok', 'namespaces', ARGV[3],
  'pod_selector', ARGV[4], 'lag_ms', '0', 'records', redis.call('HLEN', KEYS[3]))
feed(KEYS[2], ARGV[5], 'health', '', '0', epoch)
return epoch
"""
)

#: KEYS: health. ARGV: epoch, lag ms ('' to leave it), records.
#: Returns {1, now_ms} or {-1, current epoch, leader} or {-2}.
HEARTBEAT = """
local current = redis.call('HGET', KEYS[1], 'epoch')
if not current then return {-2} end
if current ~= ARGV[1] then
  return {-1, current, redis.call('HGET', KEYS[1], 'leader') or ''}
end
local t = redis.call('TIME')
local now = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
redis.call('HSET', KEYS[1], 'heartbeat_ms', now, 'records', ARGV[3])
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'lag_ms', ARGV[2]) end
return {1, now}
"""

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
    "DELETE_POD",
    "FENCED",
    "FORGET_POD",
    "HEARTBEAT",
    "LOST",
    "MARK_SYNCED",
    "SET_WATCH_STATE",
    "STALE",
    "TAKE_OVER",
    "WRITE_EVENT",
    "WRITE_POD",
    "WRITTEN",
]
