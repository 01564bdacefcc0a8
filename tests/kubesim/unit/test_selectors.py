"""Label and field selectors parse and match as the API server's do."""

from __future__ import annotations

from typing import Any

import pytest

from kubesim.errors import ApiError
from kubesim.selectors import SUPPORTED_FIELDS, FieldSelector, LabelSelector

LABELS = {"app": "jupyterhub", "component": "singleuser-server", "tier": "3"}

LABEL_CASES: list[tuple[str, bool]] = [
    ("", True),
    ("   ", True),
    ("app=jupyterhub", True),
    ("app==jupyterhub", True),
    ("app = jupyterhub", True),
    ("app=other", False),
    ("app!=other", True),
    ("app!=jupyterhub", False),
    ("missing!=x", True),
    ("missing=x", False),
    ("missing=", False),
    ("app", True),
    ("missing", False),
    ("!missing", True),
    ("!app", False),
    ("! app", False),
    ("app in (jupyterhub, other)", True),
    ("app in(other)", False),
    ("app notin (other,x)", True),
    ("app notin (jupyterhub)", False),
    ("missing notin (x)", True),
    ("missing in (x)", False),
    ("app=jupyterhub,component=singleuser-server", True),
    ("app=jupyterhub, component=hub", False),
    ("app=jupyterhub,!missing,component in (singleuser-server)", True),
    ("tier>2", True),
    ("tier<2", False),
    ("app>2", False),
    ("missing>2", False),
    ("hub.jupyter.org/username=alice", False),
]


@pytest.mark.parametrize(("text", "expected"), LABEL_CASES)
def test_label_selector_matches_like_the_api_server(text: str, expected: bool) -> None:
    assert LabelSelector.parse(text).matches(LABELS) is expected


def test_label_selector_with_empty_value_matches_an_empty_label() -> None:
    assert LabelSelector.parse("a=").matches({"a": ""})
    assert LabelSelector.parse("a in ()").matches({"a": ""})
    assert LabelSelector.parse("a in (x,)").matches({"a": ""})


def test_label_selector_treats_missing_labels_as_empty_map() -> None:
    assert LabelSelector.parse("!a").matches(None)
    assert not LabelSelector.parse("a").matches(None)
    assert LabelSelector.parse(None).matches(None)


def test_prefixed_label_keys_are_accepted() -> None:
    sel = LabelSelector.parse("hub.jupyter.org/username=alice,app.kubernetes.io/name")
    assert sel.matches({"hub.jupyter.org/username": "alice", "app.kubernetes.io/name": "x"})


BAD_LABEL_SELECTORS = [
    ("app in a", "found 'a', expected: '('"),
    ("app in (a", "found 'end of string'"),
    ("app in (a b)", "found 'b'"),
    ("app=a b", "found 'b', expected: ',' or 'end of string'"),
    ("app=(a)", "found '(', expected: identifier"),
    ("=a", "found '=', expected: !, identifier"),
    ("app=a,", "found 'end of string'"),
    ("!", "found 'end of string', expected: identifier"),
    ("app foo", "found 'foo', expected: in, notin, =, ==, !=, gt, lt"),
    ("a b c=d", "found 'b'"),
    ("Bad Key", "found 'Key'"),
    ("bad/key/x=a", "a qualified name must consist of"),
    ("-bad=a", "name part must consist of alphanumeric characters"),
    ("/a=b", "prefix part must be non-empty"),
    ("Bad_Prefix/a=b", "prefix part a lowercase RFC 1123 subdomain"),
    ("a=" + "x" * 64, "must be no more than 63 characters"),
    ("a=-x", "a valid label must be an empty string"),
    ("a in (ok, -bad)", 'values[1][a]: Invalid value: "-bad"'),
    ("a>b", "the value must be an integer"),
]


@pytest.mark.parametrize(("text", "fragment"), BAD_LABEL_SELECTORS)
def test_bad_label_selectors_are_400_with_a_clear_message(text: str, fragment: str) -> None:
    with pytest.raises(ApiError) as caught:
        LabelSelector.parse(text)
    assert caught.value.code == 400
    assert caught.value.reason == "BadRequest"
    assert fragment in caught.value.message


def test_label_selector_from_match_expressions_supports_every_operator() -> None:
    sel = LabelSelector.from_match(
        {"app": "jupyterhub"},
        [
            {"key": "component", "operator": "In", "values": ["singleuser-server"]},
            {"key": "x", "operator": "NotIn", "values": ["y"]},
            {"key": "tier", "operator": "Exists"},
            {"key": "gone", "operator": "DoesNotExist"},
            {"key": "tier", "operator": "Gt", "values": ["2"]},
            {"key": "tier", "operator": "Lt", "values": ["4"]},
        ],
    )
    assert sel.matches(LABELS)
    assert not sel.matches({**LABELS, "gone": "1"})


def test_label_selector_from_match_rejects_unknown_operators_and_empty_sets() -> None:
    with pytest.raises(ApiError, match="not a valid label selector operator"):
        LabelSelector.from_match(None, [{"key": "a", "operator": "Equals"}])
    with pytest.raises(ApiError, match="values set can't be empty"):
        LabelSelector.from_match(None, [{"key": "a", "operator": "In", "values": []}])


def test_label_selector_renders_back_to_text() -> None:
    text = "a=b,c!=d,e in (g,f),h notin (i),j,!k,l>1"
    rendered = str(LabelSelector.parse(text))
    assert rendered == "a=b,c!=d,e in (f,g),h notin (i),j,!k,l>1"
    assert LabelSelector.parse("").empty


