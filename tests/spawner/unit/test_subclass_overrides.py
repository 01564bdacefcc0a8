"""A subclass's override of KubeSpawner's helper methods takes effect where KubeSpawner 7.1's does.

KubeSpawner calls ``_expand_user_properties``, ``_expand_all``, ``_build_common_labels``,
``_build_pod_labels``, ``_build_common_annotations`` and ``get_env`` through ``self`` while it
assembles its manifests: extraConfig snippets and subclasses override them. Ours must too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from kubespawner import KubeSpawner as ReferenceSpawner
from traitlets.config import Config

from kubecache.spawner.kubespawner_methods import KubeSpawnerMethods
from tests.spawner.unit.golden import FakeHub, FakeOrmSpawner, FakeUser, api_json, owner_references

pytestmark = pytest.mark.usefixtures("reference_kubespawner")


class Overrides:
    """The same overrides, mixed into KubeSpawner 7.1 and into ours."""

    def _expand_user_properties(self, template: str, *args: Any, **kwargs: Any) -> str:
        expanded: str = super()._expand_user_properties(template, *args, **kwargs)  # type: ignore[misc]
        return expanded.replace("team-x", "team-y")

    def _build_common_labels(self, extra_labels: Mapping[str, str]) -> dict[str, str]:
        labels: dict[str, str] = super()._build_common_labels(extra_labels)  # type: ignore[misc]
        labels["site"] = "override"
        return labels

    def _build_pod_labels(self, extra_labels: Mapping[str, str]) -> dict[str, str]:
        labels: dict[str, str] = super()._build_pod_labels(extra_labels)  # type: ignore[misc]
        labels["pod-only"] = "yes"
        return labels

    def _build_common_annotations(self, extra_annotations: Mapping[str, str]) -> dict[str, str]:
        annotations: dict[str, str] = super()._build_common_annotations(extra_annotations)  # type: ignore[misc]
        annotations["note"] = "override"
        return annotations

    def get_env(self) -> dict[str, Any]:
        env: dict[str, Any] = super().get_env()  # type: ignore[misc]
        env["FROM_OVERRIDE"] = "1"
        return env


class ReferenceSubclass(Overrides, ReferenceSpawner):
    pass


class OurSubclass(Overrides, KubeSpawnerMethods):
    pass


def both() -> tuple[Any, Any]:
    cfg = Config(
        {
            "KubeSpawner": {
                "extra_labels": {"team": "team-x-{username}"},
                "storage_extra_labels": {"team": "team-x"},
                "environment": {"TEAM": "team-x"},
                "storage_pvc_ensure": True,
            }
        }
    )
    user, hub = FakeUser("alice"), FakeHub()
    reference = ReferenceSubclass(
        _mock=True, user=user, hub=hub, orm_spawner=FakeOrmSpawner("srv"), config=cfg
    )
    ours = OurSubclass(user=user, hub=hub, orm_spawner=FakeOrmSpawner("srv"), config=cfg)
    return reference, ours


async def test_overridden_helpers_shape_the_pod_as_in_kubespawner() -> None:
    reference, ours = both()
    expected = api_json(await reference.get_pod_manifest())
    assert expected["metadata"]["labels"]["site"] == "override"
    assert expected["metadata"]["labels"]["team"] == "team-y-alice"
    assert await ours.pod_request_body() == expected
    assert api_json(await ours.get_pod_manifest()) == expected


async def test_overridden_helpers_shape_the_claim_and_service_as_in_kubespawner() -> None:
    reference, ours = both()
    assert ours.pvc_request_body() == api_json(reference.get_pvc_manifest())
    reference_owner, owner = owner_references()
    expected = api_json(reference.get_service_manifest(reference_owner, 8888))
    assert expected["spec"]["selector"]["pod-only"] == "yes"
    assert ours.service_request_body(owner, 8888) == expected
