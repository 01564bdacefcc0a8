"""PATCH bodies applied as the API server applies them.

* ``application/merge-patch+json``: RFC 7386 JSON merge patch.
* ``application/json-patch+json``: RFC 6902 (add, remove, replace, move, copy, test; ``~1``
  and ``~0`` escapes). A body that is not a list of operations is 400; an operation that does
  not apply is 422, as kube-apiserver answers.
* ``application/strategic-merge-patch+json``: lists merge by the ``patchMergeKey`` and
  ``patchStrategy`` of the real Go types (:mod:`kubesim.patch_schema`); directives
  ``$patch: replace|delete|merge``, ``$retainKeys``, ``$deleteFromPrimitiveList/<field>`` and
  ``$setElementOrder/<field>``; ``null`` deletes.

Anything else (server-side apply included) is 415. Pure: no I/O; the input is never mutated.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson

from kubesim import errors
from kubesim.patch_schema import Field, Schema, schema_for

__all__ = [
    "JSON_PATCH",
    "MERGE_PATCH",
    "STRATEGIC_MERGE_PATCH",
    "apply_json_patch",
    "apply_merge_patch",
    "apply_patch",
    "apply_strategic_merge_patch",
]

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"

_DELETE = object()  # a map that "$patch: delete" removed


def apply_patch(
    obj: dict[str, Any], body: bytes, content_type: str, *, resource: str
) -> dict[str, Any]:
    """Return a patched deep copy of ``obj``; ApiError 400/415/422 as the API server would."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH):
        raise errors.unsupported_media_type(content_type)
    try:
        patch = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise errors.bad_request(f"invalid JSON in the patch body: {err}") from err
    if media_type == JSON_PATCH:
        result = apply_json_patch(obj, patch)
    elif media_type == MERGE_PATCH:
        result = apply_merge_patch(obj, patch)
    else:
        result = apply_strategic_merge_patch(obj, patch, resource=resource)
    if not isinstance(result, dict):
        raise errors.bad_request(
            f"json: cannot unmarshal {_json_type(result)} into Go value of type "
            "map[string]interface {}"
        )
    return result


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "null" if value is None else "object"


# --- RFC 7386 merge patch ----------------------------------------------------------------------


def apply_merge_patch(obj: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(obj) if isinstance(obj, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


# --- RFC 6902 JSON patch -----------------------------------------------------------------------


class _PatchFailed(Exception):
    pass


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str):
        raise _PatchFailed(f"path {path!r} is not a string")
    if path == "":
        return []
    if not path.startswith("/"):
        raise _PatchFailed(f'JSON pointer must be empty or start with a "/": {path}')
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _index(container: list[Any], token: str, path: str, *, for_add: bool) -> int:
    if for_add and token == "-":
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise _PatchFailed(f"invalid array index {token!r} in {path}")
    index = int(token)
    limit = len(container) if for_add else len(container) - 1
    if index > limit:
        raise _PatchFailed(f"array index {index} out of bounds in {path}")
    return index


def _parent(doc: Any, parts: list[str], path: str, op: str) -> Any:
    node = doc
    for token in parts[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, path, for_add=False)]
        else:
            raise _PatchFailed(f'{op} operation does not apply: doc is missing path: "{path}"')
    if not isinstance(node, dict | list):
        raise _PatchFailed(f'{op} operation does not apply: doc is missing path: "{path}"')
    return node


def _get(doc: Any, path: str, op: str) -> Any:
    parts = _pointer(path)
    if not parts:
        return doc
    parent = _parent(doc, parts, path, op)
    token = parts[-1]
    if isinstance(parent, dict):
        if token not in parent:
            raise _PatchFailed(f"{op} operation does not apply: doc is missing key: {path}")
        return parent[token]
    return parent[_index(parent, token, path, for_add=False)]


def _add(doc: Any, path: str, value: Any, op: str = "add") -> Any:
    parts = _pointer(path)
    if not parts:
        return value
    parent = _parent(doc, parts, path, op)
    token = parts[-1]
    if isinstance(parent, dict):
        parent[token] = value
    else:
        parent.insert(_index(parent, token, path, for_add=True), value)
    return doc


