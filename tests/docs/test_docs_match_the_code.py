"""Every metric and every kubecache command a doc shows is one the code exports or accepts."""

from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil
import re
from functools import cache
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from tests.docs.reading import Source, commands, hint_lines, markdown_sources, split

#: Packages whose ``*Metrics`` classes (taking ``registry=``) build what a kubecache process
#: exports: the cacher's CacherMetrics, and any other process's that follows that pattern.
METRIC_PACKAGES = ("kubecache",)


def metric_modules() -> list[str]:
    names = []
    for package in METRIC_PACKAGES:
        path = importlib.import_module(package).__path__
        for info in pkgutil.walk_packages(path, prefix=package + "."):
            if not info.name.endswith("__main__"):
                names.append(info.name)
    return names


def hub_standby_registry() -> CollectorRegistry | None:
    """What one ``kubecache hub-standby`` replica serves on --metrics-port; None while this
    checkout's hub-standby exports no metrics (kubecache.hub_standby_state)."""
    try:
        from kubecache.hub_standby_state import StandbyState
    except ImportError:
        return None
    registry: CollectorRegistry = StandbyState("jupyterhub", "docs-test").registry
    return registry


#: Each process's metric name prefix, and its registry outside the *Metrics pattern.
PROCESS_REGISTRIES = {"kubecache_hub_standby_": hub_standby_registry}


@cache
def exported_families() -> frozenset[str]:
    families: set[str] = set()
    for name in metric_modules():
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if not cls.__name__.endswith("Metrics") or cls.__module__ != module.__name__:
                continue
            if "registry" not in inspect.signature(cls).parameters:
                continue
            registry = CollectorRegistry()
            cls(registry=registry)  # type: ignore[call-arg]
            families |= {m.name for m in registry.collect()}
    for build in PROCESS_REGISTRIES.values():
        built = build()
        if built is not None:
            families |= {m.name for m in built.collect()}
    assert "kubecache_cacher_leader" in families
    return frozenset(families)


def not_in_this_checkout(name: str) -> bool:
    """A metric of a process whose metrics this checkout does not export yet (its section of
    docs/monitoring.md is checked once they exist)."""
    return any(
        name.startswith(prefix) and build() is None for prefix, build in PROCESS_REGISTRIES.items()
    )


def sample_names(families: frozenset[str]) -> set[str]:
    suffixes = ("", "_total", "_created", "_bucket", "_count", "_sum", "_info")
    return {f + s for f in families for s in suffixes}


_METRIC = re.compile(r"\b(kubecache_[a-z0-9_]*[a-z0-9])")


def sources() -> list[Source]:
    return [*markdown_sources(), *hint_lines(), *_doctor_and_cli_strings()]


def _doctor_and_cli_strings() -> list[Source]:
    from tests.docs.reading import HINT_MODULES, REPO

    found = []
    for path in HINT_MODULES:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "kubecache_" in line and ('"' in line or "'" in line):
                found.append(Source(f"{path.relative_to(REPO)}:{number}", line))
    return found


@pytest.mark.parametrize("source", sources(), ids=lambda s: s.where)
def test_every_metric_a_doc_or_hint_names_is_exported(source: Source) -> None:
    exported = sample_names(exported_families())
    for name in set(_METRIC.findall(source.text)):
        if name.startswith("kubecache_v") or not_in_this_checkout(name):
            continue
        if any(f.startswith(name + "_") for f in exported_families()):
            continue  # a prefix the code builds names from ("kubecache_cacher_")
        assert name in exported, f"{source.where}: {name} is not exported by any kubecache process"


def monitoring_table() -> set[str]:
    """The metric families docs/monitoring.md's table lists (counters are shown with _total)."""
    from tests.docs.reading import REPO

    text = (REPO / "docs" / "monitoring.md").read_text()
    families = exported_families()
    listed = set()
    for name in re.findall(r"^\| `(kubecache_[a-z0-9_]+)", text, re.M):
        counter = name not in families and name.endswith("_total")
        listed.add(name.removesuffix("_total") if counter else name)
    return listed


def test_monitoring_md_lists_every_exported_kubecache_metric() -> None:
    exported = {f for f in exported_families() if f.startswith("kubecache_")}
    listed = {name for name in monitoring_table() if not not_in_this_checkout(name)}
    assert exported - listed == set(), (
        f"exported but not in docs/monitoring.md: {exported - listed}"
    )
    assert listed - exported == set(), (
        f"in docs/monitoring.md but not exported: {listed - exported}"
    )


def test_a_metric_missing_from_the_table_is_caught() -> None:
    families = exported_families()
    assert "kubecache_cacher_failovers" in families
    assert monitoring_table() - {"kubecache_cacher_failovers"} != {
        f for f in families if f.startswith("kubecache_")
    }


# -- kubecache commands parse -------------------------------------------------------------


def parses(program: str, words: list[str]) -> tuple[bool, Any]:
    parser: argparse.ArgumentParser
    if program == "kubecache":
        from kubecache.cli_args import build_parser

        parser = build_parser()
    else:
        from kubecache.cacher.settings import build_parser as cacher_parser

        parser = cacher_parser()
    try:
        return True, parser.parse_args(words)
    except SystemExit as e:
        return e.code == 0, e  # --help, --version


SUBCOMMANDS = {"status", "servers", "events", "doctor", "hub-standby"}


def _placeholder(words: list[str]) -> bool:
    return any("..." in w or w.startswith("<") or (w.isupper() and len(w) > 1) for w in words)


@pytest.mark.parametrize("source", [*markdown_sources(), *hint_lines()], ids=lambda s: s.where)
def test_every_kubecache_command_shown_parses(
    source: Source, capsys: pytest.CaptureFixture[str]
) -> None:
    for program in ("kubecache", "kubecache-cacher"):
        for shown in commands(source, program):
            command = re.sub(r"\[([^\]]*)\]", r"\1", shown)  # [--optional flags]
            words = split(command)[1:]
            if "|" in words:
                words = words[: words.index("|")]
            words = [w for w in words if not w.startswith("…")]
            if _placeholder(words) or not words:
                continue
            if words[-1].startswith("--") and words[-1] != "--help":
                continue  # prose naming an option (`kubecache hub-standby --lease-name`)
            first = next((w for w in words if not w.startswith("-")), None)
            if program == "kubecache" and first not in SUBCOMMANDS and words[0] != "--help":
                continue  # prose (`kubecache needs ...`, `kubecache servers/events`)
            ok, _ = parses(program, words)
            assert ok, f"{source.where}: `{command}` does not parse: {capsys.readouterr().err}"
