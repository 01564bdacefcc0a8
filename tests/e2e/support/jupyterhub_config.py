"""JupyterHub configuration of the end-to-end tests (``jupyterhub -f`` this file).

A deployment-like configuration: ``spawner_class = "kubecache"`` (unless the
settings name another, e.g. KubeSpawner to migrate from), the same
``c.KubeSpawner.*`` options a KubeSpawner deployment uses, an external
configurable-http-proxy (as zero-to-jupyterhub runs it, so a second hub can
take over the same proxy), and servers that outlive the hub
(``cleanup_servers = False``, as zero-to-jupyterhub sets it). The values that
differ per test come from the JSON file named by $KUBECACHE_E2E_HUB
(see :class:`tests.e2e.support.stack.HubSettings`).
"""

import json
import os
import sys
from pathlib import Path

c = get_config()  # type: ignore[name-defined]  # noqa: F821

s = json.loads(Path(os.environ["KUBECACHE_E2E_HUB"]).read_text())

c.JupyterHub.spawner_class = s.get("spawner_class", "kubecache")
replica = os.environ.get("KUBECACHE_E2E_REPLICA", "hub")
c.JupyterHub.bind_url = s["public_url"]
c.JupyterHub.hub_bind_url = (s.get("replica_hub_urls") or {}).get(replica, s["hub_url"])
if s.get("hub_connect_url"):
    c.JupyterHub.hub_connect_url = s["hub_connect_url"]
c.JupyterHub.db_url = s.get("db_url") or "sqlite:///" + s["db_path"]
c.JupyterHub.cookie_secret_file = s["cookie_secret_file"]
c.JupyterHub.cleanup_servers = False
c.JupyterHub.log_level = "DEBUG" if s.get("debug") else "INFO"
# The spawn request answers at once; the client follows the progress stream.
c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}

c.ConfigurableHTTPProxy.should_start = False
c.ConfigurableHTTPProxy.api_url = s["proxy_api_url"]
c.ConfigurableHTTPProxy.auth_token = s["proxy_token"]

c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True

# The test drives the hub through the REST API with this service token (``tokens``: it
# issues users their own tokens, to reach their servers as they would).
c.JupyterHub.services = [{"name": "e2e", "api_token": s["service_token"]}]
c.JupyterHub.load_roles = [
    {
        "name": "e2e",
        "scopes": ["admin:users", "admin:servers", "access:servers", "read:hub", "tokens"],
        "services": ["e2e"],
    }
]

# What a KubeSpawner deployment configures.
c.KubeSpawner.namespace = s["namespace"]
c.KubeSpawner.common_labels = s["common_labels"]
c.KubeSpawner.image = "quay.io/jupyter/base-notebook:2025-01-06"
c.KubeSpawner.cmd = s.get("server_cmd") or [sys.executable, "-m", "jupyterhub.singleuser"]
if os.geteuid() == 0 and not s.get("server_cmd"):
    c.KubeSpawner.args = ["--allow-root"]
c.KubeSpawner.start_timeout = 90
c.KubeSpawner.http_timeout = 60
c.KubeSpawner.storage_pvc_ensure = False
c.Spawner.default_url = s.get("default_url", "")
if s.get("working_dir"):
    c.KubeSpawner.working_dir = s["working_dir"]
c.Spawner.poll_interval = s.get("poll_interval", 30)
c.KubeSpawner.profile_list = [
    {
        "display_name": "Small",
        "slug": "small",
        "description": "a quarter CPU",
        "default": True,
        "kubespawner_override": {"cpu_limit": 0.25, "mem_limit": "256M"},
        "profile_options": {
            "flavour": {
                "display_name": "Flavour",
                "choices": {
                    "plain": {
                        "display_name": "Plain",
                        "default": True,
                        "kubespawner_override": {"extra_labels": {"e2e/flavour": "plain"}},
                    },
                    "spicy": {
                        "display_name": "Spicy",
                        "kubespawner_override": {"extra_labels": {"e2e/flavour": "spicy"}},
                    },
                },
            }
        },
    },
    {
        "display_name": "Large",
        "slug": "large",
        "description": "one CPU",
        "kubespawner_override": {"cpu_limit": 1.0, "mem_limit": "1G"},
        "profile_options": {
            "flavour": {
                "display_name": "Flavour",
                "choices": {
                    "plain": {
                        "display_name": "Plain",
                        "kubespawner_override": {"extra_labels": {"e2e/flavour": "plain"}},
                    },
                    "spicy": {
                        "display_name": "Spicy",
                        "kubespawner_override": {"extra_labels": {"e2e/flavour": "spicy"}},
                    },
                },
            }
        },
    },
]

if s.get("z2jh_like"):
    # What zero-to-jupyterhub's hub config sets with the chart's defaults, the way it sets it:
    # a kubernetes_asyncio model for the iptables init container, dicts for the rest; and a
    # modify_pod_hook in the style of hub.extraConfig snippets, editing KubeSpawner's V1Pod.
    from kubernetes_asyncio import client

    c.KubeSpawner.extra_labels = {"hub.jupyter.org/network-access-hub": "true"}
    c.KubeSpawner.tolerations = [
        {"key": key, "operator": "Equal", "value": "user", "effect": "NoSchedule"}
        for key in ("hub.jupyter.org/dedicated", "hub.jupyter.org_dedicated")
    ]
    node_purpose = {
        "matchExpressions": [
            {"key": "hub.jupyter.org/node-purpose", "operator": "In", "values": ["user"]}
        ]
    }
    c.KubeSpawner.node_affinity_preferred = [{"weight": 100, "preference": node_purpose}]
    c.KubeSpawner.init_containers.append(
        client.V1Container(
            name="block-cloud-metadata",
            image="quay.io/jupyterhub/k8s-network-tools:4.0.0",
            command=["iptables", "-A", "OUTPUT", "-d", "169.254.169.254", "-j", "DROP"],
            security_context=client.V1SecurityContext(
                privileged=True,
                run_as_user=0,
                capabilities=client.V1Capabilities(add=["NET_ADMIN"]),
            ),
            resources={},
        )
    )

    def label_from_the_model(spawner, pod):  # type: ignore[no-untyped-def]
        assert isinstance(pod, client.V1Pod), type(pod)
        pod.metadata.labels["e2e/init"] = pod.spec.init_containers[0].name
        return pod

    c.KubeSpawner.modify_pod_hook = label_from_the_model
if s.get("profile_list"):
    c.KubeSpawner.profile_list = s["profile_list"]

# kubecache's own options: where the cache is.
c.KubeCacheSpawner.redis_url = os.environ.get("KUBECACHE_E2E_REDIS_URL") or s["redis_url"]

poll_log = s.get("poll_log")
if poll_log:
    poll_log = poll_log.format(replica=replica)

    # Count this hub's polls (OutpostSpawner's pre-poll hook; True = poll as usual).
    def record_poll(spawner):  # type: ignore[no-untyped-def]
        with open(poll_log, "a") as f:
            f.write(f"{spawner.user.name}\n")
        return True

    c.KubeCacheSpawner.pre_poll_hook = record_poll

if s.get("extra_config"):
    load_subconfig(s["extra_config"])  # type: ignore[name-defined]  # noqa: F821
