"""Pod volumes for the process kubelet: directories on this machine, and the path rewriting that
lets a container process find them.

A container here is a plain local process: it shares the machine's filesystem and cannot have
its own mounts. So every volume of a pod is a directory under the kubelet's root, filled as
the real kubelet fills it, and the paths a container is *told* about are rewritten:

- ``pods/<uid>/volumes/<name>/`` for emptyDir, configMap, secret, downwardAPI and projected
  volumes (removed with the pod);
- ``claims/<namespace>/<claim>-<claim uid>/`` for a persistentVolumeClaim: it outlives the
  pod, so a user's files survive their server; it goes when the claim is deleted (the
  dynamic provisioner's Delete reclaim policy);
- a hostPath volume is the host path itself.

For each container the mounts (``mountPath`` → volume directory, or the ``subPath`` inside it)
are applied to ``command``, ``args``, env values and ``workingDir``: a word that names a
mountPath, or a path below it, names the directory on this machine instead
(``--certfile=/etc/jupyterhub/ssl/ssl.crt`` → ``--certfile=<root>/pods/<uid>/volumes/ssl/
ssl.crt``). Paths a program builds or reads from its own files are not rewritten.

Failures read like the kubelet's FailedMount events (``MountVolume.SetUp failed for volume
"certs" : secret "abc" not found``). Pure apart from writing the directories.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from kubesim.quantity import QuantityError, parse_quantity

__all__ = [
    "DEFAULT_MODE",
    "Mount",
    "MountFailed",
    "PodVolumes",
    "container_mounts",
    "rewrite_paths",
]

DEFAULT_MODE = 0o644  # the API server's default for defaultMode (420)
Lookup = Callable[[str, str, str], dict[str, Any] | None]  # (resource, namespace, name)
TokenIssuer = Callable[[str, str], str]  # (namespace, service account) -> bearer token


class MountFailed(Exception):
    """A volume could not be set up; ``str()`` is the kubelet's FailedMount message."""

    def __init__(self, volume: str, detail: str) -> None:
        super().__init__(f'MountVolume.SetUp failed for volume "{volume}" : {detail}')
        self.volume = volume


@dataclass(frozen=True)
class Mount:
    """Where a container believes a volume is, and where it is on this machine."""

    mount_path: str
    host_path: str
    read_only: bool = False


# --- file contents ------------------------------------------------------------------------------


def _write(directory: Path, files: Mapping[str, tuple[bytes, int]]) -> None:
    for relative, (content, mode) in files.items():
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        os.chmod(target, mode)


def _selected(
    data: Mapping[str, bytes],
    items: Sequence[Mapping[str, Any]] | None,
    default_mode: int,
    *,
    volume: str,
    missing_key: str,
    optional: bool,
) -> dict[str, tuple[bytes, int]]:
    """Every key as a file, or only ``items`` (key → path, with its own mode)."""
    if not items:
        return {key: (value, default_mode) for key, value in data.items()}
    files = {}
    for item in items:
        key = str(item.get("key") or "")
        if key not in data:
            if optional:
                continue
            raise MountFailed(volume, f"{missing_key}: {key}")
        mode = item.get("mode")
        files[str(item.get("path") or key)] = (data[key], default_mode if mode is None else mode)
    return files


def _secret_data(secret: Mapping[str, Any]) -> dict[str, bytes]:
    data = {}
    for key, value in (secret.get("data") or {}).items():
        try:
            data[key] = base64.b64decode(str(value or ""), validate=True)
        except (binascii.Error, ValueError):
            data[key] = str(value).encode()
    return data


def _config_map_data(config_map: Mapping[str, Any]) -> dict[str, bytes]:
    data = {key: str(value or "").encode() for key, value in (config_map.get("data") or {}).items()}
    for key, value in (config_map.get("binaryData") or {}).items():
        data[key] = base64.b64decode(str(value or ""))
    return data


def _go_quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _map_file(values: Mapping[str, Any]) -> bytes:
    """labels/annotations as the downward API writes them: sorted ``key="value"`` lines."""
    return "\n".join(f"{k}={_go_quote(str(values[k]))}" for k in sorted(values)).encode()


# --- one pod's volumes ---------------------------------------------------------------------------


