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
    """Keys under ``keys.prefix`` whose type is not kubecache's (absent keys are fine)."""
    found: list[ForeignKey] = []
    for key, expected in expected_types(keys).items():
        kind = decoded(await redis.type(key))
        if kind not in ("none", expected):
            found.append(ForeignKey(key, kind, expected))
    seen = 0
    async for raw in redis.scan_iter(match=keys.events_pattern, count=1000):
        seen += 1
        if seen > scan_limit:
            break
        kind = decoded(await redis.type(raw))
        if kind not in ("none", "list"):
            found.append(ForeignKey(decoded(raw), kind, "list"))
            if len(found) >= 10:
                break
    return found


def advice(found: list[ForeignKey], keys: Keys) -> str:
    """One sentence: which keys, what they should be, what to do."""
    if not found:
        return (
            f"a key under {keys.prefix!r} is of another type than kubecache writes, but none "
            "was found among the fixed keys and the first event logs: give this deployment a "
            "prefix of its own (--key-prefix, KUBECACHE_KEY_PREFIX)"
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
