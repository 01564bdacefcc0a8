"""A change of configuration or password rolls exactly the pods it concerns."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from tests.charts.rendering import cacher_deployment, pod_annotations, render


def cacher_checksums(values: dict[str, Any] | None = None) -> dict[str, str]:
    annotations = pod_annotations(cacher_deployment(render(values)))
    return {k: v for k, v in annotations.items() if k.startswith("checksum/")}


def redis_checksums(values: dict[str, Any] | None = None) -> dict[str, str]:
    annotations = pod_annotations(render(values).one("StatefulSet"))
    return {k: v for k, v in annotations.items() if k.startswith("checksum/")}


# An existing password Secret makes renders deterministic (no generated password).
FIXED = {"redis": {"auth": {"existingSecret": "redis-pw"}}}


def with_fixed(extra: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {"redis": dict(FIXED["redis"])}
    for key, value in extra.items():
        if key == "redis":
            merged["redis"].update(value)
        else:
            merged[key] = value
    return merged


def test_the_same_values_render_the_same_checksums() -> None:
    assert cacher_checksums(FIXED) == cacher_checksums(FIXED)
    assert redis_checksums(FIXED) == redis_checksums(FIXED)


def test_a_cacher_setting_change_rolls_the_cacher_but_not_redis() -> None:
    before = cacher_checksums(FIXED)
    changed = with_fixed({"cacher": {"podSelector": "component=singleuser-server,team=a"}})
    after = cacher_checksums(changed)
    assert after["checksum/config"] != before["checksum/config"]
    assert redis_checksums(changed) == redis_checksums(FIXED)


def test_a_key_prefix_change_rolls_the_cacher() -> None:
    changed = cacher_checksums(with_fixed({"keyPrefix": "other:v1:"}))
    assert changed["checksum/config"] != cacher_checksums(FIXED)["checksum/config"]


def test_scaling_the_cacher_does_not_restart_it() -> None:
    assert cacher_checksums(with_fixed({"cacher": {"replicas": 3}})) == cacher_checksums(FIXED)


def test_a_redis_config_change_rolls_redis_only() -> None:
    changed = with_fixed({"redis": {"maxmemory": "512mb"}})
    assert redis_checksums(changed)["checksum/config"] != redis_checksums(FIXED)["checksum/config"]
    assert cacher_checksums(changed) == cacher_checksums(FIXED)


def test_the_password_checksums_are_the_generated_secrets() -> None:
    rendered = render()
    data = rendered.one("Secret", "-redis")["data"]
    passwords = {key: base64.b64decode(value) for key, value in data.items()}
    assert sorted(passwords) == ["cacher-password", "cli-password", "hub-password"]
    assert all(len(password) == 40 for password in passwords.values())
    assert len(set(passwords.values())) == 3
    cacher = pod_annotations(cacher_deployment(rendered))["checksum/redis-password"]
    assert cacher == hashlib.sha256(passwords["cacher-password"]).hexdigest()
    joined = b"\n".join(passwords[f"{role}-password"] for role in ("cacher", "hub", "cli"))
    redis = pod_annotations(rendered.one("StatefulSet"))["checksum/redis-passwords"]
    assert redis == hashlib.sha256(joined).hexdigest()


def test_an_offline_render_draws_new_passwords_and_says_so() -> None:
    # Without a cluster, `lookup` finds no Secret: a fresh install, or an offline render
    # (helm template, GitOps), draws anew and rolls cacher and Redis together.
    first, second = render(), render()
    for workload, annotation in (
        ("Deployment", "checksum/redis-password"),
        ("StatefulSet", "checksum/redis-passwords"),
    ):
        assert (
            pod_annotations(first.one(workload))[annotation]
            != pod_annotations(second.one(workload))[annotation]
        )
    assert "redis.auth.existingSecret" in first.notes
    assert "new passwords" in first.notes


def test_an_existing_password_secret_is_mounted_and_no_secret_is_generated() -> None:
    rendered = render({"redis": {"auth": {"existingSecret": "redis-pw"}}})
    assert rendered.of_kind("Secret") == []
    spec = cacher_deployment(rendered)["spec"]["template"]["spec"]
    (volume,) = [v for v in spec["volumes"] if v["name"] == "redis-password"]
    assert volume["secret"]["secretName"] == "redis-pw"
    assert volume["secret"]["items"] == [{"key": "cacher-password", "path": "password"}]
    redis_env = rendered.one("StatefulSet")["spec"]["template"]["spec"]["containers"][0]["env"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in redis_env}
    assert refs["HUB_PASSWORD"] == {"name": "redis-pw", "key": "hub-password"}
    assert "new passwords" not in rendered.notes