class PodVolumes:
    """Sets up the volumes of one pod under ``pod_dir`` (claims under ``claims_dir``)."""

    def __init__(
        self,
        pod: Mapping[str, Any],
        *,
        pod_dir: Path,
        claims_dir: Path,
        lookup: Lookup,
        issue_token: TokenIssuer | None = None,
        node_allocatable: Mapping[str, Any] | None = None,
    ) -> None:
        self.pod = pod
        self.metadata: Mapping[str, Any] = pod.get("metadata") or {}
        self.spec: Mapping[str, Any] = pod.get("spec") or {}
        self.namespace = str(self.metadata.get("namespace") or "")
        self.pod_dir = pod_dir
        self.claims_dir = claims_dir
        self.lookup = lookup
        self.issue_token = issue_token
        self.node_allocatable = node_allocatable or {}

    def set_up(self) -> dict[str, str]:
        """Every volume's directory (volume name → host path); MountFailed on the first failure.

        Safe to call again after a failure: directories are rewritten from the current objects.
        """
        dirs: dict[str, str] = {}
        for volume in self.spec.get("volumes") or []:
            name = str(volume.get("name") or "")
            dirs[name] = str(self._set_up(name, volume))
        return dirs

    def _set_up(self, name: str, volume: Mapping[str, Any]) -> Path:
        if "hostPath" in volume:
            path = Path(str((volume["hostPath"] or {}).get("path") or ""))
            if (volume["hostPath"] or {}).get("type") in ("DirectoryOrCreate",):
                path.mkdir(parents=True, exist_ok=True)
            return path
        if "persistentVolumeClaim" in volume:
            return self._claim(name, volume["persistentVolumeClaim"] or {})
        target = self.pod_dir / "volumes" / name
        if target.exists() and "emptyDir" not in volume:
            shutil.rmtree(target)  # contents follow the objects on every (re)mount
        target.mkdir(parents=True, exist_ok=True)
        if "emptyDir" in volume:
            return target
        if "secret" in volume:
            _write(target, self._secret_files(name, volume["secret"] or {}))
        elif "configMap" in volume:
            _write(target, self._config_map_files(name, volume["configMap"] or {}))
        elif "downwardAPI" in volume:
            source = volume["downwardAPI"] or {}
            mode = source.get("defaultMode", DEFAULT_MODE)
            _write(target, self._downward_files(name, source.get("items") or [], mode))
        elif "projected" in volume:
            _write(target, self._projected_files(name, volume["projected"] or {}))
        else:
            kinds = sorted(k for k in volume if k != "name")
            raise MountFailed(
                name,
                f"kubesim's process kubelet cannot mount a {'/'.join(kinds) or 'typeless'} "
                "volume (it mounts emptyDir, configMap, secret, downwardAPI, projected, "
                "persistentVolumeClaim and hostPath)",
            )
        return target

    def _claim(self, name: str, source: Mapping[str, Any]) -> Path:
        claim_name = str(source.get("claimName") or "")
        claim = self.lookup("persistentvolumeclaims", self.namespace, claim_name)
        if claim is None:
            raise MountFailed(name, f'persistentvolumeclaim "{claim_name}" not found')
        uid = str((claim.get("metadata") or {}).get("uid") or "")
        path = claim_directory(self.claims_dir, self.namespace, claim_name, uid)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _secret_files(self, name: str, source: Mapping[str, Any]) -> dict[str, tuple[bytes, int]]:
        secret_name = str(source.get("secretName") or "")
        optional = bool(source.get("optional"))
        secret = self.lookup("secrets", self.namespace, secret_name)
        if secret is None:
            if optional:
                return {}
            raise MountFailed(name, f'secret "{secret_name}" not found')
        return _selected(
            _secret_data(secret),
            source.get("items"),
            source.get("defaultMode", DEFAULT_MODE),
            volume=name,
            missing_key="references non-existent secret key",
            optional=optional,
        )

    def _config_map_files(
        self, name: str, source: Mapping[str, Any]
    ) -> dict[str, tuple[bytes, int]]:
        map_name = str(source.get("name") or "")
        optional = bool(source.get("optional"))
        config_map = self.lookup("configmaps", self.namespace, map_name)
        if config_map is None:
            if optional:
                return {}
            raise MountFailed(name, f'configmap "{map_name}" not found')
        return _selected(
            _config_map_data(config_map),
            source.get("items"),
            source.get("defaultMode", DEFAULT_MODE),
            volume=name,
            missing_key="configmap references non-existent config key",
            optional=optional,
        )

    def _downward_files(
        self, name: str, items: Sequence[Mapping[str, Any]], default_mode: int
    ) -> dict[str, tuple[bytes, int]]:
        files = {}
        for item in items:
            mode = item.get("mode")
            content = self._downward_value(name, item)
            files[str(item.get("path") or "")] = (
                content,
                default_mode if mode is None else mode,
            )
        return files

    def _downward_value(self, name: str, item: Mapping[str, Any]) -> bytes:
        if "fieldRef" in item:
            path = str((item["fieldRef"] or {}).get("fieldPath") or "")
            if path in ("metadata.labels", "metadata.annotations"):
                return _map_file(self.metadata.get(path.split(".")[1]) or {})
            match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
            if match:
                values = self.metadata.get(match.group(1)) or {}
                return str(values.get(match.group(2), "")).encode()
            if path in ("metadata.name", "metadata.namespace", "metadata.uid"):
                return str(self.metadata.get(path.split(".")[1]) or "").encode()
            raise MountFailed(name, f"unsupported fieldPath {path!r} in a downwardAPI volume")
        ref = item.get("resourceFieldRef") or {}
        return self._resource_value(name, ref).encode()

    def _resource_value(self, name: str, ref: Mapping[str, Any]) -> str:
        """limits.cpu etc. of a container (the node's allocatable when no limit), / divisor."""
        containers = self.spec.get("containers") or []
        wanted = ref.get("containerName") or (containers[0].get("name") if containers else "")
        container = next((c for c in containers if c.get("name") == wanted), None)
        if container is None:
            raise MountFailed(name, f'container "{wanted}" not found for resourceFieldRef')
        kind, _, resource = str(ref.get("resource") or "").partition(".")
        values = (container.get("resources") or {}).get(kind) or {}
        raw = values.get(resource)
        if raw is None and kind == "limits":
            raw = self.node_allocatable.get(resource)
        try:
            value = parse_quantity(raw) if raw is not None else Decimal(0)
            divisor = parse_quantity(ref.get("divisor") or "1") or Decimal(1)
        except QuantityError as error:
            raise MountFailed(name, f"bad resourceFieldRef: {error}") from error
        return str(math.ceil(value / divisor))

    def _projected_files(
        self, name: str, source: Mapping[str, Any]
    ) -> dict[str, tuple[bytes, int]]:
        mode = source.get("defaultMode", DEFAULT_MODE)
        files: dict[str, tuple[bytes, int]] = {}
        for projection in source.get("sources") or []:
            if "secret" in projection:
                ref = dict(projection["secret"] or {})
                ref["secretName"] = ref.pop("name", "")
                files.update(self._secret_files(name, {**ref, "defaultMode": mode}))
            elif "configMap" in projection:
                ref = {**(projection["configMap"] or {}), "defaultMode": mode}
                files.update(self._config_map_files(name, ref))
            elif "downwardAPI" in projection:
                items = (projection["downwardAPI"] or {}).get("items") or []
                files.update(self._downward_files(name, items, mode))
            elif "serviceAccountToken" in projection:
                token = projection["serviceAccountToken"] or {}
                files[str(token.get("path") or "token")] = (self._token(name), mode)
            else:
                raise MountFailed(name, f"unsupported projection {sorted(projection)}")
        return files

    def _token(self, name: str) -> bytes:
        account = str(self.spec.get("serviceAccountName") or "default")
        if self.issue_token is None:
            raise MountFailed(name, "no token issuer: kubesim's kubelet runs without an API server")
        return self.issue_token(self.namespace, account).encode()


