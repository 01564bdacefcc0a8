"""The benchmark table's arithmetic (benchmarks/report.py): pure, no benchmark is run."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import report
from benchmarks.report import (
    degraded_rows,
    fresh_hub_rows,
    hub_rss_rows,
    idle_rows,
    kubecache_only_rows,
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
        "poll_cpu_s": 0.6,
        "gc_cpu_s": 0.2,
        "gc_collections": [400, 36, 1],
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
    answered, requests, megabytes = rows[0], rows[1], rows[2]
    not_running = next(r for r in rows if "not 'running'" in r["metric"])
    assert (answered["verdict"], requests["verdict"]) == ("MISSED", "met")
    assert requests["kubespawner"] == "1 / 1"
    assert megabytes["kubespawner"] == 40.0
    assert not_running["kubespawner"] == 1
    cpu = next(r for r in rows if "hub CPU while polling" in r["metric"])
    collector = next(r for r in rows if "garbage collector" in r["metric"])
    assert (cpu["kubespawner"], cpu["kubecache"]) == (None, 0.6)
    assert collector["kubecache"] == "0.20 (400/36/1)"
    # kubecache's 0 makes no ratio: "∞x" would say nothing about how little it is
    assert megabytes["ratio"] is None and "∞" not in table(rows, markdown=True)


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
    assert (
        "(namespace: 10,000 pods, 35,000 events)" in idle_rows({"idle_hubs": recorded})[0]["metric"]
    )
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


LOAD = [[1.2, 1.0, 0.9], [2.5, 1.4, 1.0]]


def test_every_percentile_row_states_its_samples_and_the_load() -> None:
    data = {
        "readiness": {
            "sequential": {
                "kubespawner": {"n": 31, "p50_ms": 300.0, "p90_ms": 900.0, "p99_ms": 1200.0},
                "kubecache": {"n": 32, "p50_ms": 1.5, "p90_ms": 4.0, "p99_ms": 6.0},
                "load_average": LOAD,
            },
            "breakdown": {
                "hops": {"commit -> start() returns": {"n": 16, "p50_ms": 1.5, "p99_ms": 6.0}},
                "load_average": LOAD,
            },
            "breakdown_concurrent": {
                "hops": {"commit -> a watcher receives": {"n": 50, "p50_ms": 4, "p99_ms": 9}},
                "concurrency": 50,
                "load_average": LOAD,
            },
        }
    }
    rows = readiness_rows(data)
    assert len(rows) == 5
    for r in rows:
        assert "load 1.2-2.5" in r["metric"], r["metric"]
    assert "(n=31 KubeSpawner / 32 kubecache, load 1.2-2.5)" in rows[0]["metric"]
    assert "(n=16, load 1.2-2.5)" in rows[3]["metric"]
    assert "a watcher receives (n=50, load 1.2-2.5, 50 at once)" in rows[4]["metric"]


def test_cacher_lag_rows_state_n_and_load_and_judge_5000_per_s_against_50_ms() -> None:
    lags = [
        {"rate": 500, "measured": 1500, "p50_ms": 1.0, "p99_ms": 8.0, "load_average": LOAD},
        {"rate": 5000, "measured": 15000, "p50_ms": 9.0, "p99_ms": 45.0, "load_average": LOAD,
         "plain_watch": {"n": 15000, "p50_ms": 2.5, "p99_ms": 20.0},
         "cacher_cpu_ms_per_1000_changes": 70.0},
    ]  # fmt: skip
    report_rows = kubecache_only_rows_from({"lags": lags})
    p99 = [r for r in report_rows if "p99" in r["metric"]]
    assert [r["verdict"] for r in p99] == ["met", "met"]
    assert [r["goal"] for r in p99] == ["<= 10", "<= 50"]
    assert all("load 1.2-2.5" in r["metric"] for r in report_rows)
    assert "(n=15000, load 1.2-2.5)" in p99[1]["metric"]
    everything = kubecache_only_rows_from({"lags": lags}, only_lag=False)
    emulator = [r for r in everything if "plain watch client" in r["metric"]]
    assert [r["kubecache"] for r in emulator] == ["2.5 / 20.0"]
    assert "n=15000, load 1.2-2.5" in emulator[0]["metric"]
    cpu = [r for r in everything if "CPU ms per 1,000 changes" in r["metric"]]
    assert [r["kubecache"] for r in cpu] == [70.0]


def kubecache_only_rows_from(
    cacher: dict[str, Any], *, only_lag: bool = True
) -> list[dict[str, Any]]:
    original = report.load
    try:
        report.load = lambda name: cacher if name == "cacher" else {}  # type: ignore[assignment]
        return [r for r in kubecache_only_rows() if "lag" in r["metric"] or not only_lag]
    finally:
        report.load = original  # type: ignore[assignment]


def test_idle_rows_show_the_cachers_small_traffic_as_a_number_and_the_window() -> None:
    ks = {"window_s": 60.2, "cacher_running": False, "list_per_min": 10.0, "requests_per_min": 26.0,
          "watch_per_min": 16.0, "bytes_per_min": 182 * 2**20, "open_watches": 4}  # fmt: skip
    kc = {"window_s": 60.1, "cacher_running": True, "list_per_min": 0.0, "requests_per_min": 66.0,
          "watch_per_min": 6.0, "bytes_per_min": 3_100, "open_watches": 2}  # fmt: skip
    rows = idle_rows({"idle_hubs": {"servers": 3000, "window_s": 60.0,
                                    "1": {"kubespawner": ks, "kubecache": kc}}})  # fmt: skip
    mb = next(r for r in rows if "MB per min" in r["metric"])
    assert "60 s windows" in mb["metric"] and "both columns" not in mb["metric"]
    text = table(rows)
    assert "0.00296" in text  # 3,100 bytes a minute, not "0.00"
    assert "∞" not in text
    assert mb["ratio"] == pytest.approx(182 * 2**20 / 3_100)
    lists = next(r for r in rows if "LIST per min" in r["metric"])
    assert lists["ratio"] is None  # 10 against 0: no ratio
    requests = next(r for r in rows if "all API requests per min" in r["metric"])
    assert (requests["kubespawner"], requests["kubecache"]) == (26.0, 66.0)
    older = {
        "servers": 3000,
        "window_s": 10.0,
        "1": {"kubespawner": {"mb_per_min": 182.0}, "kubecache": {}},
    }
    assert "the cacher's requests in both columns" in idle_rows({"idle_hubs": older})[0]["metric"]


def test_fresh_hub_at_3000_and_10000_servers_must_be_twice_as_fast_as_kubespawner() -> None:
    def side(seconds: float) -> dict[str, Any]:
        return {"all_answered_s": seconds, "load_average": LOAD}

    data = {
        "fresh_hub": {
            "1000": {"kubespawner": side(0.2), "kubecache": side(0.15)},
            "3000": {"kubespawner": side(0.5), "kubecache": side(0.2)},
            "10000": {"kubespawner": side(1.2), "kubecache": side(0.9)},
        }
    }
    answered = [r for r in fresh_hub_rows(data) if "every poll answered" in r["metric"]]
    assert [r["verdict"] for r in answered] == ["-", "met", "MISSED"]
    assert answered[1]["goal"] == ">= 2x KubeSpawner"
    assert answered[2]["goal"] == "<= 1 (10,000); >= 2x KubeSpawner"
    assert all("load 1.2-2.5" in r["metric"] for r in answered)


def test_the_report_writes_its_table_without_matplotlib(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    compare = {
        "machine": {"cpus": 2, "load_average_at_start": [1.0, 1.0, 1.0]},
        "readiness": {
            "sequential": {
                "kubespawner": {"n": 3, "p50_ms": 300.0, "p90_ms": 900.0, "p99_ms": 1200.0},
                "kubecache": {"n": 3, "p50_ms": 1.5, "p90_ms": 4.0, "p99_ms": 6.0},
                "samples_s": {"kubespawner": [0.3], "kubecache": [0.0015]},
            }
        },
    }
    (tmp_path / "compare.json").write_text(json.dumps(compare))
    monkeypatch.setattr(report, "RESULTS", tmp_path)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    assert report.main() == 0
    assert "readiness sequential" in (tmp_path / "table.md").read_text()
    assert json.loads((tmp_path / "summary.json").read_text())["rows"]
    assert not list(tmp_path.glob("*.png"))
    assert "no plots: matplotlib is not installed" in capsys.readouterr().out
