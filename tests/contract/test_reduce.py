"""Reduction of raw pods and events into contract records (pure, no I/O), and the stored form."""

from __future__ import annotations

import copy
import re
from typing import Any

import orjson
import pytest

from kubecache.contract import (
    MAX_MESSAGE,
    MAX_META_VALUE,
    SERVERNAME_KEY,
    USERNAME_KEY,
    ContractError,
    MalformedObject,
    decode_pod_record,
    encode_pod_record,
    event_entry,
    full_value_sha256,
    object_key,
    pod_record,
    unix_seconds,
    user_and_server,
)
from tests.cacher.unit import pods


def test_a_pending_unschedulable_pod_carries_the_scheduler_message() -> None:
    record = pod_record(pods.pending_unschedulable())
    assert record["phase"] == "Pending"
    assert record["ready"] is False
    assert record["unschedulable"].startswith("0/3 nodes are available: 3 Insufficient memory")
    assert "node" not in record and "ip" not in record
    assert record["containers"] == [
        {"name": "notebook", "ready": False, "state": "waiting", "restarts": 0}
    ]


def test_a_pulling_pod_waits_in_container_creating_on_its_node() -> None:
    record = pod_record(pods.pulling())
    assert record["node"] == "node-1"
    assert "unschedulable" not in record
    assert record["containers"][0]["state"] == "waiting"
    assert record["containers"][0]["reason"] == "ContainerCreating"
    assert "exit_code" not in record["containers"][0]


def test_an_image_pull_back_off_keeps_reason_and_message() -> None:
    container = pod_record(pods.image_pull_backoff())["containers"][0]
    assert container["reason"] == "ImagePullBackOff"
    assert "no-such-tag" in container["message"]


def test_a_running_pod_that_is_not_ready_is_running_but_not_ready() -> None:
    record = pod_record(pods.running_not_ready())
    assert record["phase"] == "Running"
    assert record["ready"] is False
    assert record["ip"] == "10.244.1.23"
    assert record["started"] == pods.STARTED_S
    assert record["containers"][0] == {
        "name": "notebook",
        "ready": False,
        "state": "running",
        "restarts": 0,
    }


def test_a_ready_pod_is_reduced_to_the_full_expected_record() -> None:
    assert pod_record(pods.ready()) == {
        "namespace": "jhub",
        "name": "jupyter-alice",
        "uid": pods.UID,
        "rv": 1006,
        "phase": "Running",
        "ready": True,
        "created": pods.CREATED_S,
        "ip": "10.244.1.23",
        "node": "node-1",
        "started": pods.STARTED_S,
        "containers": [{"name": "notebook", "ready": True, "state": "running", "restarts": 0}],
        # Per-pod labels only; the name labels give way to the raw-name annotations.
        "labels": {"component": "singleuser-server"},
        "annotations": {"hub.jupyter.org/username": "alice", "hub.jupyter.org/servername": ""},
    }


def test_a_terminating_pod_carries_deletion_time_and_grace() -> None:
    record = pod_record(pods.terminating())
    assert record["deleted"] == 1714568430
    assert record["grace"] == 30
    assert record["ready"] is True


def test_a_succeeded_pod_has_a_completed_container_with_exit_code_zero() -> None:
    record = pod_record(pods.succeeded())
    assert record["phase"] == "Succeeded"
    assert record["containers"][0] == {
        "name": "notebook",
        "ready": False,
        "state": "terminated",
        "restarts": 0,
        "reason": "Completed",
        "exit_code": 0,
    }


def test_a_failed_pod_keeps_the_error_exit_code_and_message() -> None:
    container = pod_record(pods.failed())["containers"][0]
    assert (container["reason"], container["exit_code"]) == ("Error", 1)
    assert "unrecognized arguments" in container["message"]


def test_an_oom_killed_container_reports_oomkilled_and_137() -> None:
    record = pod_record(pods.oom_killed())
    assert record["phase"] == "Failed"
    assert (record["containers"][0]["reason"], record["containers"][0]["exit_code"]) == (
        "OOMKilled",
        137,
    )


def test_an_evicted_pod_carries_the_pod_level_reason_and_message() -> None:
    record = pod_record(pods.evicted())
    assert record["phase"] == "Failed"
    assert record["reason"] == "Evicted"
    assert record["message"].startswith("The node was low on resource: memory.")
    assert record["containers"][0]["state"] == "terminated"


