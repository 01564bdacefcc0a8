"""Build the same server with KubeSpawner 7.1 and with ours, to compare what they make."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes_asyncio.client import ApiClient
from kubespawner import KubeSpawner as ReferenceSpawner
from kubespawner.objects import make_owner_reference as reference_owner_reference
from traitlets.config import Config

from kubecache.spawner.kubespawner_methods import KubeSpawnerMethods

KUBECONFIG_TEXT = """\
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


class FakeUser:
    def __init__(self, name: str, user_id: int | str = 7) -> None:
        self.name = name
        self.id = user_id
        self.url = f"/user/{name}/"


class FakeOrmSpawner:
    """Spawner.name comes from the database row."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.server = None
        self.state: dict[str, Any] = {}
        self.user_options: dict[str, Any] = {}


class FakeHub:
    public_host = "hub.example.org"
    url = "http://hub:8081/hub/"
    base_url = "/hub/"
    api_url = "http://hub:8081/hub/api"


# sanitize_for_serialization needs no connection: skip __init__ (it wants a running loop)
_serializer = ApiClient.__new__(ApiClient)


def api_json(obj: Any) -> Any:
    """KubeSpawner's model objects in API JSON form (what it sends to the API server)."""
    return _serializer.sanitize_for_serialization(obj)


@dataclass
class Pair:
    reference: ReferenceSpawner
    ours: KubeSpawnerMethods


def make_pair(
    config: dict[str, Any] | None = None,
    *,
    username: str = "mock@name",
    server_name: str = "",
    user_options: dict[str, Any] | None = None,
    **attributes: Any,
) -> Pair:
    """Both spawners for one user's server, configured from the same c.KubeSpawner section."""
    cfg = Config({"KubeSpawner": dict(config or {})})
    user = FakeUser(username)
    hub = FakeHub()
    reference = ReferenceSpawner(
        _mock=True, user=user, hub=hub, orm_spawner=FakeOrmSpawner(server_name), config=cfg
    )
    ours = KubeSpawnerMethods(
        user=user, hub=hub, orm_spawner=FakeOrmSpawner(server_name), config=cfg
    )
    for spawner in (reference, ours):
        for key, value in attributes.items():
            setattr(spawner, key, value)
        spawner.user_options = dict(user_options or {})
    return pair_of(reference, ours)


def pair_of(reference: ReferenceSpawner, ours: KubeSpawnerMethods) -> Pair:
    return Pair(reference=reference, ours=ours)


def names(spawner: Any) -> dict[str, str]:
    return {
        key: getattr(spawner, key)
        for key in ("pod_name", "pvc_name", "dns_name", "namespace", "secret_name")
    }


def owner_references(uid: str = "0b0d5a40-uid") -> tuple[Any, dict[str, Any]]:
    reference = reference_owner_reference("jupyter-x", uid)
    return reference, api_json(reference)


def write_kubeconfig(directory: Path) -> Path:
    path = directory / "kubeconfig"
    path.write_text(KUBECONFIG_TEXT)
    return path


def model_shape(obj: Any) -> Any:
    """Which parts are client models and which plain data, recursively (types, not values)."""
    if hasattr(type(obj), "openapi_types") and hasattr(type(obj), "attribute_map"):
        return (
            type(obj).__name__,
            {
                attribute: model_shape(getattr(obj, attribute))
                for attribute in type(obj).openapi_types
                if getattr(obj, attribute) is not None
            },
        )
    if isinstance(obj, dict):
        return {key: model_shape(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [model_shape(item) for item in obj]
    return "value"


def assert_same_object(ours: Any, reference: Any) -> None:
    """Same type, same API JSON, and models at the same places as KubeSpawner's object."""
    assert type(ours) is type(reference)
    assert api_json(ours) == api_json(reference)
    assert model_shape(ours) == model_shape(reference)
