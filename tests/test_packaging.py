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


def _pip_wheel(source: Path, out: Path, tmp: Path) -> None:
    """``pip wheel`` as pip builds (the locked setuptools, no build isolation: nothing fetched)."""
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check"]
    result = subprocess.run(
        [*pip, "--no-deps", "--no-build-isolation", "-w", str(out), str(source)],
        capture_output=True,
        text=True,
        check=False,
        timeout=240,
        env={"PATH": "/usr/bin:/bin", "TMPDIR": str(tmp), "HOME": str(tmp)},
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, zipfile.ZipFile]:
    out = tmp_path_factory.mktemp("wheels")
    build = tmp_path_factory.mktemp("build")
    # setuptools builds in the source folder (build/): copies keep the checkout clean
    ignore = shutil.ignore_patterns("__pycache__", "build", "*.egg-info")
    product = build / "product"
    for name in ("kubecache", "cacher", "spawner"):
        # as in the checkout: kubecache/spawner and kubecache/cacher are symlinks to them
        shutil.copytree(REPO / name, product / name, ignore=ignore, symlinks=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, product / name)
    emulator = build / "kubesim"
    shutil.copytree(REPO / "kubesim", emulator, ignore=ignore)
    for source in (product, emulator):
        _pip_wheel(source, out, build)
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
    # one import name: spawner/ and cacher/ are installed as kubecache.spawner, kubecache.cacher
    assert _top_level(product) == {"kubecache"}
    assert not [n for n in product.namelist() if n.startswith("kubesim")]
    scripts = _entry_points(product)
    assert "kubesim" not in scripts.split("[jupyterhub.spawners]")[0]
    assert "kubecache-cacher = kubecache.cacher.__main__:main" in scripts
    assert "kubecache = kubecache.spawner:KubeCacheSpawner" in scripts


def test_the_product_is_typed_and_has_one_version(wheels: dict[str, zipfile.ZipFile]) -> None:
    product = wheels["kubecache"]
    for package in ("kubecache", "kubecache/cacher", "kubecache/spawner"):
        assert f"{package}/py.typed" in product.namelist()
    assert "kubecache/spawner/templates/form.html" in product.namelist()
    assert "kubecache/cacher/__main__.py" in product.namelist()
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


def _image_wheel(stage: str, tmp: Path) -> zipfile.ZipFile:
    """The wheel a Dockerfile build stage makes from what that stage COPYs (symlinks kept)."""
    from tests.charts.test_dockerfile import stages

    context = tmp / stage
    context.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "build", "*.egg-info")
    for word, rest in stages()[stage]:
        if word != "COPY" or "--from" in rest:
            continue
        *sources, _ = rest.split()
        for name in sources:
            source = REPO / name
            if source.is_dir():
                # Docker's COPY keeps a symlink as a symlink: in the cacher's context
                # kubecache/spawner points at a folder that was not copied
                shutil.copytree(source, context / name, ignore=ignore, symlinks=True)
            else:
                shutil.copy(source, context / name)
    _pip_wheel(context, tmp / "out" / stage, tmp)
    [wheel] = (tmp / "out" / stage).glob("*.whl")
    return zipfile.ZipFile(wheel)


def test_each_image_wheel_holds_its_side_only(tmp_path: Path) -> None:
    cacher = _image_wheel("build-cacher", tmp_path).namelist()
    assert "kubecache/cacher/__main__.py" in cacher and "kubecache/contract/keys.py" in cacher
    assert not [n for n in cacher if n.startswith("kubecache/spawner")]
    hub = _image_wheel("build-hub", tmp_path).namelist()
    assert "kubecache/spawner/spawner.py" in hub and "kubecache/spawner/templates/form.html" in hub
    assert not [n for n in hub if n.startswith("kubecache/cacher")]
    assert {n.split("/")[0] for n in cacher + hub if ".dist-info/" not in n} == {"kubecache"}