def test_a_crash_looping_container_waits_with_the_last_exit_code_and_restarts() -> None:
    container = pod_record(pods.crash_loop())["containers"][0]
    assert container["state"] == "waiting"
    assert container["reason"] == "CrashLoopBackOff"
    assert container["exit_code"] == 2
    assert container["restarts"] == 5


@pytest.mark.parametrize("state", sorted(pods.ALL_STATES))
def test_every_state_round_trips_through_the_contract_codec(state: str) -> None:
    """A record with its names in the body (as older cachers stored it) still decodes."""
    record = pod_record(pods.ALL_STATES[state]())
    assert decode_pod_record(orjson.dumps(record)) == record


@pytest.mark.parametrize("state", sorted(pods.ALL_STATES))
def test_every_state_round_trips_through_the_stored_form(state: str) -> None:
    record = pod_record(pods.ALL_STATES[state]())
    key = f"{record['namespace']}/{record['name']}"
    assert decode_pod_record(encode_pod_record(record), key=key) == record


def test_the_stored_form_starts_with_the_uid_then_the_integer_rv() -> None:
    stored = encode_pod_record(pod_record(pods.ready()))
    assert stored.startswith(b'{"uid":"' + pods.UID.encode() + b'","rv":1006,')


def test_the_stored_form_leaves_the_name_to_the_field_that_holds_it() -> None:
    stored = encode_pod_record(pod_record(pods.ready()))
    assert b"jupyter-alice" not in stored and b'"namespace"' not in stored
    with pytest.raises(ContractError, match="namespace"):
        decode_pod_record(stored)
    with pytest.raises(ContractError, match="holds another pod"):
        decode_pod_record(orjson.dumps(pod_record(pods.ready())), key="jhub/jupyter-bob")


def test_rv_text_inside_any_value_never_matches_the_scripts_rv_pattern() -> None:
    """The write scripts take the first match of '"rv":(%d+)'; only the real rv can match."""
    looks_like_rv = '"rv":999999,"rv":7}'
    raw = pods.evicted()
    meta = raw["metadata"]
    meta["uid"] = looks_like_rv
    meta["labels"]["component"] = looks_like_rv
    meta["labels"].pop("hub.jupyter.org/username")
    meta["annotations"] = {"hub.jupyter.org/" + looks_like_rv: looks_like_rv}
    raw["status"]["message"] = looks_like_rv
    raw["status"]["containerStatuses"][0]["state"]["terminated"]["message"] = looks_like_rv
    stored = encode_pod_record(pod_record(raw))
    assert stored.count(b'"rv":') == 1
    assert re.findall(rb'"rv":(\d+)', stored) == [b"1011"]


def test_the_stored_form_leaves_out_empty_maps_that_decoding_restores() -> None:
    record = pod_record(pods.ready())
    record["labels"], record["annotations"], record["containers"] = {}, {}, []
    stored = encode_pod_record(record)
    for key in (b'"labels"', b'"annotations"', b'"containers"'):
        assert key not in stored
    assert decode_pod_record(stored, key="jhub/jupyter-alice") == record


def test_the_stored_form_leaves_out_zero_restarts_only() -> None:
    assert b'"restarts"' not in encode_pod_record(pod_record(pods.ready()))
    assert b'"restarts":5' in encode_pod_record(pod_record(pods.crash_loop()))


def test_the_stored_form_refuses_a_record_whose_rv_is_not_an_integer() -> None:
    record = pod_record(pods.ready())
    record["rv"] = "1006"  # type: ignore[typeddict-item]
    with pytest.raises(TypeError, match="rv"):
        encode_pod_record(record)


def test_containers_are_summarised_in_spec_order_even_without_statuses() -> None:
    raw = pods.ready()
    sidecar = {"name": "sidecar", "image": "busybox"}
    raw["spec"]["containers"].insert(0, sidecar)
    names = [c["name"] for c in pod_record(raw)["containers"]]
    assert names == ["sidecar", "notebook"]
    assert pod_record(raw)["containers"][0]["state"] == "waiting"


def test_labels_and_annotations_are_filtered_and_cut() -> None:
    raw = pods.ready()
    raw["metadata"]["labels"]["secret-team-label"] = "x"
    raw["metadata"]["annotations"]["hub.jupyter.org/long"] = "v" * 1000
    record = pod_record(raw)
    assert "secret-team-label" not in record["labels"]
    assert "kubectl.kubernetes.io/default-container" not in record["annotations"]
    assert record["annotations"]["hub.jupyter.org/long"] == "v" * MAX_META_VALUE


