"""A JupyterHub imported ahead of time: ``python -m kubecache.hub_preload jupyterhub ARGS...``.

Importing JupyterHub, the spawner and their libraries is most of a hub's start
(about 5 s of CPU; far more on a busy node), and a standby replica has nothing
else to do. ``kubecache hub-standby --preload`` starts the hub's command
through this module while it stands by: it imports ``jupyterhub.app`` and the
spawners registered under the ``jupyterhub.spawners`` entry points, then
blocks on its standard input. Nothing else happens before the wrapper holds
the lease: no configuration is read, no database opened, no port bound. When
the wrapper writes ``go``, the hub starts as ``jupyterhub ARGS...`` would; on
anything else (EOF: the wrapper went away) it exits.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from importlib.metadata import entry_points
from typing import Any

from kubecache.hub_lease_clock import ENV as LEASE_CLOCK_ENV
from kubecache.hub_lease_clock import lease_expired

#: what the wrapper writes on the hub's standard input once it holds the lease
GO = b"go\n"


def preload() -> None:
    importlib.import_module("jupyterhub.app")
    for entry in entry_points(group="jupyterhub.spawners"):
        if entry.name in ("kubecache", "kubespawner"):
            try:
                entry.load()
            except Exception as e:  # the hub reports it properly when it starts
                print(
                    f"kubecache hub-preload: could not import {entry.value}: {e}", file=sys.stderr
                )


def gate_health_on_the_lease() -> None:
    """``/hub/health`` answers 503 once the lease hub-standby gave this hub can have ended
    (:mod:`kubecache.hub_lease_clock`): a hub resumed after a freeze longer than the lease
    is not Ready again for the moment before its wrapper kills it."""
    path = os.environ.get(LEASE_CLOCK_ENV)
    if not path:
        return
    from jupyterhub.handlers import pages
    from tornado import web

    handler = pages.HealthCheckHandler
    answer = handler.get

    def get(self: Any, *args: Any, **kwargs: Any) -> Any:
        if lease_expired(path):
            raise web.HTTPError(503, "this hub's lease has ended; hub-standby is stopping it")
        return answer(self, *args, **kwargs)

    handler.get = get
    handler.head = get


def main(argv: list[str]) -> int:
    if not argv or argv[0].rsplit("/", 1)[-1] != "jupyterhub":
        print("usage: python -m kubecache.hub_preload jupyterhub ARGS...", file=sys.stderr)
        return 2
    started = time.monotonic()
    preload()
    print(
        f"kubecache hub-preload: JupyterHub imported in {time.monotonic() - started:.1f} s; "
        "it starts when this replica holds the lease",
        file=sys.stderr,
        flush=True,
    )
    if sys.stdin.buffer.readline() != GO:
        return 0
    from jupyterhub.app import main as jupyterhub_main

    gate_health_on_the_lease()

    sys.argv = ["jupyterhub", *argv[1:]]
    result = jupyterhub_main()
    return int(result) if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
