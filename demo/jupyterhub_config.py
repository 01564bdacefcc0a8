"""JupyterHub configuration of the local demo (started by scripts/demo.py).

Everything a real deployment would configure is here; only the addresses come
from the environment the demo runner sets.
"""

import importlib.util
import os
import sys
from pathlib import Path

c = get_config()  # type: ignore[name-defined]  # noqa: F821

state = os.environ["KUBECACHE_DEMO_STATE"]

c.JupyterHub.spawner_class = "kubecache"
c.JupyterHub.bind_url = os.environ.get("KUBECACHE_DEMO_URL", "http://127.0.0.1:8000")
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(os.environ.get("KUBECACHE_DEMO_HUB_PORT", "8081"))
c.JupyterHub.db_url = f"sqlite:///{state}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = f"{state}/jupyterhub_cookie_secret"
c.JupyterHub.pid_file = f"{state}/jupyterhub.pid"
c.ConfigurableHTTPProxy.api_url = os.environ.get(
    "KUBECACHE_DEMO_PROXY_API", "http://127.0.0.1:8082"
)
c.ConfigurableHTTPProxy.pid_file = f"{state}/proxy.pid"

# Any user name logs in with the shared password.
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = os.environ.get("KUBECACHE_DEMO_PASSWORD", "kubecache")
c.Authenticator.allow_all = True
c.JupyterHub.allow_named_servers = True

# The same c.KubeSpawner.* options a KubeSpawner deployment uses.
c.KubeSpawner.namespace = "jhub"
c.KubeSpawner.image = "quay.io/jupyter/base-notebook:latest"
# kubesim's process kubelet runs every image as this machine's Python; the
# wrapper writes a note naming the image the pod asked for (JUPYTER_IMAGE_SPEC),
# shown when the user lands in JupyterLab.
c.KubeSpawner.cmd = [sys.executable, str(Path(__file__).resolve().parent / "singleuser.py")]
if importlib.util.find_spec("jupyterlab") is not None:
    c.Spawner.default_url = "/lab/tree/WELCOME.md"
c.KubeSpawner.start_timeout = 60
c.KubeSpawner.http_timeout = 60
c.KubeSpawner.cpu_guarantee = 0.1
c.KubeSpawner.mem_guarantee = "128M"
c.KubeSpawner.storage_pvc_ensure = False
c.KubeSpawner.environment = {"KUBECACHE_DEMO": "1"}
if os.geteuid() == 0:
    c.KubeSpawner.args = ["--allow-root"]
c.KubeSpawner.profile_list = [
    {
        "display_name": "Small",
        "slug": "small",
        "description": "0.5 CPU, 512 MB",
        "default": True,
        "kubespawner_override": {"cpu_limit": 0.5, "mem_limit": "512M"},
        "profile_options": {
            "image": {
                "display_name": "Image",
                "choices": {
                    "base": {
                        "display_name": "Base notebook",
                        "kubespawner_override": {"image": "quay.io/jupyter/base-notebook:latest"},
                    },
                    "scipy": {
                        "display_name": "SciPy notebook",
                        "kubespawner_override": {"image": "quay.io/jupyter/scipy-notebook:latest"},
                    },
                },
                "unlisted_choice": {
                    "enabled": True,
                    "display_name": "Other image",
                    "validation_regex": "^[a-z0-9./_-]+:[a-zA-Z0-9._-]+$",
                    "validation_message": "Give an image as name:tag",
                    "kubespawner_override": {"image": "{value}"},
                },
            }
        },
    },
    {
        "display_name": "GPU (never fits: shows an unschedulable spawn)",
        "slug": "gpu",
        "description": "asks for 8 nvidia.com/gpu; the emulated nodes have no GPUs",
        "kubespawner_override": {"extra_resource_limits": {"nvidia.com/gpu": "8"}},
    },
]

# kubecache's own options: where the cache is.
c.KubeCacheSpawner.redis_url = os.environ["KUBECACHE_REDIS_URL"]

# `scripts/demo.py --check` drives the hub through the REST API with this token.
check_token = os.environ.get("KUBECACHE_DEMO_CHECK_TOKEN")
if check_token:
    c.JupyterHub.services = [{"name": "demo-check", "api_token": check_token}]
    c.JupyterHub.load_roles = [
        {
            "name": "demo-check",
            "scopes": ["admin:users", "admin:servers", "access:servers"],
            "services": ["demo-check"],
        }
    ]
