"""The KubeSpawner configuration surface: option declarations only.

``KubeSpawner`` here is a drop-in for ``kubespawner.KubeSpawner`` 7.1's configuration: every
``c.KubeSpawner.*`` option has the same name, trait type, default, help text and ``config``
tag, so an existing ``jupyterhub_config.py`` (and the zero-to-jupyterhub chart's generated one)
applies unchanged. The class is *named* KubeSpawner on purpose: traitlets applies the config
section of every class name in the MRO, so ``KubeCacheSpawner(KubeSpawner)`` picks up
``c.KubeSpawner.*``. The runtime (start/stop/poll/progress/state) lives in
``kubecache.spawner.spawner.KubeCacheSpawner``; KubeSpawner's methods that turn options into names,
manifests and profiles are :class:`kubecache.spawner.kubespawner_methods.KubeSpawnerMethods`, which
hands them to modules that take values (:mod:`kubecache.spawner.naming`, :mod:`kubecache.spawner.manifests`,
:mod:`kubecache.spawner.profiles`). This class only declares options: traits, help texts, defaults and
validators.

The trait block is long because it is the documentation users read (``--help-all``, Sphinx);
it is kept in one class so ``class_own_traits()`` lists the same options as KubeSpawner's.

Where the published reference (seed 000) and KubeSpawner 7.1.0 differ, 7.1.0 wins:

- ``pod_name_template`` defaults to ``jupyter-{user_server}`` (seed: ``jupyter-{username}--
  {servername}``), ``pvc_name_template`` to ``claim-{user_server}`` and
  ``secret_name_template`` to ``{pod_name}``: the 7.x names existing hubs already use.
- ``volumes``, ``volume_mounts``, ``init_containers``, ``extra_containers``, ``tolerations`` and
  the six ``*_affinity_*`` options accept a dict as well as a list (``Union([List(), Dict()])``);
  dict values are used in the order of their sorted keys, so config fragments can be merged.
- ``ssl_alt_names_include_local`` defaults to False (the pod is reached by its DNS name).
- The 7.x additions are declared too: ``slug_scheme``, ``remember_pvc_name``,
  ``handle_legacy_names``, ``slow_spawn_message*``, ``services_enabled``, ``get_pod_url``.

The 0.5.1-era names (``singleuser_*``, ``user_storage_*``, ``image_spec``) are deprecated
aliases installed from :mod:`kubecache.spawner.deprecated`, including the three KubeSpawner 7.1 silently
drops (``singleuser_image_spec``, ``singleuser_lifecycle_hooks``,
``singleuser_allow_privilege_escalation``).
"""

# The help texts are KubeSpawner's published option documentation, kept verbatim (long lines,
# indented blank lines, typographic quotes) so --help-all and docs read the same.
# ruff: noqa: E501, W293, RUF001

from __future__ import annotations

import warnings
from typing import Any

from jupyterhub.spawner import Spawner
from jupyterhub.traitlets import Callable, Command
from traitlets import Any as AnyTrait
from traitlets import Bool, Dict, Enum, Int, List, Unicode, Union, default, observe, validate

from kubecache.spawner import deprecated, naming


