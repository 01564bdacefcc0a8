"""README's "Where things are" table names modules that exist, and every product module."""

from __future__ import annotations

import re

from tests.docs.reading import REPO

PRODUCT_FOLDERS = ("spawner", "cacher", "kubecache", "kubecache/contract")


def where_things_are() -> str:
    readme = (REPO / "README.md").read_text()
    section = readme.split("### Where things are", 1)
    assert len(section) == 2, "README.md has lost its 'Where things are' section"
    return section[1].split("\n#", 1)[0]


def named_paths(section: str) -> set[str]:
    return set(re.findall(r"`([\w./-]+(?:\.py|/))`", section))


def product_modules() -> set[str]:
    return {
        str(path.relative_to(REPO))
        for folder in PRODUCT_FOLDERS
        for path in (REPO / folder).glob("*.py")
        if path.name != "__init__.py"
    }


def test_every_module_the_table_names_exists() -> None:
    named = named_paths(where_things_are())
    assert len(named) > 50
    missing = sorted(path for path in named if not (REPO / path).exists())
    assert not missing, f"README.md 'Where things are' names what does not exist: {missing}"


def test_every_product_module_is_in_the_table() -> None:
    unnamed = sorted(product_modules() - named_paths(where_things_are()))
    assert not unnamed, f"add these modules to README.md 'Where things are': {unnamed}"


def test_a_stale_name_is_caught() -> None:
    assert "spawner/builders.py" in named_paths("| x | `spawner/builders.py`, `scripts/` |")
    assert not (REPO / "spawner/builders.py").exists()
