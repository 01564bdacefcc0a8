"""``kubesim serve``: run the API emulator until SIGINT/SIGTERM and write a kubeconfig for it."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from kubesim.testing import running_kubesim

__all__ = ["main"]

log = logging.getLogger("kubesim")


def _nodes(path: str | None) -> list[Any] | None:
    """NodeSpecs from a JSON or YAML list of {name, cpu, memory, extended, labels, taints}."""
    if not path:
        return None
    import yaml

    from kubesim.cluster import NodeSpec

    text = Path(path).read_text()
    data = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    if not isinstance(data, list):
        raise SystemExit(f"{path}: expected a list of nodes, e.g. [{{name: node-1, cpu: '4'}}]")
    return [NodeSpec(**item) for item in data]


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="kubesim", description="A local Kubernetes API emulator.")
    commands = top.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the API until SIGINT/SIGTERM")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0, help="0 picks a free port")
    serve.add_argument(
        "--kubeconfig-out",
        type=Path,
        required=True,
        help="where to write a kubeconfig (server URL + bearer token)",
    )
    serve.add_argument("--token", default="kubesim-token")
    serve.add_argument("--kubelet", choices=("fake", "process", "none"), default="fake")
    serve.add_argument(
        "--fake-step-delay",
        type=float,
        default=0.5,
        help="seconds per simulated kubelet step (fake mode)",
    )
    serve.add_argument("--bookmark-interval", type=float, default=60.0)
    serve.add_argument(
        "--history",
        type=int,
        default=10_000,
        help="changes retained per resource for watch resumption",
    )
    serve.add_argument("--event-history", type=int, default=1_000)
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
    serve.add_argument("--log-level", default="INFO")
    return top


async def serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running_kubesim(
        kubelet=None if args.kubelet == "none" else args.kubelet,
        nodes=_nodes(args.nodes),
        host=args.host,
        port=args.port,
        token=args.token,
        bookmark_interval=args.bookmark_interval,
        history=args.history,
        event_history=args.event_history,
        fake_step_delay=args.fake_step_delay,
        kubeconfig_path=args.kubeconfig_out,
        tls=args.tls,
        kubelet_root=args.kubelet_root,
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
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command == "serve":
        asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
