"""Coalescing of watch bursts and the bounded buffer of early events (pure)."""

from __future__ import annotations

from kubecache.cacher.coalesce import PodChange, coalesce_events, coalesce_pods
from kubecache.cacher.pending import PendingEvents
from kubecache.contract import EventRecord, event_entry, pod_record
from tests.cacher.unit import pods


def change(
    state: str,
    *,
    deleted: bool = False,
    uid: str = pods.UID,
    rv: int | None = None,
    name: str = "jupyter-alice",
) -> PodChange:
    raw = pods.named(pods.ALL_STATES[state](), name, uid=uid, rv=rv)
    return PodChange(deleted, pod_record(raw))


def entry(uid: str, rv: int, pod_uid: str = pods.UID) -> EventRecord:
    got = event_entry(pods.event(uid=uid, rv=rv, pod_uid=pod_uid))
    assert got is not None
    return got[1]


def test_the_highest_resource_version_of_a_pod_wins() -> None:
    out = coalesce_pods([change("ready"), change("pulling"), change("running not ready")])
    assert list(out) == ["jhub/jupyter-alice"]
    assert out["jhub/jupyter-alice"].record["rv"] == 1006


def test_a_deletion_wins_over_every_other_state_of_the_same_uid() -> None:
    out = coalesce_pods([change("ready", deleted=True, rv=1050), change("ready", rv=1060)])
    assert out["jhub/jupyter-alice"].deleted


def test_a_new_uid_after_a_deletion_wins() -> None:
    out = coalesce_pods(
        [change("ready", deleted=True, rv=1050), change("pulling", uid="new", rv=1060)]
    )
    assert (out["jhub/jupyter-alice"].deleted, out["jhub/jupyter-alice"].record["uid"]) == (
        False,
        "new",
    )


def test_an_older_deletion_of_a_previous_uid_loses() -> None:
    out = coalesce_pods(
        [change("pulling", uid="new", rv=1060), change("ready", deleted=True, rv=1050)]
    )
    assert not out["jhub/jupyter-alice"].deleted


def test_pods_keep_their_first_seen_order() -> None:
    out = coalesce_pods([change("ready", name="jupyter-b"), change("ready", name="jupyter-a")])
    assert list(out) == ["jhub/jupyter-b", "jhub/jupyter-a"]


def test_events_keep_the_newest_version_per_uid_in_rv_order() -> None:
    out = coalesce_events([("k", entry("b", 5)), ("k", entry("a", 3)), ("k", entry("b", 9))])
    assert [(e["uid"], e["rv"]) for _, e in out] == [("a", 3), ("b", 9)]


def test_pending_events_are_taken_by_pod_and_uid() -> None:
    pending = PendingEvents(ttl=5, capacity=10, clock=lambda: 0.0)
    pending.add("ns/a", entry("1", 1))
    pending.add("ns/a", entry("2", 2, pod_uid="other"))
    pending.add("ns/b", entry("3", 3))
    assert [e["uid"] for e in pending.take("ns/a", pods.UID)] == ["1"]
    assert "ns/a" in pending and len(pending) == 2
    assert pending.take("ns/c", "x") == []


def test_pending_events_expire_after_their_ttl() -> None:
    now = [0.0]
    pending = PendingEvents(ttl=5, capacity=10, clock=lambda: now[0])
    pending.add("ns/a", entry("1", 1))
    now[0] = 3.0
    pending.add("ns/b", entry("2", 2))
    now[0] = 5.5
    assert pending.expire() == 1
    assert "ns/a" not in pending and "ns/b" in pending


def test_a_full_pending_buffer_drops_its_oldest_entries() -> None:
    pending = PendingEvents(ttl=5, capacity=2, clock=lambda: 0.0)
    dropped = sum(pending.add("ns/a", entry(str(i), i)) for i in range(5))
    assert dropped == 3
    assert [e["uid"] for e in pending.take("ns/a", pods.UID)] == ["3", "4"]
