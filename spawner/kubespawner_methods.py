"""KubeSpawner 7.1's methods on its configuration: names, manifests, profiles.

:class:`KubeSpawnerMethods` adds to the option declarations of :mod:`kubecache.spawner.config` the
methods subclasses and zero-to-jupyterhub ``extraConfig`` snippets call or override
(``_expand_user_properties``, ``_expand_all``, ``get_env``, ``_build_common_labels``,
``get_pod_manifest``, ``load_user_options``, ``_options_form_default``, ...), with KubeSpawner's
names and signatures. Each gathers the spawner's option values and hands them to a module that takes
values (:mod:`kubecache.spawner.naming`, :mod:`kubecache.spawner.manifests`,
:mod:`kubecache.spawner.models`, :mod:`kubecache.spawner.profiles`). Where KubeSpawner calls a
method through ``self`` (template expansion, labels, ``get_env``, ``_apply_overrides``,
``_load_profile``), so does this class, so a subclass's override takes effect in the same places. No
Kubernetes or Redis I/O here: the runtime is :class:`kubecache.spawner.spawner.KubeCacheSpawner`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from traitlets import TraitError, default

from kubecache.spawner import manifests, models, naming, profiles
from kubecache.spawner.config import KubeSpawner
from kubecache.spawner.option_values import resolve, sorted_values


class KubeSpawnerMethods(KubeSpawner):
    """KubeSpawner's naming, manifest and profile methods, delegating to modules of values.

    Subclassed by ``kubecache.spawner.KubeCacheSpawner``, which does the I/O.
    """

    # ------------------------------------------------------------------ names

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # pod_name, namespace, dns_name and pvc_name computed here are defaults only: a saved
        # state (load_names_state) replaces them, so renamed templates never orphan a server.
        if self.enable_user_namespaces:
            self.namespace = self._expand_user_properties(self.user_namespace_template)
        self.pod_name: str = self._expand_user_properties(self.pod_name_template)
        self.dns_name: str = naming.dns_name(
            self.dns_name_template, namespace=self.namespace, pod_name=self.pod_name
        )
        self.secret_name: str = self._expand_user_properties(self.secret_name_template)
        self.pvc_name: str = self._expand_user_properties(self.pvc_name_template)
        # whether pvc_name is known to name an existing claim (then it is kept in state)
        self._pvc_exists = False
        # None: fresh server; "unknown": state written by KubeSpawner < 7; else that version
        self._state_kubespawner_version: str | None = None
        if self.working_dir:
            self.working_dir = self._expand_user_properties(self.working_dir)
        if self.port == 0:  # type: ignore[has-type]  # KubeSpawner's default server port
            self.port = 8888

    @default("ssl_alt_names")
    def _default_ssl_alt_names(self) -> list[str]:
        return [
            f"DNS:{self.dns_name}",
            f"DNS:{self.pod_name}",
            f"DNS:{self.pod_name}.{self.namespace}",
            f"DNS:{self.pod_name}.{self.namespace}.svc",
        ]

    def _expand_user_properties(self, template: str, slug_scheme: str | None = None) -> str:
        """Fill a template's fields: {username} {servername} {user_server} {userid}
        {unescaped_username} {unescaped_servername} {hubnamespace} {pod_name} {pvc_name}
        {namespace}, plus the {safe_*} and {escaped_*} variants of the first three."""
        known = {
            # not yet defined while they are being computed themselves
            attr: getattr(self, attr)
            for attr in ("pod_name", "pvc_name", "namespace")
            if hasattr(self, attr)
        }
        fields = naming.template_fields(
            user_name=self.user.name,
            server_name=self.name or "",
            slug_scheme=slug_scheme or self.slug_scheme,
            user_id=self.user.id,
            hub_namespace=self._namespace_default(),
            known_names=known,
        )
        return naming.expand_template(template, fields, user_name=self.user.name)

    def _expand_all(self, src: Any) -> Any:
        """Expand template fields in every string of a nested list/dict structure."""
        return naming.expand_all(src, self._expand_user_properties)

    def _expand_env(self, env: dict[str, Any]) -> dict[str, Any]:
        """The admin's environment with templates expanded; callables were already resolved
        by Spawner.get_env, so values of other types are left to its result."""
        return naming.expand_env(env, self._expand_all)

    def get_env(self) -> dict[str, Any]:
        """JupyterHub's environment plus JUPYTER_IMAGE(_SPEC) and the expanded ``environment``.

        Only the admin's ``environment`` is expanded: values JupyterHub itself sets (JSON
        strings with braces) must stay as they are (KubeSpawner issue #743).
        """
        env: dict[str, Any] = super().get_env()
        env["JUPYTER_IMAGE_SPEC"] = self.image
        env["JUPYTER_IMAGE"] = self.image
        env.update(self._expand_env(self.environment))
        return env

    def names_state(self) -> dict[str, Any]:
        """The naming part of get_state(), with KubeSpawner's keys (see naming.names_state)."""
        return naming.names_state(
            pod_name=self.pod_name,
            namespace=self.namespace,
            dns_name=self.dns_name,
            pvc_name=self.pvc_name,
            pvc_exists=self._pvc_exists,
            legacy_lookup_pending=self.legacy_pvc_name() is not None,
        )

    def load_names_state(self, state: dict[str, Any]) -> None:
        """The naming part of load_state(): saved names win over freshly computed ones."""
        for key in ("pod_name", "namespace", "dns_name"):
            if key in state:
                setattr(self, key, state[key])
        if "pvc_name" in state and self.remember_pvc_name:
            self.pvc_name = state["pvc_name"]
            self._pvc_exists = True
        if state and "kubespawner_version" not in state:
            self.log.warning(
                "Loading state for %s/%s written by an unknown earlier KubeSpawner (likely 6.x);"
                " names will be upgraded, legacy PVC names are looked for on start.",
                self.user.name,
                self.name,
            )
        self._state_kubespawner_version = naming.saved_kubespawner_version(state)

    def reset_transient_names(self) -> None:
        """The naming part of clear_state(): pod and DNS names follow the current templates
        again; namespace and pvc_name persist."""
        self.pod_name = self._expand_user_properties(self.pod_name_template)
        self.dns_name = naming.dns_name(
            self.dns_name_template, namespace=self.namespace, pod_name=self.pod_name
        )

    def legacy_pvc_name(self) -> str | None:
        """The KubeSpawner 6 ("escape" scheme) PVC name to look for before creating a claim.

        Only for state written by KubeSpawner < 7 with ``handle_legacy_names`` and
        ``remember_pvc_name`` on, while the claim is not yet known, and when the legacy name
        differs. The caller checks: current name exists -> keep it; else legacy name exists
        -> ``self.pvc_name = legacy``; then sets ``_pvc_exists``.
        """
        if not naming.needs_legacy_pvc_lookup(
            handle_legacy_names=self.handle_legacy_names,
            remember_pvc_name=self.remember_pvc_name,
            pvc_exists=self._pvc_exists,
            saved_version=self._state_kubespawner_version,
        ):
            return None
        legacy = self._expand_user_properties(self.pvc_name_template, slug_scheme="escape")
        return legacy if legacy != self.pvc_name else None

    def pvc_is_shared(self) -> bool:
        """True when this named server uses the default server's claim (delete_forever keeps it)."""
        return naming.pvc_is_shared(
            server_name=self.name or "", pvc_name_template=self.pvc_name_template
        )

    # ------------------------------------------------------------------ labels

    def _build_common_labels(self, extra_labels: Mapping[str, str]) -> dict[str, str]:
        return manifests.common_labels(
            user_name=self.user.name, extra_labels=extra_labels, common_labels=self.common_labels
        )

    def _build_pod_labels(self, extra_labels: Mapping[str, str]) -> dict[str, str]:
        return manifests.pod_labels(
            self._build_common_labels(extra_labels),
            server_name=self.name or "",
            component_label=self.component_label,
        )

    def _build_common_annotations(self, extra_annotations: Mapping[str, str]) -> dict[str, str]:
        return manifests.common_annotations(
            user_name=self.user.name, server_name=self.name or "", extra=extra_annotations
        )

    # ------------------------------------------------------------------ manifests
    # KubeSpawner's public methods return client models (V1Pod, ...) for code written against
    # it; the spawner itself sends API JSON (*_request_body), built without models unless a
    # subclass overrides the public method, whose result then is what gets created.

    async def _pod_json(self) -> dict[str, Any]:
        """The user's Pod as API JSON: which option goes into which make_pod argument."""
        expand = self._expand_all
        return manifests.pod_json(
            name=self.pod_name,
            cmd=manifests.command(self.cmd, self.get_args(), pod_name=self.pod_name, log=self.log),
            port=self.port,
            image=self.image,
            image_pull_policy=self.image_pull_policy,
            image_pull_secrets=self.image_pull_secrets,
            node_selector=self.node_selector,
            uid=await resolve(self, self.uid),
            gid=await resolve(self, self.gid),
            fs_gid=await resolve(self, self.fs_gid),
            supplemental_gids=await resolve(self, self.supplemental_gids),
            privileged=self.privileged,
            allow_privilege_escalation=self.allow_privilege_escalation,
            container_security_context=await resolve(self, self.container_security_context),
            pod_security_context=await resolve(self, self.pod_security_context),
            env=self.get_env(),
            volumes=expand(sorted_values(self.volumes)),
            volume_mounts=expand(sorted_values(self.volume_mounts)),
            working_dir=self.working_dir,
            labels=self._build_pod_labels(expand(self.extra_labels)),
            annotations=self._build_common_annotations(expand(self.extra_annotations)),
            cpu_limit=self.cpu_limit,
            cpu_guarantee=self.cpu_guarantee,
            mem_limit=self.mem_limit,
            mem_guarantee=self.mem_guarantee,
            extra_resource_limits=self.extra_resource_limits,
            extra_resource_guarantees=self.extra_resource_guarantees,
            lifecycle_hooks=self.lifecycle_hooks,
            init_containers=expand(sorted_values(self.init_containers)),
            service_account=expand(self.service_account),
            automount_service_account_token=self.automount_service_account_token,
            extra_container_config=self.extra_container_config,
            extra_pod_config=expand(self.extra_pod_config),
            extra_containers=expand(sorted_values(self.extra_containers)),
            scheduler_name=self.scheduler_name,
            tolerations=sorted_values(self.tolerations),
            node_affinity_preferred=sorted_values(self.node_affinity_preferred),
            node_affinity_required=sorted_values(self.node_affinity_required),
            pod_affinity_preferred=sorted_values(self.pod_affinity_preferred),
            pod_affinity_required=sorted_values(self.pod_affinity_required),
            pod_anti_affinity_preferred=sorted_values(self.pod_anti_affinity_preferred),
            pod_anti_affinity_required=sorted_values(self.pod_anti_affinity_required),
            priority_class_name=self.priority_class_name,
            ssl_secret_name=self.secret_name if self.internal_ssl else None,
            ssl_secret_mount_path=self.secret_mount_path,
            logger=self.log,
        )

    def _pvc_json(self) -> dict[str, Any]:
        common = self._build_common_labels(self._expand_all(self.storage_extra_labels))
        return manifests.pvc_json(
            name=self.pvc_name,
            storage_class=self.storage_class,
            access_modes=self.storage_access_modes,
            selector=self._expand_all(self.storage_selector),
            storage=self.storage_capacity,
            labels=manifests.pvc_labels(common, component_label=self.component_label),
            annotations=self._build_common_annotations(
                self._expand_all(self.storage_extra_annotations)
            ),
        )

    def _service_json(self, owner_reference: Any, port: int) -> dict[str, Any]:
        extra = self._expand_all(self.extra_labels)
        return manifests.service_json(
            name=self.pod_name,
            port=port,
            selector=self._build_pod_labels(extra),
            owner_references=[owner_reference],
            labels=self._build_common_labels(extra),
            annotations=self._build_common_annotations(self._expand_all(self.extra_annotations)),
        )

    def _secret_json(self, owner_reference: Any) -> dict[str, Any]:
        return manifests.secret_from_files(
            name=self.secret_name,
            user_name=self.user.name,
            cert_paths=self.cert_paths,
            hub_ca_path=self.internal_trust_bundles["hub-ca"],
            owner_reference=owner_reference,
            labels=self._build_common_labels(self._expand_all(self.extra_labels)),
            annotations=self._build_common_annotations(self._expand_all(self.extra_annotations)),
        )

    def _pod_model(self, pod: dict[str, Any]) -> Any:
        """Pod JSON as the ``V1Pod`` KubeSpawner hands out (get_pod_manifest, modify_pod_hook)."""
        return models.pod_model(
            pod,
            extra_pod_config=self.extra_pod_config,
            extra_container_config=self.extra_container_config,
        )

    async def get_pod_manifest(self) -> Any:
        """The user's Pod as a ``V1Pod`` (callables for uid/gid/fs_gid/supplemental_gids and
        the security contexts are called, coroutines awaited)."""
        return self._pod_model(await self._pod_json())

    def get_pvc_manifest(self) -> Any:
        """The user's claim as a ``V1PersistentVolumeClaim``."""
        return models.pvc(self._pvc_json())

    def get_service_manifest(self, owner_reference: Any, port: int | None = None) -> Any:
        """The ``V1Service`` fronting the pod (services_enabled / internal_ssl); the owner
        reference is a ``V1OwnerReference`` or its dict."""
        service = models.service(
            self._service_json(owner_reference, self.port if port is None else port)
        )
        service.metadata.owner_references = [owner_reference]
        return service

    def get_secret_manifest(self, owner_reference: Any) -> Any:
        """The internal_ssl ``V1Secret`` holding this server's certificate (reads cert_paths)."""
        secret = models.secret(self._secret_json(owner_reference))
        secret.metadata.owner_references = [owner_reference]
        return secret

    def get_namespace_manifest(self) -> dict[str, Any]:
        """The user namespace (enable_user_namespaces), as API JSON (not a KubeSpawner method)."""
        return manifests.namespace_json(
            self.namespace,
            labels=self._expand_all(self.user_namespace_labels),
            annotations=self._expand_all(self.user_namespace_annotations),
        )

    def _overridden(self, method: str) -> bool:
        return getattr(type(self), method) is not getattr(KubeSpawnerMethods, method)

    async def pod_request_body(self) -> dict[str, Any]:
        """The Pod to create, as API JSON."""
        if self._overridden("get_pod_manifest"):
            return models.request_body(await self.get_pod_manifest(), "get_pod_manifest")
        return await self._pod_json()

    def pvc_request_body(self) -> dict[str, Any]:
        """The PersistentVolumeClaim to create, as API JSON."""
        if self._overridden("get_pvc_manifest"):
            return models.request_body(self.get_pvc_manifest(), "get_pvc_manifest")
        return self._pvc_json()

    def service_request_body(self, owner_reference: dict[str, Any], port: int) -> dict[str, Any]:
        """The Service to create, as API JSON."""
        if self._overridden("get_service_manifest"):
            owner = models.owner_reference(owner_reference)
            return models.request_body(
                self.get_service_manifest(owner, port), "get_service_manifest"
            )
        return self._service_json(owner_reference, port)

    def secret_request_body(self, owner_reference: dict[str, Any]) -> dict[str, Any]:
        """The internal_ssl Secret to create, as API JSON."""
        if self._overridden("get_secret_manifest"):
            owner = models.owner_reference(owner_reference)
            return models.request_body(self.get_secret_manifest(owner), "get_secret_manifest")
        return self._secret_json(owner_reference)

    # ------------------------------------------------------------------ profiles

    def _is_override_name(self, name: str) -> bool:
        """An option (trait) of the spawner, or a deprecated alias of one."""
        return self.has_trait(name) or isinstance(getattr(type(self), name, None), property)

    def _get_initialized_profile_list(self, profile_list: Any) -> list[dict[str, Any]]:
        """The configured (already called) profile list checked and initialised."""
        return profiles.loaded_profile_list(
            profile_list, is_option=self._is_override_name, log=self.log
        )

    async def _current_profile_list(self) -> list[dict[str, Any]]:
        """The configured profile list (calling it when callable) checked and initialised."""
        raw = sorted_values(self.profile_list)
        if callable(raw):
            raw = await resolve(self, raw)
        return self._get_initialized_profile_list(raw)

    def _user_options_max_bytes(self) -> int:
        """KubeCacheSpawner.user_options_max_bytes (without that option: the default)."""
        return int(getattr(self, "user_options_max_bytes", profiles.DEFAULT_MAX_BYTES))

    async def _apply_overrides(
        self,
        overrides: Mapping[str, Any],
        *,
        where: str = "kubespawner_override",
        users_value: bool = False,
    ) -> None:
        """Set each override on the spawner; dicts merge. A value the option refuses is the
        admin's mistake (ProfileListError), or the user's when it holds their free text (400)."""
        for name, raw in overrides.items():
            value = await resolve(self, raw)
            self.log.debug(
                ".. overriding KubeSpawner value %s=%s for %s", name, value, self.pod_name
            )
            value = profiles.merged_value(getattr(self, name), value)
            try:
                setattr(self, name, value)
            except TraitError as e:
                raise profiles.refused_override(
                    e, name=name, where=where, users_value=users_value
                ) from e

    async def _load_profile(self, slug: str | None, profile_list: list[dict[str, Any]]) -> None:
        """Apply the profile ``slug`` (the default when empty) and its options' choices."""
        profile = profiles.get_profile(slug, profile_list)
        self.log.debug(
            "Applying KubeSpawner override for profile '%s' to %s",
            profile.get("display_name"),
            self.pod_name,
        )
        await self._apply_overrides(
            profile.get("kubespawner_override") or {}, where=profiles.profile_where(profile)
        )
        for step in profiles.option_override_steps(profile, self.user_options):
            await self._apply_overrides(
                step.overrides, where=step.where, users_value=step.users_value
            )

    async def load_user_options(self) -> None:
        """Validate ``user_options`` against the profile list, then apply the chosen profile and
        its options' overrides. Invalid options raise HTTPError(400) before anything is made."""
        profile_list = await self._current_profile_list()
        user_options = self.user_options
        profiles.validate_user_options(
            user_options, profile_list, max_bytes=self._user_options_max_bytes()
        )
        selected = (user_options or {}).get("profile")
        if profile_list:
            await self._load_profile(selected, profile_list)
        elif selected:
            self.log.warning(
                "Profile %r requested for %s, but no profile_list is configured",
                selected,
                self.pod_name,
            )

    def _render_options_form(self, profile_list: Any) -> str:
        return profiles.render_form(
            profile_list,
            is_option=self._is_override_name,
            user_options=self.user_options,
            template_paths=self.additional_profile_form_template_paths,
            form_template=self.profile_form_template,
            pod_name=self.pod_name,
            log=self.log,
        )

    @default("options_form")
    def _options_form_default(self) -> Any:
        """'' without profiles; the rendered form; or, for a callable profile_list, a coroutine
        function JupyterHub calls with the spawner to render the form just in time."""
        if not self.profile_list:
            return ""
        if callable(self.profile_list):
            profile_list = self.profile_list

            async def render_dynamically(current: Any) -> str:
                raw = await resolve(current, profile_list)
                return self._render_options_form(raw)

            return render_dynamically
        return self._render_options_form(self.profile_list)

    @default("options_from_form")
    def _options_from_form_default(self) -> Any:
        return self._options_from_form

    def _options_from_form(self, formdata: dict[str, list[str]]) -> dict[str, Any]:
        return profiles.options_from_form(formdata, pod_name=self.pod_name, log=self.log)

    @default("apply_user_options")
    def _default_apply_user_options(self) -> Any:
        # JupyterHub >= 5.3 calls apply_user_options just before start() and answers its
        # errors with 400. Options are applied in start() as KubeSpawner does; this hook
        # only refuses bad ones early (a configured hook replaces it; start() still checks).
        return check_user_options


async def check_user_options(spawner: KubeSpawnerMethods, user_options: Mapping[str, Any]) -> None:
    """Raise InvalidUserOptions (HTTP 400) when ``user_options`` fit no profile, or
    ProfileListError (500) when the profile list is broken; change nothing."""
    profiles.validate_user_options(
        user_options,
        await spawner._current_profile_list(),
        max_bytes=spawner._user_options_max_bytes(),
    )
