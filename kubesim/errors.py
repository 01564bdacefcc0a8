"""API errors as the Kubernetes API server reports them: metav1 ``Status`` bodies.

Every constructor reproduces the reason string and message wording of the real
kube-apiserver (k8s.io/apimachinery/pkg/api/errors), because clients branch on
``reason``/``code`` and people read ``message``. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CONTINUE_EXPIRED_MESSAGE",
    "ApiError",
    "already_exists",
    "bad_request",
    "conflict",
    "expired",
    "forbidden",
    "gone",
    "internal_error",
    "invalid",
    "invalid_resource_version",
    "method_not_allowed",
    "not_found",
    "parse_resource_version",
    "qualified_resource",
    "service_unavailable",
    "too_many_requests",
    "unauthorized",
    "unprocessable",
    "unsupported_media_type",
]

# The real server's wording when a list continue token points before the compacted history.
CONTINUE_EXPIRED_MESSAGE = (
    "The provided continue parameter is too old to display a consistent list result. "
    "You can start a new list without the continue parameter, or use the continue token "
    "in this response to retrieve the remainder of the results. Continuing with the provided "
    "token results in an inconsistent list - objects that were created, modified, or deleted "
    "between the time the first chunk was returned and now may show up in the list."
)


class ApiError(Exception):
    """An error the API answers with: HTTP ``code`` plus a metav1 Status body."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.retry_after = retry_after

    def status(self) -> dict[str, Any]:
        """The metav1 Status object to send as the response body (or in a watch ERROR event)."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
        }
        if self.reason:  # StatusReasonUnknown is "" and omitted
            body["reason"] = self.reason
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body

    def __repr__(self) -> str:
        return f"ApiError({self.code}, {self.reason!r}, {self.message!r})"


def qualified_resource(resource: str, group: str = "") -> str:
    """``pods`` for the core group, ``leases.coordination.k8s.io`` otherwise."""
    return f"{resource}.{group}" if group else resource


def _details(
    *, name: str = "", group: str = "", kind: str = "", causes: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    # metav1.StatusDetails marks every field omitempty.
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    if kind:
        details["kind"] = kind
    if causes:
        details["causes"] = causes
    return details


def not_found(resource: str, name: str, *, group: str = "") -> ApiError:
    """404 NotFound: ``pods "jupyter-alice" not found``."""
    return ApiError(
        404,
        "NotFound",
        f'{qualified_resource(resource, group)} "{name}" not found',
        details=_details(name=name, group=group, kind=resource),
    )


def already_exists(resource: str, name: str, *, group: str = "") -> ApiError:
    """409 AlreadyExists: ``pods "x" already exists``."""
    return ApiError(
        409,
        "AlreadyExists",
        f'{qualified_resource(resource, group)} "{name}" already exists',
        details=_details(name=name, group=group, kind=resource),
    )


OBJECT_MODIFIED = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


def conflict(
    resource: str, name: str, message: str = OBJECT_MODIFIED, *, group: str = ""
) -> ApiError:
    """409 Conflict: ``Operation cannot be fulfilled on pods "x": <message>``."""
    return ApiError(
        409,
        "Conflict",
        f"Operation cannot be fulfilled on {qualified_resource(resource, group)} "
        f'"{name}": {message}',
        details=_details(name=name, group=group, kind=resource),
    )


def invalid(kind: str, name: str, causes: list[dict[str, Any]], *, group: str = "") -> ApiError:
    """422 Invalid: ``Pod "x" is invalid: spec.containers: Required value``.

    ``causes`` are metav1 StatusCauses: ``{"reason": "FieldValueRequired", "message":
    "Required value", "field": "spec.containers"}``; the top message aggregates them as the
    server does (one cause bare, several in brackets, duplicates once).
    """
    qualified_kind = f"{kind}.{group}" if group else kind
    texts: list[str] = []
    for cause in causes:
        field = cause.get("field", "")
        text = f"{field}: {cause.get('message', '')}" if field else str(cause.get("message", ""))
        if text not in texts:
            texts.append(text)
    if not texts:
        message = f'{qualified_kind} "{name}" is invalid'
    elif len(texts) == 1:
        message = f'{qualified_kind} "{name}" is invalid: {texts[0]}'
    else:
        message = f'{qualified_kind} "{name}" is invalid: [{", ".join(texts)}]'
    return ApiError(
        422,
        "Invalid",
        message,
        details=_details(name=name, group=group, kind=kind, causes=list(causes)),
    )


def unprocessable(detail: str = "") -> ApiError:
    """422 Invalid without a kind, as the server answers a JSON patch that does not apply.

    The real message is generic; ``detail`` goes into a cause so a human can see what failed.
    """
    causes = [{"reason": "FieldValueInvalid", "message": detail}] if detail else None
    return ApiError(
        422,
        "Invalid",
        "the server rejected our request due to an error in our request",
        details=_details(causes=causes),
    )


def bad_request(message: str) -> ApiError:
    """400 BadRequest (malformed body, unsupported field selector, bad label selector)."""
    return ApiError(400, "BadRequest", message)


def expired(message: str) -> ApiError:
    """410 Expired: ``too old resource version: 5 (120)`` or :data:`CONTINUE_EXPIRED_MESSAGE`."""
    return ApiError(410, "Expired", message)


def gone(message: str) -> ApiError:
    """410 Gone."""
    return ApiError(410, "Gone", message)


def too_many_requests(
    retry_after: int, message: str = "Too many requests, please try again later."
) -> ApiError:
    """429 TooManyRequests; the server also sends a ``Retry-After`` header of ``retry_after``."""
    return ApiError(
        429,
        "TooManyRequests",
        message,
        details={"retryAfterSeconds": retry_after},
        retry_after=retry_after,
    )


def unauthorized(message: str = "Unauthorized") -> ApiError:
    """401 Unauthorized (no or wrong bearer token)."""
    return ApiError(401, "Unauthorized", message)


def forbidden(
    user: str,
    verb: str,
    resource: str,
    namespace: str | None,
    *,
    group: str = "",
    name: str = "",
    subresource: str = "",
) -> ApiError:
    """403 Forbidden in the RBAC authorizer's words.

    ``pods is forbidden: User "system:serviceaccount:ns:sa" cannot list resource "pods" in
    API group "" in the namespace "jhub"``; ``at the cluster scope`` without a namespace.
    """
    qualified = qualified_resource(resource, group)
    subject = f'{qualified} "{name}"' if name else qualified
    target = f'resource "{resource}/{subresource}"' if subresource else f'resource "{resource}"'
    where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    message = (
        f'{subject} is forbidden: User "{user}" cannot {verb} {target} '
        f'in API group "{group}" {where}'
    )
    details = _details(name=name, group=group, kind=resource)
    return ApiError(403, "Forbidden", message, details=details)


def method_not_allowed(resource: str, action: str, *, group: str = "") -> ApiError:
    """405 MethodNotAllowed: ``watch is not supported on resources of kind "nodes"``."""
    qualified = qualified_resource(resource, group)
    return ApiError(
        405,
        "MethodNotAllowed",
        f'{action} is not supported on resources of kind "{qualified}"',
        details=_details(group=group, kind=resource),
    )


ACCEPTED_PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)


def unsupported_media_type(content_type: str) -> ApiError:
    """415 UnsupportedMediaType, e.g. for server-side apply, which kubesim does not implement.

    The real message lists the accepted types without echoing ``content_type``.
    """
    del content_type
    accepted = ", ".join(ACCEPTED_PATCH_TYPES)
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{accepted}",
    )


def internal_error(message: str) -> ApiError:
    """500 InternalError: ``Internal error occurred: <message>``."""
    return ApiError(
        500,
        "InternalError",
        f"Internal error occurred: {message}",
        details={"causes": [{"message": message}]},
    )


def service_unavailable(message: str) -> ApiError:
    """503 ServiceUnavailable."""
    return ApiError(503, "ServiceUnavailable", message)


_MAX_UINT64 = 2**64 - 1


def invalid_resource_version(text: str) -> str | None:
    """Why ``text`` is not a resourceVersion the storage versioner parses, else None.

    ``APIObjectVersioner.ParseResourceVersion`` (apiserver storage/etcd3): "" and "0" are
    0, anything else goes through ``strconv.ParseUint(text, 10, 64)``; a failure is a
    ``storage.InvalidError`` reading ``resourceVersion: Invalid value: "abc":
    strconv.ParseUint: parsing "abc": invalid syntax``.
    """
    if text in ("", "0"):
        return None
    quoted = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if not text.isascii() or not text.isdigit():
        problem = "invalid syntax"
    elif int(text) > _MAX_UINT64:
        problem = "value out of range"
    else:
        return None
    return (
        f"resourceVersion: Invalid value: {quoted}: strconv.ParseUint: parsing {quoted}: {problem}"
    )


def parse_resource_version(text: str, *, watch: bool) -> int:
    """A request's ``resourceVersion`` as a number, or the API server's error for it.

    A WATCH gets the versioner's error unconverted: no API status, so the handler answers
    500 with it as the message and no reason (``responsewriters.ErrorToAPIStatus``). A LIST
    gets 400 ``invalid resource version: <error>`` (etcd3 ``store.GetList``).
    """
    problem = invalid_resource_version(text)
    if problem is None:
        return int(text or 0)
    if watch:
        raise ApiError(500, "", problem)
    raise bad_request(f"invalid resource version: {problem}")
