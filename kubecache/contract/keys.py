"""The key layout of one deployment, its prefix, and the field naming a pod.

The key table with each key's type and content is in :mod:`kubecache.contract`.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubecache.contract.errors import ContractError

SCHEMA_VERSION = 1
DEFAULT_PREFIX = f"kubecache:v{SCHEMA_VERSION}:"


@dataclass(frozen=True)
class Keys:
    """The key layout of one deployment."""

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        problem = prefix_problem(self.prefix)
        if problem:
            raise ValueError(problem)

    @property
    def health(self) -> str:
        return self.prefix + "health"

    @property
    def pods(self) -> str:
        return self.prefix + "pods"

    @property
    def pod_rv(self) -> str:
        return self.prefix + "pod-rv"

    @property
    def feed(self) -> str:
        return self.prefix + "feed"

    def events(self, pod_key: str) -> str:
        """The event log key of the pod ``pod_key`` (``namespace/name``)."""
        return self.prefix + "events:" + pod_key

    def hub_lease(self, name: str) -> str:
        """The lease that decides which of several hub replicas runs (``kubecache hub-standby``)."""
        return self.prefix + "hub-lease:" + name

    @property
    def events_pattern(self) -> str:
        """SCAN pattern matching every event log of this deployment."""
        return self.prefix + "events:*"


def prefix_problem(prefix: str) -> str | None:
    """Why ``prefix`` cannot be a key prefix, or None when it can."""
    if not prefix:
        return "the Redis key prefix must not be empty (default: kubecache:v1:)"
    if not prefix.endswith(":"):
        return f"the Redis key prefix {prefix!r} must end with ':' (e.g. 'kubecache:v1:')"
    if len(prefix) > 64 or any(c.isspace() or c in "*?[]" for c in prefix):
        return (
            f"the Redis key prefix {prefix!r} must be at most 64 characters "
            "without whitespace or glob characters (*?[])"
        )
    return None


def pod_key(namespace: str, name: str) -> str:
    """The field naming a pod in ``P pods``, ``P pod-rv`` and the feed."""
    return f"{namespace}/{name}"


def split_pod_key(key: str) -> tuple[str, str]:
    namespace, sep, name = key.partition("/")
    if not sep or not namespace or not name:
        raise ContractError(f"malformed pod key {key!r}: expected 'namespace/name'")
    return namespace, name
