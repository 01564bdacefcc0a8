"""What the operator-facing docs show, read for tests.

The docs are README.md, docs/*.md, charts/README.md and the chart's NOTES.txt
(rendered), plus the fix/hint lines the CLI prints (every string literal in
kubecache/*.py that names ``kubectl``). Tests in this folder check each value,
command, selector, Secret, user, lease, metric and Helm value path they show
against what the chart renders or the code exports.
"""

from __future__ import annotations

import ast
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]

#: The Markdown an operator reads.
MARKDOWN = sorted(
    [REPO / "README.md", REPO / "charts" / "README.md", *(REPO / "docs").glob("*.md")]
)

#: Modules whose string literals are fix lines and hints printed to operators.
HINT_MODULES = sorted((REPO / "kubecache").glob("*.py"))

#: The release and namespace the docs install the chart as
#: (`helm install kubecache charts/kubecache --namespace jhub`).
DOC_RELEASE = "kubecache"
DOC_NAMESPACE = "jhub"


@dataclass(frozen=True)
class Source:
    """One piece of operator-facing text and where it comes from (for messages)."""

    where: str
    text: str


def markdown_sources() -> list[Source]:
    return [Source(str(p.relative_to(REPO)), p.read_text()) for p in MARKDOWN]


def hint_lines() -> list[Source]:
    """Every string literal of kubecache/*.py that mentions kubectl (fix lines, hints)."""
    found = []
    for path in HINT_MODULES:
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and "kubectl " in node.value
            ):
                where = f"{path.relative_to(REPO)}:{node.lineno}"
                found.append(Source(where, node.value))
    return found


_FENCE = re.compile(r"^([ \t]*)```([\w-]*)[^\n]*\n(.*?)^\1```", re.S | re.M)


def code_blocks(source: Source, *languages: str) -> Iterator[tuple[str, str]]:
    """(language, body) of each fenced block, dedented; only ``languages`` when given."""
    for match in _FENCE.finditer(source.text):
        indent, language, body = match.groups()
        if languages and language not in languages:
            continue
        lines = [line.removeprefix(indent) for line in body.splitlines()]
        yield language, "\n".join(lines)


def yaml_documents(source: Source) -> Iterator[Any]:
    """Every YAML document of the source's ```yaml blocks (NOTES.txt: the indented hub values)."""
    if source.where.endswith("NOTES.txt"):
        start = source.text.find("  hub:\n")
        if start >= 0:
            block = []
            for line in source.text[start:].splitlines():
                if line and not line.startswith("  "):
                    break
                block.append(line[2:])
            yield yaml.safe_load("\n".join(block))
        return
    for _, body in code_blocks(source, "yaml"):
        for document in yaml.safe_load_all(body):
            if document is not None:
                yield document


def walk(node: Any) -> Iterator[Any]:
    """Every dict and list in a YAML tree, depth first."""
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def env_maps(document: Any) -> Iterator[dict[str, Any]]:
    """Every z2jh ``extraEnv`` mapping (name -> value or valueFrom) in a YAML tree."""
    for node in walk(document):
        if isinstance(node, dict) and isinstance(node.get("extraEnv"), dict):
            yield node["extraEnv"]


_SHELL_LINE = re.compile(r"^\s*(?:\$\s+)?((?:kubectl|kubecache|kubecache-cacher|helm)\s.*)$")
_INLINE_CODE = re.compile(r"`([^`\n]+)`")


def commands(source: Source, program: str) -> Iterator[str]:
    """Each command line of ``program`` the source shows: in shell blocks, in inline code,
    or anywhere in a hint line. Comments and continuation backslashes are removed."""
    candidates: list[str] = []
    if source.where.endswith(".md"):
        for language, body in code_blocks(source):
            if language in ("", "sh", "bash", "console", "shell"):
                candidates.extend(_joined_lines(body))
        candidates.extend(m.group(1) for m in _INLINE_CODE.finditer(source.text))
    else:
        candidates.extend(source.text.splitlines())
    for text in candidates:
        for part in re.split(r"\s*(?:&&|\|\||;|\|)\s*", text):
            match = _SHELL_LINE.match(part) or re.search(
                rf"(?:^|\s)({re.escape(program)}\s.*)$", part
            )
            if match and match.group(1).split()[0] == program:
                yield _without_comment(match.group(1)).strip()


def _joined_lines(body: str) -> Iterator[str]:
    pending = ""
    for line in body.splitlines():
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        yield pending + line
        pending = ""
    if pending:
        yield pending


def _without_comment(command: str) -> str:
    return re.sub(r"\s+#\s.*$", "", command)


def split(command: str) -> list[str]:
    """shlex words of a doc command; placeholders such as `…` and `[--flag x]` kept as words."""
    return shlex.split(command.replace("…", "..."))


def option_value(words: list[str], *names: str) -> str | None:
    for i, word in enumerate(words):
        for name in names:
            if word == name and i + 1 < len(words):
                return words[i + 1]
            if name.startswith("--") and word.startswith(name + "="):
                return word.split("=", 1)[1]
            if not name.startswith("--") and word.startswith(name) and len(word) > len(name):
                return word[len(name) :]
    return None