def _remove(doc: Any, path: str, op: str = "remove") -> Any:
    parts = _pointer(path)
    if not parts:
        raise _PatchFailed(f"{op} operation does not apply: cannot remove the whole document")
    parent = _parent(doc, parts, path, op)
    token = parts[-1]
    if isinstance(parent, dict):
        if token not in parent:
            raise _PatchFailed(f"{op} operation does not apply: doc is missing key: {path}")
        return parent.pop(token)
    return parent.pop(_index(parent, token, path, for_add=False))


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: no bool/number confusion, key order irrelevant, 1 == 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


def _operation(doc: Any, operation: dict[str, Any]) -> Any:
    op = operation.get("op")
    path = operation.get("path")
    if not isinstance(path, str):
        raise _PatchFailed(f"{op} operation does not apply: missing path")
    if op in ("add", "replace", "test") and "value" not in operation:
        raise _PatchFailed(f"{op} operation does not apply: missing value")
    value = operation.get("value")
    if op == "add":
        return _add(doc, path, copy.deepcopy(value))
    if op == "remove":
        _remove(doc, path)
        return doc
    if op == "replace":
        if not _pointer(path):
            return copy.deepcopy(value)
        _get(doc, path, "replace")
        _remove(doc, path, "replace")
        return _add(doc, path, copy.deepcopy(value), "replace")
    if op in ("move", "copy"):
        source = operation.get("from")
        if not isinstance(source, str):
            raise _PatchFailed(f"{op} operation does not apply: missing from path")
        if op == "move":
            if path.startswith(source + "/"):
                raise _PatchFailed(f"move operation does not apply: {path} is a child of {source}")
            value = _remove(doc, source, "move")
        else:
            value = copy.deepcopy(_get(doc, source, "copy"))
        return _add(doc, path, value, op)
    if op == "test":
        try:
            current = _get(doc, path, "test")
        except _PatchFailed:
            current = None
            if value is not None:
                raise _PatchFailed(f"testing value {path} failed: test failed") from None
        if not _json_equal(current, value):
            raise _PatchFailed(f"testing value {path} failed: test failed")
        return doc
    raise _PatchFailed(f"Unexpected kind: {op}")


def apply_json_patch(obj: Any, patch: Any) -> Any:
    """RFC 6902; the operations apply in order to a copy, all or nothing."""
    if not isinstance(patch, list) or not all(isinstance(o, dict) for o in patch):
        raise errors.bad_request(
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
        )
    doc = copy.deepcopy(obj)
    try:
        for operation in patch:
            doc = _operation(doc, operation)
    except _PatchFailed as err:
        raise errors.unprocessable(str(err)) from err
    return doc


# --- strategic merge patch ---------------------------------------------------------------------

_RETAIN_KEYS = "$retainKeys"
_DELETE_FROM = "$deleteFromPrimitiveList/"
_SET_ORDER = "$setElementOrder/"


def apply_strategic_merge_patch(obj: Any, patch: Any, *, resource: str) -> Any:
    """Merge ``patch`` into a copy of ``obj`` with the list semantics of ``resource``'s type."""
    if not isinstance(patch, dict):
        raise errors.bad_request(
            f"json: cannot unmarshal {_json_type(patch)} into Go value of type "
            "map[string]interface {}"
        )
    original = copy.deepcopy(obj) if isinstance(obj, dict) else {}
    merged = _merge_map(original, copy.deepcopy(patch), schema_for(resource))
    return {} if merged is _DELETE else merged


def _merge_map(original: dict[str, Any], patch: dict[str, Any], schema: Schema) -> Any:
    directive = patch.pop("$patch", None)
    if directive == "replace":
        return _merge_map({}, patch, schema)
    if directive == "delete":
        return _DELETE
    if directive not in (None, "merge"):
        raise errors.bad_request(f"Unknown patch type: {directive} in map: {patch}")
    if _RETAIN_KEYS in patch:
        _retain_keys(original, patch, patch.pop(_RETAIN_KEYS))
    orders: dict[str, list[Any]] = {}
    for key in [k for k in patch if k.startswith((_DELETE_FROM, _SET_ORDER))]:
        value = patch.pop(key)
        if not isinstance(value, list):
            raise errors.bad_request(f"invalid patch format of {key}: expected a list")
        if key.startswith(_SET_ORDER):
            orders[key[len(_SET_ORDER) :]] = value
            continue
        name = key[len(_DELETE_FROM) :]
        current = original.get(name)
        if isinstance(current, list):
            original[name] = [item for item in current if item not in value]
    for key, value in patch.items():
        field = schema.get(key, Field())
        if value is None:
            original.pop(key, None)
            continue
        merged = _merge_value(original.get(key), value, field)
        if merged is _DELETE:
            original.pop(key, None)
        else:
            original[key] = merged
    for name, order in orders.items():
        current = original.get(name)
        if isinstance(current, list):
            original[name] = _set_order(current, order, schema.get(name, Field()).merge_key)
    return original


