"""How ``poll()`` turns hook results, cache answers and API reads into an exit status.

Pure decision table; :mod:`kubecache.spawner.spawner` performs the reads. The two
failure policies are OutpostSpawner's, with the same names and meaning:

- ``request_failed_poll_keep_running`` (default True): when the state
  cannot be known (Redis unreachable or the cache untrusted, and the one
  direct API read failed too), report the server running rather than dead.
  KubeSpawner 7.1 reports every server dead when its first LIST fails
  (kubespawner#742); kubecache never does with the default.
- ``request_404_poll_keep_running`` (default False): when the pod is known
  to be absent (the API said 404), report it running anyway instead of exit
  status 1.

"Stopped" is never the cache's word alone (:func:`needs_confirmation`):
a trusted cache answers "running" by itself; its "stopped" or "absent" is
given only once an API read sent after the question agrees.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from kubecache.contract import Freshness, PodRecord
from kubecache.spawner.pod_state import exit_status


class PrePoll(enum.Enum):
    POLL = "poll"  # the hook returned True: unknown, ask the cache
    KEEP_RUNNING = "keep-running"  # False or None: running, do not ask
    EXIT = "exit"  # an int: that is the exit status


@dataclass(frozen=True)
class PrePollResult:
    action: PrePoll
    status: int | None = None


def interpret_pre_poll_hook(result: object) -> PrePollResult:
    """OutpostSpawner's pre_poll_hook contract.

    True: unknown, poll as usual. False: unknown, do not poll, the server
    continues as running. An int: the exit status, do not poll. None: the
    server is running, do not poll. Anything else is treated like True.
    """
    if result is True:
        return PrePollResult(PrePoll.POLL)
    if result is False or result is None:
        return PrePollResult(PrePoll.KEEP_RUNNING)
    if isinstance(result, int):
        return PrePollResult(PrePoll.EXIT, result)
    return PrePollResult(PrePoll.POLL)


class Source(enum.Enum):
    """Where poll() got its answer (for logs and tests)."""

    CACHE = "cache"
    API = "api"
    POLICY = "policy"


@dataclass(frozen=True)
class PollAnswer:
    status: int | None
    source: Source
    why: str


def from_cache(
    record: PodRecord | None, freshness: Freshness, *, keep_running_on_404: bool
) -> PollAnswer | None:
    """The answer the cache gives, or None when it cannot be trusted (read the API)."""
    if not freshness.trusted:
        return None
    if record is None:
        if keep_running_on_404:
            return PollAnswer(None, Source.POLICY, "pod absent from the cache; kept running")
        return PollAnswer(1, Source.CACHE, "pod absent from a fresh cache")
    return PollAnswer(exit_status(record), Source.CACHE, f"pod phase {record['phase']}")


def from_api(pod: PodRecord | None, *, found: bool, keep_running_on_404: bool) -> PollAnswer:
    """The answer of a successful direct API read (``found`` False for 404)."""
    if not found or pod is None:
        if keep_running_on_404:
            return PollAnswer(None, Source.POLICY, "the API says the pod is absent; kept running")
        return PollAnswer(1, Source.API, "the API says the pod is absent")
    return PollAnswer(exit_status(pod), Source.API, f"pod phase {pod['phase']}")


def needs_confirmation(answer: PollAnswer, *, fresh: bool) -> bool:
    """Whether ``answer`` may not be given before an API read sent after the question agrees.

    The cache may say "running" alone, never "stopped": JupyterHub cleans up
    a server that polls as stopped. ``fresh``: the answer comes from an API
    read sent after the question (a remembered LIST is not fresh).
    """
    if answer.status is None:
        return False
    return answer.source is Source.CACHE or (answer.source is Source.API and not fresh)


def when_unknown(*, keep_running: bool, why: str) -> PollAnswer:
    """Neither the cache nor the API could answer."""
    if keep_running:
        return PollAnswer(None, Source.POLICY, f"{why}; kept running")
    return PollAnswer(1, Source.POLICY, f"{why}; reported stopped")


__all__ = [
    "PollAnswer",
    "PrePoll",
    "PrePollResult",
    "Source",
    "from_api",
    "from_cache",
    "interpret_pre_poll_hook",
    "needs_confirmation",
    "when_unknown",
]
