"""zero-to-jupyterhub 4.x's hub Deployment, as its template renders it, for the HA recipe tests.

The z2jh chart cannot be fetched here (no network besides package registries) and is not
vendored, so this builds the rendered object the way z2jh's
``jupyterhub/templates/hub/deployment.yaml`` does, for the parts the recipe (docs/ha.md,
charts/z2jh-ha/) depends on:

- ``replicas: 1``, a literal: no value changes it;
- ``strategy`` is ``hub.deploymentStrategy`` (default ``{type: Recreate}``);
- the hub container is named ``hub`` and comes after ``hub.extraContainers``; ``args`` is
  ``hub.args`` when set, else ``jupyterhub --config
  /usr/local/etc/jupyterhub/jupyterhub_config.py`` (plus ``--upgrade-db`` for sqlite-pvc);
- ``PGPASSWORD`` from the Secret ``hub`` key ``hub.db.password`` when ``hub.db.type`` is
  postgres and a password is set; the ``hub-db-dir`` PVC volume only for sqlite-pvc;
- ``livenessProbe``/``readinessProbe`` are httpGet ``{baseUrl}hub/health`` on port ``http``
  (8081) with the values' timings, each only when ``enabled``.

Defaults are z2jh 4.x's values.yaml: liveness 300 s initial delay, every 10 s, 30 failures,
3 s timeout; readiness every 2 s, 1000 failures (zero-to-jupyterhub-k8s#1732 discusses
why), 1 s timeout. The recipe sets every probe field it relies on explicitly, so it does
not depend on these defaults being exact.
"""

from __future__ import annotations

import copy
from typing import Any

Z2JH_DEFAULTS: dict[str, Any] = {
    "hub": {
        "baseUrl": "/",
        "args": [],
        "extraContainers": [],
        "extraEnv": {},
        "deploymentStrategy": {"type": "Recreate"},
        "db": {"type": "sqlite-pvc", "upgrade": None, "url": None, "password": None},
        "livenessProbe": {
            "enabled": True,
            "initialDelaySeconds": 300,
            "periodSeconds": 10,
            "failureThreshold": 30,
            "timeoutSeconds": 3,
        },
        "readinessProbe": {
            "enabled": True,
            "initialDelaySeconds": 0,
            "periodSeconds": 2,
            "failureThreshold": 1000,
            "timeoutSeconds": 1,
        },
        "pdb": {"enabled": False, "maxUnavailable": None, "minAvailable": 1},
        "image": {"name": "quay.io/jupyterhub/k8s-hub", "tag": "4.4.2"},
    }
}


def merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of values files: maps merge, everything else is replaced."""
    result = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def _probe(settings: dict[str, Any], base_url: str) -> dict[str, Any]:
    return {
        "initialDelaySeconds": settings["initialDelaySeconds"],
        "periodSeconds": settings["periodSeconds"],
        "timeoutSeconds": settings["timeoutSeconds"],
        "failureThreshold": settings["failureThreshold"],
        "httpGet": {"path": base_url.rstrip("/") + "/hub/health", "port": "http"},
    }


def _env(extra: dict[str, Any]) -> list[dict[str, Any]]:
    env = []
    for name, value in extra.items():
        if isinstance(value, dict):
            env.append({"name": name, **value})
        else:
            env.append({"name": name, "value": str(value)})
    return env


def hub_deployment(*value_files: dict[str, Any], release: str = "jhub") -> dict[str, Any]:
    """The hub Deployment z2jh 4.x renders for these values files (later ones win)."""
    values = Z2JH_DEFAULTS
    for file in value_files:
        values = merged(values, file)
    hub = values["hub"]
    labels = {"component": "hub", "app": "jupyterhub", "release": release}
    if hub["args"]:
        args = [str(a) for a in hub["args"]]
    else:
        args = ["jupyterhub", "--config", "/usr/local/etc/jupyterhub/jupyterhub_config.py"]
        upgrade = hub["db"]["upgrade"]
        if upgrade is True or (upgrade is None and hub["db"]["type"] == "sqlite-pvc"):
            args.append("--upgrade-db")
    env: list[dict[str, Any]] = [
        {"name": "PYTHONUNBUFFERED", "value": "1"},
        {"name": "HELM_RELEASE_NAME", "value": release},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {
            "name": "CONFIGPROXY_AUTH_TOKEN",
            "valueFrom": {
                "secretKeyRef": {
                    "name": "hub",
                    "key": "hub.config.ConfigurableHTTPProxy.auth_token",
                }
            },
        },
    ]
    if hub["db"]["password"] and hub["db"]["type"] == "postgres":
        env.append(
            {
                "name": "PGPASSWORD",
                "valueFrom": {"secretKeyRef": {"name": "hub", "key": "hub.db.password"}},
            }
        )
    env.extend(_env(hub["extraEnv"]))
    container: dict[str, Any] = {
        "name": "hub",
        "image": f"{hub['image']['name']}:{hub['image']['tag']}",
        "args": args,
        "env": env,
        "ports": [{"name": "http", "containerPort": 8081}],
        "volumeMounts": [
            {
                "mountPath": "/usr/local/etc/jupyterhub/jupyterhub_config.py",
                "subPath": "jupyterhub_config.py",
                "name": "config",
            },
            {"mountPath": "/usr/local/etc/jupyterhub/secret/", "name": "secret"},
        ],
    }
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": "hub"}},
        {"name": "secret", "secret": {"secretName": "hub"}},
    ]
    if hub["db"]["type"] == "sqlite-pvc":
        volumes.append({"name": "hub-db-dir", "persistentVolumeClaim": {"claimName": "hub-db-dir"}})
        container["volumeMounts"].append({"mountPath": "/srv/jupyterhub", "name": "hub-db-dir"})
    if hub["livenessProbe"]["enabled"]:
        container["livenessProbe"] = _probe(hub["livenessProbe"], hub["baseUrl"])
    if hub["readinessProbe"]["enabled"]:
        container["readinessProbe"] = _probe(hub["readinessProbe"], hub["baseUrl"])
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "hub", "labels": dict(labels)},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": dict(labels)},
            "strategy": hub["deploymentStrategy"],
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "serviceAccountName": "hub",
                    "volumes": volumes,
                    "containers": [*hub["extraContainers"], container],
                },
            },
        },
    }


def hub_service(release: str = "jhub") -> dict[str, Any]:
    """z2jh's hub Service: it selects the hub pods, so only Ready ones get traffic."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "hub"},
        "spec": {
            "selector": {"component": "hub", "app": "jupyterhub", "release": release},
            "ports": [{"name": "hub", "port": 8081, "targetPort": "http"}],
        },
    }


def hub_pdb(*value_files: dict[str, Any]) -> dict[str, Any] | None:
    values = Z2JH_DEFAULTS
    for file in value_files:
        values = merged(values, file)
    if not values["hub"]["pdb"]["enabled"]:
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "hub"},
        "spec": {"minAvailable": values["hub"]["pdb"]["minAvailable"]},
    }
