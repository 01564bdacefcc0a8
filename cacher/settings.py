"""The cacher's configuration: one frozen object built from flags and env.

Every flag ``--some-name`` can also be given as ``KUBECACHE_SOME_NAME``; a flag
on the command line wins over the environment. :func:`load_settings` checks
everything that can be checked without a network (Redis URL, files, selector
syntax, durations, lease timing) and raises :class:`SettingsError` with a
message that says what to change, before the cacher connects anywhere.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kubecache.cacher import __version__, credentials
from kubecache.contract import (
    DEFAULT_EVENT_LOG_CAP,
    DEFAULT_FEED_MAXLEN,
    MIN_FEED_MAXLEN,
    prefix_problem,
)
from kubecache.redis_connection import DEFAULT_URL, RedisConfigError, RedisSettings
from kubecache.selector import selector_problem

ENV_PREFIX = "KUBECACHE_"
DEFAULT_POD_SELECTOR = "component=singleuser-server"


class SettingsError(ValueError):
    """A setting cannot work; the message names the flag/env var and the fix."""


@dataclass(frozen=True)
class Settings:
    kubeconfig: str | None = None
    in_cluster: bool = False
    redis: RedisSettings = field(default_factory=RedisSettings)
    key_prefix: str = "kubecache:v1:"
    #: Empty: every namespace (one cluster-wide watch); else one watch each.
    namespaces: tuple[str, ...] = ()
    pod_selector: str = DEFAULT_POD_SELECTOR
    event_log_cap: int = DEFAULT_EVENT_LOG_CAP
    feed_maxlen: int = DEFAULT_FEED_MAXLEN
    lease_name: str = "kubecache-cacher"
    lease_namespace: str = "default"
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    identity: str = ""
    health_host: str = "0.0.0.0"
    health_port: int = 8080
    #: timeoutSeconds asked of each WATCH (jittered by up to 10 %), capped by
    #: :attr:`progress_stale_after` (see :attr:`watch_timeout_seconds`).
    watch_timeout: float = 300.0
    #: No bytes (not even a bookmark) for this long → reconnect the watch
    #: (capped by :attr:`progress_stale_after`).
    stall_timeout: float = 120.0
    #: The cacher's promise: a progressing watch shows a sign (a line, a
    #: bookmark, a completed list) at least this often; readers treat the pods
    #: watch as stale after this long without one (``progress_stale_ms``).
    progress_stale_after: float = 30.0
    #: Timeout of one ordinary API request (LIST page, lease read/write).
    request_timeout: float = 30.0
    heartbeat_interval: float = 2.0
    once: bool = False
    log_level: str = "INFO"
    log_format: str = "text"

    @property
    def watch_timeout_seconds(self) -> float:
        """The timeoutSeconds asked of a watch: at most 2/3 of the progress promise (>= 4 s).

        A watch the API server ends cleanly at its timeout is progress (a real
        kube-apiserver sends an idle watch no bookmark), so an idle but healthy
        watch shows progress within one timeout (+10 % jitter) plus a reconnect.
        """
        return max(4.0, min(self.watch_timeout, self.progress_stale_after * 2 / 3))

    @property
    def stall_seconds(self) -> float:
        """Reconnect a silent watch after this long (the client-side read timeout).

        Never later than the promise, and never before the server had the chance
        to end an idle watch at its timeout (+10 % jitter, +2 s): a healthy idle
        watch must end cleanly, which is its sign of progress.
        """
        floor = self.watch_timeout_seconds * 1.1 + 2.0
        return max(min(self.stall_timeout, self.progress_stale_after), floor)


# --------------------------------------------------------------------------
# Parsing helpers (pure)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str, *, name: str) -> float:
    """Seconds from ``"15"``, ``"15s"``, ``"500ms"``, ``"2m"``, ``"1h"``."""
    match = _DURATION.match(str(text))
    if not match:
        raise SettingsError(
            f"{name}: {text!r} is not a duration; use seconds like 15, 1.5, 500ms, 2m or 1h"
        )
    value = float(match.group(1)) * _UNITS[match.group(2)]
    if value <= 0:
        raise SettingsError(f"{name}: the duration must be greater than zero, got {text!r}")
    return value


def parse_bool(text: str, *, name: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise SettingsError(f"{name}: {text!r} is not a boolean; use true or false")


def parse_int(text: str, *, name: str, minimum: int = 0, maximum: int | None = None) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise SettingsError(f"{name}: {text!r} is not an integer") from None
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and at most {maximum}" if maximum is not None else ""
        raise SettingsError(f"{name}: {value} must be at least {minimum}{upper}")
    return value


_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")

#: Why a text is not a label selector, or None (the rules live in kubecache.selector).
label_selector_problem = selector_problem


# --------------------------------------------------------------------------
# Flags and environment

_FLAGS: list[tuple[str, dict[str, object]]] = [
    (
        "--kubeconfig",
        {
            "help": "kubeconfig file (default: $KUBECONFIG, a list merged as kubectl does, "
            "or ~/.kube/config)"
        },
    ),
    (
        "--in-cluster",
        {
            "action": "store_const",
            "const": "true",
            "help": "use the pod's service account instead of a kubeconfig",
        },
    ),
    (
        "--redis-url",
        {"help": f"redis://, rediss://, unix:// or redis+sentinel:// (default {DEFAULT_URL})"},
    ),
    ("--redis-username", {"help": "Redis ACL user name"}),
    ("--redis-password-file", {"help": "file holding the Redis password (a mounted Secret)"}),
    ("--redis-ca-file", {"help": "CA bundle for rediss:// with a private CA"}),
    ("--key-prefix", {"help": "Redis key prefix of this deployment (default kubecache:v1:)"}),
    ("--namespaces", {"help": "comma-separated namespaces to watch (default: all)"}),
    (
        "--pod-selector",
        {"help": f"label selector of tracked pods (default {DEFAULT_POD_SELECTOR})"},
    ),
    ("--event-log-cap", {"help": "events kept per pod"}),
    ("--feed-maxlen", {"help": "approximate length of the change feed"}),
    ("--lease-name", {"help": "Lease used for leader election (default kubecache-cacher)"}),
    ("--lease-namespace", {"help": "namespace of the Lease (default: own namespace or 'default')"}),
    ("--lease-duration", {"help": "seconds a leader holds the lease without renewing (15)"}),
    ("--renew-deadline", {"help": "seconds the leader tries to renew before giving up (10)"}),
    ("--retry-period", {"help": "seconds between lease attempts (2)"}),
    ("--identity", {"help": "this replica's name in the Lease (default hostname + random)"}),
    ("--health-host", {"help": "address of /healthz, /readyz, /metrics (0.0.0.0)"}),
    ("--health-port", {"help": "port of the health server (8080; 0 picks a free one)"}),
    ("--watch-timeout", {"help": "timeoutSeconds asked of each watch (300)"}),
    ("--stall-timeout", {"help": "reconnect a watch silent for this long (120)"}),
    (
        "--progress-stale-after",
        {
            "help": "promise: a healthy watch shows progress at least this often; readers "
            "distrust the cache after this long without (30; caps the two above)"
        },
    ),
    ("--request-timeout", {"help": "timeout of one API request (30)"}),
    ("--heartbeat-interval", {"help": "seconds between cache heartbeats (2)"}),
    (
        "--once",
        {
            "action": "store_const",
            "const": "true",
            "help": "list pods and events into Redis once, then exit",
        },
    ),
    ("--log-level", {"help": "DEBUG, INFO, WARNING or ERROR (INFO)"}),
    ("--log-format", {"help": "text (key=value) or json"}),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubecache-cacher",
        description=(
            "Watch pods and their events and keep a compact copy in Redis for kubecache "
            "spawners. Every flag can also be set as the KUBECACHE_* variable shown after it "
            "(a flag wins); the Redis password comes from KUBECACHE_REDIS_PASSWORD or "
            "--redis-password-file."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    for flag, options in _FLAGS:
        env = ENV_PREFIX + flag[2:].replace("-", "_").upper()
        with_env = {**options, "help": f"{options['help']} [{env}]"}
        parser.add_argument(flag, default=None, **with_env)  # type: ignore[arg-type]
    return parser


_EPILOG = """\
examples:
  kubecache-cacher --kubeconfig ~/.kube/config --redis-url redis://127.0.0.1:6379/0 \\
      --namespaces jhub --health-port 8081
  KUBECACHE_REDIS_URL=rediss://redis:6380/0 KUBECACHE_REDIS_PASSWORD_FILE=/secrets/pw \\
      kubecache-cacher --in-cluster
  kubecache-cacher --once          # one list into Redis, then exit

