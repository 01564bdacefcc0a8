"""Keys under a deployment's prefix that are not of the type kubecache writes.

Another program, an older layout or a hand-made key under the prefix makes
every script touching it fail with ``WRONGTYPE … on @user_script:N``, which
names neither the key nor the fix. :func:`foreign_keys` looks at the fixed
keys and at most ``scan_limit`` event-log keys and names each one of the
wrong type; :func:`advice` says what to do.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from kubecache.contract import Keys
from kubecache.terminal import decoded


@dataclass(frozen=True)
class ForeignKey:
    key: str
    found: str  # the type Redis reports
    expected: str


def expected_types(keys: Keys) -> dict[str, str]:
    """The type of each fixed key kubecache writes."""
    return {keys.health: "hash", keys.pods: "hash", keys.pod_rv: "hash", keys.feed: "stream"}


def is_wrongtype(error: BaseException) -> bool:
    return "WRONGTYPE" in str(error)


async def foreign_keys(
    redis: aioredis.Redis, keys: Keys, *, scan_limit: int = 10_000
) -> list[ForeignKey]:
    """Keys under ``keys.prefix`` whose type is not kubecache's (absent keys are fine).

    The fixed keys, then the event logs of at most ``scan_limit`` pods named in
    ``P pods`` and ``P pod-rv`` (HSCAN: kubecache's ACL users may not SCAN the
    keyspace, by design).
    """
    found: list[ForeignKey] = []
    fixed = expected_types(keys)
    for key, expected in fixed.items():
        kind = decoded(await redis.type(key))
        if kind not in ("none", expected):
            found.append(ForeignKey(key, kind, expected))
    pods: dict[str, None] = {}
    for hash_key in (keys.pods, keys.pod_rv):
        if any(f.key == hash_key for f in found):
            continue  # not a hash: HSCAN would fail the same way
        async for field, _ in redis.hscan_iter(hash_key, count=1000):
            pods[decoded(field)] = None
            if len(pods) >= scan_limit:
                break
    names = list(pods)
    for start in range(0, len(names), 500):
        pipe = redis.pipeline(transaction=False)
        for pod in names[start : start + 500]:
            pipe.type(keys.events(pod))
        for pod, kind in zip(names[start : start + 500], await pipe.execute(), strict=True):
            if decoded(kind) not in ("none", "list"):
                found.append(ForeignKey(keys.events(pod), decoded(kind), "list"))
                if len(found) >= 10:
                    return found
    return found


def advice(found: list[ForeignKey], keys: Keys) -> str:
    """One sentence: which keys, what they should be, what to do."""
    if not found:
        return (
            f"a key under {keys.prefix!r} is of another type than kubecache writes, but none "
            "was found among the fixed keys and the event logs of the pods in the cache; as a "
            f"Redis admin, list them (redis-cli --scan --pattern '{keys.prefix}*' and TYPE "
            "each) and delete the foreign ones, or give this deployment a prefix of its own "
            "(--key-prefix, KUBECACHE_KEY_PREFIX; the chart's keyPrefix)"
        )
    named = ", ".join(f"{f.key!r} is a {f.found} (kubecache writes a {f.expected})" for f in found)
    first = found[0].key
    return (
        f"{named}: another program or an older layout uses prefix {keys.prefix!r}; "
        f"delete the key if it is not needed (redis-cli DEL '{first}'), or give this "
        "deployment a prefix of its own (--key-prefix, KUBECACHE_KEY_PREFIX; the chart's "
        "keyPrefix)"
    )


__all__ = ["ForeignKey", "advice", "expected_types", "foreign_keys", "is_wrongtype"]