def test_deployment_wide_labels_are_not_kept() -> None:
    labels = pod_record(pods.ready())["labels"]
    for key in ("app", "release", "chart", "heritage", "app.kubernetes.io/name"):
        assert key not in labels


@pytest.mark.parametrize("key", [USERNAME_KEY, SERVERNAME_KEY])
def test_a_name_label_is_kept_only_when_no_annotation_of_the_same_key_exists(key: str) -> None:
    raw = pods.ready()
    raw["metadata"]["labels"][key] = "escaped-2dname"
    assert key not in pod_record(raw)["labels"]
    del raw["metadata"]["annotations"][key]  # a pod made before KubeSpawner 7
    record = pod_record(raw)
    assert record["labels"][key] == "escaped-2dname"
    assert "escaped-2dname" in user_and_server(record)


def test_an_empty_server_name_annotation_still_replaces_the_label() -> None:
    raw = pods.ready()
    raw["metadata"]["labels"][SERVERNAME_KEY] = "stale"
    record = pod_record(raw)
    assert SERVERNAME_KEY not in record["labels"]
    assert user_and_server(record) == ("alice", "")


def test_a_pod_made_before_kubespawner_7_keeps_both_name_labels() -> None:
    raw = pods.ready()
    raw["metadata"]["annotations"] = {}
    raw["metadata"]["labels"][SERVERNAME_KEY] = "gpu"
    record = pod_record(raw)
    assert record["labels"] == {
        "component": "singleuser-server",
        SERVERNAME_KEY: "gpu",
        USERNAME_KEY: "alice",
    }
    assert record["annotations"] == {}
    assert user_and_server(record) == ("alice", "gpu")


def test_long_messages_are_cut() -> None:
    raw = pods.evicted()
    raw["status"]["message"] = "m" * 5000
    assert len(pod_record(raw)["message"]) == MAX_MESSAGE


def test_a_pod_without_status_is_pending() -> None:
    raw = pods.ready()
    del raw["status"]
    record = pod_record(raw)
    assert (record["phase"], record["ready"]) == ("Pending", False)


@pytest.mark.parametrize("field", ["name", "namespace", "uid", "resourceVersion"])
def test_a_pod_without_identity_is_malformed_not_a_key_error(field: str) -> None:
    raw = pods.ready()
    del raw["metadata"][field]
    with pytest.raises(MalformedObject, match=field):
        pod_record(raw)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("metadata",), "not-an-object"),
        (("metadata", "labels"), ["a"]),
        (("metadata", "labels", "component"), 5),
        (("metadata", "resourceVersion"), "abc"),
        (("metadata", "creationTimestamp"), "yesterday"),
        (("metadata", "deletionGracePeriodSeconds"), "30"),
        (("spec", "containers"), {"name": "x"}),
        (("spec", "containers", 0), "notebook"),
        (("status",), 7),
        (("status", "conditions"), [None]),
        (("status", "containerStatuses", 0, "restartCount"), "five"),
        (("status", "containerStatuses", 0, "state"), "running"),
        (("status", "podIP"), 12),
    ],
)
def test_fields_of_the_wrong_type_make_the_pod_malformed(path: tuple[Any, ...], value: Any) -> None:
    raw = pods.ready()
    target: Any = raw
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    with pytest.raises(MalformedObject, match=r"^pod"):
        pod_record(raw)


@pytest.mark.parametrize("raw", [None, [], "pod", 3])
def test_a_pod_that_is_not_an_object_is_malformed(raw: Any) -> None:
    with pytest.raises(MalformedObject):
        pod_record(raw)


def test_object_key_is_lenient_for_listed_objects_that_fail_to_reduce() -> None:
    raw = pods.ready()
    raw["status"] = 7
    assert object_key(raw) == "jhub/jupyter-alice"
    assert object_key({"metadata": {"name": "x"}}) is None
    assert object_key("nope") is None


def test_unix_seconds_accepts_fractions_and_offsets() -> None:
    assert unix_seconds("2024-05-01T12:00:00Z") == pods.CREATED_S
    assert unix_seconds("2024-05-01T12:00:00.123456Z") == pods.CREATED_S
    assert unix_seconds("2024-05-01T14:00:00+02:00") == pods.CREATED_S


