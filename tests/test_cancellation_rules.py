"""Product code never loses a cancellation the way Python 3.11 can (docs/spawner-safety.md,
"A cancellation is never lost").

- No ``asyncio.wait_for``: before Python 3.12 it returns the inner result when a cancellation
  arrives as the inner awaitable completes (CPython gh-86296); ``asyncio.timeout`` keeps it.
- No Redis client made outside ``kubecache/redis_connection.py``: redis-py's own client sends
  each command under wait_for; the one made there raises the cancellation all the same.
"""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PRODUCT = ("spawner/", "cacher/", "kubecache/", "kubesim/")
#: where the rules do not apply, and why
EXEMPT = {
    # the one place Redis clients are made
    ("kubecache/redis_connection.py", "redis client"),
    # waits for its own output reader after the process exited; a cancellation of the reader
    # is suppressed there on purpose
    ("kubesim/kubelet_process.py", "wait_for"),
}
REDIS_CONSTRUCTORS = {"Redis", "StrictRedis", "from_url", "Sentinel"}


def _product_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "*.py"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    return [
        name
        for name in listed
        if name.startswith(PRODUCT) and not (REPO / name).is_symlink() and "/tests/" not in name
    ]


def findings(source: str) -> list[tuple[str, int]]:
    """(rule, line) of each ``wait_for`` call and each Redis client made in ``source``."""
    tree = ast.parse(source)
    redis_names = set()  # what names redis-py's modules and classes here
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            redis_names |= {
                (a.asname or a.name).split(".")[0] for a in node.names if a.name.startswith("redis")
            }
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("redis"):
            redis_names |= {a.asname or a.name for a in node.names}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute):
            name, owner = func.attr, ast.unparse(func.value)
        else:
            name, owner = getattr(func, "id", ""), ""
        if name == "wait_for" and owner in ("", "asyncio"):
            found.append(("wait_for", node.lineno))
        elif name in REDIS_CONSTRUCTORS and (owner.split(".")[0] or name) in redis_names:
            found.append(("redis client", node.lineno))
    return sorted(found, key=lambda f: f[1])


def test_the_check_finds_what_it_forbids() -> None:
    source = (
        "import asyncio\nimport redis.asyncio as aioredis\nfrom asyncio import wait_for\n"
        "from redis.asyncio import Redis\n"
        "async def f(c):\n"
        "    await asyncio.wait_for(c, 1)\n"
        "    await wait_for(c, 1)\n"
        "    aioredis.Redis.from_url('redis://h')\n"
        "    aioredis.Redis(host='h')\n"
        "    Redis(host='h')\n"
        "    Redis.from_url('redis://h')\n"
        "    await self._condition.wait_for(ready)\n"  # a Condition's wait_for is not asyncio's
        "    Other.from_url('x')\n"  # not redis-py's
    )
    assert findings(source) == [
        ("wait_for", 6),
        ("wait_for", 7),
        ("redis client", 8),
        ("redis client", 9),
        ("redis client", 10),
        ("redis client", 11),
    ]


def test_product_code_keeps_every_cancellation() -> None:
    files = _product_files()
    assert "kubecache/redis_connection.py" in files and "spawner/spawner.py" in files
    bad = [
        f"{name}:{line}: {rule}"
        for name in files
        for rule, line in findings((REPO / name).read_text())
        if (name, rule) not in EXEMPT
    ]
    assert bad == [], "use asyncio.timeout and kubecache.redis_connection.connect: " + str(bad)


def test_every_exemption_is_still_needed() -> None:
    used = {
        (name, rule) for name in _product_files() for rule, _ in findings((REPO / name).read_text())
    }
    assert used >= EXEMPT, EXEMPT - used
