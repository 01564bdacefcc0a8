"""Coalescing of bursts of watch changes (pure).

A burst of changes to one pod becomes one write: the change with the highest
resourceVersion wins, and a deletion wins over every other state of the same
pod uid (a pod never comes back from deletion; a new pod under the same name
has a new uid). Event updates (``count`` incremented) keep the newest version
per Event uid.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kubecache.contract import EventRecord, PodRecord, pod_key


@dataclass(frozen=True, slots=True)
class PodChange:
    deleted: bool
    record: PodRecord

    @property
    def key(self) -> str:
        return pod_key(self.record["namespace"], self.record["name"])


def coalesce_pods(changes: Iterable[PodChange]) -> dict[str, PodChange]:
    """The one change to write per pod key, in first-seen order."""
    out: dict[str, PodChange] = {}
    for change in changes:
        key = change.key
        previous = out.get(key)
        if previous is not None:
            same_pod = previous.record["uid"] == change.record["uid"]
            if same_pod and previous.deleted and not change.deleted:
                continue
            newer_deletion = same_pod and change.deleted and not previous.deleted
            if not newer_deletion and change.record["rv"] < previous.record["rv"]:
                continue
        out[key] = change
    return out


def coalesce_events(entries: Iterable[tuple[str, EventRecord]]) -> list[tuple[str, EventRecord]]:
    """The newest version of each Event, ordered by resourceVersion."""
    newest: dict[str, tuple[str, EventRecord]] = {}
    for key, entry in entries:
        previous = newest.get(entry["uid"])
        if previous is None or entry["rv"] > previous[1]["rv"]:
            newest[entry["uid"]] = (key, entry)
    return sorted(newest.values(), key=lambda item: item[1]["rv"])


__all__ = ["PodChange", "coalesce_events", "coalesce_pods"]
