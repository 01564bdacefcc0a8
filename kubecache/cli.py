"""The ``kubecache`` command: inspect the cache from Redis, never from the Kubernetes API.

    kubecache status                        leader, epoch, synced, heartbeat age, lag, counts
    kubecache servers [--user U] [--namespace N]
    kubecache events USER[/SERVER] [-f]     a server's pod events, optionally followed
    kubecache doctor                        what is wrong with this reader's view, and what to do
    kubecache hub-standby -- jupyterhub -f CONFIG
                                            run the hub on exactly one of several replicas

Every command takes ``--json``; a failure exits non-zero. Connection options
default to ``KUBECACHE_*`` environment variables, as in the cacher.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from kubecache import views
from kubecache.contract import (
    DEFAULT_PREFIX,
    CacheHealth,
    ContractError,
    EventRecord,
    Keys,
    PodRecord,
    decode_event_record,
    decode_feed_entry,
    decode_pod_record,
    health_freshness,
    redis_time_ms,
)
from kubecache.doctor import run_checks
from kubecache.hub_standby import LeaseTiming, RedisLease, default_identity, main_async
from kubecache.redis_connection import (
    DEFAULT_URL,
    RedisConfigError,
    RedisSettings,
    connect,
    redacted,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"KUBECACHE_{name}", default)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kubecache", description=__doc__.split("\n")[0])
    parser.add_argument("--redis-url", default=_env("REDIS_URL", DEFAULT_URL))
    parser.add_argument("--redis-username", default=_env("REDIS_USERNAME"))
    parser.add_argument("--redis-password-file", default=_env("REDIS_PASSWORD_FILE"))
    parser.add_argument("--redis-ca-file", default=_env("REDIS_CA_FILE"))
    parser.add_argument("--key-prefix", default=_env("KEY_PREFIX", DEFAULT_PREFIX))
    parser.add_argument(
        "--stale-after",
        type=float,
        default=float(_env("STALE_AFTER", "15") or 15),
        help="seconds without a heartbeat after which the cache counts as stale (default 15)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("status", help="cache health: leader, epoch, synced, heartbeat, lag")
    servers = commands.add_parser("servers", help="user servers known to the cache")
    servers.add_argument("--user")
    servers.add_argument("--server", help="named server ('' for the default server)")
    servers.add_argument("--namespace")
    events = commands.add_parser("events", help="events of a user's server pod")
    events.add_argument("target", metavar="USER[/SERVER]")
    events.add_argument("--namespace")
    events.add_argument("-f", "--follow", action="store_true", help="keep printing new events")
    commands.add_parser("doctor", help="check Redis, credentials, prefix and freshness")
    standby = commands.add_parser(
        "hub-standby",
        help="run COMMAND (a hub) only while holding a Redis lease; other replicas stand by",
    )
    standby.add_argument("--lease-name", default=_env("HUB_LEASE_NAME", "jupyterhub"))
    standby.add_argument("--lease-duration", type=float, default=15.0)
    standby.add_argument("--renew-deadline", type=float, default=10.0)
    standby.add_argument("--retry-period", type=float, default=2.0)
    standby.add_argument("--identity", default=_env("HUB_IDENTITY"))
    standby.add_argument(
        "--stop-grace", type=float, default=30.0, help="seconds between SIGTERM and SIGKILL"
    )
    standby.add_argument("hub_command", nargs=argparse.REMAINDER, metavar="-- COMMAND ...")
    for sub in commands.choices.values():
        sub.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    return parser


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    if args.json:
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(text)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def _records(redis: aioredis.Redis, keys: Keys) -> tuple[list[PodRecord], int]:
    """All pod records, and how many were malformed (skipped)."""
    records, malformed = [], 0
    async for _field, raw in redis.hscan_iter(keys.pods, count=1000):
        try:
            records.append(decode_pod_record(raw, key=_text(_field)))
        except ContractError as e:
            malformed += 1
            print(f"warning: skipping {_field!r}: {e}", file=sys.stderr)
    return records, malformed


async def _health_and_now(redis: aioredis.Redis, keys: Keys) -> tuple[CacheHealth | None, int]:
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.health)
        pipe.time()
        raw_health, time_reply = await pipe.execute()
    return CacheHealth.from_redis(raw_health), redis_time_ms(time_reply)


async def cmd_status(args: argparse.Namespace, redis: aioredis.Redis, keys: Keys) -> int:
    health, now_ms = await _health_and_now(redis, keys)
    freshness = health_freshness(health, now_ms=now_ms, stale_after_ms=int(args.stale_after * 1000))
    summary = views.status_summary(
        health,
        freshness=freshness,
        now_ms=now_ms,
        records=await redis.hlen(keys.pods),
        feed_length=await redis.xlen(keys.feed),
        prefix=keys.prefix,
    )
    _emit(args, summary, views.status_text(summary))
    return EXIT_OK if freshness.trusted else EXIT_FAILED


async def cmd_servers(args: argparse.Namespace, redis: aioredis.Redis, keys: Keys) -> int:
    records, malformed = await _records(redis, keys)
    _, now_ms = await _health_and_now(redis, keys)
    rows = sorted(
        (
            row
            for row in (views.server_row(r, now_s=now_ms // 1000) for r in records)
            if views.matches(row, user=args.user, server=args.server, namespace=args.namespace)
        ),
        key=lambda r: (r.user, r.server, r.namespace, r.pod),
    )
    _emit(args, [r.as_json() for r in rows], views.servers_table(rows) if rows else "no servers")
    return EXIT_FAILED if malformed else EXIT_OK


def _find_pod(
    records: Sequence[PodRecord], user: str, server: str, namespace: str | None
) -> PodRecord | None:
    candidates = [
        r
        for r in records
        if views.user_of(r) == user
        and views.server_of(r) == server
        and (namespace is None or r["namespace"] == namespace)
    ]
    # The newest pod wins when an old one is still terminating.
    return max(candidates, key=lambda r: r["rv"], default=None)


async def _event_log(redis: aioredis.Redis, keys: Keys, key: str) -> list[EventRecord]:
    entries = []
    for raw in await redis.lrange(keys.events(key), 0, -1):
        try:
            entries.append(decode_event_record(raw))
        except ContractError as e:
            print(f"warning: skipping an event of {key}: {e}", file=sys.stderr)
    return entries


async def cmd_events(args: argparse.Namespace, redis: aioredis.Redis, keys: Keys) -> int:
    user, _, server = args.target.partition("/")
    records, _ = await _records(redis, keys)
    record = _find_pod(records, user, server, args.namespace)
    if record is None:
        label = f"{user}/{server}" if server else user
        print(
            f"no pod of {label!r} in the cache (see: kubecache servers --user {user})",
            file=sys.stderr,
        )
        return EXIT_FAILED
    key = f"{record['namespace']}/{record['name']}"
    last_id: Any = "$"
    if args.follow:  # take the feed position before reading, so nothing falls in between
        newest = await redis.xrevrange(keys.feed, count=1)
        last_id = newest[0][0] if newest else "0-0"
    shown: dict[str, int] = {}
    _print_new(args, await _event_log(redis, keys, key), record["uid"], shown)
    while args.follow:
        reply: Any = await redis.xread({keys.feed: last_id}, block=1000, count=1000)
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                last_id = entry_id
                try:
                    entry = decode_feed_entry(fields)
                except ContractError:
                    continue
                if entry["key"] == key and entry["kind"] == "event":
                    _print_new(args, await _event_log(redis, keys, key), record["uid"], shown)
                elif entry["key"] == key and entry["kind"] == "gone":
                    print(f"pod {key} is gone", file=sys.stderr)
                    return EXIT_OK
    return EXIT_OK


def _print_new(
    args: argparse.Namespace, entries: list[EventRecord], pod_uid: str, shown: dict[str, int]
) -> None:
    for entry in views.latest_events(entries, pod_uid=pod_uid):
        if shown.get(entry["uid"], -1) >= entry["rv"]:
            continue
        shown[entry["uid"]] = entry["rv"]
        if args.json:
            print(orjson.dumps(entry).decode())
        else:
            print(views.event_line(entry))
        sys.stdout.flush()


async def cmd_doctor(args: argparse.Namespace, redis: aioredis.Redis, keys: Keys) -> int:
    checks = await run_checks(redis, keys, stale_after_ms=int(args.stale_after * 1000))
    text = "\n".join(
        f"{'ok  ' if c.ok else 'FAIL'}  {c.name}: {c.detail}"
        + (f"\n      -> {c.fix}" if c.fix else "")
        for c in checks
    )
    _emit(args, [c.as_json() for c in checks], text)
    return EXIT_OK if all(c.ok for c in checks) else EXIT_FAILED


async def cmd_hub_standby(args: argparse.Namespace, redis: aioredis.Redis, keys: Keys) -> int:
    command = args.hub_command[1:] if args.hub_command[:1] == ["--"] else args.hub_command
    timing = LeaseTiming(args.lease_duration, args.renew_deadline, args.retry_period)
    problem = timing.problem() or (None if command else "give the hub command after --")
    if problem:
        print(f"kubecache hub-standby: {problem}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    lease = RedisLease(
        redis, keys.hub_lease(args.lease_name), args.identity or default_identity(), timing
    )
    return await main_async(command, lease, stop_grace=args.stop_grace)


COMMANDS = {
    "status": cmd_status,
    "servers": cmd_servers,
    "events": cmd_events,
    "doctor": cmd_doctor,
    "hub-standby": cmd_hub_standby,
}


async def run(args: argparse.Namespace) -> int:
    settings = RedisSettings(
        url=args.redis_url,
        username=args.redis_username,
        password=_env("REDIS_PASSWORD"),
        password_file=args.redis_password_file,
        ca_file=args.redis_ca_file,
        client_name="kubecache-cli",
    )
    try:
        keys = Keys(args.key_prefix)
        redis = connect(settings)
    except (ValueError, RedisConfigError) as e:
        print(f"kubecache: {e}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return await COMMANDS[args.command](args, redis, keys)
    except (RedisError, OSError) as e:
        print(
            f"kubecache: cannot read Redis at {redacted(settings.url)}: {e} "
            "(run `kubecache doctor` for what to check)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    finally:
        await redis.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
