"""The ``kubecache`` command: inspect the cache from Redis, never from the Kubernetes API.

    kubecache status                        leader, epoch, synced, heartbeat age, lag, counts
    kubecache servers [--user U] [--server S] [--namespace N]
    kubecache events USER[/SERVER] [-f]     a server's pod events, optionally followed
    kubecache doctor                        what is wrong with this reader's view, and what to do
    kubecache hub-standby -- jupyterhub -f CONFIG
                                            run the hub on exactly one of several replicas

Options, environment variables and exit codes: :mod:`kubecache.cli_args`
(``kubecache --help``). Everything read from Redis is untrusted: one
malformed record is reported on its own line and the others are still shown;
control characters are printed escaped (:mod:`kubecache.terminal`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from kubecache import views
from kubecache.cli_args import (
    ENV_PREFIX,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNTRUSTED,
    EXIT_USAGE,
    parse,
)
from kubecache.contract import (
    CacheHealth,
    ContractError,
    EventRecord,
    Freshness,
    Keys,
    PodRecord,
    decode_event_record,
    decode_feed_entry,
    decode_pod_record,
    health_freshness,
    names_match,
    redis_time_ms,
)
from kubecache.doctor import run_checks
from kubecache.foreign_keys import advice, foreign_keys, is_wrongtype
from kubecache.hub_standby import LeaseTiming, RedisLease, default_identity, main_async
from kubecache.hub_standby_state import MetricsServer, StandbyState, decode_lease
from kubecache.redis_connection import (
    RedisConfigError,
    RedisSettings,
    connect,
    node_replid,
    redacted,
)
from kubecache.terminal import decoded, printable, safe_json

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_UNTRUSTED", "EXIT_USAGE", "main", "run"]


class StdoutClosed(Exception):
    """The reader of our output went away (``kubecache servers | head -1``): not a Redis error."""


class Output:
    """Where results and diagnostics go: stdout for the result, stderr for the rest."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def result(self, data: Any, text: str) -> None:
        """The command's result; ``text`` must already be made printable."""
        self.line(safe_json(data, indent=True) if self.as_json else text)

    @staticmethod
    def line(text: str) -> None:
        """One line on stdout, flushed now so a closed pipe is noticed here."""
        try:
            print(text)
            sys.stdout.flush()
        except BrokenPipeError as e:
            # what is still buffered must not fail again at interpreter exit
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
            raise StdoutClosed() from e

    def diagnostic(self, level: str, message: str, **fields: Any) -> None:
        if self.as_json:
            print(safe_json({"level": level, "message": message, **fields}), file=sys.stderr)
        else:
            prefix = "" if level == "notice" else f"{level}: "
            print(prefix + printable(message), file=sys.stderr)
        sys.stderr.flush()


@dataclass(frozen=True)
class View:
    """What a reader knows about the cache's trustworthiness right now."""

    health: CacheHealth | None
    health_problem: str | None  # the health record exists but is malformed
    freshness: Freshness
    now_ms: int

    @property
    def trusted(self) -> bool:
        return self.freshness.trusted


async def _view(redis: aioredis.Redis, keys: Keys, stale_after_s: float) -> View:
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.health)
        pipe.time()
        # which node answers: health written on another primary is a promoted replica's
        pipe.info("replication")
        raw_health, time_reply, replication = await pipe.execute(raise_on_error=False)
    for reply in (raw_health, time_reply):
        if isinstance(reply, Exception):
            raise reply
    now_ms = redis_time_ms(time_reply)
    try:
        health = CacheHealth.from_redis(raw_health)
    except ContractError as e:
        return View(None, str(e), Freshness.UNKNOWN, now_ms)
    freshness = health_freshness(
        health,
        now_ms=now_ms,
        stale_after_ms=int(stale_after_s * 1000),
        node_replid=node_replid(replication),
    )
    return View(health, None, freshness, now_ms)


def _banner(out: Output, view: View, args: argparse.Namespace, keys: Keys) -> None:
    """Say loudly, before the output, why it may be wrong."""
    if view.trusted:
        return
    reason = views.freshness_reason(
        view.health,
        view.freshness,
        now_ms=view.now_ms,
        stale_after_ms=int(args.stale_after * 1000),
        prefix=keys.prefix,
        health_problem=view.health_problem,
    )
    out.diagnostic(
        "warning",
        f"CACHE {view.freshness.value.upper()}: {reason}. What follows may be out of date "
        f"or incomplete (exit code {EXIT_UNTRUSTED}); run `kubecache doctor`.",
        freshness=view.freshness.value,
        reason=reason,
    )