def claim_directory(claims_dir: Path, namespace: str, claim: str, uid: str) -> Path:
    """A claim's data: one directory per claim object (a re-created claim starts empty)."""
    return claims_dir / namespace / f"{claim}-{uid}"


# --- what a container sees ----------------------------------------------------------------------


def container_mounts(
    container: Mapping[str, Any],
    volume_dirs: Mapping[str, str],
    expand: Callable[[str], str] | None = None,
) -> list[Mount]:
    """The container's volumeMounts as Mounts, deepest mountPath first.

    ``expand`` resolves a ``subPathExpr``'s $(VAR) references (the container's env).
    """
    mounts = []
    for mount in container.get("volumeMounts") or []:
        host = volume_dirs.get(str(mount.get("name") or ""))
        if host is None:
            continue
        sub_path = str(mount.get("subPath") or "")
        if not sub_path and mount.get("subPathExpr") and expand is not None:
            sub_path = expand(str(mount["subPathExpr"]))
            if sub_path.startswith("/") or ".." in sub_path.split("/"):
                continue  # the kubelet refuses an expanded path that leaves the volume
        if sub_path:
            host = os.path.join(host, sub_path)
            if not os.path.exists(host):
                os.makedirs(host, exist_ok=True)  # the kubelet creates a missing subPath dir
        path = str(mount.get("mountPath") or "").rstrip("/") or "/"
        mounts.append(Mount(path, host, bool(mount.get("readOnly"))))
    return sorted(mounts, key=lambda m: len(m.mount_path), reverse=True)


def rewrite_paths(text: str, mounts: Sequence[Mount]) -> str:
    """Every mountPath (or path below one) named in ``text`` replaced by its host path.

    A mountPath counts where it is not part of a longer name: not preceded by a path
    character or ``/``, not followed by a name character (``/``, ``:``, ``=``, the end ...).
    """
    paths = [m for m in mounts if m.mount_path != "/"]
    if not paths or "/" not in text:
        return text
    alternatives = "|".join(re.escape(m.mount_path) for m in paths)  # deepest first
    pattern = re.compile(rf"(?<![\w.~+@%/-])({alternatives})(?![\w.~+@%-])")
    by_path = {m.mount_path: m.host_path for m in paths}
    return pattern.sub(lambda match: by_path[match.group(1)], text)
