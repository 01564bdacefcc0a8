"""What zero-to-jupyterhub adds for dynamic storage and named servers (loaded last).

The values z2jh's ``singleuser.storage.type: dynamic`` renders into
``c.KubeSpawner.*`` (the claim and volume names follow KubeSpawner 7.1's
default ``claim-{user_server}`` scheme), plus ``hub.allowNamedServers``.
Used by the migration test, where the same file configures KubeSpawner 7.1
and kubecache.

z2jh sets no working or notebook directory: the single-user server runs in the
image's WORKDIR, ``/home/jovyan`` in the Jupyter docker-stacks images, which is
where it mounts the claim (``singleuser.storage.homeMountPath``), so the server's
root directory is the claim. kubesim cannot know an image's WORKDIR, so the pod
states it (``working_dir``): the same directory, a no-op on a real cluster.
"""

c = get_config()  # type: ignore[name-defined]  # noqa: F821

c.JupyterHub.allow_named_servers = True

c.KubeSpawner.storage_pvc_ensure = True
c.KubeSpawner.storage_capacity = "10Gi"
c.KubeSpawner.storage_access_modes = ["ReadWriteOnce"]
c.KubeSpawner.volumes = [
    {"name": "volume-{user_server}", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}
]
c.KubeSpawner.volume_mounts = [{"mountPath": "/home/jovyan", "name": "volume-{user_server}"}]
# the image's WORKDIR (see above)
c.KubeSpawner.working_dir = "/home/jovyan"
