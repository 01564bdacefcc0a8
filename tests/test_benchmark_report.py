"""The benchmark table's arithmetic (benchmarks/report.py): pure, no benchmark is run."""

from __future__ import annotations

from benchmarks.report import (
    degraded_rows,
    fresh_hub_rows,
    hub_rss_rows,
    idle_rows,
    readiness_rows,
    table,
)


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


def test_the_hub_rss_sweep_reports_the_total_and_what_lies_above_the_loaded_code() -> None:
    point = {
        "events": 35_000,
        "kubespawner": {"rss_mb": 420.0, "rss_code_mb": 140.0},
        "kubecache": {"rss_mb": 300.0, "rss_code_mb": 148.0},
    }
    rows = hub_rss_rows({"hub_rss": {"10000": point, "500": {"events": 1750}}})
    assert "MB, 500 servers + 1,750 events" in rows[0]["metric"]  # numeric order, not text
    assert "MB, 10,000 servers + 35,000 events" in rows[2]["metric"]
    total, above = rows[2], rows[3]
    assert total["ratio"] == 1.4
    assert (above["kubespawner"], above["kubecache"]) == (280.0, 152.0)


def test_phases_after_the_climb_are_labelled_with_what_the_namespace_held() -> None:
    side = {"list_per_min": 10.0, "answers": {"running": 3000}}
    recorded = {"servers": 3000, "namespace": {"pods": 10_000, "events": 35_000},
                "1": {"kubespawner": side, "kubecache": side}}  # fmt: skip
    assert "(namespace: 10,000 pods, 35,000 events)" in idle_rows({"idle_hubs": recorded})[0][
        "metric"
    ]
    inferred = {"fresh_hub": {"1000": {}, "10000": {}}, "idle_hubs": {**recorded}}
    del inferred["idle_hubs"]["namespace"]
    assert "(namespace: 10,000 pods" in idle_rows(inferred)[0]["metric"]
    alone = {"idle_hubs": {**recorded, "namespace": {"pods": 3000, "events": 10_500}}}
    assert "namespace" not in idle_rows(alone)[0]["metric"]


def test_degraded_compares_with_kubespawner_polled_in_the_same_namespace() -> None:
    poll = {"all_answered_s": 0.5, "answers": {"running": 1000},
            "api": {"by_resource": {"list pods": 10}, "bytes": 0}}  # fmt: skip
    kubecache = {"all_answered_s": 1.0, "answers": {"running": 1000},
                 "api": {"by_resource": {"get pods": 1, "list pods": 10}, "bytes": 0}}  # fmt: skip
    data = {
        "fresh_hub": {"1000": {"kubespawner": {**poll, "all_answered_s": 0.2}}},
        "degraded": {
            "servers": 1000,
            "namespace": {"pods": 10_000, "events": 35_000},
            "kubespawner": poll,
            "stale": kubecache,
        },
    }
    rows = degraded_rows(data)
    assert rows[0]["kubespawner"] == 0.5 and rows[0]["verdict"] == "met"
    assert (rows[1]["kubespawner"], rows[1]["kubecache"]) == ("10 / 10", "11 / 10")
    assert "KubeSpawner: its fresh-hub poll" not in rows[0]["metric"]
    del data["degraded"]["kubespawner"]
    fallback = degraded_rows(data)
    assert fallback[0]["kubespawner"] == 0.2
    assert "(KubeSpawner: its fresh-hub poll with 1,000 pods)" in fallback[0]["metric"]
