"""A doc followed from the top works: what it points to exists, images exist before use."""

from __future__ import annotations

import re

import pytest

from tests.docs.reading import REPO, Source, commands, markdown_sources, split

_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
_REPO_PATH = re.compile(
    r"`((?:docs|charts|scripts|tests|kubecache|cacher|spawner|benchmarks|demo|requirements)/[\w./-]+)`"
)


@pytest.mark.parametrize("source", markdown_sources(), ids=lambda s: s.where)
def test_every_relative_link_and_repository_path_a_doc_names_exists(source: Source) -> None:
    base = (REPO / source.where).parent
    for target in _LINK.findall(source.text):
        if "://" in target or target.startswith("mailto:"):
            continue
        assert (base / target).exists(), f"{source.where}: link to {target} leads nowhere"
    for found in _REPO_PATH.findall(source.text):
        path = found.rstrip(".")
        if "*" in path or "<" in path:
            continue
        assert (REPO / path).exists() or (base / path).exists(), f"{source.where}: {path}"


@pytest.mark.parametrize("source", markdown_sources(), ids=lambda s: s.where)
def test_no_doc_points_to_a_design_document_that_is_not_in_the_repository(source: Source) -> None:
    """docs/SECURITY.md once said "see DESIGN": no such file ships."""
    if list(REPO.glob("DESIGN*")) or list((REPO / "docs").glob("DESIGN*")):
        return
    assert not re.search(r"\bsee (the )?DESIGN\b", source.text), source.where


@pytest.mark.parametrize("source", markdown_sources(), ids=lambda s: s.where)
def test_installing_the_chart_uses_a_cacher_image_the_doc_built_and_pushed(source: Source) -> None:
    """The default image (kubecache/kubecache:<appVersion>) is published nowhere: a doc that
    installs the chart builds and pushes the image first and points cacher.image.name at it."""
    text = source.text
    for command in commands(source, "helm"):
        words = split(command)
        if words[1:2] not in (["install"], ["upgrade"]) or "charts/kubecache" not in words:
            continue
        image = next(
            (w.split("=", 1)[1] for w in words if w.startswith("cacher.image.name=")), None
        )
        if image is None and ("-f" in words or "--values" in words):
            continue  # the image comes from a values file the doc shows
        assert image, f"{source.where}: `{command}` installs the unpublished default image"
        at = text.find(command.split(" --")[0])
        built = text.rfind(f"docker build -t {image}", 0, at if at >= 0 else None)
        pushed = text.rfind(f"docker push {image}", 0, at if at >= 0 else None)
        assert built >= 0 and pushed >= 0, (
            f"{source.where}: {image} is not built and pushed before `{command}`"
        )


def test_the_readme_says_how_to_put_the_spawner_into_a_hub() -> None:
    readme = (REPO / "README.md").read_text()
    match = re.search(r"^## Use it in your hub$(.*?)^## ", readme, re.M | re.S)
    assert match, "README has no 'Use it in your hub' section"
    section = match.group(1)
    assert "pip install" in section and "'.[hub]'" in section
    assert "requirements/test.txt" in section  # versions from the lock, not the registry's newest
    assert "docker build --target hub" in section