# -- events


def test_a_pod_event_is_reduced_to_its_pod_key_and_entry() -> None:
    key, entry = event_entry(pods.event()) or ("", {})
    assert key == "jhub/jupyter-alice"
    assert entry == {
        "uid": "e0000000-0000-0000-0000-000000000001",
        "rv": 2001,
        "pod_uid": pods.UID,
        "type": "Normal",
        "reason": "Scheduled",
        "message": "Successfully assigned jhub/jupyter-alice to node-1",
        "first": pods.SCHEDULED,
        "last": pods.SCHEDULED,
        "count": 1,
    }


def test_an_event_of_another_kind_is_ignored() -> None:
    assert event_entry(pods.event(kind="PersistentVolumeClaim")) is None


def test_last_falls_back_to_event_time_then_first_timestamp() -> None:
    raw = pods.event()
    raw["lastTimestamp"] = None
    raw["eventTime"] = "2024-05-01T12:00:09.000001Z"
    assert (event_entry(raw) or ("", {}))[1]["last"] == "2024-05-01T12:00:09.000001Z"
    raw["eventTime"] = None
    assert (event_entry(raw) or ("", {}))[1]["last"] == pods.SCHEDULED


def test_an_event_without_count_counts_once_and_series_count_is_used() -> None:
    raw = pods.event(count=None)
    assert (event_entry(raw) or ("", {}))[1]["count"] == 1
    raw["series"] = {"count": 4, "lastObservedTime": "2024-05-01T12:01:00.000000Z"}
    assert (event_entry(raw) or ("", {}))[1]["count"] == 4


def test_event_messages_are_cut() -> None:
    raw = pods.event(message="x" * 4000)
    assert len((event_entry(raw) or ("", {}))[1]["message"]) == MAX_MESSAGE


def test_a_warning_event_keeps_type_and_a_new_rv() -> None:
    raw = pods.event(
        "BackOff", "Back-off restarting failed container", type_="Warning", rv=2050, count=7
    )
    entry = (event_entry(raw) or ("", {}))[1]
    assert (entry["type"], entry["rv"], entry["count"]) == ("Warning", 2050, 7)


@pytest.mark.parametrize(
    "damage",
    [
        lambda e: e["metadata"].pop("uid"),
        lambda e: e["metadata"].pop("resourceVersion"),
        lambda e: e["involvedObject"].pop("name"),
        lambda e: e.__setitem__("involvedObject", "pod"),
        lambda e: e.__setitem__("count", "3"),
        lambda e: e.__setitem__("message", {"text": "x"}),
    ],
)
def test_damaged_pod_events_are_malformed(damage: Any) -> None:
    raw = copy.deepcopy(pods.event())
    damage(raw)
    with pytest.raises(MalformedObject):
        event_entry(raw)


def test_a_spawn_reduces_to_its_events_in_order() -> None:
    entries = [event_entry(e) for e in pods.spawn_events()]
    assert [e[1]["reason"] for e in entries if e] == [
        "Scheduled",
        "Pulling",
        "Pulled",
        "Created",
        "Started",
    ]
    assert {e[0] for e in entries if e} == {"jhub/jupyter-alice"}


def test_a_repeated_scheduling_failure_keeps_its_count_and_last_time() -> None:
    _, entry = event_entry(pods.failed_scheduling_event()) or ("", {})
    assert (entry["type"], entry["count"], entry["last"]) == ("Warning", 3, "2024-05-01T12:00:31Z")
    assert entry["first"] == pods.SCHEDULED


def test_a_cut_annotation_keeps_the_digest_of_its_full_value_and_round_trips() -> None:
    raw = pods.ready()
    long_user = "w" * (MAX_META_VALUE + 40)
    raw["metadata"]["annotations"][USERNAME_KEY] = long_user
    record = pod_record(raw)
    assert record["annotations"][USERNAME_KEY] == long_user[:MAX_META_VALUE]
    assert record["cut_sha256"] == {USERNAME_KEY: full_value_sha256(long_user)}
    key = f"{record['namespace']}/{record['name']}"
    assert decode_pod_record(encode_pod_record(record), key=key) == record
    assert "cut_sha256" not in pod_record(pods.ready())  # nothing cut, nothing added
