"""The Redis contract: keys, record codecs and cache freshness."""

from __future__ import annotations

import pytest

from kubecache import contract
from kubecache.contract import CacheHealth, ContractError, Freshness, Keys
from kubecache.views import freshness_reason
from tests.spawner.support import feed_fields


def test_keys_live_under_the_prefix_so_deployments_do_not_collide() -> None:
    a, b = Keys(), Keys("other:v1:")
    assert a.pods == "kubecache:v1:pods"
    assert a.events("jhub/jupyter-alice") == "kubecache:v1:events:jhub/jupyter-alice"
    all_a = {a.health, a.pods, a.pod_rv, a.feed, a.events("n/p")}
    all_b = {b.health, b.pods, b.pod_rv, b.feed, b.events("n/p")}
    assert not all_a & all_b


@pytest.mark.parametrize("prefix", ["", "kubecache", "a b:", "x*:", "p" * 70 + ":"])
def test_unusable_prefixes_are_refused_with_the_reason(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        Keys(prefix)


def test_pod_record_round_trips_and_drops_missing_values() -> None:
    record: contract.PodRecord = {
        "namespace": "jhub",
        "name": "jupyter-alice",
        "uid": "u1",
        "rv": 42,
        "phase": "Running",
        "ready": True,
        "ip": "10.0.0.7",
        "containers": [{"name": "notebook", "ready": True, "state": "running", "restarts": 0}],
        "labels": {"component": "singleuser-server"},
        "annotations": {},
    }
    raw = contract.encode_pod_record({**record, "node": None})  # type: ignore[typeddict-item]
    assert b"node" not in raw
    assert contract.decode_pod_record(raw, key="jhub/jupyter-alice") == record


def test_a_stored_container_without_restarts_decodes_with_zero_restarts() -> None:
    raw = (
        b'{"namespace":"n","name":"p","uid":"u","rv":7,"phase":"Running","ready":true,'
        b'"containers":[{"name":"a","ready":true,"state":"running"},'
        b'{"name":"b","ready":false,"state":"waiting","restarts":3}]}'
    )
    containers = contract.decode_pod_record(raw)["containers"]
    assert [(c["name"], c["restarts"]) for c in containers] == [("a", 0), ("b", 3)]


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[1]",
        b'{"namespace": "n"}',
        b'{"namespace":"n","name":"p","uid":"u","rv":"7","phase":"Running","ready":true}',
        b'{"namespace":"n","name":"p","uid":"u","rv":7,"phase":"Running","ready":1}',
    ],
)
def test_malformed_pod_records_raise_contract_errors(raw: bytes) -> None:
    with pytest.raises(ContractError, match="malformed pod record"):
        contract.decode_pod_record(raw)


def test_feed_entries_round_trip_through_stream_fields() -> None:
    entry: contract.FeedEntry = {"kind": "pod", "key": "jhub/p", "rv": 9, "epoch": 3}
    fields = {k.encode(): v.encode() for k, v in feed_fields(entry).items()}
    assert contract.decode_feed_entry(fields) == entry
    with pytest.raises(ContractError):
        contract.decode_feed_entry({b"kind": b"bogus"})


