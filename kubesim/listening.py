"""Whether kubesim can listen on an address, asked before it starts (a clear error).

kubesim is a distribution of its own and imports nothing of kubecache's, so this is its own
copy of ``kubecache.listening``.
"""

from __future__ import annotations

import socket


def listen_problem(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on (probed as aiohttp binds), or None.

    Port 0 (any free port) only checks the host.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as e:
        return f"unknown address {host!r} ({e.strerror or e})"
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp does
            try:
                probe.bind(address)
            except OSError as e:
                return (e.strerror or str(e)).lower()
    return None


__all__ = ["listen_problem"]