async def _records(redis: aioredis.Redis, keys: Keys, out: Output) -> tuple[list[PodRecord], int]:
    """All well-formed pod records; each malformed one is reported on its own line."""
    records, malformed = [], 0
    async for raw_field, raw in redis.hscan_iter(keys.pods, count=1000):
        field = decoded(raw_field)
        try:
            records.append(decode_pod_record(raw, key=field))
        except ContractError as e:
            malformed += 1
            out.diagnostic("warning", f"skipping pod record '{field}': {e}", key=field)
    return records, malformed


async def cmd_status(
    args: argparse.Namespace, redis: aioredis.Redis, keys: Keys, out: Output
) -> int:
    view = await _view(redis, keys, args.stale_after)
    summary = views.status_summary(
        view.health,
        freshness=view.freshness,
        now_ms=view.now_ms,
        records=await redis.hlen(keys.pods),
        feed_length=await redis.xlen(keys.feed),
        prefix=keys.prefix,
    )
    async with redis.pipeline(transaction=False) as pipe:
        pipe.get(keys.hub_lease(args.lease_name))
        pipe.pttl(keys.hub_lease(args.lease_name))
        raw_lease, lease_ttl_ms = await pipe.execute()
    summary["hub_lease"] = views.hub_lease_summary(
        args.lease_name, decode_lease(raw_lease), ttl_ms=lease_ttl_ms, now_ms=view.now_ms
    )
    if not view.trusted:
        summary["reason"] = views.freshness_reason(
            view.health,
            view.freshness,
            now_ms=view.now_ms,
            stale_after_ms=int(args.stale_after * 1000),
            prefix=keys.prefix,
            health_problem=view.health_problem,
        )
    out.result(summary, views.status_text(summary))
    return EXIT_OK if view.trusted else EXIT_UNTRUSTED


