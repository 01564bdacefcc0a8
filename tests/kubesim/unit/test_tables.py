"""kubectl's pod columns, as the API server's printer computes them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from kubesim.tables import (
    human_duration,
    pod_row,
    pod_status_text,
    pod_table,
    table_event_lines,
    wants_table,
)

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
KUBECTL_ACCEPT = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,"
    "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)


def test_only_a_v1_table_request_gets_a_table() -> None:
    assert wants_table(KUBECTL_ACCEPT)
    assert not wants_table("application/json")
    assert not wants_table("application/json;as=Table;v=v1beta1;g=meta.k8s.io")
    assert not wants_table("")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (330, "5m30s"),
        (3000, "50m"),
        (4 * 3600 + 600, "4h10m"),
        (20 * 3600, "20h"),
        (3 * 86400 + 4 * 3600, "3d4h"),
        (40 * 86400, "40d"),
        (3 * 365 * 86400 + 10 * 86400, "3y10d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_ages_read_like_kubectls(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def container(ready: bool = False, restarts: int = 0, **state: Any) -> dict[str, Any]:
    return {"name": "notebook", "ready": ready, "restartCount": restarts, "state": state}


def pod(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "jupyter-alice", "creationTimestamp": "2026-01-02T03:00:00Z"},
        "spec": {"containers": [{"name": "notebook"}], "initContainers": [{"name": "init"}]},
        "status": {"phase": "Pending", **status},
    }


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({}, ("Pending", 0, 0)),
        (
            {"phase": "Running", "containerStatuses": [container(True, 2, running={})]},
            ("Running", 1, 2),
        ),
        (
            {"containerStatuses": [container(waiting={"reason": "ContainerCreating"})]},
            ("ContainerCreating", 0, 0),
        ),
        (
            {
                "phase": "Running",
                "containerStatuses": [
                    container(restarts=4, waiting={"reason": "CrashLoopBackOff"})
                ],
            },
            ("CrashLoopBackOff", 0, 4),
        ),
        (
            {"phase": "Failed", "containerStatuses": [container(terminated={"exitCode": 3})]},
            ("ExitCode:3", 0, 0),
        ),
        ({"initContainerStatuses": [container(waiting={})]}, ("Init:0/1", 0, 0)),
        (
            {"initContainerStatuses": [container(terminated={"exitCode": 1, "reason": "Error"})]},
            ("Init:Error", 0, 0),
        ),
        ({"phase": "Failed", "reason": "Evicted"}, ("Evicted", 0, 0)),
    ],
)
def test_status_ready_and_restarts_follow_the_api_servers_printer(
    status: dict[str, Any], expected: tuple[str, int, int]
) -> None:
    assert pod_status_text(pod(**status)) == expected


def test_a_deleted_pod_is_terminating_and_the_wide_columns_say_none() -> None:
    deleted = pod(phase="Running")
    deleted["metadata"]["deletionTimestamp"] = "2026-01-02T03:04:00Z"
    assert pod_row(deleted, NOW) == [
        "jupyter-alice",
        "0/1",
        "Terminating",
        "0",
        "4m5s",
        "<none>",
        "<none>",
        "<none>",
        "<none>",
    ]


def test_a_table_has_the_columns_and_each_pods_metadata() -> None:
    running = pod(phase="Running", podIP="10.0.0.7")
    table = pod_table([running], list_metadata={"resourceVersion": "12"}, now=NOW)
    assert table["kind"] == "Table" and table["metadata"] == {"resourceVersion": "12"}
    assert [c["name"] for c in table["columnDefinitions"] if c["priority"] == 0] == [
        "Name",
        "Ready",
        "Status",
        "Restarts",
        "Age",
    ]
    assert table["rows"][0]["cells"][5] == "10.0.0.7"
    assert table["rows"][0]["object"]["metadata"]["name"] == "jupyter-alice"


def test_watch_events_of_pods_carry_one_row_tables_and_bookmarks_stay() -> None:
    added = orjson.dumps({"type": "ADDED", "object": {"kind": "Pod", **pod(phase="Running")}})
    bookmark = orjson.dumps({"type": "BOOKMARK", "object": {"kind": "Pod", "metadata": {}}})
    table_line, kept = table_event_lines([added + b"\n", bookmark + b"\n"])
    event = orjson.loads(table_line)
    assert event["type"] == "ADDED" and event["object"]["kind"] == "Table"
    assert [row["cells"][0] for row in event["object"]["rows"]] == ["jupyter-alice"]
    assert kept == bookmark + b"\n"
