"""Start a demo user's server: a note naming the image, then jupyterhub-singleuser.

kubesim's process kubelet runs every container image as this machine's Python,
so the image a user picks has no effect on the software; the note (WELCOME.md
in the server's working directory, opened by JupyterLab) shows which image the
pod asked for, so the profile choice is visible.
"""

import os
import sys
from pathlib import Path

image = os.environ.get("JUPYTER_IMAGE_SPEC") or "(not set)"
user = os.environ.get("JUPYTERHUB_USER", "")
Path("WELCOME.md").write_text(
    f"""# kubecache demo

Hello {user}: this server's pod asked for the image **`{image}`**.

The demo cluster is kubesim, a Kubernetes API emulator: its kubelet runs every
image as the host's Python, so all images share the same software here. The pod,
its events and its state in the cache are real: `kubecache servers`,
`kubecache events {user}`.
"""
)
os.execv(sys.executable, [sys.executable, "-m", "jupyterhub.singleuser", *sys.argv[1:]])