async def cmd_servers(
    args: argparse.Namespace, redis: aioredis.Redis, keys: Keys, out: Output
) -> int:
    view = await _view(redis, keys, args.stale_after)
    _banner(out, view, args, keys)
    records, malformed = await _records(redis, keys, out)
    selected = [
        r
        for r in records
        if names_match(r, user=args.user, server=args.server)
        and (args.namespace is None or r["namespace"] == args.namespace)
    ]
    rows = sorted(
        (views.server_row(r, now_s=view.now_ms // 1000) for r in selected),
        key=lambda r: (r.user, r.server, r.namespace, r.pod),
    )
    out.result([r.as_json() for r in rows], views.servers_table(rows) if rows else "no servers")
    if not rows:
        why = views.empty_reason(
            view.health,
            records=len(records),
            malformed=malformed,
            filters={"--user": args.user, "--server": args.server, "--namespace": args.namespace},
            prefix=keys.prefix,
        )
        out.diagnostic("notice", why)
    if not view.trusted:
        return EXIT_UNTRUSTED
    return EXIT_FAILED if malformed else EXIT_OK


def _find_pod(
    records: Sequence[PodRecord], user: str, server: str, namespace: str | None
) -> PodRecord | None:
    candidates = [
        r
        for r in records
        if names_match(r, user=user, server=server)
        and (namespace is None or r["namespace"] == namespace)
    ]
    # The newest pod wins when an old one is still terminating.
    return max(candidates, key=lambda r: r["rv"], default=None)


async def _event_log(
    redis: aioredis.Redis, keys: Keys, key: str, out: Output, reported: set[bytes | str]
) -> list[EventRecord]:
    entries = []
    for raw in await redis.lrange(keys.events(key), 0, -1):
        try:
            entries.append(decode_event_record(raw))
        except ContractError as e:
            if raw not in reported:  # once, also when following
                reported.add(raw)
                out.diagnostic("warning", f"skipping an event of {key}: {e}", key=key)
    return entries


async def cmd_events(
    args: argparse.Namespace, redis: aioredis.Redis, keys: Keys, out: Output
) -> int:
    user, _, server = args.target.partition("/")
    view = await _view(redis, keys, args.stale_after)
    _banner(out, view, args, keys)
    records, _ = await _records(redis, keys, out)
    record = _find_pod(records, user, server, args.namespace)
    if record is None:
        label = f"{user}/{server}" if server else user
        out.diagnostic(
            "error",
            f"no pod of {label!r} in the cache (see: kubecache servers --user {shlex.quote(user)})",
        )
        return EXIT_UNTRUSTED if not view.trusted else EXIT_FAILED
    key = f"{record['namespace']}/{record['name']}"
    last_id: Any = "$"
    if args.follow:  # take the feed position before reading, so nothing falls in between
        newest = await redis.xrevrange(keys.feed, count=1)
        last_id = newest[0][0] if newest else "0-0"
    shown: dict[str, int] = {}
    reported: set[bytes | str] = set()
    _print_new(out, await _event_log(redis, keys, key, out, reported), record["uid"], shown)
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
                    log = await _event_log(redis, keys, key, out, reported)
                    _print_new(out, log, record["uid"], shown)
                elif entry["key"] == key and entry["kind"] == "gone":
                    out.diagnostic("notice", f"pod {key} is gone")
                    return EXIT_OK
    return EXIT_OK if view.trusted else EXIT_UNTRUSTED


def _print_new(
    out: Output, entries: list[EventRecord], pod_uid: str, shown: dict[str, int]
) -> None:
    for entry in views.latest_events(entries, pod_uid=pod_uid):
        if shown.get(entry["uid"], -1) >= entry["rv"]:
            continue
        shown[entry["uid"]] = entry["rv"]
        out.line(safe_json(entry) if out.as_json else views.event_line(entry))


async def cmd_doctor(
    args: argparse.Namespace, redis: aioredis.Redis, keys: Keys, out: Output
) -> int:
    checks = await run_checks(redis, keys, stale_after_ms=int(args.stale_after * 1000))
    text = "\n".join(
        f"{'ok  ' if c.ok else 'FAIL'}  {printable(c.name)}: {printable(c.detail)}"
        + (f"\n      -> {printable(c.fix)}" if c.fix else "")
        for c in checks
    )
    out.result([c.as_json() for c in checks], text)
    return EXIT_OK if all(c.ok for c in checks) else EXIT_FAILED


async def cmd_hub_standby(
    args: argparse.Namespace, redis: aioredis.Redis, keys: Keys, out: Output
) -> int:
    command = args.hub_command[1:] if args.hub_command[:1] == ["--"] else args.hub_command
    timing = LeaseTiming(args.lease_duration, args.renew_deadline, args.retry_period)
    problem = timing.problem() or (None if command else "give the hub command after --")
    if problem:
        out.diagnostic("error", f"kubecache hub-standby: {problem}")
        return EXIT_USAGE
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    identity = args.identity or default_identity()
    lease = RedisLease(redis, keys.hub_lease(args.lease_name), identity, timing)
    state = StandbyState(args.lease_name, identity)
    server = None
    if args.metrics_port:
        server = MetricsServer(state, host=args.metrics_host, port=args.metrics_port)
        try:
            await server.start()
        except OSError as e:
            out.diagnostic(
                "error",
                f"kubecache hub-standby: cannot serve metrics on {args.metrics_host}:"
                f"{args.metrics_port}: {e}; choose a free --metrics-port",
            )
            return EXIT_USAGE
    try:
        return await main_async(
            command, lease, stop_grace=args.stop_grace, state=state, preload=args.preload
        )
    finally:
        if server is not None:
            await server.close()


COMMANDS = {
    "status": cmd_status,
    "servers": cmd_servers,
    "events": cmd_events,
    "doctor": cmd_doctor,
    "hub-standby": cmd_hub_standby,
}


async def run(args: argparse.Namespace) -> int:
    out = Output(args.json)
    settings = RedisSettings(
        url=args.redis_url,
        username=args.redis_username,
        password=os.environ.get(ENV_PREFIX + "REDIS_PASSWORD"),
        password_file=args.redis_password_file,
        ca_file=args.redis_ca_file,
        client_name="kubecache-cli",
    )
    try:
        keys = Keys(args.key_prefix)
        redis = connect(settings)
    except (ValueError, RedisConfigError, OSError) as e:
        out.diagnostic("error", f"kubecache: {e}")
        return EXIT_USAGE
    try:
        return await COMMANDS[args.command](args, redis, keys, out)
    except StdoutClosed:  # the reader has what it wanted; nothing to say, and no one to say it
        return EXIT_FAILED
    except (RedisError, OSError) as e:
        if is_wrongtype(e):
            hint = advice([], keys)
            with contextlib.suppress(RedisError, OSError):
                hint = advice(await foreign_keys(redis, keys), keys)
            out.diagnostic("error", f"kubecache: {e}: {hint}")
            return EXIT_FAILED
        hint = (
            "check --redis-url, that Redis runs and that this host may reach it"
            if args.command == "doctor"
            else "run `kubecache doctor` for what to check"
        )
        out.diagnostic(
            "error", f"kubecache: cannot read Redis at {redacted(settings.url)}: {e} ({hint})"
        )
        return EXIT_FAILED
    except ContractError as e:  # a reply no command expected; never a traceback
        out.diagnostic("error", f"kubecache: {e}")
        return EXIT_FAILED
    finally:
        await redis.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
