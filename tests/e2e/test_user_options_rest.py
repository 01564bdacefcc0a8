"""Through a real JupyterHub's REST API, user_options cannot pick an image the admin's
profile_list does not allow (KubeSpawner 7.1 lets a body without a ``profile`` key do so)."""

from __future__ import annotations

from typing import Any

import jupyterhub
import pytest

from tests.e2e.support.stack import Cluster

pytestmark = pytest.mark.e2e

NAMESPACE = "e2e-options"
ALLOWED = r"quay\.io/jupyter/base-notebook:[0-9-]+"

PROFILES: list[dict[str, Any]] = [
    {
        "display_name": "Notebook",
        "slug": "notebook",
        "default": True,
        "profile_options": {
            "image": {
                "display_name": "Image",
                "choices": {"base": {"display_name": "Base", "kubespawner_override": {}}},
                "unlisted_choice": {
                    "enabled": True,
                    "display_name": "Other base-notebook tag",
                    "validation_regex": ALLOWED,
                    "validation_message": "{value} is not a quay.io/jupyter/base-notebook tag",
                    "kubespawner_override": {"image": "{value}"},
                },
            },
            "size": {
                "display_name": "Size",
                "choices": {"s": {"kubespawner_override": {"cpu_limit": 0.25}}},
                "unlisted_choice": {
                    "enabled": False,
                    "kubespawner_override": {"image": "{value}"},
                },
            },
        },
    },
]


ESCAPES: list[tuple[dict[str, Any], str]] = [
    ({"image--unlisted-choice": "evil.example/miner:latest"}, "is not a quay.io/jupyter"),
    (
        {"profile": "", "image--unlisted-choice": "quay.io/jupyter/base-notebook:1 x"},
        "is not a quay.io/jupyter",
    ),
    ({"size--unlisted-choice": "evil.example/miner:latest"}, "without being enabled"),
    ({"image--unlisted-choice": "quay.io/jupyter/base-notebook:{username}"}, "is not a"),
    ({"image": ["base"]}, "image must be a string"),
    ({"image": "gpu-monster"}, "No such choice for image"),
    ({"profile": "gpu"}, "No such profile: gpu"),
]


async def test_an_image_escape_is_a_400_and_no_pod_is_made_an_allowed_tag_is_used(
    cluster: Cluster,
) -> None:
    proxy = await cluster.start_proxy()
    hub = cluster.hub("hub", proxy, namespace=NAMESPACE, profile_list=PROFILES)
    await cluster.start_hub(hub)
    api = hub.api
    await api.create_user("mallory")

    for body, message in ESCAPES:
        async with api.session.post(f"{api.api_url}/users/mallory/server", json=body) as response:
            status, text = response.status, await response.text()
        assert status == 400, (body, text)
        assert message in text, (body, text)
        assert cluster.pod(NAMESPACE, "jupyter-mallory") is None
        assert await api.server("mallory") is None

    allowed = "quay.io/jupyter/base-notebook:2025-01-06"
    assert await api.start_server("mallory", {"image--unlisted-choice": allowed}) in (201, 202)
    await cluster.wait(
        lambda: cluster.pod(NAMESPACE, "jupyter-mallory") is not None,
        timeout=60,
        message="mallory's pod",
    )
    pod = cluster.pod(NAMESPACE, "jupyter-mallory")
    assert pod is not None and pod["spec"]["containers"][0]["image"] == allowed
    await api.stop_server("mallory")
    await cluster.wait(
        lambda: api.server_gone("mallory"), timeout=60, message="mallory's server to stop"
    )


async def test_a_body_that_is_not_an_object_is_a_400_and_the_hub_still_starts_after_it(
    cluster: Cluster,
) -> None:
    """JupyterHub 5 saves any JSON body as the server's user_options before a check, and
    reads it back for a spawn without a body and at its own start: neither may fail."""
    proxy = await cluster.start_proxy()
    hub = cluster.hub("hub", proxy, namespace=NAMESPACE, profile_list=PROFILES)
    await cluster.start_hub(hub)
    api = hub.api
    await api.create_user("mallory")

    async def spawn(body: bytes | None) -> tuple[int, str]:
        async with api.session.post(f"{api.api_url}/users/mallory/server", data=body) as response:
            return response.status, await response.text()

    for body in (b'"string"', b"[1, 2]", b"7"):
        status, text = await spawn(body)
        assert status == 400, (body, text)
        assert cluster.pod(NAMESPACE, "jupyter-mallory") is None
    # no body: the saved options (JupyterHub 5 saved "7": a 400 again; 6 saved none: a spawn)
    status, text = await spawn(None)
    if jupyterhub.version_info < (6,):
        assert status == 400, text
    else:
        assert status in (201, 202), text
        await cluster.wait(lambda: api.spawned("mallory"), timeout=60, message="the server")
        await api.stop_server("mallory")
        await cluster.wait(lambda: api.server_gone("mallory"), timeout=60, message="the stop")

    await hub.replicas["hub"].stop()
    await cluster.start_hub(hub, "again")
    status, text = await spawn(b"{}")
    assert status in (201, 202), text
    await cluster.wait(lambda: api.spawned("mallory"), timeout=60, message="mallory's server")
    await api.stop_server("mallory")
    await cluster.wait(
        lambda: api.server_gone("mallory"), timeout=60, message="mallory's server to stop"
    )
