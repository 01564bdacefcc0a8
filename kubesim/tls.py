"""A self-signed certificate for serving kubesim over HTTPS.

kubectl (client-go) never sends a bearer token over plain HTTP, so kubectl needs kubesim
served with TLS; kubernetes_asyncio works either way. Uses the ``openssl`` command line tool.
"""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

__all__ = ["self_signed", "server_context"]


def self_signed(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """Write ``kubesim.crt``/``kubesim.key`` (EC P-256, SAN host + localhost) into directory."""
    cert = directory / "kubesim.crt"
    key = directory / "kubesim.key"
    san = f"IP:{host},DNS:localhost" if host[:1].isdigit() else f"DNS:{host},DNS:localhost"
    if "IP:127.0.0.1" not in san:
        san += ",IP:127.0.0.1"
    try:
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "365",
                "-subj",
                "/CN=kubesim",
                "-addext",
                f"subjectAltName={san}",
                "-keyout",
                str(key),
                "-out",
                str(cert),
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.CalledProcessError) as err:
        raise RuntimeError(
            f"could not create a TLS certificate with openssl ({err}); install openssl or "
            "serve kubesim without TLS"
        ) from err
    key.chmod(0o600)
    return cert, key


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    return context
