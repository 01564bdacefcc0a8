"""Command line of ``kubecache``: options, environment variables, help, exit codes.

Global options are accepted before or after the subcommand
(``kubecache --json status`` and ``kubecache status --json`` are the same);
each defaults to its ``KUBECACHE_*`` environment variable.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from kubecache import __version__
from kubecache.acl import DEFAULT_LEASE_NAME
from kubecache.contract import DEFAULT_PREFIX
from kubecache.redis_connection import DEFAULT_URL
from kubecache.terminal import printable, safe_json

EXIT_OK = 0
EXIT_FAILED = 1  # an error, or malformed records were skipped (the rest was shown)
EXIT_USAGE = 2  # a mistake on the command line or in the environment
EXIT_UNTRUSTED = 3  # shown, but the cache is stale, unknown or still syncing: do not rely on it

ENV_PREFIX = "KUBECACHE_"


@dataclass(frozen=True)
class GlobalOption:
    flag: str
    env: str | None
    help: str
    default: str | None = None
    metavar: str | None = None

    def default_value(self) -> str | None:
        if self.env is None:
            return self.default
        return os.environ.get(ENV_PREFIX + self.env, self.default)


GLOBAL_OPTIONS = (
    GlobalOption(
        "--redis-url",
        "REDIS_URL",
        "redis://, rediss:// (TLS), unix:// or redis+sentinel://host:26379/service/db",
        DEFAULT_URL,
        "URL",
    ),
    GlobalOption("--redis-username", "REDIS_USERNAME", "Redis ACL user", metavar="USER"),
    GlobalOption(
        "--redis-password-file",
        "REDIS_PASSWORD_FILE",
        "file holding the Redis password (e.g. a mounted Secret); "
        f"the password itself may come from {ENV_PREFIX}REDIS_PASSWORD",
        metavar="PATH",
    ),
    GlobalOption("--redis-ca-file", "REDIS_CA_FILE", "CA bundle for rediss://", metavar="PATH"),
    GlobalOption(
        "--key-prefix",
        "KEY_PREFIX",
        "Redis key prefix the cacher writes under",
        DEFAULT_PREFIX,
        "PREFIX",
    ),
    GlobalOption(
        "--stale-after",
        "STALE_AFTER",
        "seconds without a cacher heartbeat after which the cache counts as stale",
        "15",
        "SECONDS",
    ),
)

#: Every environment variable the CLI reads (also listed in --help).
ENVIRONMENT = (
    *((o.env, o.flag) for o in GLOBAL_OPTIONS if o.env),
    ("REDIS_PASSWORD", "the Redis password (prefer --redis-password-file)"),
    ("HUB_LEASE_NAME", "hub-standby --lease-name"),
    ("HUB_IDENTITY", "hub-standby --identity"),
    ("HUB_METRICS_PORT", "hub-standby --metrics-port"),
)

EPILOG = f"""\
environment (options given on the command line win):
{chr(10).join(f"  {ENV_PREFIX}{name:<22} {what}" for name, what in ENVIRONMENT)}

exit codes:
  {EXIT_OK}  ok
  {EXIT_FAILED}  failed (Redis unreachable, nothing found), or malformed records were
     skipped (each one reported on stderr; the others are shown), or the reader
     of the output closed it (| head): quietly
  {EXIT_USAGE}  usage or configuration mistake
  {EXIT_UNTRUSTED}  the output was shown but the cache is stale, unknown (no cacher wrote
     under this prefix) or still syncing: a banner on stderr says which
  hub-standby exits with the hub's status, or 75 when it lost the lease

examples:
  kubecache status
  kubecache --redis-url redis://127.0.0.1:6379/0 servers --user alice
  kubecache servers --namespace jhub --json | jq '.[].pod'
  kubecache events alice/gpu --follow
  KUBECACHE_KEY_PREFIX=staging:v1: kubecache doctor
  kubecache hub-standby -- jupyterhub --config /usr/local/etc/jupyterhub/jupyterhub_config.py

With --json, stdout holds only the result (one JSON document; events: one
object per line) and every diagnostic on stderr is one JSON object per line:
{{"level": "error"|"warning"|"notice", "message": "...", ...}}.
Text from Redis is untrusted: control and format characters are printed
escaped (\\x1b, \\u202e).
"""


def _stale_after(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a positive number of seconds "
            f"(from --stale-after or {ENV_PREFIX}STALE_AFTER)"
        )
    return value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1-65535)")
    return value


def wants_json(argv: Sequence[str]) -> bool:
    """Whether ``--json`` was asked for (also before parsing succeeded)."""
    args = list(argv)
    return "--json" in (args[: args.index("--")] if "--" in args else args)


class Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line (JSON with --json) and exit code 2."""

    json_errors = False

    def error(self, message: str) -> NoReturn:
        report_error(f"{self.prog}: {message} (see {self.prog} --help)", as_json=self.json_errors)
        sys.exit(EXIT_USAGE)


def report_error(message: str, *, as_json: bool, **fields: Any) -> None:
    """One diagnostic line on stderr."""
    if as_json:
        print(safe_json({"level": "error", "message": message, **fields}), file=sys.stderr)
    else:
        print(printable(message), file=sys.stderr)


