"""What the wheels install: the product's holds no emulator; the emulator is a wheel of its own.

Both are built from this checkout as pip builds them (``pip wheel``, the locked setuptools,
no build isolation: nothing is fetched), then read as zip files.
"""

from __future__ import annotations

import email
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import kubecache
import kubesim

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, zipfile.ZipFile]:
    out = tmp_path_factory.mktemp("wheels")
    build = tmp_path_factory.mktemp("build")
    # setuptools builds in the source folder (build/): copies keep the checkout clean
    ignore = shutil.ignore_patterns("__pycache__", "build", "*.egg-info")
    product = build / "product"
    for name in ("kubecache", "cacher", "spawner"):
        shutil.copytree(REPO / name, product / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, product / name)
    emulator = build / "kubesim"
    shutil.copytree(REPO / "kubesim", emulator, ignore=ignore)
    for source in (product, emulator):
        pip = [sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check"]
        result = subprocess.run(
            [*pip, "--no-deps", "--no-build-isolation", "-w", str(out), str(source)],
            capture_output=True,
            text=True,
            check=False,
            timeout=240,
            env={"PATH": "/usr/bin:/bin", "TMPDIR": str(build), "HOME": str(build)},
        )
        assert result.returncode == 0, result.stdout + result.stderr
    found = {p.name.split("-")[0]: zipfile.ZipFile(p) for p in out.glob("*.whl")}
    assert set(found) == {"kubecache", "kubesim"}, sorted(found)
    return found


def _top_level(wheel: zipfile.ZipFile) -> set[str]:
    return {name.split("/")[0] for name in wheel.namelist() if ".dist-info/" not in name}


def _metadata(wheel: zipfile.ZipFile) -> email.message.Message:
    name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    return email.message_from_bytes(wheel.read(name))


def _entry_points(wheel: zipfile.ZipFile) -> str:
    name = next(n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt"))
    return wheel.read(name).decode()


def test_the_product_wheel_holds_no_emulator(wheels: dict[str, zipfile.ZipFile]) -> None:
    product = wheels["kubecache"]
    assert _top_level(product) == {"kubecache", "cacher", "spawner"}
    assert not [n for n in product.namelist() if n.startswith("kubesim")]
    scripts = _entry_points(product)
    assert "kubesim" not in scripts.split("[jupyterhub.spawners]")[0]
    assert "kubecache-cacher = cacher.__main__:main" in scripts
    assert "kubecache = spawner:KubeCacheSpawner" in scripts


def test_the_product_is_typed_and_has_one_version(wheels: dict[str, zipfile.ZipFile]) -> None:
    product = wheels["kubecache"]
    for package in ("kubecache", "cacher", "spawner"):
        assert f"{package}/py.typed" in product.namelist()
    assert "spawner/templates/form.html" in product.namelist()
    # the version lives in kubecache/__init__.py only; pyproject.toml reads it from there
    assert _metadata(product)["Version"] == kubecache.__version__
    assert 'version = "' not in (REPO / "pyproject.toml").read_text().split("[project]")[1][:400]


def test_the_emulator_is_a_distribution_of_its_own(wheels: dict[str, zipfile.ZipFile]) -> None:
    emulator = wheels["kubesim"]
    assert _top_level(emulator) == {"kubesim"}
    names = emulator.namelist()
    assert {"kubesim/py.typed", "kubesim/api_fields.json", "kubesim/server.py"} <= set(names)
    assert "kubesim/pyproject.toml" not in names
    assert "kubesim = kubesim.cli:main" in _entry_points(emulator)
    assert _metadata(emulator)["Version"] == kubesim.__version__
