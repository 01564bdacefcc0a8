"""One import name for the product: ``kubecache`` (issue 22).

The folders ``spawner/`` and ``cacher/`` are installed as ``kubecache.spawner`` and
``kubecache.cacher`` (the symlinks ``kubecache/spawner`` and ``kubecache/cacher``). In a
checkout the folders are importable under their bare names too; code that did so would load
each module twice (two classes, two registries), so nothing may.
"""

from __future__ import annotations

import ast
import subprocess
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BARE = {"spawner", "cacher"}


def _python_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "*.py"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    return [REPO / name for name in listed if not (REPO / name).is_symlink()]


def bare_imports(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [f"line {node.lineno}: {name}" for name in names if name.split(".")[0] in BARE]
    return found


def test_the_check_finds_a_bare_import() -> None:
    source = "import os\nfrom spawner.config import X\nimport cacher.app\n"
    source += "from kubecache.spawner import Y\n"
    assert bare_imports(source) == ["line 2: spawner.config", "line 3: cacher.app"]


def test_nothing_imports_the_bare_folder_names() -> None:
    offenders = {
        str(path.relative_to(REPO)): hits
        for path in _python_files()
        if (hits := bare_imports(path.read_text()))
    }
    assert not offenders, f"import these as kubecache.spawner / kubecache.cacher: {offenders}"


def test_the_symlinks_name_the_folders() -> None:
    for name in BARE:
        link = REPO / "kubecache" / name
        assert link.is_symlink() and link.resolve() == (REPO / name).resolve()


def test_the_no_hub_client_contract_covers_every_module_but_the_spawner() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    [contract] = [c for c in config["contracts"] if "no hub-side client" in c["name"]]
    modules = {
        f"kubecache.{p.stem if p.is_file() else p.name}"
        for p in (REPO / "kubecache").iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()
    }
    assert set(contract["source_modules"]) == modules - {"kubecache.spawner"}


def test_the_documented_import_of_the_spawner_class_works() -> None:
    doc = (REPO / "docs" / "migrating-from-kubespawner.md").read_text()
    line = "from kubecache.spawner import KubeCacheSpawner"
    assert f"`{line}`" in doc
    scope: dict[str, object] = {}
    exec(line, scope)
    assert getattr(scope["KubeCacheSpawner"], "__name__", None) == "KubeCacheSpawner"


def test_every_module_a_doc_runs_with_python_m_exists() -> None:
    import importlib.util
    import re

    docs = [REPO / "README.md", *(REPO / "docs").glob("*.md"), *REPO.glob("*/README.md")]
    named = {
        module
        for doc in docs
        for module in re.findall(r"python3? -m ([A-Za-z_][\w.]*)", doc.read_text())
    }
    assert "kubecache.cacher" in named  # the cacher's own command is among them
    # a bare folder name is importable from a checkout only, never from the installed product
    missing = sorted(
        m for m in named if m.split(".")[0] in BARE or importlib.util.find_spec(m) is None
    )
    assert not missing, f"docs run modules that an installation does not have: {missing}"
