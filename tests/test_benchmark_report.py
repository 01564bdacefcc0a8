"""The benchmark table's arithmetic (benchmarks/report.py): pure, no benchmark is run."""

from __future__ import annotations

from benchmarks.report import fresh_hub_rows, readiness_rows, table


def test_readiness_rows_judge_kubecache_against_its_goals_and_divide_kubespawner_by_it() -> None:
    data = {
        "readiness": {
            "sequential": {
                "kubespawner": {"n": 8, "p50_ms": 300.0, "p90_ms": 900.0, "p99_ms": 1200.0},
                "kubecache": {"n": 8, "p50_ms": 1.5, "p90_ms": 4.0, "p99_ms": 6.0},
            },
            "breakdown": {"hops": {"commit -> start() returns": {"p50_ms": 1.5, "p99_ms": 6.0}}},
        }
    }
    rows = {r["metric"].split(", ")[-1]: r for r in readiness_rows(data)}
    assert rows["p50 ms"]["verdict"] == "met"
    assert rows["p50 ms"]["ratio"] == 200.0
    assert rows["p90 ms"]["verdict"] == "-"
    assert rows["p99 ms"]["verdict"] == "MISSED"
    assert "1.5 / 6.0" in table(readiness_rows(data))


def test_the_ten_thousand_server_poll_goal_needs_zero_requests_and_one_second() -> None:
    kubecache = {
        "all_answered_s": 1.4,
        "answers": {"running": 10_000},
        "api": {"by_resource": {"get leases": 3}, "bytes": 0},
    }
    kubespawner = {
        "all_answered_s": 0.9,
        "answers": {"running": 9_999, "timeout": 1},
        "api": {"by_resource": {"list pods": 1, "watch pods": 1}, "bytes": 40 * 2**20},
    }
    row = {"events": 35_000, "kubespawner": kubespawner, "kubecache": kubecache}
    data = {"fresh_hub": {"10000": row}}
    rows = fresh_hub_rows(data)
    answered, requests, megabytes, not_running = rows[0], rows[1], rows[2], rows[3]
    assert (answered["verdict"], requests["verdict"]) == ("MISSED", "met")
    assert requests["kubespawner"] == "1 / 1"
    assert megabytes["kubespawner"] == 40.0 and megabytes["ratio"] == float("inf")
    assert not_running["kubespawner"] == 1
    assert "∞x" in table(rows, markdown=True)
