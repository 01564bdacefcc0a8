"""Fault injection: failing requests, added latency, stalled watches (POST /kubesim/faults).

A stalled watch is a frozen connection: open and silent until cleared or dropped, not
even ended by its timeout (see kubesim.watch).

Pure state plus the decision of what a request suffers; the server applies it. Actions
(JSON bodies): ``{"action": "fail", "verb": "list", "resource": "pods", "status": 503,
"count": 3, "retry_after": 1}`` ("*"/absent verb or resource match all; count absent or -1 =
until cleared), ``{"action": "latency", "ms": 200}``, ``{"action": "stall_watches"}``,
``{"action": "clear"}``. ``drop_watches``, ``compact`` and ``inject_watch_line`` (``{"action":
"inject_watch_line", "resource": "events", "line": {"type": "ADDED", "object": {...}}}``: one
raw line to every open watch of the resource) act on the watch hub and the store and are
dispatched by the server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubesim import errors

__all__ = ["FailRule", "Faults", "error_for_status"]

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    410: "Expired",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def error_for_status(status: int, *, retry_after: int = 1) -> errors.ApiError:
    """The Status error an injected failure answers with."""
    if status == 429:
        return errors.too_many_requests(retry_after)
    if status == 500:
        return errors.internal_error("injected fault")
    if status == 503:
        return errors.service_unavailable("injected fault: the server is currently unavailable")
    return errors.ApiError(status, _REASONS.get(status, "Unknown"), f"injected fault ({status})")


@dataclass
class FailRule:
    verb: str
    resource: str
    status: int
    remaining: int  # -1 = unlimited
    retry_after: int = 1

    def matches(self, verb: str, resource: str) -> bool:
        return self.verb in ("*", verb) and self.resource in ("*", resource)


class Faults:
    """The active faults."""

    def __init__(self) -> None:
        self.rules: list[FailRule] = []
        self.latency_ms = 0

    def configure(self, action: dict[str, Any]) -> None:
        """Apply one of fail/latency/stall_watches/clear; 400 for anything malformed."""
        kind = action.get("action")
        try:
            if kind == "fail":
                count = int(action.get("count", -1))
                self.rules.append(
                    FailRule(
                        verb=str(action.get("verb") or "*"),
                        resource=str(action.get("resource") or "*"),
                        status=int(action["status"]),
                        remaining=count if count > 0 else -1,
                        retry_after=int(action.get("retry_after", 1)),
                    )
                )
            elif kind == "latency":
                self.latency_ms = max(int(action["ms"]), 0)
            elif kind == "stall_watches":
                pass  # the watch hub holds the stall (kubesim.watch); the server applies it
            elif kind == "clear":
                self.__init__()  # type: ignore[misc]
            else:
                raise errors.bad_request(
                    f"unknown fault action {kind!r}: use drop_watches, compact, "
                    "inject_watch_line, fail, latency, stall_watches or clear"
                )
        except (KeyError, TypeError, ValueError) as err:
            raise errors.bad_request(f"malformed fault {action!r}: {err}") from err

    def failure(self, verb: str, resource: str) -> errors.ApiError | None:
        """The injected error this request gets, consuming one count of the first match."""
        for rule in self.rules:
            if rule.matches(verb, resource):
                if rule.remaining > 0:
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        self.rules.remove(rule)
                return error_for_status(rule.status, retry_after=rule.retry_after)
        return None
