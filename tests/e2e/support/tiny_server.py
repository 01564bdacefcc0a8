"""A minimal stand-in for jupyterhub-singleuser, cheap enough to run hundreds of on 2 cores.

It serves JUPYTERHUB_SERVICE_URL's address (the process kubelet turns 0.0.0.0
into the pod's own 127.x IP) and answers every GET with 200 and a small JSON
body naming the user, which is all the hub's checks need: JupyterHub's
``_wait_up`` accepts any HTTP answer at the server's URL, and the tests reach
``/user/<name>/api/status`` through the proxy. It does not check tokens or
report activity to the hub. Ends on SIGTERM.
"""

import json
import os
import signal
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

url = urllib.parse.urlsplit(os.environ["JUPYTERHUB_SERVICE_URL"])
body = json.dumps({"user": os.environ.get("JUPYTERHUB_USER", ""), "pid": os.getpid()}).encode()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
ThreadingHTTPServer((url.hostname or "127.0.0.1", url.port or 8888), Handler).serve_forever()
