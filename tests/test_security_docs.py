"""The operator docs show the ACL grants kubecache.acl defines, not an older copy."""

from __future__ import annotations

import re
from pathlib import Path

from kubecache import acl

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_the_documented_hub_grant_is_kubecache_acls() -> None:
    text = (DOCS / "redis-contract.md").read_text()
    lines = [line for line in text.splitlines() if line.startswith("ACL SETUSER")]
    assert lines == [acl.setuser_command("hub", "kubecache-hub", password="HUB_PASSWORD")]


def test_the_security_page_names_every_command_a_hub_may_send_that_writes() -> None:
    text = (DOCS / "SECURITY.md").read_text()
    for command in ("SET NX PX", "WATCH", "MULTI", "EXEC", "XREAD", "INFO"):
        assert command in text, command
    assert "hub-lease:<name>" in text
    assert re.search(r"Valkey 8\.1\.10", text)


def test_the_printed_commands_cover_the_three_users(capsys) -> None:
    assert acl.main(["--prefix", "hub-a:kubecache:v1:", "--lease-name", "a"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert [line.split()[2] for line in printed] == [
        "kubecache-cacher",
        "kubecache-hub",
        "kubecache-cli",
    ]
    assert "%RW~hub-a:kubecache:v1:hub-lease:a" in printed[1]


def test_hub_standby_leases_by_default_the_name_the_acl_grants() -> None:
    from kubecache.cli_args import build_parser

    args = build_parser().parse_args(["hub-standby", "--", "jupyterhub"])
    assert args.lease_name == acl.DEFAULT_LEASE_NAME
