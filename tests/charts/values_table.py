"""The values table of charts/README.md, generated from values.schema.json.

The schema is the one documentation source of the chart's values; the README's
table is derived from it and a test keeps the two equal. Regenerate with
``python -m tests.charts.values_table --write``.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "charts" / "kubecache"
README = REPO / "charts" / "README.md"
START = "<!-- values-table:start (generated from values.schema.json) -->"
END = "<!-- values-table:end -->"


def _rows(node: dict[str, Any], defaults: Any, prefix: str) -> Iterator[tuple[str, str, str, str]]:
    for key, child in node.get("properties", {}).items():
        path = f"{prefix}.{key}" if prefix else key
        default = defaults.get(key) if isinstance(defaults, dict) else None
        if "properties" in child:
            yield from _rows(child, default, path)
            continue
        if key == "global":
            continue
        kind = child.get("type", "")
        kind = " or ".join(kind) if isinstance(kind, list) else kind
        if "enum" in child:
            kind = " \\| ".join(f"`{v}`" for v in child["enum"])
        shown = json.dumps(default) if not isinstance(default, str) else f'"{default}"'
        description = re.sub(r"\s+", " ", child.get("description", "")).replace("|", "\\|")
        yield path, kind, shown.replace("|", "\\|"), description


def values_table() -> str:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    defaults = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    lines = ["| Value | Type | Default | Description |", "| --- | --- | --- | --- |"]
    lines += [f"| `{p}` | {k} | `{d}` | {text} |" for p, k, d, text in _rows(schema, defaults, "")]
    return "\n".join(lines)


def readme_table(readme: str) -> str:
    """The table between the markers of the README ('' when absent)."""
    if START not in readme or END not in readme:
        return ""
    return readme.split(START, 1)[1].split(END, 1)[0].strip()


def write_readme() -> None:
    readme = README.read_text()
    current = readme_table(readme)
    if not current:
        raise SystemExit(f"{README}: the markers {START!r} and {END!r} are missing")
    README.write_text(readme.replace(current, values_table()))


if __name__ == "__main__":
    if "--write" in sys.argv:
        write_readme()
    else:
        print(values_table())
