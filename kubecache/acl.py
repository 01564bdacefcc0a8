"""Least-privilege Redis ACL users of a kubecache deployment: the one source of the grants.

Three users, each limited to the deployment's key prefix (``P`` below):

============  ==================================================================================
``cacher``    read and write ``P*`` with the commands its Lua scripts and reconcile use
              (``EVAL``/``EVALSHA``/``SCRIPT LOAD``, hashes, lists, streams, ``EXPIRE``...);
              no ``FLUSH*``, ``CONFIG``, ``KEYS``/``SCAN`` or other ``@dangerous`` commands.
``hub``       read-only on ``P*`` with the reads a spawner makes (``HMGET``/``HGETALL`` of
              records and health, ``LRANGE`` of event logs, ``XREAD``/``XINFO STREAM`` of the
              change feed, ``TIME``, ``INFO`` for the promoted-replica check), plus write on
              ``P hub-lease:<name>`` only, for ``kubecache hub-standby`` (``SET NX PX`` and a
              ``WATCH``/``MULTI``/``EXEC`` compare-and-renew, no scripts). No ``DEL`` of a record,
              no ``EVAL``, no ``FLUSHALL``/``CONFIG``, nothing outside ``P``.
``cli``       the hub's reads without the lease (``kubecache status|servers|events|doctor``).
============  ==================================================================================

Key permissions (``%R~`` read, ``%RW~`` read+write) need Redis >= 7.0 or Valkey. The chart's
bundled Redis writes these users into its ``users.acl``; ``charts/kubecache`` renders the same
rules from its templates and ``tests/charts`` checks that they equal :func:`rules`. For a Redis
of your own, print the commands to run::

    python3 -m kubecache.acl --prefix kubecache:v1: --lease-name jupyterhub

and set the passwords (``>secret``) yourself; ``ACL LOG`` in Redis shows anything refused.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Literal

from kubecache.contract import DEFAULT_PREFIX, Keys, prefix_problem

Role = Literal["cacher", "hub", "cli"]
ROLES: tuple[Role, ...] = ("cacher", "hub", "cli")

#: kubecache hub-standby's --lease-name default ($KUBECACHE_HUB_LEASE_NAME)
DEFAULT_LEASE_NAME = "jupyterhub"

#: every client: health checks, the connection name, Redis' clock and ``INFO replication``
#: (which primary a reader talks to). AUTH and HELLO are always allowed. Not CLIENT SETINFO:
#: kubecache's connections do not send it (kubecache.redis_connection), and naming it in a
#: rule would make ACL SETUSER fail on Redis 7.0/7.1.
CONNECTION_COMMANDS = ("ping", "echo", "select", "client|setname", "time", "info")

#: the reads of hubs and the CLI, each limited to keys under the prefix
READ_COMMANDS = (
    "get",
    "exists",
    "type",
    "ttl",
    "pttl",
    "hget",
    "hmget",
    "hgetall",
    "hlen",
    "hexists",
    "hscan",
    "lrange",
    "llen",
    "lindex",
    "xread",
    "xrange",
    "xrevrange",
    "xlen",
    "xinfo|stream",
)

#: kubecache hub-standby's lease: take (SET NX PX), renew and release if still ours
LEASE_COMMANDS = ("set", "pexpire", "del", "watch", "unwatch", "multi", "exec", "discard")

#: the cacher writes with Lua scripts (commands inside a script are checked against the ACL too)
CACHER_COMMANDS = (
    "+@read",
    "+@write",
    "+@connection",
    "+@transaction",
    "+eval",
    "+evalsha",
    "+script|load",
    "+script|exists",
    "-@dangerous",
    # key names outside the prefix are none of its business
    "-scan",
    "-randomkey",
    "-copy",
    "-move",
    "-function",
)


def key_pattern(text: str) -> str:
    """``text`` as a literal ACL glob (a prefix may hold backslashes; globs are refused)."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def rules(
    role: Role,
    *,
    prefix: str = DEFAULT_PREFIX,
    lease_names: Sequence[str] = (DEFAULT_LEASE_NAME,),
) -> list[str]:
    """The ACL rules (after ``ACL SETUSER <name> on >password``) of one role, in order."""
    problem = prefix_problem(prefix)
    if problem:
        raise ValueError(problem)
    keys = key_pattern(prefix) + "*"
    connection = [f"+{command}" for command in CONNECTION_COMMANDS]
    reads = [*connection, *(f"+{command}" for command in READ_COMMANDS)]
    if role == "cacher":
        return ["resetkeys", "resetchannels", "-@all", f"~{keys}", *CACHER_COMMANDS, *connection]
    if role == "cli":
        return ["resetkeys", "resetchannels", "-@all", f"%R~{keys}", *reads]
    if role == "hub":
        lease_keys = [f"%RW~{key_pattern(Keys(prefix).hub_lease(name))}" for name in lease_names]
        lease = [f"+{command}" for command in LEASE_COMMANDS]
        return ["resetkeys", "resetchannels", "-@all", f"%R~{keys}", *lease_keys, *reads, *lease]
    raise ValueError(f"unknown role {role!r}: one of {', '.join(ROLES)}")


def setuser_command(
    role: Role,
    user: str,
    *,
    prefix: str = DEFAULT_PREFIX,
    lease_names: Sequence[str] = (DEFAULT_LEASE_NAME,),
    password: str = "<password>",
) -> str:
    """``ACL SETUSER`` for ``redis-cli`` (the password as written; quote it in a shell)."""
    grants = " ".join(rules(role, prefix=prefix, lease_names=lease_names))
    return f"ACL SETUSER {user} reset on >{password} {grants}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m kubecache.acl",
        description="Print the ACL SETUSER commands of kubecache's cacher, hub and CLI users.",
    )
    parser.add_argument("--prefix", default=DEFAULT_PREFIX)
    parser.add_argument(
        "--lease-name", action="append", help="hub-standby lease name(s) (default: jupyterhub)"
    )
    args = parser.parse_args(argv)
    lease_names = args.lease_name or [DEFAULT_LEASE_NAME]
    try:
        for role in ROLES:
            command = setuser_command(
                role,
                f"kubecache-{role}",
                prefix=args.prefix,
                lease_names=lease_names,
            )
            print(command)
    except ValueError as e:
        parser.error(str(e))
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "DEFAULT_LEASE_NAME",
    "ROLES",
    "Role",
    "key_pattern",
    "rules",
    "setuser_command",
]