exit codes: 0 stopped, 2 configuration or start-up mistake (one line on stderr)"""


def _merged(args: argparse.Namespace, env: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """flag dest -> (value, where it came from), flags over environment."""
    values: dict[str, tuple[str, str]] = {}
    for flag, _ in _FLAGS:
        dest = flag[2:].replace("-", "_")
        env_name = ENV_PREFIX + dest.upper()
        given = getattr(args, dest)
        if given is not None:
            values[dest] = (str(given), flag)
        elif env.get(env_name) not in (None, ""):
            values[dest] = (env[env_name], env_name)
    return values


def default_identity() -> str:
    return f"{socket.gethostname()}-{secrets.token_hex(3)}"


def own_namespace() -> str | None:
    try:
        return (credentials.SERVICE_ACCOUNT / "namespace").read_text().strip() or None
    except OSError:
        return None


def load_settings(
    argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Parse and validate; raises :class:`SettingsError` (or exits on --help)."""
    env = os.environ if env is None else env
    args = build_parser().parse_args(argv)
    given = _merged(args, env)

    def text(dest: str, default: str) -> str:
        return given[dest][0] if dest in given else default

    def where(dest: str) -> str:
        return given[dest][1] if dest in given else "--" + dest.replace("_", "-")

    def duration(dest: str, default: float) -> float:
        return parse_duration(given[dest][0], name=where(dest)) if dest in given else default

    def integer(dest: str, default: int, **limits: int) -> int:
        return parse_int(given[dest][0], name=where(dest), **limits) if dest in given else default

    def boolean(dest: str) -> bool:
        return parse_bool(given[dest][0], name=where(dest)) if dest in given else False

    in_cluster = boolean("in_cluster")
    kubeconfig = given["kubeconfig"][0] if "kubeconfig" in given else None
    if in_cluster and kubeconfig:
        raise SettingsError(
            "--kubeconfig and --in-cluster exclude each other: give one "
            "(in a pod, use --in-cluster; elsewhere, a kubeconfig file)"
        )
    if in_cluster:
        for name in ("token", "ca.crt"):
            if not (credentials.SERVICE_ACCOUNT / name).is_file():
                raise SettingsError(
                    f"--in-cluster: {credentials.SERVICE_ACCOUNT / name} is missing; "
                    "mount the service account token (automountServiceAccountToken: true) "
                    "or use --kubeconfig"
                )
        if not env.get("KUBERNETES_SERVICE_HOST"):
            raise SettingsError(
                "--in-cluster: KUBERNETES_SERVICE_HOST is not set; are we running in a pod?"
            )
    else:
        if kubeconfig is None:
            # A KUBECONFIG list (a:b) is kept whole: the loader merges it as kubectl does.
            kubeconfig = env.get("KUBECONFIG") or str(Path("~/.kube/config").expanduser())
        if not any(Path(p).expanduser().is_file() for p in kubeconfig.split(os.pathsep) if p):
            raise SettingsError(
                f"kubeconfig {kubeconfig!r} does not exist; give --kubeconfig "
                "(KUBECACHE_KUBECONFIG) or --in-cluster"
            )

    redis = RedisSettings(
        url=text("redis_url", DEFAULT_URL),
        username=given["redis_username"][0] if "redis_username" in given else None,
        password_file=given["redis_password_file"][0] if "redis_password_file" in given else None,
        # Env only, never a flag: a password on a command line shows in `ps`.
        password=env.get(ENV_PREFIX + "REDIS_PASSWORD") or None,
        ca_file=given["redis_ca_file"][0] if "redis_ca_file" in given else None,
        client_name="kubecache-cacher",
    )
    try:
        redis.validate()
    except RedisConfigError as e:
        raise SettingsError(f"{where('redis_url')}: {e}") from None

    key_prefix = text("key_prefix", "kubecache:v1:")
    problem = prefix_problem(key_prefix)
    if problem:
        raise SettingsError(f"{where('key_prefix')}: {problem}")

    namespaces = tuple(
        dict.fromkeys(n.strip() for n in text("namespaces", "").split(",") if n.strip())
    )
    if not namespaces and text("namespaces", "").strip():
        raise SettingsError(
            f"{where('namespaces')}: {text('namespaces', '')!r} names no namespace; "
            "give comma-separated names, or leave it unset to watch every namespace"
        )
    for namespace in namespaces:
        if not _DNS_LABEL.match(namespace):
            raise SettingsError(
                f"{where('namespaces')}: {namespace!r} is not a namespace name "
                "(lowercase letters, digits and '-', at most 63)"
            )

    pod_selector = text("pod_selector", DEFAULT_POD_SELECTOR)
    problem = label_selector_problem(pod_selector)
    if problem:
        raise SettingsError(
            f"{where('pod_selector')}: bad label selector {pod_selector!r}: {problem}"
        )

    lease_duration = duration("lease_duration", 15.0)
    renew_deadline = duration("renew_deadline", 10.0)
    retry_period = duration("retry_period", 2.0)
    if renew_deadline >= lease_duration:
        raise SettingsError(
            f"the renew deadline ({renew_deadline:g} s) must be shorter than the lease duration "
            f"({lease_duration:g} s), or two leaders could overlap; e.g. 10 and 15"
        )
    if retry_period >= renew_deadline:
        raise SettingsError(
            f"the retry period ({retry_period:g} s) must be shorter than the renew deadline "
            f"({renew_deadline:g} s), or the leader cannot renew in time; e.g. 2 and 10"
        )
    lease_namespace = text("lease_namespace", own_namespace() or "default")
    if not _DNS_LABEL.match(lease_namespace):
        raise SettingsError(
            f"{where('lease_namespace')}: {lease_namespace!r} is not a namespace name"
        )
    lease_name = text("lease_name", "kubecache-cacher")
    if not _DNS_SUBDOMAIN.match(lease_name) or len(lease_name) > 253:
        raise SettingsError(f"{where('lease_name')}: {lease_name!r} is not a valid object name")

    log_level = text("log_level", "INFO").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise SettingsError(
            f"{where('log_level')}: {log_level!r}; use DEBUG, INFO, WARNING or ERROR"
        )
    log_format = text("log_format", "text").lower()
    if log_format not in ("text", "json"):
        raise SettingsError(f"{where('log_format')}: {log_format!r}; use text or json")

    watch_timeout = duration("watch_timeout", 300.0)
    stall_timeout = duration("stall_timeout", 120.0)
    progress_stale_after = duration("progress_stale_after", 30.0)
    if progress_stale_after < 6:
        raise SettingsError(
            f"{where('progress_stale_after')}: {progress_stale_after:g} s is too short for a "
            "watch to show progress (a watch times out after 4 s at least); use 6 s or more"
        )

    return Settings(
        kubeconfig=None if in_cluster else kubeconfig,
        in_cluster=in_cluster,
        redis=redis,
        key_prefix=key_prefix,
        namespaces=namespaces,
        pod_selector=pod_selector,
        event_log_cap=integer("event_log_cap", DEFAULT_EVENT_LOG_CAP, minimum=1, maximum=10_000),
        feed_maxlen=integer("feed_maxlen", DEFAULT_FEED_MAXLEN, minimum=MIN_FEED_MAXLEN),
        lease_name=lease_name,
        lease_namespace=lease_namespace,
        lease_duration=lease_duration,
        renew_deadline=renew_deadline,
        retry_period=retry_period,
        identity=text("identity", "") or default_identity(),
        health_host=text("health_host", "0.0.0.0"),
        health_port=integer("health_port", 8080, minimum=0, maximum=65535),
        watch_timeout=watch_timeout,
        stall_timeout=stall_timeout,
        progress_stale_after=progress_stale_after,
        request_timeout=duration("request_timeout", 30.0),
        heartbeat_interval=duration("heartbeat_interval", 2.0),
        once=boolean("once"),
        log_level=log_level,
        log_format=log_format,
    )


__all__ = [
    "DEFAULT_POD_SELECTOR",
    "Settings",
    "SettingsError",
    "build_parser",
    "label_selector_problem",
    "load_settings",
    "parse_duration",
]
