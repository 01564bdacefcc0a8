"""The pure parts of the server side: continue tokens, list bodies, auth rules, fault rules."""

from __future__ import annotations

import orjson
import pytest

from kubesim.auth import ANONYMOUS, Authenticator, Rule
from kubesim.errors import ApiError
from kubesim.faults import Faults
from kubesim.listing import decode_continue, encode_continue, list_body
from kubesim.resources import RESOURCES
from kubesim.selectors import FieldSelector, LabelSelector


def test_a_continue_token_round_trips_revision_and_key() -> None:
    assert decode_continue(encode_continue(123, ("ns", "pod-1"))) == (123, ("ns", "pod-1"))


def test_a_foreign_continue_token_is_400() -> None:
    with pytest.raises(ApiError) as caught:
        decode_continue("not-a-token")
    assert caught.value.code == 400


def items(count: int) -> list[tuple[tuple[str, str], dict, bytes]]:
    out = []
    for i in range(count):
        obj = {"metadata": {"name": f"p{i}", "namespace": "ns", "labels": {"i": str(i % 2)}}}
        out.append((("ns", f"p{i}"), obj, orjson.dumps(obj)))
    return out


def test_list_bodies_page_with_a_count_of_what_remains() -> None:
    everything = LabelSelector.parse("")
    no_fields = FieldSelector.parse("", resource="pods")
    body = orjson.loads(
        list_body(
            RESOURCES["pods"],
            items(5),
            snapshot_rv=9,
            label=everything,
            field=no_fields,
            limit=2,
            after=("ns", "p0"),
        )
    )
    assert [p["metadata"]["name"] for p in body["items"]] == ["p1", "p2"]
    assert body["metadata"]["remainingItemCount"] == 2
    assert decode_continue(body["metadata"]["continue"]) == (9, ("ns", "p2"))
    assert body["kind"] == "PodList"


def test_filtered_pages_give_no_remaining_count() -> None:
    body = orjson.loads(
        list_body(
            RESOURCES["pods"],
            items(6),
            snapshot_rv=9,
            label=LabelSelector.parse("i=1"),
            field=FieldSelector.parse("", resource="pods"),
            limit=2,
        )
    )
    assert [p["metadata"]["name"] for p in body["items"]] == ["p1", "p3"]
    assert "remainingItemCount" not in body["metadata"] and body["metadata"]["continue"]


def test_an_unknown_token_is_401_and_a_missing_one_anonymous() -> None:
    auth = Authenticator.single("t")
    with pytest.raises(ApiError) as caught:
        auth.authenticate({"Authorization": "Bearer other"})
    assert caught.value.code == 401
    for headers in ({}, {"Authorization": "Basic t"}, {"Authorization": "Bearer "}):
        assert auth.authenticate(headers) == ANONYMOUS
    with pytest.raises(ApiError) as forbidden:
        auth.authorize(ANONYMOUS, "get", "pods", "jhub")
    assert forbidden.value.code == 403
    assert auth.authenticate({"Authorization": "Bearer t"}) == "t"


def test_a_missing_token_is_401_when_anonymous_auth_is_off() -> None:
    auth = Authenticator.single("t", anonymous=False)
    for headers in ({}, {"Authorization": "Basic t"}, {"Authorization": "Bearer other"}):
        with pytest.raises(ApiError) as caught:
            auth.authenticate(headers)
        assert caught.value.code == 401


def test_rules_allow_only_their_verbs_resources_and_namespaces() -> None:
    auth = Authenticator()
    auth.add_token("t", "u", [Rule.of(["list", "watch"], ["pods", "events"], ["jhub"])])
    auth.authorize("t", "watch", "events", "jhub")
    for verb, resource, namespace in (
        ("create", "pods", "jhub"),
        ("list", "pods", None),
        ("list", "secrets", "jhub"),
        ("list", "pods", "other"),
    ):
        with pytest.raises(ApiError) as caught:
            auth.authorize("t", verb, resource, namespace)
        assert caught.value.code == 403


def test_a_counted_fault_expires_and_an_uncounted_one_stays() -> None:
    faults = Faults()
    faults.configure(
        {"action": "fail", "verb": "list", "resource": "pods", "status": 500, "count": 1}
    )
    faults.configure({"action": "fail", "resource": "events", "status": 429, "retry_after": 2})
    first = faults.failure("list", "pods")
    assert first is not None and first.code == 500
    assert faults.failure("list", "pods") is None
    for _ in range(3):
        error = faults.failure("watch", "events")
        assert error is not None and (error.code, error.retry_after) == (429, 2)
    faults.configure({"action": "clear"})
    assert faults.failure("watch", "events") is None