def _health(**changes: object) -> CacheHealth:
    base = {"schema": 1, "leader": "c-0", "epoch": 5, "synced": True, "heartbeat_ms": 10_000}
    return CacheHealth(**{**base, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("health", "now_ms", "expected"),
    [
        (_health(), 12_000, Freshness.FRESH),
        (_health(), 16_000, Freshness.STALE),
        (_health(synced=False), 12_000, Freshness.NOT_SYNCED),
        (_health(pods_watch="failed 403 Forbidden"), 12_000, Freshness.STALE),
        (_health(events_watch="failed 403 Forbidden"), 12_000, Freshness.FRESH),
        (_health(schema=2), 12_000, Freshness.INCOMPATIBLE),
        (None, 12_000, Freshness.UNKNOWN),
        # the pods watch shows no progress for longer than the cacher promised: stale
        (_health(pods_progress_ms=1_000, progress_stale_ms=10_000), 12_000, Freshness.STALE),
        (_health(pods_progress_ms=3_000, progress_stale_ms=10_000), 12_000, Freshness.FRESH),
        # a stalled events watch costs progress messages only
        (_health(events_progress_ms=1, progress_stale_ms=10_000), 12_000, Freshness.FRESH),
    ],
)
def test_freshness_tells_absent_pods_from_an_untrusted_cache(
    health: CacheHealth | None, now_ms: int, expected: Freshness
) -> None:
    assert contract.health_freshness(health, now_ms=now_ms, stale_after_ms=5_000) is expected
    assert expected.trusted == (expected is Freshness.FRESH)


def test_health_written_on_another_primary_is_not_trusted() -> None:
    health = _health(primary_replid="a" * 40)
    fresh = {"now_ms": 12_000, "stale_after_ms": 5_000}
    assert health.freshness(**fresh, node_replid="a" * 40) is Freshness.FRESH
    assert health.freshness(**fresh, node_replid="b" * 40) is Freshness.FAILED_OVER
    assert not Freshness.FAILED_OVER.trusted
    # a reader that could not learn the node's identity falls back to the other checks
    assert health.freshness(**fresh, node_replid=None) is Freshness.FRESH


def test_health_round_trips_through_redis_fields() -> None:
    health = _health(
        pods_rv="100",
        namespaces="jhub,other",
        pods_progress_ms=9_000,
        progress_stale_ms=30_000,
        primary_replid="f" * 40,
        primary_addr="10.0.0.1:6379",
        failovers=2,
        last_failover_ms=8_000,
    )
    fields = {k.encode(): v.encode() for k, v in health.to_redis().items()}
    assert CacheHealth.from_redis(fields) == health
    assert CacheHealth.from_redis({}) is None
    with pytest.raises(ContractError):
        CacheHealth.from_redis({"epoch": "x"})


def test_redis_time_reply_becomes_milliseconds() -> None:
    assert contract.redis_time_ms((1700000000, 123456)) == 1700000000123


def _named(labels: dict[str, str], annotations: dict[str, str]) -> contract.PodRecord:
    return {  # type: ignore[typeddict-item]
        "namespace": "n",
        "name": "p",
        "uid": "u",
        "rv": 1,
        "phase": "Running",
        "ready": True,
        "containers": [],
        "labels": labels,
        "annotations": annotations,
    }


def test_user_and_server_prefer_the_raw_name_annotations() -> None:
    record = _named(
        {"hub.jupyter.org/username": "mock-name---6241db84"},
        {"hub.jupyter.org/username": "mock@name", "hub.jupyter.org/servername": ""},
    )
    assert contract.user_and_server(record) == ("mock@name", "")


def test_user_and_server_fall_back_to_labels_of_older_pods() -> None:
    record = _named({"hub.jupyter.org/username": "alice", "hub.jupyter.org/servername": "gpu"}, {})
    assert contract.user_and_server(record) == ("alice", "gpu")


@pytest.mark.parametrize(
    ("namespaces", "selector", "covered"),
    [
        ("", "component=singleuser-server", True),
        ("jhub,other", "component=singleuser-server", True),
        ("other", "component=singleuser-server", False),
        ("", "component=someone-elses", False),
        ("", "", True),
        ("", "this is not a selector", False),
    ],
)
def test_the_health_says_which_pods_the_cacher_watches(
    namespaces: str, selector: str, covered: bool
) -> None:
    health = _health(namespaces=namespaces, pod_selector=selector)
    assert health.covers("jhub", {"component": "singleuser-server"}) is covered


def _with_names(user: str, server: str = "") -> contract.PodRecord:
    record = contract.decode_pod_record(
        b'{"uid":"u","rv":1,"phase":"Running","ready":true}', key="jhub/jupyter-x"
    )
    record["annotations"] = {
        contract.USERNAME_KEY: user[: contract.MAX_META_VALUE],
        contract.SERVERNAME_KEY: server[: contract.MAX_META_VALUE],
    }
    cut = {
        key: contract.full_value_sha256(value)
        for key, value in ((contract.USERNAME_KEY, user), (contract.SERVERNAME_KEY, server))
        if len(value) > contract.MAX_META_VALUE
    }
    if cut:
        record["cut_sha256"] = cut
    return record


def test_names_match_exactly_also_beyond_the_kept_length() -> None:
    long_user = "a" * contract.MAX_META_VALUE + "-one"
    record = _with_names(long_user, "s" * 300)
    assert contract.names_match(record, user=long_user, server="s" * 300)
    assert not contract.names_match(record, user="a" * contract.MAX_META_VALUE)
    assert not contract.names_match(record, user=long_user + "x")
    assert not contract.names_match(record, user=long_user, server="s" * 299)
    assert contract.names_match(_with_names("alice"), user="alice", server="")
    assert not contract.names_match(_with_names("alice"), user="alic")
    assert contract.names_match(_with_names("alice"))


def test_records_without_digests_still_decode_and_match_only_what_they_keep() -> None:
    record = _with_names("b" * contract.MAX_META_VALUE)  # as an older cacher cut a longer name
    assert "cut_sha256" not in record
    assert contract.names_match(record, user="b" * contract.MAX_META_VALUE)
    assert not contract.names_match(record, user="b" * (contract.MAX_META_VALUE + 1))


@pytest.mark.parametrize(
    "raw",
    [
        b'{"uid":"u","rv":1,"phase":"P","ready":true,"annotations":[]}',
        b'{"uid":"u","rv":1,"phase":"P","ready":true,"containers":[{"name":"c","ready":true}]}',
        b'{"uid":"u","rv":1,"phase":"P","ready":true,"containers":[1]}',
        b'{"uid":"u","rv":1,"phase":"P","ready":true,"node":7}',
        b'{"uid":"u","rv":1,"phase":"P","ready":true,"cut_sha256":{"k":1}}',
        b'{"uid":"u","rv":1,"phase":"P","ready":true,"labels":{"k":null}}',
        b'{"uid":"u","rv":1,"phase":"P","ready":true,"containers":'
        b'[{"name":"c","ready":true,"state":"running","exit_code":"0"}]}',
    ],
)
def test_decode_refuses_records_a_reader_would_trip_over(raw: bytes) -> None:
    with pytest.raises(contract.ContractError):
        contract.decode_pod_record(raw, key="jhub/p")


def test_health_and_feed_with_bytes_that_are_not_utf8_are_contract_errors() -> None:
    with pytest.raises(contract.ContractError):
        contract.CacheHealth.from_redis({b"schema": b"1", b"leader": b"\xff"})
    with pytest.raises(contract.ContractError):
        contract.decode_feed_entry({b"kind": b"\xff"})


def test_status_names_a_pods_watch_without_progress_and_the_promise() -> None:
    health = _health(pods_progress_ms=1_000, progress_stale_ms=10_000)
    reason = freshness_reason(
        health, Freshness.STALE, now_ms=12_000, stale_after_ms=5_000, prefix="kubecache:"
    )
    assert reason.startswith("the cacher's pods watch has shown no progress for 11.0 s")
    assert "limit 10 s" in reason and "watch ended by the API server on time" in reason