class KubeSpawner(Spawner):
    """The KubeSpawner configuration surface: its options, declared.

    A JupyterHub spawner that spawns pods in a Kubernetes cluster; each server of each user has
    its own instance. Subclassed by ``kubecache.spawner.kubespawner_methods.KubeSpawnerMethods`` (names,
    manifests, profiles), then ``kubecache.spawner.KubeCacheSpawner``, which does the I/O.
    """

    # ------------------------------------------------------------------ options

    additional_profile_form_template_paths: List[str] = List(
        help="""
        Additional paths to search for jinja2 templates when rendering profile_form.

        These directories will be searched before the default `templates/` directory
        shipped with kubespawner with the default template.

        Any file named `form.html` in these directories will be used to render the
        profile options form.
        """,
    ).tag(config=True)

    after_pod_created_hook = Callable(
        None,
        allow_none=True,
        help="""
        Callable to augment the Pod object after launching.

        Expects a callable that takes two parameters:

           1. The spawner object that is doing the spawning
           2. The Pod object that was launched

        This can be a coroutine if necessary. When set to none, no augmenting is done.

        This is very useful if you want to add some services or ingress to the pod after it is launched.
        Note that the spawner object can change between versions of KubeSpawner and JupyterHub,
        so be careful relying on this!
        """,
    ).tag(config=True)

    allow_privilege_escalation = Bool(
        allow_none=True,
        help="""
        Controls whether a process can gain more privileges than its parent process.

        When set to False (the default), the primary user visible effect is that
        setuid binaries (like sudo) will no longer work.

        When set to None, the defaults for the cluster are respected.

        This bool directly controls whether the no_new_privs flag gets set on the container

        AllowPrivilegeEscalation is true always when the container is:
        1) run as Privileged OR 2) has CAP_SYS_ADMIN.
        """,
    ).tag(config=True)

    automount_service_account_token = Bool(
        None,
        allow_none=True,
        help="""
        Whether to mount the service account token in the spawned user pod.

        The default value is None, which mounts the token if the service account is explicitly set,
        but doesn't mount it if not.

        WARNING: Be careful with this configuration! Make sure the service account being mounted
        has the minimal permissions needed, and nothing more. When misconfigured, this can easily
        give arbitrary users root over your entire cluster.
        """,
    ).tag(config=True)

    cmd = Command(
        None,
        minlen=0,
        allow_none=True,
        help="""
        The command used to start the single-user server.

        Either
          - a string containing a single command or path to a startup script
          - a list of the command and arguments
          - `None` (default) to use the Docker image's `CMD`

        If `cmd` is set, it will be augmented with `spawner.get_args()`. This will override the `CMD` specified in the Docker image.
        """,
    ).tag(config=True)

    common_labels = Dict(
        default_value={
            "app.kubernetes.io/name": "jupyterhub",
            "app.kubernetes.io/managed-by": "kubespawner",
            "app": "jupyterhub",
            "heritage": "jupyterhub",
        },
        help="""
        Kubernetes labels that both spawned singleuser server pods and created
        user PVCs will get.

        Note that these are only set when the Pods and PVCs are created, not
        later when this setting is updated.
        """,
    ).tag(config=True)

    component_label = Unicode(
        "singleuser-server",
        help="""
        The value of the labels app.kubernetes.io/component and component, used
        to identify user pods kubespawner is to manage.

        This can be used to override the spawner behavior when dealing with
        multiple hub instances in the same namespace. Usually helpful for CI
        workflows.
        """,
    ).tag(config=True)

    container_security_context = Union(
        [Dict(), Callable()],
        help="""
        A Kubernetes security context for the container. Note that all
        configuration options within here should be camelCased.

        What is configured here has the highest priority, so the alternative
        configuration `uid`, `gid`, `privileged`, and
        `allow_privilege_escalation` will be overridden by this.

        Rely on `the Kubernetes reference
        <https://kubernetes.io/docs/reference/generated/kubernetes-api/v1.28/#securitycontext-v1-core>`__
        for details on allowed configuration.
        """,
    ).tag(config=True)

    delete_grace_period = Int(
        1,
        help="""
        Time in seconds for the pod to be in `terminating` state before is forcefully killed.

        Increase this if you need more time to execute a `preStop` lifecycle hook.

        See https://kubernetes.io/docs/concepts/workloads/pods/pod/#termination-of-pods for
        more information on how pod termination works.

        Defaults to `1`.
        """,
    ).tag(config=True)

    delete_pvc = Bool(
        True,
        help="""Delete PVCs when deleting Spawners.

        When a Spawner is deleted (not just stopped),
        delete its associated PVC.

        This occurs when a named server is deleted,
        or when the user itself is deleted for the default Spawner.

        Requires JupyterHub 1.4.1 for Spawner.delete_forever support.

        .. versionadded: 0.17
        """,
    ).tag(config=True)

    delete_stopped_pods = Bool(
        True,
        help="""
        Whether to delete pods that have stopped themselves.
        Set to False to leave stopped pods in the completed state,
        allowing for easier debugging of why they may have stopped.
        """,
    ).tag(config=True)

    dns_name_template = Unicode(
        "{name}.{namespace}.svc.cluster.local",
        help="""
        Template to use to form the dns name for the pod.
        """,
    ).tag(config=True)

    enable_user_namespaces = Bool(
        help="""
        Cause each user to be spawned into an individual namespace.

        This comes with some caveats.  The Hub must run with significantly
        more privilege (must have ClusterRoles analogous to its usual Roles)
        and can therefore do heinous things to the entire cluster.

        It will also make the Reflectors aware of pods and events across
        all namespaces.  This will have performance implications, although
        using labels to restrict resource selection helps somewhat.

        If you use this, consider cleaning up the user namespace in your
        post_stop_hook.
        """,
    ).tag(config=True)

    events_enabled = Bool(
        True,
        help="""
        Enable event-watching for progress-reports to the user spawn page.

        Disable if these events are not desirable
        or to save some performance cost.
        """,
    ).tag(config=True)

    extra_annotations = Dict(
        help="""
        Extra Kubernetes annotations to set on the spawned single-user pods, as
        well as on the pods' associated k8s Service and k8s Secret if
        internal_ssl is enabled.

        The keys and values specified here are added as annotations on the spawned single-user
        kubernetes pods. The keys and values must both be strings.

        See `the Kubernetes documentation <https://kubernetes.io/docs/concepts/overview/working-with-objects/annotations/>`__
        for more info on what annotations are and why you might want to use them!

        .. seealso::

          :ref:`templates` for information on fields available in template strings.

        """,
    ).tag(config=True)

    extra_container_config = Dict(
        help="""
        Extra configuration (e.g. ``envFrom``) for notebook container which is not covered by other attributes.

        This dict will be directly merge into `container` of notebook server,
        so you should use the same structure. Each item in the dict must a field
        of the `V1Container specification <https://kubernetes.io/docs/reference/generated/kubernetes-api/v1.28/#container-v1-core>`__.


        One usage is set ``envFrom`` on notebook container with configuration below::

            c.KubeSpawner.extra_container_config = {
                "envFrom": [{
                    "configMapRef": {
                        "name": "special-config"
                    }
                }]
            }

        The key could be either a camelCase word (used by Kubernetes yaml, e.g.
        ``envFrom``) or a snake_case word (used by Kubernetes Python client,
        e.g. ``env_from``).
        """,
    ).tag(config=True)

    extra_containers = Union(
        [List(), Dict()],
        help="""
        List or dictionary of containers belonging to the pod in addition to
        the container generated for the notebook server.

        If provided as a list, this list will be directly appended under `containers` in the kubernetes pod spec.
        If provided as a dictionary, the items will be sorted lexicographically by the dictionary keys and
        then the sorted values will be appended to the `containers` key.

        Each item (whether in the list or dictionary values) is container configuration
        which follows the spec at https://kubernetes.io/docs/reference/generated/kubernetes-api/v1.28/#container-v1-core

        One usage is setting crontab in a container to clean sensitive data with configuration below::

            c.KubeSpawner.extra_containers = [{
                "name": "crontab",
                "image": "supercronic",
                "command": ["/usr/local/bin/supercronic", "/etc/crontab"]
            }]

        or as a dictionary::

            c.KubeSpawner.extra_containers = {
                "01-crontab": {
                    "name": "crontab",
                    "image": "supercronic",
                    "command": ["/usr/local/bin/supercronic", "/etc/crontab"]
                }
            }

        .. seealso::

          :ref:`templates` for information on fields available in template strings.

        """,
    ).tag(config=True)

    extra_labels = Dict(
        help="""
        Extra kubernetes labels to set on the spawned single-user pods, as well
        as on the pods' associated k8s Service and k8s Secret if internal_ssl is
        enabled.

        The keys and values specified here would be set as labels on the spawned single-user
        kubernetes pods. The keys and values must both be strings that match the kubernetes
        label key / value constraints.

        See `the Kubernetes documentation <https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/>`__
        for more info on what labels are and why you might want to use them!

        .. seealso::

          :ref:`templates` for information on fields available in template strings.
        """,
    ).tag(config=True)

    extra_pod_config = Dict(
        help="""
        Extra configuration for the pod which is not covered by other attributes.

        This dict will be directly merge into pod,so you should use the same structure.
        Each item in the dict is field of pod configuration
        which follows spec at https://kubernetes.io/docs/reference/generated/kubernetes-api/v1.28/#podspec-v1-core


        One usage is set restartPolicy and dnsPolicy with configuration below::

            c.KubeSpawner.extra_pod_config = {
                "restartPolicy": "OnFailure",
                "dns_policy": "ClusterFirstWithHostNet"
            }

        The `key` could be either a camelCase word (used by Kubernetes yaml,
        e.g. `restartPolicy`) or a snake_case word (used by Kubernetes Python
        client, e.g. `dns_policy`).
        """,
    ).tag(config=True)

    extra_resource_guarantees = Dict(
        help="""
        The dictionary used to request arbitrary resources.
        Default is None and means no additional resources are requested.
        For example, to request 1 Nvidia GPUs::

            c.KubeSpawner.extra_resource_guarantees = {"nvidia.com/gpu": "1"}
        """,
    ).tag(config=True)

    extra_resource_limits = Dict(
        help="""
        The dictionary used to limit arbitrary resources.
        Default is None and means no additional resources are limited.
        For example, to add a limit of 3 Nvidia GPUs::

            c.KubeSpawner.extra_resource_limits = {"nvidia.com/gpu": "3"}
        """,
    ).tag(config=True)

    fs_gid = Union(
        [Int(), Callable()],
        default_value=None,
        allow_none=True,
        help="""
        The GID of the group that should own any volumes that are created & mounted.

        A special supplemental group that applies primarily to the volumes mounted
        in the single-user server. In volumes from supported providers, the following
        things happen:

          1. The owning GID will be the this GID
          2. The setgid bit is set (new files created in the volume will be owned by
             this GID)
          3. The permission bits are OR’d with rw-rw

        The single-user server will also be run with this gid as part of its supplemental
        groups.

        Instead of an integer, this could also be a callable that takes as one
        parameter the current spawner instance and returns an integer. The callable will
        be called asynchronously if it returns a future, rather than an int. Note that
        the interface of the spawner class is not deemed stable across versions,
        so using this functionality might cause your JupyterHub or kubespawner
        upgrades to break.

        You'll *have* to set this if you are using auto-provisioned volumes with most
        cloud providers. See `fsGroup <https://kubernetes.io/docs/reference/generated/kubernetes-api/v1.28/#podsecuritycontext-v1-core>`__
        for more details.
        """,
    ).tag(config=True)

    get_pod_url = Callable(
        None,
        allow_none=True,
        help="""Callable to retrieve pod url

        Called with (spawner, pod)

        Must not be async
        """,
    ).tag(config=True)

    gid = Union(
        [Int(), Callable()],
        default_value=None,
        allow_none=True,
        help="""
        The GID to run the single-user server containers as.

        This GID should ideally map to a group that already exists in the container
        image being used. Running as root is discouraged.

        Instead of an integer, this could also be a callable that takes as one
        parameter the current spawner instance and returns an integer. The callable
        will be called asynchronously if it returns a future. Note that
        the interface of the spawner class is not deemed stable across versions,
        so using this functionality might cause your JupyterHub or kubespawner
        upgrades to break.

        If set to `None`, the group of the user specified with the `USER` directive
        in the container metadata is used.
        """,
    ).tag(config=True)

    handle_legacy_names = Bool(
        True,
        help="""handle legacy names and labels
        
        kubespawner 7 changed the scheme for computing names and labels to be more reliably valid.
        In order to preserve backward compatibility, the old names must be handled in some places.

        Currently, this only affects `pvc_name`
        and has no effect when `remember_pvc_name` is False.

        You can safely disable this if no PVCs were created or running servers were started
        before upgrading to kubespawner 7.
        """,
    ).tag(config=True)

    hub_connect_ip = Unicode(
        allow_none=True,
        help="""DEPRECATED. Use c.JupyterHub.hub_connect_ip""",
    ).tag(config=True)

    hub_connect_port = Int(
        help="""DEPRECATED. Use c.JupyterHub.hub_connect_url""",
    ).tag(config=True)

    image = Unicode(
        "quay.io/jupyterhub/singleuser:latest",
        help="""
        Docker image to use for spawning user's containers.

        Defaults to `quay.io/jupyterhub/singleuser:latest`

        Name of the container + a tag, same as would be used with
        a `docker pull` command. If tag is set to `latest`, kubernetes will
        check the registry each time a new user is spawned to see if there
        is a newer image available. If available, new image will be pulled.
        Note that this could cause long delays when spawning, especially
        if the image is large. If you do not specify a tag, whatever version
        of the image is first pulled on the node will be used, thus possibly
        leading to inconsistent images on different nodes. For all these
        reasons, it is recommended to specify a specific immutable tag
        for the image.

        If your image is very large, you might need to increase the timeout
        for starting the single user container from the default. You can
        set this with::

           c.KubeSpawner.start_timeout = 60 * 5  # Up to 5 minutes

        """,
    ).tag(config=True)

    image_pull_policy = Unicode(
        None,
        allow_none=True,
        help="""
        The image pull policy of the docker container specified in
        `image`.

        Defaults to `None`, which means it is omitted. This leads to it behaving
        like 'Always' when a tag is absent or 'latest', and 'IfNotPresent' when
        the tag is specified to be something else, per https://kubernetes.io/docs/concepts/containers/images/#imagepullpolicy-defaulting.
        """,
    ).tag(config=True)

    image_pull_secrets = Union(
        [List(), Unicode()],
        help="""
        A list of references to Kubernetes Secret resources with credentials to
        pull images from image registries. This list can either have strings in
        it or objects with the string value nested under a name field.

        Passing a single string is still supported, but deprecated as of
        KubeSpawner 0.14.0.

        See `the Kubernetes documentation
        <https://kubernetes.io/docs/concepts/containers/images/#specifying-imagepullsecrets-on-a-pod>`__
        for more information on when and why this might need to be set, and what
        it should be set to.
        """,
    ).tag(config=True)

    init_containers = Union(
        [List(), Dict()],
        help="""
        List or dictionary of initialization containers belonging to the pod.

        If provided as a list, this list will be directly added under `initContainers` in the kubernetes pod spec.
        If provided as a dictionary, the items will be sorted lexicographically by the dictionary keys and
        then the sorted values will be added to the `initContainers` key.

        Each item (whether in the list or dictionary values) must be a dictionary which follows the spec at
        `V1Container specification <https://kubernetes.io/docs/reference/generated/kubernetes-api/v1.28/#container-v1-core>`__

        One usage is disabling access to metadata service from single-user
        notebook server with configuration below::

            c.KubeSpawner.init_containers = [{
                "name": "init-iptables",
                "image": "<image with iptables installed>",
                "command": ["iptables", "-A", "OUTPUT", "-p", "tcp", "--dport", "80", "-d", "169.254.169.254", "-j", "DROP"],
                "securityContext": {
                    "capabilities": {
                        "add": ["NET_ADMIN"]
                    }
                }
            }]

        Or as a dictionary::

            c.KubeSpawner.init_containers = {
                "01-iptables": {
                    "name": "init-iptables",
                    "image": "<image with iptables installed>",
                    "command": ["iptables", "-A", "OUTPUT", "-p", "tcp", "--dport", "80", "-d", "169.254.169.254", "-j", "DROP"],
                    "securityContext": {
                        "capabilities": {
                            "add": ["NET_ADMIN"]
                        }
                    }
                }
            }

        See `the Kubernetes documentation <https://kubernetes.io/docs/concepts/workloads/pods/init-containers/>`__
        for more info on what init containers are and why you might want to use them!

        To use this feature, Kubernetes version must be greater than 1.6.
        """,
    ).tag(config=True)

    ip = Unicode(
        "0.0.0.0",
        help="""
        The IP address (or hostname) the single-user server should listen on.
        We override this from the parent so we can set a more sane default for
        the Kubernetes setup.
        """,
    ).tag(config=True)

    k8s_api_host = Unicode(
        help="""
        Full host name of the k8s API server ("https://hostname:port").

        Typically this is unnecessary, the hostname is picked up by
        config.load_incluster_config() or config.load_kube_config.
        """,
    ).tag(config=True)

    k8s_api_request_retry_timeout = Int(
        30,
        help="""
        Total timeout, including retry timeout, for kubernetes API calls

        When a k8s API request connection times out, we retry it while backing
        off exponentially. This lets you configure the total amount of time
        we will spend trying an API request - including retries - before
        giving up.
        """,
    ).tag(config=True)

    k8s_api_request_timeout = Int(
        3,
        help="""
        API request timeout (in seconds) for all k8s API calls.

        This is the total amount of time a request might take before the connection
        is killed. This includes connection time and reading the response.

        NOTE: This is currently only implemented for creation and deletion of pods,
        and creation of PVCs.
        """,
    ).tag(config=True)

    k8s_api_ssl_ca_cert = Unicode(
        help="""
        Location (absolute filepath) for CA certs of the k8s API server.

        Typically this is unnecessary, CA certs are picked up by
        config.load_incluster_config() or config.load_kube_config.

        In rare non-standard cases, such as using custom intermediate CA
        for your cluster, you may need to mount root CA's elsewhere in
        your Pod/Container and point this variable to that filepath
        """,
    ).tag(config=True)

    k8s_api_threadpool_workers = Int(
        help="""
        DEPRECATED in KubeSpawner 3.0.0.

        No longer has any effect, as there is no threadpool anymore.
        """,
    ).tag(config=True)

    k8s_api_verify_ssl = Bool(
        None,
        allow_none=True,
        help="""
        Verify TLS certificates when connecting to the k8s master.
        
        Set this to false to skip verifying SSL certificate when calling API
        from https server.
        """,
    ).tag(config=True)

    lifecycle_hooks = Dict(
        help="""
        Kubernetes lifecycle hooks to set on the spawned single-user pods.

        The keys is name of hooks and there are only two hooks, postStart and preStop.
        The values are handler of hook which executes by Kubernetes management system when hook is called.

        Below is an sample copied from
        `the Kubernetes documentation <https://kubernetes.io/docs/tasks/configure-pod-container/attach-handler-lifecycle-event/>`__::


            c.KubeSpawner.lifecycle_hooks = {
                "postStart": {
                    "exec": {
                        "command": ["/bin/sh", "-c", "echo Hello from the postStart handler > /usr/share/message"]
                    }
                },
                "preStop": {
                    "exec": {
                        "command": ["/usr/sbin/nginx", "-s", "quit"]
                    }
                }
            }

        See `the Kubernetes documentation <https://kubernetes.io/docs/concepts/containers/container-lifecycle-hooks/>`__
        for more info on what lifecycle hooks are and why you might want to use them!
        """,
    ).tag(config=True)

    modify_pod_hook = Callable(
        None,
        allow_none=True,
        help="""
        Callable to augment the Pod object before launching.

        Expects a callable that takes two parameters:

           1. The spawner object that is doing the spawning
           2. The Pod object that is to be launched

        You should modify the Pod object and return it.

        This can be a coroutine if necessary. When set to none, no augmenting is done.

        This is very useful if you want to modify the pod being launched dynamically.
        Note that the spawner object can change between versions of KubeSpawner and JupyterHub,
        so be careful relying on this!
        """,
    ).tag(config=True)

    namespace = Unicode(
        help="""
        Kubernetes namespace to spawn user pods in.

        Assuming that you are not running with enable_user_namespaces
        turned on, if running inside a kubernetes cluster with service
        accounts enabled, defaults to the current namespace, and if not,
        defaults to `default`.

        If you are running with enable_user_namespaces, this parameter
        is ignored in favor of the `user_namespace_template` template
        resolved with the hub namespace and the user name, with the
        caveat that if the hub namespace is `default` the user
        namespace will have the prefix `user` rather than `default`.
        """,
    ).tag(config=True)

    node_affinity_preferred = Union(
        [List(), Dict()],
        help="""
        List or dictionary of preferred node affinities.

        Affinities describe where pods prefer or require to be scheduled, they
        may prefer or require a node to have a certain label or be in proximity
        / remoteness to another pod. To learn more visit
        https://kubernetes.io/docs/concepts/configuration/assign-pod-node/

        If provided as a list, each item should be a "PreferredSchedulingTerm" object.
        If provided as a dictionary, the keys can be any descriptive name and the values should be "PreferredSchedulingTerm" objects.
        The items will be sorted lexicographically by the dictionary keys and the sorted values will be added to the pod spec.

        Each item should follow the `"PreferredSchedulingTerm" specification
        <https://kubernetes.io/docs/reference/generated/kubernetes-api/v1.28/#preferredschedulingterm-v1-core>`__.
        """,
    ).tag(config=True)

    node_affinity_required = Union(
        [List(), Dict()],
        help="""
        List or dictionary of required node affinities.

        Affinities describe where pods prefer or require to be scheduled, they
        may prefer or require a node to have a certain label or be in proximity
        / remoteness to another pod. To learn more visit
        https://kubernetes.io/docs/concepts/configuration/assign-pod-node/

        If provided as a list, each item should be a "NodeSelectorTerm" object.
        If provided as a dictionary, the keys can be any descriptive name and the values should be "NodeSelectorTerm" objects.
        The items will be sorted lexicographically by the dictionary keys and the sorted values will be added to the pod spec.

        Each item should follow the `"NodeSelectorTerm" specification
        <https://kubernetes.io/docs/reference/generated/kubernetes-api/v1.28/#nodeselectorterm-v1-core>`__.
        """,
    ).tag(config=True)

    node_selector = Dict(
        help="""
        The dictionary Selector labels used to match the Nodes where Pods will be launched.

        Default is None and means it will be launched in any available Node.

        For example to match the Nodes that have a label of `disktype: ssd` use::

           c.KubeSpawner.node_selector = {'disktype': 'ssd'}
        """,
    ).tag(config=True)

    pod_affinity_preferred = Union(
        [List(), Dict()],
        help="""
        List or dictionary of preferred pod affinities.

        Affinities describe where pods prefer or require to be scheduled, they
        may prefer or require a node to have a certain label or be in proximity
        / remoteness to another pod. To learn more visit
        https://kubernetes.io/docs/concepts/configuration/assign-pod-node/

        If provided as a list, each item should be a "WeightedPodAffinityTerm" object.
        If provided as a dictionary, the keys can be any descriptive name and the values should be "WeightedPodAffinityTerm" objects.
        The items will be sorted lexicographically by the dictionary keys and the sorted values will be added to the pod spec.

        Each item should follow the `"WeightedPodAffinityTerm" specification
        <https://kubernetes.io/docs/reference/generated/kubernetes-api/v1.28/#weightedpodaffinityterm-v1-core>`__.
        """,
    ).tag(config=True)

    pod_affinity_required = Union(
        [List(), Dict()],
        help="""
        List or dictionary of required pod affinities.

        Affinities describe where pods prefer or require to be scheduled, they
        may prefer or require a node to have a certain label or be in proximity
        / remoteness to another pod. To learn more visit
        https://kubernetes.io/docs/concepts/configuration/assign-pod-node/

        If provided as a list, each item should be a "PodAffinityTerm" object.
        If provided as a dictionary, the keys can be any descriptive name and the values should be "PodAffinityTerm" objects.
        The items will be sorted lexicographically by the dictionary keys and the sorted values will be added to the pod spec.

        Each item should follow the `"PodAffinityTerm" specification
        <https://kubernetes.io/docs/reference/generated/kubernetes-api/v1.28/#podaffinityterm-v1-core>`__.
        """,
    ).tag(config=True)

    pod_anti_affinity_preferred = Union(
        [List(), Dict()],
        help="""
        List or dictionary of preferred pod anti-affinities.

        Affinities describe where pods prefer or require to be scheduled, they
        may prefer or require a node to have a certain label or be in proximity
        / remoteness to another pod. To learn more visit
        https://kubernetes.io/docs/concepts/configuration/assign-pod-node/

        If provided as a list, each item should be a "WeightedPodAffinityTerm" object.
        If provided as a dictionary, the keys can be any descriptive name and the values should be "WeightedPodAffinityTerm" objects.
        The items will be sorted lexicographically by the dictionary keys and the sorted values will be added to the pod spec.

        Each item should follow the `"WeightedPodAffinityTerm" specification
        <https://kubernetes.io/docs/reference/generated/kubernetes-api/v1.28/#weightedpodaffinityterm-v1-core>`__.
        """,
    ).tag(config=True)

    pod_anti_affinity_required = Union(
        [List(), Dict()],
        help="""
        List or dictionary of required pod anti-affinities.

        Affinities describe where pods prefer or require to be scheduled, they
        may prefer or require a node to have a certain label or be in proximity
        / remoteness to another pod. To learn more visit
        https://kubernetes.io/docs/concepts/configuration/assign-pod-node/

        If provided as a list, each item should be a "PodAffinityTerm" object.
        If provided as a dictionary, the keys can be any descriptive name and the values should be "PodAffinityTerm" objects.
        The items will be sorted lexicographically by the dictionary keys and the sorted values will be added to the pod spec.

        Each item should follow the `"PodAffinityTerm" specification
        <https://kubernetes.io/docs/reference/generated/kubernetes-api/v1.28/#podaffinityterm-v1-core>`__.
        """,
    ).tag(config=True)

    pod_connect_ip = Unicode(
        help="""
        The IP address (or hostname) of user's pods which KubeSpawner connects to.
        If you do not specify the value, KubeSpawner will use the pod IP.

        e.g. `{pod_name}.notebooks.jupyterhub.svc.cluster.local`,

        .. seealso::

          :ref:`templates` for information on fields available in template strings.

        Trailing `-` characters in each domain level are stripped for safe handling of empty server names (user default servers).

        This must be unique within the namespace the pods are being spawned
        in, so if you are running multiple jupyterhubs spawning in the
        same namespace, consider setting this to be something more unique.
        """,
    ).tag(config=True)

    pod_name_template = Unicode(
        "jupyter-{user_server}",
        help="""
        Template to use to form the name of user's pods.

        This must be unique within the namespace the pods are being spawned
        in, so if you are running multiple jupyterhubs spawning in the
        same namespace, consider setting this to be something more unique.

        .. seealso::

          :ref:`templates` for information on fields available in template strings.

        .. versionchanged:: 0.12
            `--` delimiter added to the template,
            where it was implicitly added to the `servername` field before.
            Additionally, `username--servername` delimiter was `-` instead of `--`,
            allowing collisions in certain circumstances.
        """,
    ).tag(config=True)

    pod_security_context = Union(
        [Dict(), Callable()],
        help="""
        A Kubernetes security context for the pod. Note that all configuration
        options within here should be camelCased.

        What is configured here has higher priority than `fs_gid` and
        `supplemental_gids`, but lower priority than what is set in the
        `container_security_context`.

        Note that anything configured on the Pod level will influence all
        containers, including init containers and sidecar containers.

        Rely on `the Kubernetes reference
        <https://kubernetes.io/docs/reference/generated/kubernetes-api/v1.28/#podsecuritycontext-v1-core>`__
        for details on allowed configuration.
        """,
    ).tag(config=True)

    priority_class_name = Unicode(
        help="""
        The priority class that the pods will use.

        See https://kubernetes.io/docs/concepts/configuration/pod-priority-preemption for
        more information on how pod priority works.
        """,
    ).tag(config=True)

    privileged = Bool(
        help="""
        Whether to run the pod with a privileged security context.
        """,
    ).tag(config=True)

    profile_form_template = Unicode(
        help="""
        Literal Jinja2 template for constructing profile list shown to user.

        Used when `profile_list` is set.

        The contents of `profile_list` are passed in to the template.
        This should be used to construct the contents of a HTML form. When
        posted, this form is expected to have an item with name `profile` and
        the value the index of the profile in `profile_list`.

        When this traitlet is not set, the default template `form.html` from the
        directory `kubespawner/templates` is used. Admins can override this by
        setting the `additional_profile_form_template_paths` config to a directory
        with jinja2 templates, and any file named `form.html` in there will be used
        instead of the default.

        Using additional_profile_form_template_paths is recommended instead of
        this.
        """,
    ).tag(config=True)

    profile_list = Union(
        [List(Dict()), Callable(), Dict()],
        help="""
        Callable, List or Dict of profiles to offer for selection by the user.

        - If a list, then each item is a dictionary.
        - If it's a dictionary, then its keys are "slugs" - machine
        readable strings that identify a profile. The values are dictionaries.

        In both cases, the inner, dictionaries representing the profiles,
        have the following keys:

        - `display_name`: the human readable display name (should be HTML safe)
        - `default`: (Optional Bool) True if this is the default selected option
        - `description`: Optional description of this profile displayed to the user.
        - `slug`: (Optional) the machine readable string to identify the
          profile (missing slugs are generated from display_name, and might not match the
          outer "slug" key, in case profile_list is a dict. This is ok.)
        - `kubespawner_override`: a dictionary with overrides to apply to the KubeSpawner
          settings. Each value can be either the final value to change or a callable that
          take the `KubeSpawner` instance as parameter and return the final value. This can
          be further overridden by 'profile_options'
          If the traitlet being overridden is a *dictionary*, the dictionary
          will be *recursively updated*, rather than overridden. If you want to
          remove a key, set its value to `None`
        - `profile_options`: A dictionary of sub-options that allow users to further customize the
          selected profile. By default, these are rendered as a dropdown with the label
          provided by `display_name`. Items should have a unique key representing the customization,
          and the value is a dictionary with the following keys:

          - `display_name`: Name used to identify this particular option
          - `unlisted_choice`: Object to specify if there should be a free-form field if the user
            selected "Other" as a choice:

            - `enabled`: Boolean, whether the free form input should be enabled
            - `display_name`: String, label for input field
            - `display_name_in_choices`: Optional, display name for the choice
              to specify an unlisted choice in the dropdown list of pre-defined
              choices. Defaults to "Other...".
            - `validation_regex`: Optional, regex that the free form input
              should match, eg. `^pangeo/.*$`.
            - `validation_message`: Optional, validation message for the regex.
              Should describe the required input format in a human-readable way.
            - `kubespawner_override`: a dictionary with overrides to apply to
              the KubeSpawner settings, where the string `{value}` will be
              substituted with what was filled in by the user if its found in
              string values anywhere in the dictionary. As an example, if the
              choice made is about an image tag for an image only to be used
              with JupyterLab, it could look like this:

              .. code-block:: python

                 {
                     "image_spec": "jupyter/datascience-notebook:{value}",
                     "default_url": "/lab",
                     "extra_labels: {
                        "user-specified-image-tag": "{value}",
                     },
                 }
          - `choices`: A dictionary containing list of choices for the user to choose from
            to set the value for this particular option. The key is an identifier for this
            choice, and the value is a dictionary with the following possible keys:

            - `display_name`: Human readable display name for this choice.
            - `default`: (optional Bool) True if this is the default selected choice
            - `kubespawner_override`: A dictionary with overrides to apply to the KubeSpawner
              settings, on top of whatever was applied with the `kubespawner_override` key
              for the profile itself. The key should be the name of the kubespawner setting,
              and value can be either the final value or a callable that returns the final
              value when called with the spawner instance as the only parameter. The callable
              may be async.
              If the traitlet being overridden is a *dictionary*, the dictionary
              will be *recursively updated*, rather than overridden. If you want to
              remove a key, set its value to `None`

        kubespawner setting overrides work in the following manner, with items further in the
        list *replacing* (not merging with) items earlier in the list:

        1. Settings directly set on KubeSpawner, via c.KubeSpawner.<traitlet_name>
        2. `kubespawner_override` in the profile the user has chosen
        3. `kubespawner_override` in the specific choices the user has made within the
           profile, applied linearly based on the ordering of the option in the profile
           definition configuration

        List example::

            c.KubeSpawner.profile_list = [
                {
                    'display_name': 'Demo - profile_list entry 1',
                    'description': 'Demo description for profile_list entry 1, and it should look good even though it is a bit lengthy.',
                    'slug': 'demo-1',
                    'default': True,
                    'profile_options': {
                        'image': {
                            'display_name': 'Image',
                            'choices': {
                                'base': {
                                    'display_name': 'jupyter/base-notebook:latest',
                                    'kubespawner_override': {
                                        'image': 'jupyter/base-notebook:latest'
                                    },
                                },
                                'minimal': {
                                    'display_name': 'jupyter/minimal-notebook:latest',
                                    'default': True,
                                    'kubespawner_override': {
                                        'image': 'jupyter/minimal-notebook:latest'
                                    },
                                },
                            },
                            'unlisted_choice': {
                                'enabled': True,
                                'display_name': 'Other image',
                                'display_name_in_choices': 'Enter image manually',
                                'validation_regex': '^jupyter/.+:.+$',
                                'validation_message': 'Must be an image matching ^jupyter/<name>:<tag>$',
                                'kubespawner_override': {'image': '{value}'},
                            },
                        },
                    },
                    'kubespawner_override': {
                        'default_url': '/lab',
                    },
                },
                {
                    'display_name': 'Demo - profile_list entry 2',
                    'slug': 'demo-2',
                    'kubespawner_override': {
                        'extra_resource_guarantees': {"nvidia.com/gpu": "1"},
                    },
                },
            ]
        Dict example::

            c.KubeSpawner.profile_list = {
                "demo-1": {
                    'display_name': 'Demo - profile_list entry 1',
                    'description': 'Demo description for profile_list entry 1, and it should look good even though it is a bit lengthy.',
                    'slug': 'demo-1',
                    'default': True,
                    'profile_options': {
                        'image': {
                            'display_name': 'Image',
                            'choices': {
                                'base': {
                                    'display_name': 'jupyter/base-notebook:latest',
                                    'kubespawner_override': {
                                        'image': 'jupyter/base-notebook:latest'
                                    },
                                },
                            },
                            'unlisted_choice': {
                                'enabled': True,
                                'display_name': 'Other image',
                                'display_name_in_choices': 'Enter image manually',
                                'validation_regex': '^jupyter/.+:.+$',
                                'validation_message': 'Must be an image matching ^jupyter/<name>:<tag>$',
                                'kubespawner_override': {'image': '{value}'},
                            },
                        },
                    },
                    'kubespawner_override': {
                        'default_url': '/lab',
                    },
                },
                demo-2: {
                    'display_name': 'Demo - profile_list entry 2',
                    'slug': 'demo-2',
                    'kubespawner_override': {
                        'extra_resource_guarantees': {"nvidia.com/gpu": "1"},
                    },
                },
            }


        Instead of a list of dictionaries, this could also be a callable that takes as one
        parameter the current spawner instance and returns a list of dictionaries. The
        callable will be called asynchronously if it returns a future, rather than
        a list. Note that the interface of the spawner class is not deemed stable
        across versions, so using this functionality might cause your JupyterHub
        or kubespawner upgrades to break.
        """,
    ).tag(config=True)

    pvc_name_template = Unicode(
        "claim-{user_server}",
        help="""
        Template to use to form the name of user's pvc.


        Trailing `-` characters are stripped for safe handling of empty server names (user default servers).

        This must be unique within the namespace the pvc are being spawned
        in, so if you are running multiple jupyterhubs spawning in the
        same namespace, consider setting this to be something more unique.

        .. seealso::

          :ref:`templates` for information on fields available in template strings.

        .. versionchanged:: 0.12
            `--` delimiter added to the template,
            where it was implicitly added to the `servername` field before.
            Additionally, `username--servername` delimiter was `-` instead of `--`,
            allowing collisions in certain circumstances.
        """,
    ).tag(config=True)

    remember_pvc_name = Bool(
        True,
        help="""
        Remember the PVC name across restarts and configuration changes.

        If True, once the PVC has been created, its name will be remembered and reused
        and changing pvc_name_template will have no effect on servers that have previously mounted PVCs.
        If False, changing pvc_name_template or slug_scheme may detatch servers from their PVCs.

        `False` is the behavior of kubespawner prior to version 7.
        """,
    ).tag(config=True)

    scheduler_name = Unicode(
        None,
        allow_none=True,
        help="""
        Set the pod's scheduler explicitly by name. See `the Kubernetes documentation <https://kubernetes.io/docs/reference/generated/kubernetes-api/v1.28/#podspec-v1-core>`__
        for more information.
        """,
    ).tag(config=True)

    secret_mount_path = Unicode(
        "/etc/jupyterhub/ssl/",
        help="""
        Location to mount the spawned pod's certificates needed for internal_ssl functionality.
        """,
    ).tag(config=True)

    secret_name_template = Unicode(
        "{pod_name}",
        help="""
        Template to use to form the name of user's secret.

        Default: same as `pod_name`. It is unlikely that this should be changed.
        """,
    ).tag(config=True)

    service_account = Unicode(
        None,
        allow_none=True,
        help="""
        The service account to be mounted in the spawned user pod.

        The token of the service account is NOT mounted by default.
        This makes sure that we don't accidentally give access to the whole
        kubernetes API to the users in the spawned pods.
        Set automount_service_account_token True to mount it.

        This `serviceaccount` must already exist in the namespace the user pod is being spawned in.
        """,
    ).tag(config=True)

    services_enabled = Bool(
        help="""
        Enable fronting the user pods with a kubernetes service.

        This is useful in cases when network rules don't allow direct traffic
        routing to pods in a cluster. Should be enabled when using jupyterhub
        with a service mesh like istio with mTLS enabled.
        """,
    ).tag(config=True)

    slow_spawn_message = Unicode(
        "Server launch is taking longer than expected. Please be patient! Current time spent waiting: {seconds} seconds.",
        help="""
        The injected timing message to display to the user. The variable `{seconds}`
        will be replaced by the number of seconds the spawn has currently taken.
        """,
    ).tag(config=True)

    slow_spawn_message_frequency = Int(
        5,
        help="""
        Sets a delay of N seconds between updates to the message buffer, so
        that we don't spam the user with too many messages.
        """,
    ).tag(config=True)

    slow_spawn_message_threshold = Int(
        60,
        help="""
        Time in seconds to wait before injecting a 'please be patient' message
        to display to the user. If this value is 0, no message will be shown.
        """,
    ).tag(config=True)

    slug_scheme = Enum(
        ["safe", "escape"],
        default_value="safe",
        help="""Select the scheme for producing slugs such as pod names, etc.

        Can be 'safe' or 'escape'.

        'escape' is the legacy scheme, used in kubespawner < 7.
        Pick this to minimize changes when upgrading from kubespawner 6.
        
        The way templates are computed is different between the two schemes:
        
        'escape' scheme:
        
        - does not guarantee correct names, e.g. does not handle capital letters or length
        
        'safe' scheme:
        
        - should guarantee correct names
        - escapes only if needed
        - enforces length requirements
        - uses hash to avoid collisions when escaping is required

        'safe' is the default and preferred as it produces both:

        - better values, where possible (no `-2d` inserted to escape hyphens)
        - always valid names, avoiding issues where escaping produced invalid names,
          stripping characters and appending hashes where needed for names
          that are not already valid.

        .. versionadded:: 7
        """,
    ).tag(config=True)

    storage_access_modes = List(
        default_value=["ReadWriteOnce"],
        help="""
        List of access modes the user has for the pvc.

        The access modes are:

            - `ReadWriteOnce` : the volume can be mounted as read-write by a single node
            - `ReadOnlyMany` : the volume can be mounted read-only by many nodes
            - `ReadWriteMany` : the volume can be mounted as read-write by many nodes

        See `the Kubernetes documentation <https://kubernetes.io/docs/concepts/storage/persistent-volumes/#access-modes>`__
        for more information on how access modes work.
        """,
    ).tag(config=True)

    storage_capacity = Unicode(
        None,
        allow_none=True,
        help="""
        The amount of storage space to request from the volume that the pvc will
        mount to. This amount will be the amount of storage space the user has
        to work with on their notebook. If left blank, the kubespawner will not
        create a pvc for the pod.

        This will be added to the `resources: requests: storage:` in the k8s pod spec.

        See `the Kubernetes documentation <https://kubernetes.io/docs/concepts/storage/persistent-volumes/#persistentvolumeclaims>`__

        for more information on how storage works.

        Quantities can be represented externally as unadorned integers, or as fixed-point
        integers with one of these SI suffices (`E, P, T, G, M, K, m`) or their power-of-two
        equivalents (`Ei, Pi, Ti, Gi, Mi, Ki`). For example, the following represent roughly
        the same value: `128974848`, `129e6`, `129M`, `123Mi`.
        """,
    ).tag(config=True)

    storage_class = Unicode(
        None,
        allow_none=True,
        help="""
        The storage class that the pvc will use.

        This will be added to the `annotations: volume.beta.kubernetes.io/storage-class:`
        in the pvc metadata.

        This will determine what type of volume the pvc will request to use. If one exists
        that matches the criteria of the StorageClass, the pvc will mount to that. Otherwise,
        b/c it has a storage class, k8s will dynamically spawn a pv for the pvc to bind to
        and a machine in the cluster for the pv to bind to.

        Note that an empty string is a valid value and is always interpreted to be
        requesting a pv with no class.

        See `the Kubernetes documentation <https://kubernetes.io/docs/concepts/storage/storage-classes/>`__
        for more information on how StorageClasses work.

        """,
    ).tag(config=True)

    storage_extra_annotations = Dict(
        help="""
        Extra kubernetes annotations to set on the user PVCs.

        The keys and values specified here would be set as annotations on the PVCs
        created by kubespawner for the user. Note that these are only set
        when the PVC is created, not later when this setting is updated.

        See `the Kubernetes documentation <https://kubernetes.io/docs/concepts/overview/working-with-objects/annotations/>`__
        for more info on what annotations are and why you might want to use them!

        .. seealso::

          :ref:`templates` for information on fields available in template strings.

        """,
    ).tag(config=True)

    storage_extra_labels = Dict(
        help="""
        Extra kubernetes labels to set on the user PVCs.

        The keys and values specified here would be set as labels on the PVCs
        created by kubespawner for the user. Note that these are only set
        when the PVC is created, not later when this setting is updated.

        See `the Kubernetes documentation <https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/>`__
        for more info on what labels are and why you might want to use them!

        .. seealso::

          :ref:`templates` for information on fields available in template strings.

        """,
    ).tag(config=True)

    storage_pvc_ensure = Bool(
        help="""
        Ensure that a PVC exists for each user before spawning.

        Set to true to create a PVC named with `pvc_name_template` if it does
        not exist for the user when their pod is spawning.
        """,
    ).tag(config=True)

    storage_selector = Dict(
        help="""
        The dictionary Selector labels used to match a PersistentVolumeClaim to
        a PersistentVolume.

        Default is None and means it will match based only on other storage criteria.

        For example to match the Nodes that have a label of `content: jupyter` use::

           c.KubeSpawner.storage_selector = {'matchLabels':{'content': 'jupyter'}}

        .. seealso::

          :ref:`templates` for information on fields available in template strings.

        """,
    ).tag(config=True)

    supplemental_gids = Union(
        [List(), Callable()],
        help="""
        A list of GIDs that should be set as additional supplemental groups to the
        user that the container runs as.

        Instead of a list of integers, this could also be a callable that takes as one
        parameter the current spawner instance and returns a list of integers. The
        callable will be called asynchronously if it returns a future, rather than
        a list. Note that the interface of the spawner class is not deemed stable
        across versions, so using this functionality might cause your JupyterHub
        or kubespawner upgrades to break.

        You may have to set this if you are deploying to an environment with RBAC/SCC
        enforced and pods run with a 'restricted' SCC which results in the image being
        run as an assigned user ID. The supplemental group IDs would need to include
        the corresponding group ID of the user ID the image normally would run as. The
        image must setup all directories/files any application needs access to, as group
        writable.
        """,
    ).tag(config=True)

    tolerations = Union(
        [List(), Dict()],
        help="""
        List or dictionary of tolerations that are to be assigned to the pod in order to be able to schedule the pod
        on a node with the corresponding taints. See the official Kubernetes documentation for additional details
        https://kubernetes.io/docs/concepts/configuration/taint-and-toleration/

        If provided as a list, each item should be a "Toleration" object.
        If provided as a dictionary, the keys can be any descriptive name and the values should be "Toleration" objects.
        The items will be sorted lexicographically by the dictionary keys and the sorted values will be added to the pod spec.

        Each "Toleration" object should follow the specification at:
        https://kubernetes.io/docs/reference/generated/kubernetes-api/v1.28/#toleration-v1-core

        Example as a list::

            c.KubeSpawner.tolerations = [
                {
                    'key': 'key',
                    'operator': 'Equal',
                    'value': 'value',
                    'effect': 'NoSchedule'
                },
                {
                    'key': 'key',
                    'operator': 'Exists',
                    'effect': 'NoSchedule'
                }
            ]

        Example as a dictionary::

            c.KubeSpawner.tolerations = {
                "01-gpu-toleration": {
                    'key': 'gpu',
                    'operator': 'Equal',
                    'value': 'true',
                    'effect': 'NoSchedule'
                },
                "02-general-toleration": {
                    'key': 'key',
                    'operator': 'Exists',
                    'effect': 'NoSchedule'
                }
            }

        """,
    ).tag(config=True)

    uid = Union(
        [Int(), Callable()],
        default_value=None,
        allow_none=True,
        help="""
        The UID to run the single-user server containers as.

        This UID should ideally map to a user that already exists in the container
        image being used. Running as root is discouraged.

        Instead of an integer, this could also be a callable that takes as one
        parameter the current spawner instance and returns an integer. The callable
        will be called asynchronously if it returns a future. Note that
        the interface of the spawner class is not deemed stable across versions,
        so using this functionality might cause your JupyterHub or kubespawner
        upgrades to break.

        If set to `None`, the user specified with the `USER` directive in the
        container metadata is used.
        """,
    ).tag(config=True)

    user_namespace_annotations = Dict(
        help="""
        Kubernetes annotations that user namespaces will get (only if
        enable_user_namespaces is True).

        Note that these are only set when the namespaces are created, not
        later when this setting is updated.

        .. seealso::

          :ref:`templates` for information on fields available in template strings.

        """,
    ).tag(config=True)

    user_namespace_labels = Dict(
        help="""
        Kubernetes labels that user namespaces will get (only if
        enable_user_namespaces is True).

        Note that these are only set when the namespaces are created, not
        later when this setting is updated.

        .. seealso::

          :ref:`templates` for information on fields available in template strings.

        """,
    ).tag(config=True)

    user_namespace_template = Unicode(
        "{hubnamespace}-{username}",
        help="""
        Template to use to form the namespace of user's pods (only if
        enable_user_namespaces is True).

        .. seealso::

          :ref:`templates` for information on fields available in template strings.

        """,
    ).tag(config=True)

    volume_mounts = Union(
        [List(), Dict()],
        help="""
        List of paths on which to mount volumes in the user notebook's pod, or a dictionary
        where the values specify the paths to mount the volumes.

        If provided as a list, this list will be added directly to the values of the
        `volumeMounts` key under the user's container in the kubernetes pod spec.

        If provided as a dictionary, the items will be sorted lexicographically by the dictionary keys and
        then the sorted values will be added to the `volumeMounts` key. The keys of the
        dictionary can be any descriptive name for the volume mount.

        Each item (whether in the list or dictionary values) should be a dictionary with
        at least these two keys:

           - `mountPath` The path on the container in which we want to mount the volume.
           - `name` The name of the volume we want to mount, as specified in the `volumes` config.

        See `the Kubernetes documentation <https://kubernetes.io/docs/concepts/storage/volumes>`__
        for more information on how the `volumeMount` item works.

        .. seealso::

          :ref:`templates` for information on fields available in template strings.

        """,
    ).tag(config=True)

    volumes = Union(
        [List(), Dict()],
        help="""
        List of Kubernetes Volume specifications that will be mounted in the user pod,
        or a dictionary where the values specify the volume specifications.

        If provided as a list, this list will be directly added under `volumes` in
        the kubernetes pod spec

        If provided as a dictionary, the items will be sorted lexicographically by the dictionary keys
        and then the sorted values will be added to the `volumes` key. The keys of the
        dictionary can be any descriptive name for the volume specification.

        Each item (whether in the list or dictionary values) must be a dictionary with
        the following two keys:

          - `name`
            Name that'll be later used in the `volume_mounts` config to mount this
            volume at a specific path.
          - `<name-of-a-supported-volume-type>` (such as `hostPath`, `persistentVolumeClaim`,
            etc)
            The key name determines the type of volume to mount, and the value should
            be an object specifying the various options available for that kind of
            volume.

        See `the Kubernetes documentation <https://kubernetes.io/docs/concepts/storage/volumes>`__
        for more information on the various kinds of volumes available and their options.
        Your kubernetes cluster must already be configured to support the volume types you want to use.

        .. seealso::

          :ref:`templates` for information on fields available in template strings.

        """,
    ).tag(config=True)

    working_dir = Unicode(
        None,
        allow_none=True,
        help="""
        The working directory where the Notebook server will be started inside the container.
        Defaults to `None` so the working directory will be the one defined in the Dockerfile.

        .. seealso::

          :ref:`templates` for information on fields available in template strings.

        """,
    ).tag(config=True)

    # ------------------------------------------------------------------ dynamic defaults

    @default("namespace")
    def _namespace_default(self) -> str:
        """The hub's own namespace when running in a pod with a service account, else default."""
        return naming.hub_namespace()

    @default("env_keep")
    def _env_keep_default(self) -> list[str]:
        # the hub's environment means nothing inside a pod
        return []

    @default("ssl_alt_names_include_local")
    def _default_ssl_alt_names_include_local(self) -> bool:
        return False

    @validate("image_pull_secrets")
    def _validate_image_pull_secrets(self, proposal: Any) -> Any:
        value = proposal["value"]
        if isinstance(value, str):
            warnings.warn(
                "Passing KubeSpawner.image_pull_secrets as a string is deprecated since "
                "KubeSpawner 0.14.0: use a list of secret names or of {'name': ...} dicts.",
                DeprecationWarning,
                stacklevel=2,
            )
            return [{"name": value}]
        return value

    @observe("hub_connect_ip", "hub_connect_port")
    def _deprecated_hub_connect_changed(self, change: Any) -> None:
        warnings.warn(
            f"KubeSpawner.{change.name} is deprecated with JupyterHub >= 0.8. "
            f"Use JupyterHub.{change.name}",
            DeprecationWarning,
            stacklevel=2,
        )
        setattr(self.hub, change.name.split("_", 1)[1], change.new)

    @validate("config")
    def _move_deprecated_config(self, proposal: Any) -> Any:
        sections = [c.__name__ for c in type(self).mro() if issubclass(c, KubeSpawner)]
        return deprecated.move_deprecated_config(proposal["value"], self.log, sections)

    # ------------------------------------------------------------------ user options

    # JupyterHub 5 saves a spawn request's JSON body as the server's user_options before any
    # check, object or not ("x", [1]), then sets it here, and passes it to the constructor at
    # every later start of the hub: with JupyterHub's Dict trait one such request was a 500 and
    # the hub could not start again. Anything is held here; check_user_options answers 400.
    user_options = AnyTrait(
        help="""The user's options for this server (see JupyterHub's Spawner.user_options).

        Not restricted to a dict here: a value that is not an object is refused with 400 when
        the server starts, instead of failing the request or the hub's start with a TraitError.
        """
    )

    @default("user_options")
    def _user_options_default(self) -> dict[str, Any]:
        return {}

    # ------------------------------------------------------------------ runtime (elsewhere)
    # JupyterHub refuses a Spawner subclass that does not define these three

    async def start(self) -> Any:
        raise NotImplementedError(
            "kubecache.spawner.KubeCacheSpawner starts servers; this class is config"
        )

    async def stop(self, now: bool = False) -> None:
        raise NotImplementedError(
            "kubecache.spawner.KubeCacheSpawner stops servers; this class is config"
        )

    async def poll(self) -> int | None:
        raise NotImplementedError(
            "kubecache.spawner.KubeCacheSpawner polls servers; this class is config"
        )


deprecated.install_aliases(KubeSpawner)
