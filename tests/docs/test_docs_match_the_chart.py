"""Every Secret, Redis user, selector, object name, lease and value path a doc shows exists.

The chart is rendered as the docs install it (`helm install kubecache
charts/kubecache --namespace jhub`) and each thing an operator would copy from
README.md, docs/*.md, charts/README.md, NOTES.txt or a CLI fix line is looked
up in what it renders: a hub that follows a doc must start, and a command must
match something.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import pytest

from tests.charts.rendering import CHART_DIR, Rendered, render
from tests.docs.reading import (
    DOC_NAMESPACE,
    DOC_RELEASE,
    Source,
    commands,
    env_maps,
    hint_lines,
    markdown_sources,
    option_value,
    split,
    walk,
    yaml_documents,
)


@cache
def rendered() -> Rendered:
    return render(release=DOC_RELEASE, namespace=DOC_NAMESPACE)


def notes() -> Source:
    return Source("charts/kubecache/templates/NOTES.txt (rendered)", rendered().notes)


def all_sources() -> list[Source]:
    return [*markdown_sources(), notes(), *hint_lines()]


def where(source: Source) -> str:
    return source.where


def redis_users() -> dict[str, str]:
    """The in-chart Redis' ACL users -> the key of their password in the chart's Secret."""
    (redis,) = rendered().one("StatefulSet", "-redis")["spec"]["template"]["spec"]["containers"]
    script = "\n".join(redis["command"])
    key_of_variable = {
        e["name"]: e["valueFrom"]["secretKeyRef"]["key"]
        for e in redis["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    users = re.findall(r"user ([\w-]+) reset on #%s %s\\n' \"\$\(sha \"\$(\w+)\"\)\"", script)
    assert users, "no ACL users found in the rendered Redis start-up script"
    return {user: key_of_variable[variable] for user, variable in users}


def hub_lease_names() -> set[str]:
    """Leases the in-chart Redis lets the hub user write (its %RW~ key patterns)."""
    (redis,) = rendered().one("StatefulSet", "-redis")["spec"]["template"]["spec"]["containers"]
    return set(re.findall(r"%RW~[^ ']*hub-lease:([\w.-]+)", "\n".join(redis["command"])))


def redis_secret() -> dict[str, Any]:
    return rendered().one("Secret", "-redis")


def redis_host() -> str:
    return f"{rendered().one('Service', '-redis')['metadata']['name']}.{DOC_NAMESPACE}.svc"


def pod_label_sets() -> list[dict[str, str]]:
    return [
        m["spec"]["template"]["metadata"]["labels"]
        for m in rendered()
        if m["kind"] in ("Deployment", "StatefulSet")
    ]


def cacher_lease_name() -> str:
    name: str = rendered().one("ConfigMap", "-cacher-config")["data"]["KUBECACHE_LEASE_NAME"]
    return name


def selector_matches(selector: str, labels: dict[str, str]) -> bool:
    for term in selector.split(","):
        key, _, value = term.partition("=")
        if labels.get(key.strip()) != value.strip():
            return False
    return True


def kubectl_commands(source: Source) -> list[list[str]]:
    return [split(c) for c in commands(source, "kubectl")]


# -- the hub's Redis credentials ----------------------------------------------------------


def hub_env_blocks(source: Source) -> list[dict[str, Any]]:
    return [env for doc in yaml_documents(source) for env in env_maps(doc)]


@pytest.mark.parametrize("source", [*markdown_sources(), notes()], ids=where)
def test_hub_values_for_the_in_chart_redis_name_its_secret_key_and_user(source: Source) -> None:
    """A hub pointed at the in-chart Redis must log in as kubecache-hub with hub-password:
    the default user is off, so anything else is a hub that cannot start."""
    secret = redis_secret()
    keys = set(secret.get("data", {})) | set(secret.get("stringData", {}))
    users = redis_users()
    for env in hub_env_blocks(source):
        url = env.get("KUBECACHE_REDIS_URL")
        if url is not None and redis_host() not in str(url):
            continue  # an external Redis: the operator's own Secret and user
        ref = (env.get("KUBECACHE_REDIS_PASSWORD") or {}).get("valueFrom", {}).get("secretKeyRef")
        if ref is None:
            continue
        assert ref["name"] == secret["metadata"]["name"], (source.where, ref)
        assert ref["key"] in keys, f"{source.where}: Secret key {ref['key']!r} is not in {keys}"
        user = env.get("KUBECACHE_REDIS_USERNAME")
        assert user, f"{source.where}: no KUBECACHE_REDIS_USERNAME (Redis' default user is off)"
        assert users.get(user) == ref["key"], (
            f"{source.where}: user {user!r} with key {ref['key']!r}; the chart gives "
            f"{users} (a hub uses kubecache-hub / hub-password)"
        )
        assert user == "kubecache-hub", f"{source.where}: a hub must not log in as {user}"


@pytest.mark.parametrize("source", [*markdown_sources(), notes()], ids=where)
def test_every_secret_key_ref_to_the_charts_secret_uses_one_of_its_keys(source: Source) -> None:
    secret = redis_secret()
    keys = set(secret.get("data", {})) | set(secret.get("stringData", {}))
    for document in yaml_documents(source):
        for node in walk(document):
            if isinstance(node, dict) and isinstance(node.get("secretKeyRef"), dict):
                ref = node["secretKeyRef"]
                if ref.get("name") == secret["metadata"]["name"]:
                    assert ref.get("key") in keys, (source.where, ref, keys)


@pytest.mark.parametrize("source", all_sources(), ids=where)
def test_every_redis_user_name_shown_is_an_acl_user_of_the_chart(source: Source) -> None:
    users = redis_users()
    shown = set(re.findall(r"KUBECACHE_REDIS_USERNAME:\s*\"?([\w-]+)", source.text))
    for program in ("kubecache", "kubecache-cacher"):
        for command in commands(source, program):
            user = option_value(split(command), "--redis-username")
            if user:
                shown.add(user)
    shown |= set(re.findall(r"Redis user \"?`?(kubecache-[\w-]+)", source.text))
    shown |= set(re.findall(r"\buser `(kubecache-[\w-]+)`", source.text))
    for user in shown:
        assert user in users, f"{source.where}: Redis user {user!r}; the chart makes {set(users)}"


# -- kubectl: namespaces, selectors, object names, port-forward --------------------------

NAMESPACED_VERBS = {
    "logs",
    "get",
    "describe",
    "port-forward",
    "exec",
    "delete",
    "apply",
    "patch",
    "scale",
    "rollout",
    "auth",
    "top",
}


def verb(words: list[str]) -> str | None:
    skip_next = False
    for word in words[1:]:
        if skip_next:
            skip_next = False
            continue
        if word in ("-n", "--namespace", "--kubeconfig", "--context"):
            skip_next = True
            continue
        if word.startswith("-"):
            continue
        return word
    return None


#: Docs about the emulator (its kubeconfig's default namespace), not an operator's cluster.
NOT_ABOUT_A_CLUSTER = {"docs/kubesim.md"}


@pytest.mark.parametrize("source", all_sources(), ids=where)
def test_kubectl_commands_name_their_namespace(source: Source) -> None:
    if source.where in NOT_ABOUT_A_CLUSTER:
        return
    for words in kubectl_commands(source):
        if verb(words) not in NAMESPACED_VERBS or len(words) <= 3:
            continue  # (three words: prose naming a command, `kubectl auth can-i`)
        namespaced = option_value(words, "-n", "--namespace") or any(
            w in ("-A", "--all-namespaces") for w in words
        )
        assert namespaced, f"{source.where}: {' '.join(words)!r} has no -n (the chart's namespace)"


@pytest.mark.parametrize("source", all_sources(), ids=where)
def test_label_selectors_for_kubecache_pods_match_what_the_chart_renders(source: Source) -> None:
    labels = pod_label_sets()
    for words in kubectl_commands(source):
        selector = option_value(words, "-l", "--selector")
        if not selector or "kubecache" not in selector:
            continue
        assert any(selector_matches(selector, s) for s in labels), (
            f"{source.where}: {selector!r} matches no pod the chart renders; pod labels: {labels}"
        )
    for document in yaml_documents(source):
        for node in walk(document):
            if isinstance(node, dict) and isinstance(node.get("matchLabels"), dict):
                wanted = node["matchLabels"]
                if "kubecache" not in json.dumps(wanted):
                    continue
                assert any(all(s.get(k) == v for k, v in wanted.items()) for s in labels), (
                    f"{source.where}: matchLabels {wanted} match no pod the chart renders"
                )


@pytest.mark.parametrize("source", all_sources(), ids=where)
def test_kubectl_object_names_exist_in_the_render(source: Source) -> None:
    names = {(m["kind"], m["metadata"]["name"]) for m in rendered()}
    short = {
        "svc": "Service",
        "service": "Service",
        "deploy": "Deployment",
        "deployment": "Deployment",
        "sts": "StatefulSet",
        "statefulset": "StatefulSet",
    }
    for words in kubectl_commands(source):
        for word in words:
            kind, _, name = word.partition("/")
            if kind in short and name and "kubecache" in name:
                assert (short[kind], name) in names, f"{source.where}: no {word} in the render"
        if verb(words) == "get" and "lease" in words:
            name = words[words.index("lease") + 1]
            if "kubecache" in name:
                assert name == cacher_lease_name(), (source.where, name, cacher_lease_name())


@pytest.mark.parametrize("source", all_sources(), ids=where)
def test_no_command_waits_on_a_port_forward_that_never_returns(source: Source) -> None:
    """`kubectl port-forward` runs until stopped: `port-forward … && curl` never curls."""
    assert not re.search(r"port-forward[^\n`]*&&", source.text), source.where


# -- leases -------------------------------------------------------------------------------


def standby_examples() -> list[Source]:
    """Docs plus every string of kubecache/*.py (help epilogs) that shows hub-standby."""
    from tests.docs.reading import HINT_MODULES, REPO

    sources = list(markdown_sources())
    for path in HINT_MODULES:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "hub-standby --lease-name" in line or "kubecache.acl --lease-name" in line:
                sources.append(Source(f"{path.relative_to(REPO)}:{number}", line))
    return sources


@pytest.mark.parametrize("source", standby_examples(), ids=where)
def test_hub_standby_lease_names_shown_are_ones_the_charts_acl_grants(source: Source) -> None:
    granted = hub_lease_names()
    assert granted, "the chart grants the hub no lease"
    for name in re.findall(r"--lease-name[ =]([\w.-]+)", source.text):
        if name.isupper():
            continue  # a placeholder (NAME)
        assert name in granted, (
            f"{source.where}: --lease-name {name}; the chart's hub user may only write "
            f"{granted} (redis.auth.hubLeaseNames)"
        )


# -- Helm value paths ---------------------------------------------------------------------


@cache
def value_paths() -> set[str]:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    paths: set[str] = set()

    def visit(node: dict[str, Any], prefix: str) -> None:
        for key, child in node.get("properties", {}).items():
            path = f"{prefix}{key}"
            paths.add(path)
            if isinstance(child, dict):
                visit(child, path + ".")

    visit(schema, "")
    return paths


_VALUE_PATH = re.compile(
    r"(?<![\w./-])((?:cacher|redis|externalRedis)\.[A-Za-z][\w]*(?:\.[A-Za-z]\w*)*)"
)
#: Words that look like value paths but are not (file and module names, hosts).
NOT_VALUE_PATHS = {"redis.conf", "redis.asyncio", "redis.exceptions", "redis.example.org"}
FILE_SUFFIXES = {"txt", "py", "yaml", "yml", "json", "md", "conf", "sh", "toml", "go"}


@pytest.mark.parametrize("source", [*markdown_sources(), notes()], ids=where)
def test_every_chart_value_path_shown_exists_in_the_schema(source: Source) -> None:
    text = source.text
    if source.where == "charts/README.md":  # the generated values table is checked elsewhere
        text = re.sub(r"<!-- values-table:start.*?values-table:end -->", "", text, flags=re.S)
    for path in set(_VALUE_PATH.findall(text)) - NOT_VALUE_PATHS:
        if path.rsplit(".", 1)[-1] in FILE_SUFFIXES:
            continue  # a file name (requirements/cacher.txt)
        assert path in value_paths(), f"{source.where}: {path!r} is not a value of the chart"
    for command in commands(source, "helm"):
        words = split(command)
        for i, word in enumerate(words):
            if word == "--set" and i + 1 < len(words):
                for assignment in words[i + 1].split(","):
                    path = assignment.split("=", 1)[0]
                    assert path in value_paths(), f"{source.where}: --set {path}"
