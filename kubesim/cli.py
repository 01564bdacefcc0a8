"""``kubesim serve``: run the API emulator until SIGINT/SIGTERM and write a kubeconfig for it."""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import logging
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

from kubesim.listening import listen_problem
from kubesim.testing import running_kubesim

__all__ = ["main"]

log = logging.getLogger("kubesim")


class StartupError(Exception):
    """A mistake in how kubesim was started; the message says what to change."""


def _nodes(path: str | None) -> list[Any] | None:
    """NodeSpecs from a JSON or YAML list of {name, cpu, memory, extended, labels, taints}."""
    if not path:
        return None
    import yaml

    from kubesim.cluster import NodeSpec

    example = "e.g. [{name: node-1, cpu: '4', memory: 16Gi}]"
    try:
        text = Path(path).read_text()
        data = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError) as e:
        raise StartupError(f"--nodes {path}: cannot read it: {e}") from None
    except (ValueError, yaml.YAMLError) as e:
        raise StartupError(f"--nodes {path}: not valid JSON/YAML ({type(e).__name__})") from None
    if not isinstance(data, list) or not all(isinstance(i, dict) and "name" in i for i in data):
        raise StartupError(f"--nodes {path}: expected a list of nodes with names, {example}")
    try:
        return [NodeSpec(**item) for item in data]
    except TypeError as e:
        raise StartupError(
            f"--nodes {path}: {e}; the keys are name, cpu, memory, pods, "
            "ephemeral_storage, extended, labels, taints"
        ) from None


def _check_startup(args: argparse.Namespace) -> None:
    """Refuse, before serving, what would otherwise fail half-way with a traceback."""
    level = logging.getLevelName(args.log_level.upper())
    if not isinstance(level, int):
        raise StartupError(f"--log-level {args.log_level!r}: use DEBUG, INFO, WARNING or ERROR")
    if not 0 <= args.port <= 65535:
        raise StartupError(f"--port {args.port}: use 1-65535, or 0 to pick a free port")
    port_problem = listen_problem(args.host, args.port)
    if port_problem:
        raise StartupError(
            f"cannot listen on {args.host}:{args.port}: {port_problem}; stop what uses it or "
            "choose another --port (0 picks a free one)"
        )
    if args.tls and shutil.which("openssl") is None:
        raise StartupError("--tls makes a certificate with openssl, which is not installed")
    out = args.kubeconfig_out
    if out.is_dir():
        raise StartupError(f"--kubeconfig-out {out} is a directory; give a file path")
    if not out.parent.is_dir():
        raise StartupError(f"--kubeconfig-out {out}: the directory {out.parent} does not exist")
    if not os.access(out.parent, os.W_OK):
        raise StartupError(f"--kubeconfig-out {out}: cannot write into {out.parent}")


def parser() -> argparse.ArgumentParser:
    from kubesim import __version__

    top = argparse.ArgumentParser(prog="kubesim", description="A local Kubernetes API emulator.")
    top.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = top.add_subparsers(dest="command", required=True, help="what to run")
    serve = commands.add_parser(
        "serve",
        help="serve the API until SIGINT/SIGTERM",
        description="Serve the Kubernetes API emulator until SIGINT/SIGTERM.",
        epilog="examples:\n  kubesim serve --kubeconfig-out /tmp/kubeconfig\n"
        "  kubesim serve --port 6443 --tls --kubelet process --kubeconfig-out kc\n"
        "  kubectl --kubeconfig kc get pods -A     # with --tls",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=0, help="0 picks a free port")
    serve.add_argument(
        "--kubeconfig-out",
        type=Path,
        required=True,
        help="where to write a kubeconfig (server URL + bearer token)",
    )
    serve.add_argument(
        "--token", default="kubesim-token", help="bearer token clients send (in the kubeconfig)"
    )
    serve.add_argument(
        "--anonymous-auth",
        choices=("true", "false"),
        default="true",
        help="true (kube-apiserver's default): a request without a token is system:anonymous "
        "and gets 403; false: 401",
    )
    serve.add_argument(
        "--kubelet",
        choices=("fake", "process", "none"),
        default="fake",
        help="fake: simulated containers; process: real processes on 127.x.y.z pod IPs; "
        "none: pods stay Pending (default fake)",
    )
    serve.add_argument(
        "--fake-step-delay",
        type=float,
        default=0.5,
        help="seconds per simulated kubelet step (fake mode)",
    )
    serve.add_argument(
        "--bookmark-interval", type=float, default=60.0, help="seconds between watch bookmarks"
    )
    serve.add_argument(
        "--legacy-bookmarks",
        action="store_true",
        help="send a bookmark whenever one is due, even when nothing changed (the old "
        "kubesim behaviour; a real kube-apiserver sends one only when its watch cache moved)",
    )
    serve.add_argument(
        "--no-consistent-list-from-cache",
        action="store_true",
        help="a LIST without resourceVersion does not trigger an etcd progress notification "
        "(Kubernetes < 1.31, or etcd < 3.5.13)",
    )
    serve.add_argument(
        "--history",
        type=int,
        default=10_000,
        help="changes retained per resource for watch resumption",
    )
    serve.add_argument(
        "--event-history", type=int, default=1_000, help="events kept for watch resumption"
    )
    serve.add_argument("--nodes", help="JSON/YAML file with the simulated nodes")
    serve.add_argument(
        "--tls",
        action="store_true",
        help="serve HTTPS with a self-signed certificate (needed by kubectl, "
        "which never sends a token over plain HTTP)",
    )
    serve.add_argument(
        "--kubelet-root",
        type=Path,
        help="where the process kubelet keeps pod volumes and claims' data "
        "(default: a temporary directory removed at exit)",
    )
    serve.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    return top


async def serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running_kubesim(
        kubelet=None if args.kubelet == "none" else args.kubelet,
        nodes=args.nodes_specs,
        host=args.host,
        port=args.port,
        token=args.token,
        bookmark_interval=args.bookmark_interval,
        unconditional_bookmarks=args.legacy_bookmarks,
        consistent_list_from_cache=not args.no_consistent_list_from_cache,
        history=args.history,
        event_history=args.event_history,
        fake_step_delay=args.fake_step_delay,
        kubeconfig_path=args.kubeconfig_out,
        tls=args.tls,
        kubelet_root=args.kubelet_root,
        anonymous_auth=args.anonymous_auth == "true",
    ) as sim:
        log.info(
            "kubesim serving %s (kubelet: %s); kubeconfig: %s",
            sim.url,
            args.kubelet,
            sim.kubeconfig_path,
        )
        print(f"kubesim serving {sim.url}; kubeconfig written to {sim.kubeconfig_path}", flush=True)
        await stop.wait()
        log.info("kubesim stopping")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        _check_startup(args)
        args.nodes_specs = _nodes(args.nodes)
    except StartupError as e:
        print(f"kubesim: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command == "serve":
        try:
            asyncio.run(serve(args))
        except OSError as e:
            if e.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL):
                raise
            # taken between the check and the bind
            where = f"{args.host}:{args.port}"
            print(f"kubesim: cannot listen on {where}: {e.strerror}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
