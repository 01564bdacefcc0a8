"""The bundled Redis' ACL users are exactly kubecache.acl's, for any prefix and lease names."""

from __future__ import annotations

import re
from typing import Any

import pytest

from kubecache import acl
from tests.charts.rendering import render


def rendered_users(values: dict[str, Any]) -> dict[str, list[str]]:
    """user name -> ACL rules, from the Redis start-up script of this render."""
    (container,) = render(values).one("StatefulSet")["spec"]["template"]["spec"]["containers"]
    script = container["command"][2]
    found = re.findall(r"printf 'user (\S+) reset on #%s %s\\n' \"[^\n]*\" '([^']*)'", script)
    assert "echo 'user default off resetkeys -@all'" in script
    return {user: rules.split() for user, rules in found}


@pytest.mark.parametrize(
    ("values", "prefix", "leases"),
    [
        ({}, "kubecache:v1:", ["jupyterhub"]),
        (
            {"keyPrefix": "hub-a:kubecache:v1:", "redis": {"auth": {"hubLeaseNames": ["a", "b"]}}},
            "hub-a:kubecache:v1:",
            ["a", "b"],
        ),
    ],
)
def test_the_charts_acl_users_are_kubecache_acls(
    values: dict[str, Any], prefix: str, leases: list[str]
) -> None:
    users = rendered_users(values)
    assert users == {
        f"kubecache-{role}": acl.rules(role, prefix=prefix, lease_names=leases)
        for role in acl.ROLES
    }


def test_the_hub_user_writes_only_its_leases() -> None:
    hub = rendered_users({})["kubecache-hub"]
    assert [rule for rule in hub if "~" in rule] == [
        "%R~kubecache:v1:*",
        "%RW~kubecache:v1:hub-lease:jupyterhub",
    ]
    assert not {"+eval", "+evalsha", "+flushall", "+config", "+@all", "+@write"} & set(hub)