def _add_global_options(parser: argparse.ArgumentParser, *, top_level: bool) -> None:
    for option in GLOBAL_OPTIONS:
        env = f" [{ENV_PREFIX}{option.env}]" if option.env else ""
        default = f" (default: {option.default})" if option.default else ""
        parser.add_argument(
            option.flag,
            metavar=option.metavar,
            type=_stale_after if option.flag == "--stale-after" else str,
            default=option.default_value() if top_level else argparse.SUPPRESS,
            help=f"{option.help}{default}{env}" if top_level else argparse.SUPPRESS,
        )
    parser.add_argument(
        "--json",
        action="store_true",
        default=False if top_level else argparse.SUPPRESS,
        help="machine-readable output (see below)" if top_level else argparse.SUPPRESS,
    )


def build_parser(*, json_errors: bool = False) -> Parser:
    parser = Parser(
        prog="kubecache",
        description="Inspect the kubecache cache in Redis (never the Kubernetes API).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.json_errors = json_errors
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_global_options(parser, top_level=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, epilog: str = "") -> Parser:
        sub: Parser = commands.add_parser(
            name,
            help=help,
            description=help,
            epilog=epilog + "\n\nglobal options (kubecache --help) may also follow the command.",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.json_errors = json_errors
        _add_global_options(sub, top_level=False)
        return sub

    status = command(
        "status",
        "cache health: leader, epoch, synced, heartbeat age, lag, record counts; "
        "which hub replica holds the hub-standby lease",
        "example: kubecache status --json",
    )
    status.add_argument(
        "--lease-name",
        default=os.environ.get(ENV_PREFIX + "HUB_LEASE_NAME", DEFAULT_LEASE_NAME),
        help=f"the hub-standby lease to report (default: {DEFAULT_LEASE_NAME}) "
        f"[{ENV_PREFIX}HUB_LEASE_NAME]",
    )
    servers = command(
        "servers",
        "user servers known to the cache",
        "examples:\n  kubecache servers --user alice\n  kubecache servers --server '' --json",
    )
    servers.add_argument("--user", help="only this user (the full name, matched exactly)")
    servers.add_argument("--server", help="only this named server ('' for the default server)")
    servers.add_argument("--namespace", help="only pods in this namespace")
    events = command(
        "events",
        "events of a user's server pod, oldest first",
        "examples:\n  kubecache events alice\n  kubecache events alice/gpu -f",
    )
    events.add_argument("target", metavar="USER[/SERVER]", help="user, and named server after /")
    events.add_argument("--namespace", help="the pod's namespace, when several hubs share a cache")
    events.add_argument("-f", "--follow", action="store_true", help="keep printing new events")
    command(
        "doctor",
        "check Redis, credentials and ACL, key prefix and freshness; say what to fix",
        "example: kubecache --redis-url rediss://redis:6380/0 doctor",
    )
    standby = command(
        "hub-standby",
        "run COMMAND (a hub) only while holding a Redis lease; other replicas stand by",
        "example:\n  kubecache hub-standby -- jupyterhub --config jupyterhub_config.py\n\n"
        "A --lease-name other than the default must be one the hub's Redis user may\n"
        "write (the chart's redis.auth.hubLeaseNames; python3 -m kubecache.acl --lease-name).\n"
        "Running two replicas under zero-to-jupyterhub: docs/ha.md.",
    )
    standby.add_argument(
        "--lease-name",
        default=os.environ.get(ENV_PREFIX + "HUB_LEASE_NAME", DEFAULT_LEASE_NAME),
        help=f"name of the lease (default: {DEFAULT_LEASE_NAME}; the hub ACL user may write "
        f"only the leases it was granted) [{ENV_PREFIX}HUB_LEASE_NAME]",
    )
    standby.add_argument(
        "--lease-duration", type=_positive, default=15.0, help="seconds (default 15)"
    )
    standby.add_argument(
        "--renew-deadline",
        type=_positive,
        default=10.0,
        help="seconds without a renewal before the hub is stopped (default 10)",
    )
    standby.add_argument(
        "--retry-period", type=_positive, default=2.0, help="seconds between renewals (default 2)"
    )
    standby.add_argument(
        "--identity",
        default=os.environ.get(ENV_PREFIX + "HUB_IDENTITY"),
        help=f"this replica's name (default: host name and pid) [{ENV_PREFIX}HUB_IDENTITY]",
    )
    standby.add_argument(
        "--stop-grace",
        type=_positive,
        default=30.0,
        help="seconds between SIGTERM and SIGKILL (default 30)",
    )
    standby.add_argument(
        "--preload",
        action="store_true",
        help="import JupyterHub and the spawner while standing by, so a takeover starts the "
        "hub without that wait (COMMAND must be `jupyterhub ...` or `python -m jupyterhub "
        "...`; nothing is configured, opened or bound before the lease is held)",
    )
    standby.add_argument(
        "--metrics-port",
        type=_port,
        default=os.environ.get(ENV_PREFIX + "HUB_METRICS_PORT"),
        help="serve this replica's state on http://HOST:PORT/metrics (Prometheus) and /state "
        f"(JSON); off unless given [{ENV_PREFIX}HUB_METRICS_PORT]",
    )
    standby.add_argument(
        "--metrics-host", default="0.0.0.0", help="address of --metrics-port (default 0.0.0.0)"
    )
    standby.add_argument(
        "hub_command",
        nargs=argparse.REMAINDER,
        metavar="-- COMMAND ...",
        help="the hub's command line, after --",
    )
    return parser


def parse(argv: Sequence[str]) -> argparse.Namespace:
    return build_parser(json_errors=wants_json(argv)).parse_args(argv)
