"""The side-by-side table and plots from ``benchmarks/results/*.json``.

    python benchmarks/report.py            # print the table, write summary.json and the PNGs

Rows: metric, KubeSpawner 7.1, kubecache, ratio (KubeSpawner / kubecache:
how many times more time, requests, bytes or memory KubeSpawner needs; "-"
when kubecache's figure is 0, where a ratio says nothing), goal (kubecache's,
from the project brief and issue 23) and verdict. Figures kubecache alone has
(the cacher, Redis) show "-" for KubeSpawner. Every percentile row states how
many samples it has (n) and the machine's 1-minute load average while it was
measured. The plots need matplotlib (the ``bench`` extra); without it the
table, ``summary.json`` and ``table.md`` are written all the same.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"

Row = dict[str, Any]


def load(name: str) -> dict[str, Any]:
    path = RESULTS / f"{name}.json"
    return dict(json.loads(path.read_text())) if path.exists() else {}


def get(data: Any, *path: str | int) -> Any:
    for part in path:
        if isinstance(data, dict):
            data = data.get(str(part)) if str(part) in data else data.get(part)  # type: ignore[call-overload]
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return None
    return data


def row(
    metric: str,
    ks: Any,
    kc: Any,
    goal: str = "-",
    met: Callable[[Any], bool] | None = None,
) -> Row:
    verdict = "-"
    if met is not None:
        verdict = "n/a" if kc is None else ("met" if met(kc) else "MISSED")
    ratio = None
    if isinstance(ks, int | float) and isinstance(kc, int | float) and kc:
        ratio = ks / kc
    return {"metric": metric, "kubespawner": ks, "kubecache": kc, "ratio": ratio,
            "goal": goal, "verdict": verdict}  # fmt: skip


def load_text(value: Any) -> str:
    """``load 1.2-2.5``: the 1-minute load average before and after a measurement."""
    if not value:
        return "load ?"
    ones = [v[0] for v in value if isinstance(v, list | tuple) and v]
    if not ones:
        return "load ?"
    low, high = min(ones), max(ones)
    return f"load {low:.1f}" if round(low, 1) == round(high, 1) else f"load {low:.1f}-{high:.1f}"


def samples_text(ks_n: Any, kc_n: Any, load: Any) -> str:
    """``n=32, load 1.2-2.5`` (both spawners' n when they differ)."""
    same = ks_n is None or ks_n == kc_n
    n = f"n={kc_n}" if same else f"n={ks_n} KubeSpawner / {kc_n} kubecache"
    return f"{n}, {load_text(load)}"


def readiness_rows(data: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    ready = data.get("readiness") or {}
    for label, name, goals in (
        ("sequential", "sequential", {"p50_ms": 2.0, "p99_ms": 5.0}),
        ("concurrent", "50 concurrent", {"p99_ms": 10.0}),
        ("slow", "20 concurrent, Ready ~18 s after create", {}),
    ):
        got = ready.get(label)
        if not got:
            continue
        n = samples_text(
            get(got, "kubespawner", "n"), get(got, "kubecache", "n"), got.get("load_average")
        )
        for stat in ("p50_ms", "p90_ms", "p99_ms"):
            limit = goals.get(stat)
            rows.append(
                row(
                    f"readiness {name} ({n}): Ready committed -> start() returns, "
                    f"{stat.split('_')[0]} ms",
                    get(got, "kubespawner", stat),
                    get(got, "kubecache", stat),
                    f"<= {limit:g}" if limit else "-",
                    (lambda v, limit=limit: v <= limit) if limit else None,
                )
            )
    for breakdown in ("breakdown", "breakdown_concurrent"):
        load = get(ready, breakdown, "load_average")
        concurrency = get(ready, breakdown, "concurrency") or 1
        how = f", {concurrency} at once" if concurrency > 1 else ""
        for hop, stats in (get(ready, breakdown, "hops") or {}).items():
            n = samples_text(None, stats.get("n"), load)
            rows.append(
                row(
                    f"  kubecache hop {hop} ({n}{how}), p50 / p99 ms",
                    None,
                    f"{stats.get('p50_ms')} / {stats.get('p99_ms')}",
                )
            )
    return rows


def fresh_hub_rows(data: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for size, got in (data.get("fresh_hub") or {}).items():
        n = int(size)
        ks, kc = got.get("kubespawner") or {}, got.get("kubecache") or {}
        scale = f"fresh hub, {n:,} servers, {got.get('events', 0):,} events"
        at_goal = n >= 10_000
        answered = row(
            f"{scale}: every poll answered (once the spawners exist; "
            f"{load_text(_loads(ks, kc))}), s",
            ks.get("all_answered_s"),
            kc.get("all_answered_s"),
            "<= 1 (10,000)" if at_goal else "-",
            (lambda v: v <= 1.0) if at_goal else None,
        )
        if n >= 3_000:  # issue 23: at least twice as fast as KubeSpawner at 3,000 and 10,000
            ratio = answered["ratio"]
            twice = ratio is not None and ratio >= 2.0 and answered["verdict"] != "MISSED"
            answered["goal"] += "; >= 2x KubeSpawner" if at_goal else ">= 2x KubeSpawner"
            answered["goal"] = answered["goal"].removeprefix("-")
            answered["verdict"] = "n/a" if ratio is None else ("met" if twice else "MISSED")
        rows.append(answered)
        rows.append(
            row(
                f"{scale}: Kubernetes GET+LIST requests / of which LIST",
                _requests(ks),
                _requests(kc),
                "0" if at_goal else "-",
                (lambda v: v.startswith("0 ")) if at_goal else None,
            )
        )
        rows.append(
            row(
                f"{scale}: MB in LIST/WATCH responses",
                _mb(get(ks, "api", "bytes")),
                _mb(get(kc, "api", "bytes")),
            )
        )
        rows.append(
            row(f"{scale}: hub CPU while polling, s (the wall time above waits for a core)",
                ks.get("poll_cpu_s"), kc.get("poll_cpu_s"))
        )  # fmt: skip
        rows.append(
            row(f"{scale}:   of which the garbage collector, s (collections gen0/1/2)",
                _gc(ks), _gc(kc))
        )  # fmt: skip
        rows.append(row(f"{scale}: polls not 'running'", _not_running(ks), _not_running(kc)))
        rows.append(row(f"{scale}: hub RSS MB", ks.get("rss_mb"), kc.get("rss_mb")))
        rows.append(
            row(
                f"{scale}: making the spawner objects (before polling), s",
                ks.get("spawners_made_s"),
                kc.get("spawners_made_s"),
            )
        )
    return rows


def _gc(result: dict[str, Any]) -> str | None:
    if result.get("gc_cpu_s") is None:
        return None
    counts = "/".join(str(n) for n in result.get("gc_collections") or [])
    return f"{result['gc_cpu_s']:.2f} ({counts})"


def _loads(*results: dict[str, Any]) -> list[Any]:
    return [v for r in results for v in r.get("load_average") or []]


def _requests(result: dict[str, Any]) -> str | None:
    """GET + LIST requests the poll made / of which LIST (Lease renewals and the cacher's
    watch re-opens, which run on their own clocks, are in the JSON, not here)."""
    api = result.get("api")
    if not api:
        return None
    reads = {k: n for k, n in api["by_resource"].items() if k.split()[0] in ("get", "list")}
    reads = {k: n for k, n in reads.items() if not k.endswith("leases")}
    lists = sum(n for k, n in reads.items() if k.startswith("list"))
    return f"{sum(reads.values())} / {lists}"


def _mb(value: Any) -> float | None:
    return round(value / 2**20, 2) if isinstance(value, int | float) else None


def _not_running(result: dict[str, Any]) -> int | None:
    answers = result.get("answers")
    if answers is None:
        return None
    return sum(n for what, n in answers.items() if what != "running")


def hub_rss_rows(data: dict[str, Any]) -> list[Row]:
    """The sweep: a hub's RSS once it answers for N running servers (KubeSpawner: with its
    pod and events reflectors loaded)."""
    rows: list[Row] = []
    sweep = data.get("hub_rss") or {}
    for size in sorted(sweep, key=int):
        got = sweep[size]
        ks, kc = got.get("kubespawner") or {}, got.get("kubecache") or {}
        rows.append(
            row(
                f"hub RSS MB, {int(size):,} servers + {got.get('events', 0):,} events "
                "(after its polls; KubeSpawner with both reflectors loaded)",
                ks.get("rss_mb"),
                kc.get("rss_mb"),
            )
        )
        rows.append(
            row(
                "  of which above the same hub with its code loaded (one spawner object), MB",
                _above(ks),
                _above(kc),
            )
        )
    return rows


def _above(result: dict[str, Any]) -> float | None:
    total, code = result.get("rss_mb"), result.get("rss_code_mb")
    return round(total - code, 1) if total is not None and code is not None else None


def idle_rows(data: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    idle = data.get("idle_hubs") or {}
    servers = idle.get("servers")
    where = _namespace(data, idle)
    for hubs, got in idle.items():
        if not hubs.isdigit():
            continue
        ks, kc = got.get("kubespawner") or {}, got.get("kubecache") or {}
        what = f"{hubs} idle hub(s), {servers:,} servers{where}, {_window(ks, kc, idle)}"
        rows.append(row(f"{what}: LIST per min", ks.get("list_per_min"), kc.get("list_per_min")))
        rows.append(row(f"{what}: WATCH per min", ks.get("watch_per_min"), kc.get("watch_per_min")))
        rows.append(
            row(f"{what}: all API requests per min (kubecache: the cacher's, its Lease "
                "renewals included)", ks.get("requests_per_min"), kc.get("requests_per_min"))
        )  # fmt: skip
        rows.append(
            row(
                f"{what}: MB per min from the API (kubecache: what its cacher is sent)",
                _per_min_mb(ks),
                _per_min_mb(kc),
            )
        )
        rows.append(row(f"{what}: open watches", ks.get("open_watches"), kc.get("open_watches")))
        rows.append(
            row(f"{what}: RSS per hub MB", _mean(ks.get("hub_rss_mb")), _mean(kc.get("hub_rss_mb")))
        )
    return rows


def _window(ks: dict[str, Any], kc: dict[str, Any], idle: dict[str, Any]) -> str:
    """How long each side was measured, and whether the cacher ran in KubeSpawner's window
    (results written before it was stopped there count its requests in both columns)."""
    seconds = [w for w in (ks.get("window_s"), kc.get("window_s")) if w] or [idle.get("window_s")]
    window = f"{min(seconds):.0f} s windows" if seconds[0] else "window ?"
    if ks and ks.get("cacher_running") is not False:
        window += ", the cacher's requests in both columns"
    return window


def _per_min_mb(side: dict[str, Any]) -> float | None:
    if isinstance(side.get("bytes_per_min"), int | float):
        return float(side["bytes_per_min"]) / 2**20
    value = side.get("mb_per_min")
    return float(value) if isinstance(value, int | float) else None


def _namespace_state(data: dict[str, Any], phase: dict[str, Any]) -> dict[str, int]:
    """What the namespace held during ``phase``: it only grows, so a phase after the fresh-hub
    climb sees all of it (results written before the phases recorded it are inferred so)."""
    state = phase.get("namespace")
    if state is None:
        sizes = [int(k) for k in [*(data.get("fresh_hub") or {}), *(data.get("hub_rss") or {})]]
        pods = max([*sizes, phase.get("servers") or 0])
        state = {"pods": pods, "events": int(pods * 3.5)}
    return dict(state)


def _namespace(data: dict[str, Any], phase: dict[str, Any]) -> str:
    """The label suffix for a phase whose namespace held more than the hubs serve."""
    state = _namespace_state(data, phase)
    if state["pods"] == phase.get("servers"):
        return ""
    return f" (namespace: {state['pods']:,} pods, {state['events']:,} events)"


def _mean(values: Any) -> float | None:
    values = [v for v in values or [] if isinstance(v, int | float)]
    return round(sum(values) / len(values), 1) if values else None


def degraded_rows(data: dict[str, Any]) -> list[Row]:
    got = data.get("degraded") or {}
    rows: list[Row] = []
    n = got.get("servers")
    normal = got.get("kubespawner")
    note = ""
    if normal is None:  # older results: KubeSpawner's fresh-hub poll at n pods
        normal = get(data, "fresh_hub", str(n), "kubespawner") or {}
        note = f" (KubeSpawner: its fresh-hub poll with {n:,} pods)" if got else ""
    where = _namespace(data, got) if got else ""
    for mode, what in (("stale", "cache stale (cacher stopped)"), ("redis_down", "Redis down")):
        kc = got.get(mode)
        if not kc:
            continue
        scale = f"degraded, {n:,} servers{where}{note}, {what}"
        rows.append(
            row(
                f"{scale}: every poll answered, s",
                normal.get("all_answered_s"),
                kc.get("all_answered_s"),
                "answers within the poll timeout (30 s)",
                lambda v: v < 30,
            )
        )
        rows.append(
            row(
                f"{scale}: Kubernetes GET+LIST requests / of which LIST",
                _requests(normal),
                _requests(kc),
            )
        )
        rows.append(
            row(
                f"{scale}: MB in LIST/WATCH responses",
                _mb(get(normal, "api", "bytes")),
                _mb(get(kc, "api", "bytes")),
            )
        )
        rows.append(
            row(
                f"{scale}: polls not 'running'",
                _not_running(normal),
                _not_running(kc),
                "0",
                lambda v: v == 0,
            )
        )
    return rows


def kubecache_only_rows() -> list[Row]:
    rows: list[Row] = []
    cacher = load("cacher")
    if cacher:
        ingest = cacher.get("ingest") or {}
        pods = ingest.get("pods")
        rows += [
            row(f"cacher ingest over {shown(pods)} pods: events parsed per cacher CPU-s", None,
                ingest.get("events_per_cpu_second"), ">= 10,000 on one core",
                lambda v: v >= 10_000),
            row("cacher ingest: events parsed per s (wall)", None, ingest.get("events_per_second")),
            row("cacher ingest: Redis record writes per s (wall)", None,
                ingest.get("record_writes_per_second")),
            row("cacher ingest: coalescing (events per record write)", None,
                ingest.get("coalescing_ratio")),
        ]  # fmt: skip
        for lag in cacher.get("lags") or ([cacher["lag"]] if cacher.get("lag") else []):
            rate = lag.get("rate") or 0
            n = samples_text(None, lag.get("measured"), lag.get("load_average"))
            # issue 23: p99 <= 50 ms at 5,000 changes/s; the project brief: < 10 ms at 500/s
            limit = 50.0 if rate >= 5_000 else 10.0
            rows.append(
                row(
                    f"cacher lag at {rate:,}/s ({n}), commit -> feed entry, p50 ms",
                    None,
                    lag.get("p50_ms"),
                )
            )
            rows.append(
                row(
                    f"cacher lag at {rate:,}/s ({n}), commit -> feed entry, p99 ms",
                    None,
                    lag.get("p99_ms"),
                    f"<= {limit:g}",
                    lambda v, limit=limit: v <= limit,
                )
            )
            plain = lag.get("plain_watch") or {}
            if plain:
                # The emulator alone: what any watcher (the cacher's included) can at best see.
                plain_n = samples_text(None, plain.get("n"), lag.get("load_average"))
                rows.append(
                    row(
                        f"  emulator's own delivery at {rate:,}/s ({plain_n}), commit -> a plain "
                        "watch client, p50 / p99 ms",
                        None,
                        f"{plain.get('p50_ms')} / {plain.get('p99_ms')}",
                    )
                )
            if lag.get("cacher_cpu_ms_per_1000_changes") is not None:
                rows.append(
                    row(
                        f"  cacher CPU ms per 1,000 changes at {rate:,}/s",
                        None,
                        lag["cacher_cpu_ms_per_1000_changes"],
                    )
                )
        for rss in cacher.get("rss") or []:
            limit = 150 if rss.get("pods") == 50_000 else None
            rows.append(
                row(
                    f"cacher RSS MB at {rss.get('pods'):,} pods"
                    + (
                        f", {rss['standing_events']:,} events, then {rss['events_flowed']:,} "
                        f"events + {rss['pod_changes_flowed']:,} pod changes flowing"
                        if "events_flowed" in rss
                        else ", no events"
                    ),
                    None,
                    rss.get("rss_mb"),
                    f"<= {limit}" if limit else "-",
                    (lambda v: v <= 150) if limit else None,
                )
            )
    size = load("record_size")
    if size:
        rows.append(
            row(
                "Redis bytes per server (record + fencing)",
                None,
                size.get("bytes_per_record"),
                "<= 512",
                lambda v: v <= 512,
            )
        )
    return rows


def all_rows() -> list[Row]:
    compare = load("compare")
    return (
        readiness_rows(compare)
        + fresh_hub_rows(compare)
        + hub_rss_rows(compare)
        + idle_rows(compare)
        + degraded_rows(compare)
        + kubecache_only_rows()
    )


def shown(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if 0 < abs(value) < 0.01:  # small but not nothing: three significant digits
            return f"{value:.3g}"
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(rows: list[Row], *, markdown: bool = False) -> str:
    head = ["metric", "KubeSpawner 7.1", "kubecache", "ratio", "goal", "verdict"]
    cells = [
        [r["metric"], shown(r["kubespawner"]), shown(r["kubecache"]),
         "-" if r["ratio"] is None else f"{shown(r['ratio'])}x", r["goal"], r["verdict"]]
        for r in rows
    ]  # fmt: skip
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
        lines += ["| " + " | ".join(c) + " |" for c in cells]
        return "\n".join(lines)
    widths = [max(len(x) for x in col) for col in zip(head, *cells, strict=True)]
    out = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    out += ["  ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)) for cell in cells]
    return "\n".join(out)


def plots_or_note(compare: dict[str, Any]) -> tuple[list[Path], str]:
    """The plots, or why there are none (matplotlib missing, or it failed): never raises,
    the table is the result and plots are a view of it."""
    if not compare:
        return [], "no plots: no compare.json"
    try:
        return plots(compare), ""
    except ImportError as e:
        return [], (
            f"no plots: matplotlib is not installed ({e}); install the bench extra "
            "(pip install 'kubecache[bench]') for readiness.png and scale.png"
        )
    except Exception as e:  # a plot is not worth losing the run's table over
        return [], f"no plots: plotting failed ({type(e).__name__}: {e})"


def plots(compare: dict[str, Any]) -> list[Path]:
    """PNG plots of the side-by-side figures (matplotlib, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[Path] = []
    colours = {"kubespawner": "tab:orange", "kubecache": "tab:blue"}
    ready = compare.get("readiness") or {}
    if ready:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for ax, label in zip(axes, ("sequential", "concurrent"), strict=True):
            samples = get(ready, label, "samples_s") or {}
            for spawner, seconds in samples.items():
                values = sorted(v * 1000 for v in seconds)
                if values:
                    fractions = [(i + 1) / len(values) for i in range(len(values))]
                    ax.step(
                        values, fractions, where="post", label=spawner, color=colours.get(spawner)
                    )
            ax.set_xscale("log")
            ax.set_xlabel("Ready committed -> start() returns (ms, log)")
            ax.set_ylabel("fraction of spawns")
            ax.set_title(f"readiness, {label}")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend()
        fig.tight_layout()
        written.append(_save(fig, "readiness.png"))
        plt.close(fig)
    fresh = compare.get("fresh_hub") or {}
    idle = compare.get("idle_hubs") or {}
    sweep = compare.get("hub_rss") or {}
    if fresh or idle or sweep:
        fig, axes = plt.subplots(1, 4, figsize=(20, 4))
        sizes = sorted(int(s) for s in fresh)
        pods_held = _namespace_state(compare, idle)["pods"] if idle else None
        held = f" (namespace: {pods_held:,} pods)" if pods_held != idle.get("servers") else ""
        for spawner, colour in colours.items():
            axes[0].plot(
                sizes,
                [get(fresh, str(s), spawner, "all_answered_s") for s in sizes],
                "o-",
                label=spawner,
                color=colour,
            )
            axes[1].plot(
                sizes,
                [get(fresh, str(s), spawner, "rss_mb") for s in sizes],
                "o-",
                label=spawner,
                color=colour,
            )
            hubs = sorted(int(h) for h in idle if h.isdigit())
            axes[2].plot(
                hubs,
                [_per_min_mb(get(idle, str(h), spawner) or {}) for h in hubs],
                "o-",
                label=spawner,
                color=colour,
            )
            points = sorted(int(n) for n in sweep)
            axes[3].plot(
                points,
                [get(sweep, str(n), spawner, "rss_mb") for n in points],
                "o-",
                label=spawner,
                color=colour,
            )
        axes[0].set(xlabel="running servers", ylabel="s", title="fresh hub: all polls answered")
        axes[1].set(
            xlabel="running servers (3.5 events each)", ylabel="MB", title="hub RSS after the polls"
        )
        axes[2].set(
            xlabel="idle hubs",
            ylabel="MB / min",
            title=f"API bytes sent, {idle.get('servers', '?')} servers{held}",
        )
        axes[3].set(
            xlabel="running servers (3.5 events each)",
            ylabel="MB",
            title="hub RSS sweep (KubeSpawner: both reflectors)",
        )
        for ax in axes:
            ax.grid(True, alpha=0.3)
            ax.legend()
        fig.tight_layout()
        written.append(_save(fig, "scale.png"))
        plt.close(fig)
    return written


def _save(fig: Any, name: str) -> Path:
    path = RESULTS / name
    fig.savefig(path, dpi=110)
    return path


def machine_line(compare: dict[str, Any]) -> str:
    m = compare.get("machine") or {}
    if not m:
        return "machine: unknown (no compare.json)"
    return (
        f"machine: {m.get('cpus')} CPUs ({m.get('processor')}), {m.get('memory_gib')} GiB, "
        f"Python {m.get('python')}, {m.get('platform')}; load average at start "
        f"{_load(m.get('load_average_at_start'))}, at end {_load(m.get('load_average_at_end'))}"
        f"{' (quick sizes)' if compare.get('quick') else ''}"
        + "".join(
            f"; {rerun.get('phases')} re-run later at load average "
            f"{_load((rerun.get('machine') or {}).get('load_average_at_start'))}"
            for rerun in compare.get("reruns") or []
        )
    )


def _load(value: Any) -> str:
    return "/".join(f"{v:.1f}" for v in value) if value else "?"


def main() -> int:
    compare = load("compare")
    rows = all_rows()
    print(table(rows))
    print()
    print(machine_line(compare))
    RESULTS.mkdir(parents=True, exist_ok=True)
    summary = {"machine": compare.get("machine"), "quick": compare.get("quick"), "rows": rows}
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    markdown = table(rows, markdown=True) + "\n\n" + machine_line(compare) + "\n"
    (RESULTS / "table.md").write_text(markdown)
    print(f"wrote {RESULTS / 'summary.json'} and {RESULTS / 'table.md'}")
    written, note = plots_or_note(compare)
    for path in written:
        print(f"wrote {path}")
    if note:
        print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
