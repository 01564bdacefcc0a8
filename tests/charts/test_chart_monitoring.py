"""Alert rules and a Grafana dashboard ship in the chart, well-formed and optional.

That each metric they name is really exported is checked against a running
cacher in tests/cacher/integration/test_metrics_exposition.py.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from tests.charts.monitoring import (
    PROMETHEUS_RULE_SCHEMA,
    RULE_FILE_SCHEMA,
    alert_expressions,
    dashboard,
    dashboard_expressions,
    metric_names,
    rules,
)
from tests.charts.rendering import render

pytest.importorskip("promql_parser", reason="pip install promql-parser (test extra)")

REQUIRED_ALERTS = {
    "KubecacheCacherAbsent",
    "KubecacheCacheStale",
    "KubecacheNoLeader",
    "KubecacheWatchStalled",
    "KubecacheLagHigh",
}


def test_the_rule_file_has_the_prometheus_rule_file_shape_and_the_four_alerts() -> None:
    jsonschema.validate(rules(), RULE_FILE_SCHEMA)
    assert set(alert_expressions()) >= REQUIRED_ALERTS


@pytest.mark.parametrize("alert", sorted(REQUIRED_ALERTS))
def test_every_alert_expression_parses_and_selects_kubecache_metrics(alert: str) -> None:
    names = metric_names(alert_expressions()[alert])
    assert names and all(n.startswith("kubecache_") for n in names), names


def test_an_alert_fires_when_no_cacher_metric_exists_at_all() -> None:
    """The other alerts are computed from cacher series: with every cacher gone they have
    nothing to fire on, so one rule must be absent() of a series every cacher exports."""
    import promql_parser

    absent = [
        (alert, expr)
        for alert, expr in alert_expressions().items()
        if isinstance(tree := promql_parser.parse(expr), promql_parser.Call)
        and tree.func.name == "absent"
    ]
    assert absent, "no absent() rule"
    for alert, expr in absent:
        names = metric_names(expr)
        assert names == {"kubecache_cacher_leader"}, (alert, names)  # every replica exports it
        assert rules_by_name()[alert]["labels"]["severity"] == "critical"


def rules_by_name() -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in rules()["groups"] for r in g["rules"]}


def test_a_broken_expression_is_caught() -> None:
    with pytest.raises(ValueError):
        metric_names("max by (namespace) (kubecache_cacher_leader < 1")


def test_the_dashboard_is_importable_json_whose_queries_parse() -> None:
    board = dashboard()
    assert board["uid"] == "kubecache-cacher" and board["title"]
    assert {v["name"] for v in board["templating"]["list"]} == {"datasource", "namespace"}
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for title, expr in dashboard_expressions():
        assert metric_names(expr), title


def test_rules_and_dashboard_are_off_by_default() -> None:
    rendered = render()
    assert rendered.of_kind("PrometheusRule") == []
    names = [m["metadata"]["name"] for m in rendered.of_kind("ConfigMap")]
    assert not [n for n in names if n.endswith("-dashboard")]


def test_enabled_they_render_the_shipped_files_unchanged() -> None:
    rendered = render(
        {
            "cacher": {
                "prometheusRule": {"enabled": True, "labels": {"release": "prometheus"}},
                "grafanaDashboard": {"enabled": True},
            }
        }
    )
    rule = rendered.one("PrometheusRule")
    jsonschema.validate(rule, PROMETHEUS_RULE_SCHEMA)
    assert rule["spec"] == rules()
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    config = rendered.one("ConfigMap", "-dashboard")
    assert config["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config["data"]["kubecache-cacher.json"]) == dashboard()
