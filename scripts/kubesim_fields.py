"""Regenerate kubesim/api_fields.json: the JSON field names of the Go types kubesim serves.

kubesim's ``fieldValidation`` (Strict/Warn/Ignore) needs to know which fields each type has,
as the API server's strict JSON decoder does. The names come from kubernetes_asyncio's
generated models (``attribute_map``/``openapi_types``, made from the API server's OpenAPI
document), so the file follows the client version in the lock:

    python3 scripts/kubesim_fields.py          # rewrite the file
    python3 scripts/kubesim_fields.py --check  # exit 1 when it is out of date

Format: ``{"roots": {resource: type}, "types": {type: {jsonField: ref}}}`` where ref is
``""`` (a scalar or free-form value), ``"T"`` (an object of type T), ``"[T]"`` (a list of
T) or ``"{T}"`` (a map of T).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client

OUT = Path(__file__).resolve().parent.parent / "kubesim" / "api_fields.json"

ROOTS = {
    "pods": "V1Pod",
    "events": "CoreV1Event",
    "persistentvolumeclaims": "V1PersistentVolumeClaim",
    "services": "V1Service",
    "secrets": "V1Secret",
    "configmaps": "V1ConfigMap",
    "serviceaccounts": "V1ServiceAccount",
    "namespaces": "V1Namespace",
    "nodes": "V1Node",
    "leases": "V1Lease",
}

_MODEL = re.compile(r"^[A-Z]\w+$")


def _ref(openapi_type: str) -> tuple[str, str | None]:
    """(ref, model name to visit) for one openapi_types entry."""
    if openapi_type.startswith("list[") and openapi_type.endswith("]"):
        inner = openapi_type[5:-1]
        return (f"[{inner}]", inner) if _MODEL.match(inner) else ("", None)
    if openapi_type.startswith("dict(") and openapi_type.endswith(")"):
        inner = openapi_type[5:-1].split(",", 1)[1].strip()
        return (f"{{{inner}}}", inner) if _MODEL.match(inner) else ("", None)
    if _MODEL.match(openapi_type) and hasattr(client, openapi_type):
        return openapi_type, openapi_type
    return "", None  # str, int, bool, float, datetime, object


def build() -> dict[str, Any]:
    types: dict[str, dict[str, str]] = {}
    pending = list(ROOTS.values())
    while pending:
        name = pending.pop()
        if name in types:
            continue
        model = getattr(client, name)
        fields: dict[str, str] = {}
        for attr, openapi_type in model.openapi_types.items():
            ref, visit = _ref(openapi_type)
            fields[model.attribute_map[attr]] = ref
            if visit is not None and visit not in types:
                pending.append(visit)
        types[name] = dict(sorted(fields.items()))
    return {
        "source": "",
        "roots": ROOTS,
        "types": dict(sorted(types.items())),
    }


def main(argv: list[str]) -> int:
    import kubernetes_asyncio

    data = build()
    data["source"] = f"kubernetes_asyncio {kubernetes_asyncio.__version__}"
    text = json.dumps(data, indent=0, separators=(",", ":")) + "\n"
    if "--check" in argv:
        if OUT.read_text() != text:
            print(f"{OUT} is out of date: run python3 scripts/kubesim_fields.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT} ({len(data['types'])} types)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
