"""fieldValidation's unknown-field walk, and api_fields.json against the locked client."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from kubesim.unknown_fields import StrictDecodingError, check_fields, unknown_fields

ROOT = Path(__file__).resolve().parents[3]


def test_unknown_fields_are_found_in_nested_objects_lists_and_maps() -> None:
    pod = {
        "metadata": {"name": "p", "labels": {"any": "label"}, "colour": "red"},
        "spec": {
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "1"}}, "bogus": 1},
                {"name": "b", "env": [{"name": "X", "valueFrom": {"nope": {}}}]},
            ],
            "overhead": {"cpu": "1"},
        },
        "status": {"phase": "Pending", "whatever": True},
    }
    assert unknown_fields("pods", pod) == [
        "metadata.colour",
        "spec.containers[0].bogus",
        "spec.containers[1].env[0].valueFrom.nope",
        "status.whatever",
    ]


def test_free_form_values_and_type_mismatches_are_not_unknown_fields() -> None:
    pod = {
        "metadata": {"managedFields": [{"fieldsV1": {"f:anything": {}}}]},
        "spec": {"containers": "not a list"},  # the decoder's error, not this one
    }
    assert unknown_fields("pods", pod) == []


def test_check_fields_drops_unknown_fields_whatever_the_directive() -> None:
    for directive, warnings in (("Warn", ['unknown field "extra"']), ("Ignore", [])):
        body = {"metadata": {"name": "c"}, "data": {"k": "v"}, "extra": 1}
        assert check_fields("configmaps", body, directive) == warnings
        assert body == {"metadata": {"name": "c"}, "data": {"k": "v"}}
    with pytest.raises(StrictDecodingError, match='strict decoding error: unknown field "x"'):
        check_fields("configmaps", {"x": 1}, "Strict")


def test_api_fields_json_matches_the_locked_kubernetes_client() -> None:
    spec = importlib.util.spec_from_file_location(
        "kubesim_fields", ROOT / "scripts/kubesim_fields.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    stored = json.loads((ROOT / "kubesim/api_fields.json").read_text())
    built = module.build()
    assert stored["types"] == built["types"], "run: python3 scripts/kubesim_fields.py"
    assert stored["roots"] == built["roots"]
