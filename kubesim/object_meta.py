"""Small readings of an object's metadata shared by the store and the controllers.

Pure, and below both: the store (:mod:`kubesim.store`) runs the controllers
(:mod:`kubesim.controllers`), which must not import it back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

__all__ = ["format_time", "owner_uids"]


def format_time(moment: datetime | None = None) -> str:
    """RFC 3339 in UTC with second precision, as metav1.Time serialises."""
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def owner_uids(obj: dict[str, Any]) -> set[str]:
    """The uids the object's ownerReferences name."""
    refs = obj.get("metadata", {}).get("ownerReferences") or []
    return {str(ref["uid"]) for ref in refs if isinstance(ref, dict) and ref.get("uid")}