def _merge_value(current: Any, value: Any, field: Field) -> Any:
    if isinstance(value, dict):
        base = current if isinstance(current, dict) else {}
        return _merge_map(base, value, field.schema)
    if isinstance(value, list):
        base_list = current if isinstance(current, list) else []
        return _merge_list(base_list, value, field)
    return value


def _retain_keys(original: dict[str, Any], patch: dict[str, Any], retain: Any) -> None:
    if not isinstance(retain, list):
        raise errors.bad_request("invalid patch format of retainKeys")
    allowed = set(retain)
    for key, value in patch.items():
        if value is None or key.startswith((_DELETE_FROM, _SET_ORDER)) or key == "$patch":
            continue
        if key not in allowed:
            raise errors.bad_request("invalid patch format of retainKeys")
    for key in list(original):
        if key not in allowed:
            del original[key]


def _merge_list(original: list[Any], patch: list[Any], field: Field) -> list[Any]:
    if not field.merges:
        # Atomic list: the patch replaces it (directives inside are cleaned the same way).
        return [_merge_value(None, item, Field(schema=field.schema)) for item in patch]
    if not any(isinstance(item, dict) for item in patch + original) or not field.merge_key:
        # A set of scalars: union in order of first appearance.
        merged = list(original)
        merged.extend(item for item in patch if item not in merged)
        return merged
    key = field.merge_key
    result = list(original)
    for item in patch:
        if not isinstance(item, dict):
            raise errors.bad_request(f"invalid patch: list {field!r} mixes objects and values")
        directive = item.get("$patch")
        if directive == "replace":
            rest = [i for i in patch if not (isinstance(i, dict) and i.get("$patch") == "replace")]
            return [_merge_map({}, dict(i), field.schema) for i in rest]
        if key not in item:
            # Not a metav1 Status upstream either: a 500 with no reason and the bare text.
            raise errors.ApiError(
                500, "", f"map: {_go_map(item)} does not contain declared merge key: {key}"
            )
        position = next(
            (
                i
                for i, existing in enumerate(result)
                if isinstance(existing, dict) and existing.get(key) == item[key]
            ),
            None,
        )
        if directive == "delete":
            result = [e for e in result if not (isinstance(e, dict) and e.get(key) == item[key])]
            continue
        if position is None:
            merged = _merge_map({}, dict(item), field.schema)
            if merged is not _DELETE:
                result.append(merged)
        else:
            merged = _merge_map(result[position], dict(item), field.schema)
            if merged is _DELETE:
                del result[position]
            else:
                result[position] = merged
    return result


def _go_map(value: Any) -> str:
    """Go's %v of a map[string]interface{}: ``map[image:httpd name:x]``."""
    if isinstance(value, dict):
        inner = " ".join(f"{k}:{_go_map(value[k])}" for k in sorted(value))
        return f"map[{inner}]"
    if isinstance(value, list):
        return "[" + " ".join(_go_map(v) for v in value) + "]"
    return "<nil>" if value is None else str(value)


def _set_order(items: list[Any], order: list[Any], merge_key: str) -> list[Any]:
    """Put the items named in ``$setElementOrder`` in that order; the others keep their
    place relative to the ordered items that preceded them in the live list."""

    def ident(item: Any) -> Any:
        if merge_key and isinstance(item, dict):
            return item.get(merge_key)
        if isinstance(item, dict):
            return orjson.dumps(item, option=orjson.OPT_SORT_KEYS)
        return item

    wanted = list(dict.fromkeys(ident(entry) for entry in order))
    ordered = [item for want in wanted for item in items if ident(item) == want]
    ordered_ids = {id(item) for item in ordered}
    result: list[Any] = []
    pending = iter(ordered)
    for item in items:
        if id(item) in ordered_ids:
            result.append(next(pending))
        else:
            result.append(item)
    return result
