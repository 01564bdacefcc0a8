"""Spawner configuration -> manifests: which option goes into which make_* argument.

Labels and annotations are KubeSpawner 7.1's, so selectors, dashboards and the cacher see our
objects exactly like KubeSpawner's:

- every object: ``hub.jupyter.org/username`` (label-safe slug), ``extra_labels`` (expanded), then
  ``common_labels`` (``app``, ``heritage``, ``app.kubernetes.io/name``/``managed-by``);
- pods (and service selectors) add ``component``/``app.kubernetes.io/component`` =
  ``component_label`` and ``hub.jupyter.org/servername``;
- PVCs use ``storage_extra_labels`` and ``component: singleuser-storage``;
- annotations carry the raw user and server names and the KubeSpawner/JupyterHub versions.

The ``hub.jupyter.org/kubespawner-version`` annotation and the state's ``kubespawner_version``
say ``7.1.0``: the naming scheme and object shapes we reproduce, which lets a hub switch back
to KubeSpawner 7.1 without its legacy-name upgrade path kicking in.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import jupyterhub

from spawner import builders, models, slugs
from spawner.api_json import override_fields

if TYPE_CHECKING:
    from spawner.config import KubeSpawner

KUBESPAWNER_COMPAT_VERSION = "7.1.0"


async def resolve(spawner: KubeSpawner, value: Any) -> Any:
    """A config value that may be a callable of the spawner, possibly async."""
    if callable(value):
        value = value(spawner)
        if inspect.isawaitable(value):
            value = await value
    return value


def sorted_values(src: Any) -> Any:
    """A dict-form list option (Union([List(), Dict()])) as its values in key order."""
    if isinstance(src, dict):
        return [src[key] for key in sorted(src)]
    return src


def common_labels(spawner: KubeSpawner, extra_labels: dict[str, str]) -> dict[str, str]:
    labels = {"hub.jupyter.org/username": slugs.label_slug(spawner.user.name)}
    labels.update(extra_labels)
    labels.update(spawner.common_labels)
    return labels


def pod_labels(spawner: KubeSpawner, extra_labels: dict[str, str]) -> dict[str, str]:
    labels = common_labels(spawner, extra_labels)
    labels["app.kubernetes.io/component"] = spawner.component_label
    labels["component"] = spawner.component_label
    labels["hub.jupyter.org/servername"] = slugs.label_slug(spawner.name or "")
    return labels


def common_annotations(spawner: KubeSpawner, extra: dict[str, str]) -> dict[str, str]:
    annotations = {"hub.jupyter.org/username": spawner.user.name}
    if spawner.name:
        annotations["hub.jupyter.org/servername"] = spawner.name
    annotations["hub.jupyter.org/kubespawner-version"] = KUBESPAWNER_COMPAT_VERSION
    annotations["hub.jupyter.org/jupyterhub-version"] = jupyterhub.__version__
    annotations.update(extra)
    return annotations


def _command(spawner: KubeSpawner) -> list[str] | None:
    args = spawner.get_args()
    if spawner.cmd:
        return list(spawner.cmd) + list(args)
    if args:
        spawner.log.warning(
            "Ignoring arguments for %s when using implicit command from image: %s."
            " Set KubeSpawner.cmd explicitly to support passing cli arguments.",
            spawner.pod_name,
            args,
        )
    return None


async def pod_manifest(spawner: KubeSpawner) -> dict[str, Any]:
    s = spawner
    expand = s._expand_all
    return builders.pod_json(
        name=s.pod_name,
        cmd=_command(s),
        port=s.port,
        image=s.image,
        image_pull_policy=s.image_pull_policy,
        image_pull_secrets=s.image_pull_secrets,
        node_selector=s.node_selector,
        uid=await resolve(s, s.uid),
        gid=await resolve(s, s.gid),
        fs_gid=await resolve(s, s.fs_gid),
        supplemental_gids=await resolve(s, s.supplemental_gids),
        privileged=s.privileged,
        allow_privilege_escalation=s.allow_privilege_escalation,
        container_security_context=await resolve(s, s.container_security_context),
        pod_security_context=await resolve(s, s.pod_security_context),
        env=s.get_env(),
        volumes=expand(sorted_values(s.volumes)),
        volume_mounts=expand(sorted_values(s.volume_mounts)),
        working_dir=s.working_dir,
        labels=pod_labels(s, expand(s.extra_labels)),
        annotations=common_annotations(s, expand(s.extra_annotations)),
        cpu_limit=s.cpu_limit,
        cpu_guarantee=s.cpu_guarantee,
        mem_limit=s.mem_limit,
        mem_guarantee=s.mem_guarantee,
        extra_resource_limits=s.extra_resource_limits,
        extra_resource_guarantees=s.extra_resource_guarantees,
        lifecycle_hooks=s.lifecycle_hooks,
        init_containers=expand(sorted_values(s.init_containers)),
        service_account=expand(s.service_account),
        automount_service_account_token=s.automount_service_account_token,
        extra_container_config=s.extra_container_config,
        extra_pod_config=expand(s.extra_pod_config),
        extra_containers=expand(sorted_values(s.extra_containers)),
        scheduler_name=s.scheduler_name,
        tolerations=sorted_values(s.tolerations),
        node_affinity_preferred=sorted_values(s.node_affinity_preferred),
        node_affinity_required=sorted_values(s.node_affinity_required),
        pod_affinity_preferred=sorted_values(s.pod_affinity_preferred),
        pod_affinity_required=sorted_values(s.pod_affinity_required),
        pod_anti_affinity_preferred=sorted_values(s.pod_anti_affinity_preferred),
        pod_anti_affinity_required=sorted_values(s.pod_anti_affinity_required),
        priority_class_name=s.priority_class_name,
        ssl_secret_name=s.secret_name if s.internal_ssl else None,
        ssl_secret_mount_path=s.secret_mount_path,
        logger=s.log,
    )


def pvc_manifest(spawner: KubeSpawner) -> dict[str, Any]:
    s = spawner
    labels = common_labels(s, s._expand_all(s.storage_extra_labels))
    # KubeSpawner's historical quirk, kept for selector compatibility: component says
    # "singleuser-storage" while app.kubernetes.io/component says the server's component
    labels["app.kubernetes.io/component"] = s.component_label
    labels["component"] = "singleuser-storage"
    return builders.pvc_json(
        name=s.pvc_name,
        storage_class=s.storage_class,
        access_modes=s.storage_access_modes,
        selector=s._expand_all(s.storage_selector),
        storage=s.storage_capacity,
        labels=labels,
        annotations=common_annotations(s, s._expand_all(s.storage_extra_annotations)),
    )


def service_manifest(spawner: KubeSpawner, owner_reference: Any, port: int) -> dict[str, Any]:
    s = spawner
    extra = s._expand_all(s.extra_labels)
    return builders.service_json(
        name=s.pod_name,
        port=port,
        selector=pod_labels(s, extra),
        owner_references=[owner_reference],
        labels=common_labels(s, extra),
        annotations=common_annotations(s, s._expand_all(s.extra_annotations)),
    )


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def secret_manifest(spawner: KubeSpawner, owner_reference: Any) -> dict[str, Any]:
    s = spawner
    paths = s.cert_paths
    return builders.secret_json(
        name=s.secret_name,
        username=s.user.name,
        key=_read(paths["keyfile"]),
        cert=_read(paths["certfile"]),
        ca_bundle=builders.join_ca_bundle(
            _read(paths["cafile"]), _read(s.internal_trust_bundles["hub-ca"])
        ),
        owner_references=[owner_reference],
        labels=common_labels(s, s._expand_all(s.extra_labels)),
        annotations=common_annotations(s, s._expand_all(s.extra_annotations)),
    )


def namespace_manifest(spawner: KubeSpawner) -> dict[str, Any]:
    s = spawner
    return builders.namespace_json(
        s.namespace,
        labels=s._expand_all(s.user_namespace_labels),
        annotations=s._expand_all(s.user_namespace_annotations),
    )


def pod_model(spawner: KubeSpawner, pod: dict[str, Any]) -> Any:
    """Pod JSON as the ``V1Pod`` KubeSpawner hands out (get_pod_manifest, modify_pod_hook):
    fields set through extra_pod_config/extra_container_config stay as configured."""
    return models.pod(
        pod,
        spec_overrides=override_fields("V1PodSpec", spawner.extra_pod_config),
        container_overrides=override_fields("V1Container", spawner.extra_container_config),
    )
