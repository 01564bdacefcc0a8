"""values.schema.json is the chart's documentation and its guard against bad values."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.charts.rendering import CHART_DIR, CI_VALUES, ci_values, helm, render
from tests.charts.values_table import README, readme_table, values_table

SCHEMA = json.loads((CHART_DIR / "values.schema.json").read_text())
DEFAULTS = yaml.safe_load((CHART_DIR / "values.yaml").read_text())


def schema_error(values: dict[str, Any]) -> str:
    with helm.Chart.load(CHART_DIR) as chart, pytest.raises(helm.HelmValuesError) as caught:
        chart.validate_schema(values)
    return str(caught.value)


def leaf_paths(values: Any, prefix: str = "") -> Iterator[str]:
    """Dotted paths of values.yaml down to leaves and free-form maps/lists."""
    if isinstance(values, dict) and values:
        for key, value in values.items():
            yield from leaf_paths(value, f"{prefix}.{key}" if prefix else key)
    else:
        yield prefix


def schema_node(path: str) -> dict[str, Any] | None:
    node: dict[str, Any] | None = SCHEMA
    for part in path.split("."):
        if node is None or "properties" not in node:
            return node  # a free-form object documented as a whole
        node = node["properties"].get(part)
    return node


@pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.stem)
def test_every_ci_scenario_satisfies_the_schema(values_file: Any) -> None:
    with helm.Chart.load(CHART_DIR) as chart:
        chart.validate_schema(ci_values(values_file))


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"cacher": {"replicas": "2"}}, "/cacher/replicas"),
        ({"cacher": {"replicas": 0}}, "/cacher/replicas"),
        ({"replicas": 2}, "additional properties 'replicas' not allowed"),
        ({"cacher": {"replica": 2}}, "additional properties 'replica' not allowed"),
        ({"cacher": {"watch": {"namespaces": ["Jhub"]}}}, "/cacher/watch/namespaces/0"),
        ({"cacher": {"watch": {"namespaces": "jhub"}}}, "/cacher/watch/namespaces"),
        ({"cacher": {"logLevel": "LOUD"}}, "/cacher/logLevel"),
        ({"cacher": {"leaderElection": {"leaseDuration": "15 seconds"}}}, "/leaseDuration"),
        ({"keyPrefix": "kubecache"}, "/keyPrefix"),
        ({"externalRedis": {"url": "http://redis:6379"}}, "/externalRedis/url"),
        ({"redis": {"persistence": {"enabled": "yes"}}}, "/redis/persistence/enabled"),
        ({"redis": {"image": {"pullPolicy": "Sometimes"}}}, "/redis/image/pullPolicy"),
    ],
    ids=[
        "replicas-as-string",
        "zero-replicas",
        "unknown-top-level-key",
        "misspelt-nested-key",
        "namespace-not-a-dns-label",
        "namespaces-not-a-list",
        "unknown-log-level",
        "duration-in-words",
        "prefix-without-colon",
        "redis-url-of-another-scheme",
        "boolean-as-string",
        "unknown-pull-policy",
    ],
)
def test_the_schema_rejects_bad_values_naming_the_key(
    values: dict[str, Any], complaint: str
) -> None:
    assert complaint in schema_error(values)


def test_an_install_with_bad_values_fails_before_rendering() -> None:
    with pytest.raises(helm.HelmValuesError, match="/cacher/replicas"):
        render({"cacher": {"replicas": "two"}})


@pytest.mark.parametrize(
    ("values", "advice"),
    [
        ({"externalRedis": {"url": "redis://elsewhere:6379/0"}}, "choose the in-chart Redis"),
        ({"redis": {"enabled": False}}, "no Redis configured"),
        (
            {
                "redis": {"enabled": False},
                "externalRedis": {
                    "url": "redis://elsewhere:6379/0",
                    "tls": {"caSecret": {"name": "ca"}},
                },
            },
            "use a rediss://",
        ),
    ],
    ids=["two-redises", "no-redis", "ca-without-tls"],
)
def test_contradictory_redis_settings_fail_with_what_to_do(
    values: dict[str, Any], advice: str
) -> None:
    with pytest.raises(helm.HelmRenderError, match=advice):
        render(values)


def test_every_value_is_documented_in_the_schema() -> None:
    undocumented = [
        path for path in leaf_paths(DEFAULTS) if not (schema_node(path) or {}).get("description")
    ]
    assert undocumented == []


def test_the_schema_documents_no_value_the_chart_lacks() -> None:
    def walk(node: dict[str, Any], prefix: str) -> Iterator[str]:
        for key, child in node.get("properties", {}).items():
            path = f"{prefix}.{key}" if prefix else key
            yield path
            walk_children = child.get("properties")
            if walk_children:
                yield from walk(child, path)

    def present(path: str) -> bool:
        node: Any = DEFAULTS
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    missing = [p for p in walk(SCHEMA, "") if p != "global" and not present(p)]
    assert missing == []


def test_every_object_in_the_schema_refuses_unknown_keys() -> None:
    def open_objects(node: dict[str, Any], path: str) -> Iterator[str]:
        if "properties" in node and node.get("additionalProperties") is not False:
            yield path or "(top level)"
        for key, child in node.get("properties", {}).items():
            yield from open_objects(child, f"{path}.{key}" if path else key)

    assert list(open_objects(SCHEMA, "")) == []


def test_the_readme_values_table_is_the_one_the_schema_generates() -> None:
    assert readme_table(README.read_text()) == values_table(), (
        "charts/README.md is out of date: python -m tests.charts.values_table --write"
    )
