"""The shipped alert rules and Grafana dashboard, read for tests.

Expressions are parsed with a real PromQL parser (promql-parser, the Rust
parser Prometheus-compatible databases use); promtool is not pip-installable.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

CHART_FILES = Path(__file__).resolve().parents[2] / "charts" / "kubecache" / "files"
RULES_FILE = CHART_FILES / "prometheus-rules.yaml"
DASHBOARD_FILE = CHART_FILES / "grafana-dashboard.json"

_DURATION = "^[0-9]+(ms|s|m|h|d|w|y)$"

#: The Prometheus rule-file format (the body of a PrometheusRule's spec).
RULE_FILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["groups"],
    "properties": {
        "groups": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "rules"],
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "interval": {"type": "string", "pattern": _DURATION},
                    "rules": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["alert", "expr", "for", "labels", "annotations"],
                            "properties": {
                                "alert": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                                "expr": {"type": "string", "minLength": 1},
                                "for": {"type": "string", "pattern": _DURATION},
                                "labels": {
                                    "type": "object",
                                    "required": ["severity"],
                                    "properties": {
                                        "severity": {"enum": ["critical", "warning", "info"]}
                                    },
                                    "additionalProperties": {"type": "string"},
                                },
                                "annotations": {
                                    "type": "object",
                                    "required": ["summary", "description"],
                                    "additionalProperties": {"type": "string"},
                                },
                            },
                        },
                    },
                },
            },
        }
    },
}

PROMETHEUS_RULE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "spec": RULE_FILE_SCHEMA,
    },
}


def rules() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(RULES_FILE.read_text())
    return loaded


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text())
    return loaded


def alert_expressions() -> dict[str, str]:
    return {r["alert"]: r["expr"] for g in rules()["groups"] for r in g["rules"]}


def dashboard_expressions() -> Iterator[tuple[str, str]]:
    """(panel title, expression) with Grafana's $variables replaced by sample values."""
    for panel in dashboard()["panels"]:
        for target in panel["targets"]:
            yield panel["title"], re.sub(r"\$\{?(\w+)\}?", r"\1", target["expr"])


def metric_names(expr: str) -> set[str]:
    """Every metric a PromQL expression selects; raises ValueError when it does not parse."""
    import promql_parser

    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), pre_visit=visit)
    return names


#: Suffixes Prometheus adds to a family's samples.
SAMPLE_SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created", "_info")


def family_of(sample_name: str, families: set[str]) -> str | None:
    if sample_name in families:
        return sample_name
    for suffix in SAMPLE_SUFFIXES:
        if sample_name.endswith(suffix) and sample_name.removesuffix(suffix) in families:
            return sample_name.removesuffix(suffix)
    return None
