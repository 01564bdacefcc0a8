"""Render the kubecache chart offline with Helm's own engine (helm-python-sdk).

helm-python-sdk binds Helm v4's Go SDK: the same template engine, Sprig
functions, values coalescing and values.schema.json validation as ``helm
template``, with no helm binary and no cluster (``lookup`` returns nothing).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

helm = pytest.importorskip(
    "helm_python", reason="helm-python-sdk is not installed (pip install helm-python-sdk)"
)

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "charts" / "kubecache"
CI_VALUES = sorted((CHART_DIR / "ci").glob("*.yaml"))
RELEASE = "hub"
NAMESPACE = "jhub"
KUBE_VERSION = "1.30.0"


def ci_values(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text())
    return loaded or {}


@dataclass
class Rendered:
    """The manifests of one render, by kind and name, plus NOTES.txt."""

    manifests: list[dict[str, Any]]
    notes: str
    sources: dict[str, str] = field(default_factory=dict)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.manifests if m["kind"] == kind]

    def one(self, kind: str, name_suffix: str = "") -> dict[str, Any]:
        found = [m for m in self.of_kind(kind) if m["metadata"]["name"].endswith(name_suffix)]
        assert len(found) == 1, (
            f"expected one {kind} named *{name_suffix}, got "
            f"{[m['metadata']['name'] for m in found]}"
        )
        return found[0]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.manifests)


def render(
    values: dict[str, Any] | None = None, *, namespace: str = NAMESPACE, release: str = RELEASE
) -> Rendered:
    """Render the chart like ``helm template hub charts/kubecache -n jhub -f values``."""
    with helm.Chart.load(CHART_DIR) as chart:
        sources = chart.render(
            copy.deepcopy(values) if values is not None else None,
            name=release,
            namespace=namespace,
            is_install=True,
        )
    manifests: list[dict[str, Any]] = []
    notes = ""
    for path, text in sorted(sources.items()):
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        for document in yaml.safe_load_all(text):
            if document:
                manifests.append(document)
    return Rendered(manifests=manifests, notes=notes, sources=sources)


def cacher_deployment(rendered: Rendered) -> dict[str, Any]:
    return rendered.one("Deployment", "-cacher")


def pod_annotations(workload: dict[str, Any]) -> dict[str, str]:
    annotations: dict[str, str] = workload["spec"]["template"]["metadata"]["annotations"]
    return annotations


POD_NAME = "hub-kubecache-cacher-5d8f7c9b6-x2x7q"
MOUNT_ROOT = "/etc/kubecache/"


def container_environment(values: dict[str, Any], files: Path) -> tuple[dict[str, str], list[str]]:
    """The environment and arguments a cacher pod would get from this render.

    Downward-API fields are resolved as the kubelet would; mounted Secret files
    are created under ``files`` (standing in for /etc/kubecache).
    """
    rendered = render(values)
    config = rendered.one("ConfigMap", "-cacher-config")["data"]
    (container,) = cacher_deployment(rendered)["spec"]["template"]["spec"]["containers"]
    env: dict[str, str] = {}
    for source in container["envFrom"]:
        assert (
            source["configMapRef"]["name"]
            == rendered.one("ConfigMap", "-cacher-config")["metadata"]["name"]
        )
        env.update(config)
    fields = {"metadata.name": POD_NAME, "metadata.namespace": NAMESPACE}
    for item in container["env"]:
        if "value" in item:
            value = item["value"]
            if value.startswith(MOUNT_ROOT):
                path = files / value.removeprefix(MOUNT_ROOT)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("secret-from-a-mounted-file\n")
                value = str(path)
            env[item["name"]] = value
        else:
            env[item["name"]] = fields[item["valueFrom"]["fieldRef"]["fieldPath"]]
    return env, list(container.get("args", []))
