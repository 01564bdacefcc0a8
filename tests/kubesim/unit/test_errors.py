"""kubesim.errors reproduces the real API server's Status bodies."""

from __future__ import annotations

from kubesim import errors


def test_not_found_names_resource_and_object_like_the_api_server() -> None:
    err = errors.not_found("pods", "jupyter-alice")
    assert err.code == 404
    assert err.status() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods "jupyter-alice" not found',
        "reason": "NotFound",
        "details": {"name": "jupyter-alice", "kind": "pods"},
        "code": 404,
    }


def test_not_found_in_a_named_group_qualifies_the_resource() -> None:
    err = errors.not_found("leases", "cacher", group="coordination.k8s.io")
    assert err.message == 'leases.coordination.k8s.io "cacher" not found'
    assert err.status()["details"] == {
        "name": "cacher",
        "group": "coordination.k8s.io",
        "kind": "leases",
    }


def test_already_exists_is_a_409_with_its_own_reason() -> None:
    err = errors.already_exists("pods", "x")
    assert (err.code, err.reason, err.message) == (409, "AlreadyExists", 'pods "x" already exists')


def test_conflict_defaults_to_the_stale_resource_version_wording() -> None:
    err = errors.conflict("leases", "x", group="coordination.k8s.io")
    assert err.code == 409
    assert err.reason == "Conflict"
    assert err.message == (
        'Operation cannot be fulfilled on leases.coordination.k8s.io "x": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )


def test_invalid_with_one_cause_prints_it_bare() -> None:
    cause = {
        "reason": "FieldValueRequired",
        "message": "Required value",
        "field": "spec.containers",
    }
    err = errors.invalid("Pod", "x", [cause])
    assert err.code == 422
    assert err.reason == "Invalid"
    assert err.message == 'Pod "x" is invalid: spec.containers: Required value'
    assert err.status()["details"] == {"name": "x", "kind": "Pod", "causes": [cause]}


def test_invalid_with_several_causes_lists_them_in_brackets_once_each() -> None:
    causes = [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "a"},
        {"reason": "FieldValueRequired", "message": "Required value", "field": "b"},
        {"reason": "FieldValueRequired", "message": "Required value", "field": "a"},
    ]
    err = errors.invalid("Lease", "l", causes, group="coordination.k8s.io")
    assert err.message == (
        'Lease.coordination.k8s.io "l" is invalid: [a: Required value, b: Required value]'
    )


def test_forbidden_uses_the_rbac_wording_for_namespaced_and_cluster_requests() -> None:
    user = "system:serviceaccount:ns:sa"
    namespaced = errors.forbidden(user, "list", "pods", "jhub")
    assert namespaced.code == 403
    assert namespaced.reason == "Forbidden"
    assert namespaced.message == (
        'pods is forbidden: User "system:serviceaccount:ns:sa" cannot list resource "pods" '
        'in API group "" in the namespace "jhub"'
    )
    cluster = errors.forbidden(user, "watch", "leases", None, group="coordination.k8s.io")
    assert cluster.message == (
        'leases.coordination.k8s.io is forbidden: User "system:serviceaccount:ns:sa" cannot '
        'watch resource "leases" in API group "coordination.k8s.io" at the cluster scope'
    )
    named = errors.forbidden(user, "get", "pods", "jhub", name="p", subresource="log")
    assert named.message.startswith('pods "p" is forbidden: User')
    assert 'cannot get resource "pods/log"' in named.message


def test_expired_carries_the_too_old_resource_version_message() -> None:
    err = errors.expired("too old resource version: 5 (120)")
    assert err.status()["code"] == 410
    assert err.status()["reason"] == "Expired"
    assert err.status()["message"] == "too old resource version: 5 (120)"
    assert "details" not in err.status()


def test_gone_is_410_gone() -> None:
    assert (errors.gone("x").code, errors.gone("x").reason) == (410, "Gone")


def test_too_many_requests_carries_retry_after_in_details_and_attribute() -> None:
    err = errors.too_many_requests(3)
    assert err.code == 429
    assert err.retry_after == 3
    assert err.status()["details"] == {"retryAfterSeconds": 3}
    assert err.status()["reason"] == "TooManyRequests"


def test_simple_statuses_have_the_right_codes_and_reasons() -> None:
    cases = [
        (errors.unauthorized(), 401, "Unauthorized"),
        (errors.bad_request("nope"), 400, "BadRequest"),
        (errors.method_not_allowed("nodes", "create"), 405, "MethodNotAllowed"),
        (
            errors.unsupported_media_type("application/apply-patch+yaml"),
            415,
            "UnsupportedMediaType",
        ),
        (errors.internal_error("boom"), 500, "InternalError"),
        (errors.service_unavailable("down"), 503, "ServiceUnavailable"),
        (errors.unprocessable("test failed"), 422, "Invalid"),
    ]
    for err, code, reason in cases:
        assert (err.code, err.reason, err.status()["code"], err.status()["reason"]) == (
            code,
            reason,
            code,
            reason,
        )
    assert errors.unauthorized().message == "Unauthorized"
    assert errors.internal_error("boom").message == "Internal error occurred: boom"
    assert errors.method_not_allowed("nodes", "create").message == (
        'create is not supported on resources of kind "nodes"'
    )


def test_api_error_is_an_exception_whose_text_is_the_message() -> None:
    err = errors.not_found("pods", "x")
    assert isinstance(err, Exception)
    assert str(err) == 'pods "x" not found'
