"""LIST responses: selection, pagination and continue tokens. Pure: items in, bytes out.

Items carry no ``kind``/``apiVersion`` (the list does), as the API server sends them
(kubernetes/kubernetes#3030, still open; kubectl fills them in itself, in cli-runtime's
printers/typesetter.go). Watch events and single GETs keep both.

A continue token encodes, like the real server's, the snapshot revision and the key after
which the next page starts: base64url of ``{"v":"meta.k8s.io/v1","rv":N,"start":"ns/name\\x00"}``.
"""

from __future__ import annotations

import base64
import binascii
import bisect
from collections.abc import Sequence
from typing import Any

import orjson

from kubesim import errors
from kubesim.resources import ResourceInfo
from kubesim.selectors import FieldSelector, LabelSelector

__all__ = ["decode_continue", "encode_continue", "list_body", "list_item"]

Key = tuple[str, str]


def encode_continue(rv: int, key: Key) -> str:
    token = orjson.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": f"{key[0]}/{key[1]}\x00"})
    return base64.urlsafe_b64encode(token).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, Key]:
    """(snapshot revision, last key served); 400 for a token kubesim did not make."""
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        start = str(data["start"]).rstrip("\x00")
        namespace, _, name = start.partition("/")
        return int(data["rv"]), (namespace, name)
    except (binascii.Error, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise errors.bad_request(f"continue key is not valid: {err}") from err


def _type_meta_prefix(info: ResourceInfo) -> bytes:
    return (
        b'{"kind":"' + info.kind.encode() + b'","apiVersion":"' + info.api_version.encode() + b'",'
    )


def list_item_body(info: ResourceInfo, raw: bytes, prefix: bytes | None = None) -> memoryview:
    """A stored object as a list item, without its ``kind``, ``apiVersion`` and opening brace.

    Stored objects begin with both (the store writes them first, as the Go types encode
    them): that is a slice, not a copy. Anything else is decoded and re-encoded.
    """
    prefix = prefix if prefix is not None else _type_meta_prefix(info)
    if raw.startswith(prefix):
        return memoryview(raw)[len(prefix) :]
    obj = orjson.loads(raw)
    if isinstance(obj, dict):
        obj.pop("kind", None)
        obj.pop("apiVersion", None)
    return memoryview(orjson.dumps(obj))[1:]


def list_item(info: ResourceInfo, raw: bytes) -> bytes:
    """A stored object's bytes as a list item: without its ``kind`` and ``apiVersion``."""
    return b"{" + bytes(list_item_body(info, raw))


def list_body(
    info: ResourceInfo,
    items: Sequence[tuple[Key, dict[str, Any], bytes]],
    *,
    snapshot_rv: int,
    label: LabelSelector,
    field: FieldSelector,
    limit: int = 0,
    after: Key | None = None,
) -> bytes:
    """The <Kind>List JSON for ``items`` (sorted by key) after ``after``, at most ``limit``.

    Objects are joined from their stored bytes. ``remainingItemCount`` is only given without
    selectors, as the real server (which cannot count matches without reading them all).
    """
    if after is not None:
        items = items[bisect.bisect_right(items, after, key=lambda item: item[0]) :]
    filtered = not (label.empty and field.empty)
    prefix = _type_meta_prefix(info)
    chosen: list[memoryview] = []
    last_key: Key | None = None
    remaining = 0
    for key, obj, raw in items:
        if filtered and not (
            label.matches(obj.get("metadata", {}).get("labels")) and field.matches(obj)
        ):
            continue
        if limit and len(chosen) >= limit:
            if filtered:
                remaining = 1
                break
            remaining = len(items) - len(chosen)
            break
        chosen.append(list_item_body(info, raw, prefix))
        last_key = key
    meta = b'{"resourceVersion":"' + str(snapshot_rv).encode() + b'"'
    if remaining and last_key is not None:
        meta += b',"continue":"' + encode_continue(snapshot_rv, last_key).encode() + b'"'
        if not filtered:
            meta += b',"remainingItemCount":' + str(remaining).encode()
    return (
        b'{"kind":"'
        + info.list_kind.encode()
        + b'","apiVersion":"'
        + info.api_version.encode()
        + b'","metadata":'
        + meta
        + b'},"items":['
        + (b"{" + b",{".join(chosen) if chosen else b"")
        + b"]}"
    )
