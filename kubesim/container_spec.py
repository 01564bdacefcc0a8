"""What a container process is told: its argv, environment, working directory and mounts.

The process kubelet runs a container as a local process; this module turns the pod spec into
what that process gets: ``command + args`` with ``$(VAR)`` references expanded, the
environment (PATH/HOME/LANG from the host, envFrom, env with valueFrom from the store), the
pod's own loopback IP wherever the spec says ``0.0.0.0``, and every mountPath it is told about
rewritten to the volume's directory on this machine (kubesim.volumes). Pure apart from reading
the store and creating a temporary working directory.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kubesim.kubelet_runtime import ExitStatus
from kubesim.pod_worker import HOST_IP
from kubesim.volumes import Mount, container_mounts, rewrite_paths

if TYPE_CHECKING:
    from kubesim.store import ObjectStore

__all__ = [
    "ProcessSpec",
    "bind_to_pod",
    "container_argv",
    "container_environment",
    "exit_status",
    "expand",
    "notebook_port",
    "process_spec",
    "working_directory",
]

_VAR_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$")


def expand(text: str, variables: Mapping[str, str]) -> str:
    """Kubernetes $(VAR) expansion: known references replaced, $$ escapes $, others kept."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return variables.get(name, match.group(0))

    return _VAR_REFERENCE.sub(replace, text)


def bind_to_pod(text: str, pod_ip: str) -> str:
    """Where the server is told to listen on every address, it listens on its pod's."""
    return text.replace("0.0.0.0", pod_ip)


def _field_value(pod: Mapping[str, Any], path: str, pod_ip: str) -> str | None:
    metadata = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    values = {
        "metadata.name": metadata.get("name"),
        "metadata.namespace": metadata.get("namespace"),
        "metadata.uid": metadata.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": pod_ip,
        "status.hostIP": HOST_IP,
    }
    match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if match:
        return (metadata.get(match.group(1)) or {}).get(match.group(2))
    value = values.get(path)
    return None if value is None else str(value)


def _object_data(
    store: ObjectStore | None, resource: str, namespace: str, name: str
) -> dict[str, str]:
    if store is None or not name:
        return {}
    obj = store.get(resource, namespace, name) or {}
    data: dict[str, str] = {}
    if resource == "secrets":
        for key, value in (obj.get("data") or {}).items():
            with contextlib.suppress(ValueError):
                data[key] = base64.b64decode(value).decode(errors="replace")
        data.update(obj.get("stringData") or {})
    else:
        data.update(obj.get("data") or {})
    return data


def container_environment(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    *,
    pod_ip: str,
    store: ObjectStore | None = None,
    host_env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The process environment: PATH/HOME from the host, then envFrom, then env (in order)."""
    host = os.environ if host_env is None else host_env
    namespace = str((pod.get("metadata") or {}).get("namespace") or "")
    env: dict[str, str] = {k: host[k] for k in ("PATH", "HOME", "LANG") if k in host}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix") or ""
        if "configMapRef" in source:
            data = _object_data(store, "configmaps", namespace, source["configMapRef"].get("name"))
        elif "secretRef" in source:
            data = _object_data(store, "secrets", namespace, source["secretRef"].get("name"))
        else:
            continue
        env.update({prefix + k: v for k, v in data.items()})
    for item in container.get("env") or []:
        name = item.get("name")
        if not name:
            continue
        if "value" in item or "valueFrom" not in item:
            env[name] = expand(str(item.get("value") or ""), env)
            continue
        source = item["valueFrom"] or {}
        value: str | None = None
        if "fieldRef" in source:
            value = _field_value(pod, source["fieldRef"].get("fieldPath", ""), pod_ip)
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            value = _object_data(store, "secrets", namespace, ref.get("name")).get(ref.get("key"))
        elif "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            value = _object_data(store, "configmaps", namespace, ref.get("name")).get(
                ref.get("key")
            )
        if value is not None:
            env[name] = value
    return {k: bind_to_pod(v, pod_ip) for k, v in env.items()}


def container_argv(container: Mapping[str, Any], env: Mapping[str, str], pod_ip: str) -> list[str]:
    """command + args, $(VAR)-expanded, 0.0.0.0 replaced by the pod IP."""
    words = [*(container.get("command") or []), *(container.get("args") or [])]
    return [bind_to_pod(expand(str(word), env), pod_ip) for word in words]


def notebook_port(container: Mapping[str, Any]) -> int | None:
    """The port named notebook-port, else the first containerPort."""
    ports = [p for p in container.get("ports") or [] if p.get("containerPort")]
    for port in ports:
        if port.get("name") == "notebook-port":
            return int(port["containerPort"])
    return int(ports[0]["containerPort"]) if ports else None


def working_directory(wanted: str | None, pod_name: str) -> tuple[str, str | None]:
    """(cwd, temporary dir to remove later): ``wanted`` when it exists here, else a new temp dir."""
    if wanted and os.path.isdir(wanted):
        return str(wanted), None
    created = tempfile.mkdtemp(prefix=f"kubesim-{pod_name}-")
    return created, created


def exit_status(returncode: int) -> ExitStatus:
    """A process's return code as a container exit code (a signal N is 128+N)."""
    code = 128 - returncode if returncode < 0 else returncode
    return ExitStatus(code)


@dataclass(frozen=True)
class ProcessSpec:
    """How to run one container as a process (and exec into it)."""

    argv: list[str]
    env: dict[str, str]
    working_dir: str | None  # None: the wanted one does not exist here (use a temporary one)
    mounts: list[Mount]


def process_spec(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    *,
    pod_ip: str,
    store: ObjectStore | None = None,
    volume_dirs: Mapping[str, str] | None = None,
    host_env: Mapping[str, str] | None = None,
) -> ProcessSpec:
    """argv, env and working directory with the container's mountPaths rewritten."""
    env = container_environment(pod, container, pod_ip=pod_ip, store=store, host_env=host_env)
    mounts = container_mounts(container, volume_dirs or {}, lambda text: expand(text, env))
    argv = container_argv(container, env, pod_ip)
    wanted = container.get("workingDir")
    working_dir = rewrite_paths(str(wanted), mounts) if wanted else None
    return ProcessSpec(
        argv=[rewrite_paths(word, mounts) for word in argv],
        env={name: rewrite_paths(value, mounts) for name, value in env.items()},
        working_dir=working_dir if working_dir and os.path.isdir(working_dir) else None,
        mounts=mounts,
    )
