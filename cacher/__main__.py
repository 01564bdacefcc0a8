"""``kubecache-cacher`` / ``python -m kubecache.cacher``: the cacher process."""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

import orjson

from kubecache.cacher.credentials import CredentialsError, kubeconfig_problem
from kubecache.cacher.settings import Settings, SettingsError, load_settings
from kubecache.listening import listen_problem

_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}


class KeyValueFormatter(logging.Formatter):
    """``time=... level=... logger=... msg="..." key=value`` lines."""

    def format(self, record: logging.LogRecord) -> str:
        fields = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields.update({k: v for k, v in vars(record).items() if k not in _RESERVED})
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        return " ".join(f"{k}={_quote(v)}" for k, v in fields.items())


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields.update({k: v for k, v in vars(record).items() if k not in _RESERVED})
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(fields, default=str).decode()


def _quote(value: object) -> str:
    text = str(value)
    if not text or any(c in text for c in ' "=\n'):
        return orjson.dumps(text).decode()
    return text


def configure_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiohttp.access", "kubernetes_asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def tune_gc() -> None:
    """Fewer garbage collections: a watch burst parses thousands of JSON objects
    at once, and the default thresholds rescan every live object over and over
    (measured: 5x the parsing cost). Startup objects are frozen out of scans."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


async def serve(settings: Settings) -> int:
    from kubecache.cacher.app import Cacher  # imported late: --help stays fast

    cacher = Cacher(settings)
    if settings.once:
        return await cacher.run_once()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, cacher.stop)
    return await cacher.run()


def startup_problem(settings: Settings) -> str | None:
    """What would make the cacher fail while starting, found before it connects anywhere."""
    if not settings.in_cluster and settings.kubeconfig:
        problem = kubeconfig_problem(settings.kubeconfig)
        if problem:
            return f"{problem} (--kubeconfig / KUBECACHE_KUBECONFIG / KUBECONFIG)"
    if not settings.once:
        where = f"{settings.health_host}:{settings.health_port}"
        problem = listen_problem(settings.health_host, settings.health_port)
        if problem:
            return (
                f"cannot serve /healthz, /readyz and /metrics on {where}: {problem}; free the "
                "port or choose another with --health-port / KUBECACHE_HEALTH_PORT "
                "(and --health-host)"
            )
    return None


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = load_settings(argv)
    except SettingsError as e:
        print(f"kubecache-cacher: configuration error: {e}", file=sys.stderr)
        return 2
    problem = startup_problem(settings)
    if problem:
        print(f"kubecache-cacher: {problem}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    tune_gc()
    try:
        return asyncio.run(serve(settings))
    except KeyboardInterrupt:
        return 130
    except CredentialsError as e:  # e.g. the kubeconfig changed since the check
        print(f"kubecache-cacher: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if e.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL):
            raise
        # the health port was taken between the check and the bind
        where = f"{settings.health_host}:{settings.health_port}"
        print(f"kubecache-cacher: cannot listen on {where}: {e.strerror}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