POD: dict[str, Any] = {
    "metadata": {"name": "jupyter-alice", "namespace": "jhub"},
    "spec": {
        "nodeName": "node-1",
        "restartPolicy": "OnFailure",
        "schedulerName": "default-scheduler",
        "serviceAccountName": "default",
        "hostNetwork": False,
    },
    "status": {"phase": "Running", "podIP": "127.0.1.2"},
}

FIELD_CASES: list[tuple[str, bool]] = [
    ("", True),
    ("metadata.name=jupyter-alice", True),
    ("metadata.name==jupyter-alice", True),
    ("metadata.name!=jupyter-alice", False),
    ("metadata.namespace=jhub,status.phase=Running", True),
    ("metadata.namespace=jhub,status.phase!=Running", False),
    ("spec.nodeName=node-1", True),
    ("spec.nodeName=", False),
    ("spec.nodeName!=", True),
    ("status.nominatedNodeName=", True),
    ("status.podIP=127.0.1.2", True),
    ("spec.restartPolicy=OnFailure", True),
    ("spec.schedulerName=default-scheduler", True),
    ("spec.serviceAccountName=default", True),
    ("spec.hostNetwork=false", True),
    (" status.phase = Running ", True),
]


@pytest.mark.parametrize(("text", "expected"), FIELD_CASES)
def test_pod_field_selector_matches_like_the_api_server(text: str, expected: bool) -> None:
    assert FieldSelector.parse(text, resource="pods").matches(POD) is expected


def test_unscheduled_pod_matches_an_empty_node_name() -> None:
    pending = {"metadata": {"name": "p"}, "spec": {}, "status": {"phase": "Pending"}}
    assert FieldSelector.parse("spec.nodeName=", resource="pods").matches(pending)
    assert not FieldSelector.parse("spec.nodeName!=", resource="pods").matches(pending)


EVENT: dict[str, Any] = {
    "metadata": {"name": "jupyter-alice.1", "namespace": "jhub"},
    "involvedObject": {
        "kind": "Pod",
        "namespace": "jhub",
        "name": "jupyter-alice",
        "uid": "u-1",
        "apiVersion": "v1",
        "resourceVersion": "42",
        "fieldPath": "spec.containers{notebook}",
    },
    "reason": "Pulled",
    "type": "Normal",
    "source": {"component": "kubelet", "host": "node-1"},
    "reportingComponent": "kubelet",
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("involvedObject.kind=Pod,involvedObject.name=jupyter-alice", True),
        ("involvedObject.namespace=jhub", True),
        ("involvedObject.uid=u-1", True),
        ("involvedObject.uid=u-2", False),
        ("involvedObject.apiVersion=v1", True),
        ("involvedObject.resourceVersion=42", True),
        ("involvedObject.fieldPath=spec.containers{notebook}", True),
        ("reason=Pulled,type=Normal", True),
        ("type!=Normal", False),
        ("source=kubelet", True),
        ("reportingComponent=kubelet", True),
        ("metadata.name=jupyter-alice.1", True),
    ],
)
def test_event_field_selector_matches_like_the_api_server(text: str, expected: bool) -> None:
    assert FieldSelector.parse(text, resource="events").matches(EVENT) is expected


def test_every_resource_supports_name_and_namespace() -> None:
    for resource, fields in SUPPORTED_FIELDS.items():
        assert {"metadata.name", "metadata.namespace"} <= fields, resource
        FieldSelector.parse("metadata.name=x", resource=resource)


def test_secret_type_and_namespace_phase_are_selectable() -> None:
    secret = {"metadata": {"name": "s"}, "type": "Opaque"}
    assert FieldSelector.parse("type=Opaque", resource="secrets").matches(secret)
    ns = {"metadata": {"name": "jhub"}, "status": {"phase": "Active"}}
    assert FieldSelector.parse("status.phase=Active", resource="namespaces").matches(ns)


@pytest.mark.parametrize(
    ("text", "resource", "message"),
    [
        ("spec.foo=x", "pods", "field label not supported: spec.foo"),
        (
            "status.phase=Running",
            "services",
            '"status.phase" is not a known field selector: only "metadata.name", '
            '"metadata.namespace"',
        ),
        ("spec.x=1", "leases", '"spec.x" is not a known field selector'),
        ("spec.x=1", "secrets", "field label not supported: spec.x"),
        ("reason=x", "pods", "field label not supported: reason"),
        ("spec.nodeName", "pods", "invalid selector: 'spec.nodeName'; can't understand"),
        ("metadata.name=a=b", "pods", "unescaped '='"),
    ],
)
def test_bad_field_selectors_are_400_with_the_real_wording(
    text: str, resource: str, message: str
) -> None:
    with pytest.raises(ApiError) as caught:
        FieldSelector.parse(text, resource=resource)
    assert caught.value.code == 400
    assert caught.value.reason == "BadRequest"
    assert message in caught.value.message


def test_field_selector_values_may_escape_commas_and_equals() -> None:
    obj = {"metadata": {"name": "a,b=c"}}
    assert FieldSelector.parse(r"metadata.name=a\,b\=c", resource="configmaps").matches(obj)


def test_field_selector_exposes_the_pinned_value_of_an_equality_term() -> None:
    sel = FieldSelector.parse("metadata.name=x,status.phase!=Failed", resource="pods")
    assert sel.exact("metadata.name") == "x"
    assert sel.exact("status.phase") is None
    assert FieldSelector.parse(None, resource="pods").empty
