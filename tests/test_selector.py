"""Label selectors, parsed once and matched locally (the spawner checks what the cacher watches)."""

from __future__ import annotations

import pytest

from kubecache.selector import LabelSelector, SelectorError, parsed_selector, selector_problem

LABELS = {"component": "singleuser-server", "app": "jupyterhub", "tier": "gpu"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("component=singleuser-server", True),
        ("component==singleuser-server", True),
        ("component!=singleuser-server", False),
        ("release!=jhub", True),  # a missing label is "not equal"
        ("tier in (gpu, cpu)", True),
        ("tier notin (gpu)", False),
        ("release notin (jhub)", True),
        ("app", True),
        ("!app", False),
        ("!release", True),
        ("component=singleuser-server,app=jupyterhub,tier in (a,gpu)", True),
        ("component=singleuser-server,app=other", False),
    ],
)
def test_selectors_match_labels_as_the_api_server_does(text: str, expected: bool) -> None:
    assert LabelSelector.parse(text).matches(LABELS) is expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("component=a,", "stray comma"),
        ("tier in ()", "at least one value"),
        ("bad key=x", "label key name"),
        ("-x=y", "label key name"),
        ("a=" + "v" * 64, "label value"),
        ("Bad_Prefix/x=y", "not a DNS subdomain"),
    ],
)
def test_malformed_selectors_say_which_part_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(SelectorError, match=problem):
        LabelSelector.parse(text)
    assert problem in (selector_problem(text) or "")


def test_a_selector_is_parsed_once_and_a_bad_one_fails_every_time() -> None:
    text = "component=singleuser-server,tier in (gpu)"
    assert parsed_selector(text) is parsed_selector(text)
    assert parsed_selector(text) == LabelSelector.parse(text)
    for _ in range(2):
        with pytest.raises(SelectorError):
            parsed_selector("component=a,")
