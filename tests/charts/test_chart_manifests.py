"""Every CI scenario renders to manifests a Kubernetes 1.30 API server accepts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.charts.rendering import (
    CHART_DIR,
    CI_VALUES,
    KUBE_VERSION,
    NAMESPACE,
    RELEASE,
    cacher_deployment,
    ci_values,
    helm,
    render,
)

kubernetes_validate = pytest.importorskip(
    "kubernetes_validate", reason="kubernetes-validate is not installed (pip install it)"
)
yamllint_linter = pytest.importorskip(
    "yamllint.linter", reason="yamllint is not installed (pip install yamllint)"
)
from yamllint.config import YamlLintConfig  # noqa: E402

SCENARIOS = pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.stem)

# Rendered manifests: structure rules only (templates decide line lengths).
RENDERED_LINT = YamlLintConfig(
    "extends: default\n"
    "rules: {line-length: disable, document-start: disable, comments: disable,"
    " comments-indentation: disable, indentation: {indent-sequences: whatever},"
    " empty-lines: disable, trailing-spaces: disable, new-line-at-end-of-file: disable,"
    " octal-values: {forbid-implicit-octal: false}, truthy: {check-keys: false}}"
)
SOURCE_LINT = YamlLintConfig(
    "extends: default\nrules: {line-length: {max: 100}, document-start: disable,"
    " truthy: {check-keys: false}, indentation: {indent-sequences: whatever}}"
)

# kubernetes-validate knows no CRDs: the fields of a ServiceMonitor we rely on.
SERVICE_MONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "endpoints"],
            "properties": {
                "namespaceSelector": {"type": "object"},
                "selector": {
                    "type": "object",
                    "properties": {"matchLabels": {"type": "object"}},
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["port", "path"],
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                            "scrapeTimeout": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                        },
                    },
                },
            },
        },
    },
}


def test_there_is_one_values_file_per_ci_scenario() -> None:
    assert {p.stem for p in CI_VALUES} == {
        "default-values",
        "external-redis-tls-values",
        "namespaced-values",
        "metrics-values",
    }


@SCENARIOS
def test_helm_lint_passes_strictly(values_file: Path) -> None:
    report = helm.lint(
        CHART_DIR, ci_values(values_file), strict=True, kube_version=f"v{KUBE_VERSION}"
    )
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [] and problems == [], report


@SCENARIOS
def test_every_manifest_validates_strictly_against_kubernetes_1_30(values_file: Path) -> None:
    rendered = render(ci_values(values_file))
    assert rendered.manifests, "nothing rendered"
    for manifest in rendered:
        where = f"{manifest['kind']}/{manifest['metadata']['name']}"
        if manifest["kind"] in ("ServiceMonitor", "PrometheusRule"):
            import jsonschema

            from tests.charts.monitoring import PROMETHEUS_RULE_SCHEMA

            crd_schemas = {
                "ServiceMonitor": SERVICE_MONITOR_SCHEMA,
                "PrometheusRule": PROMETHEUS_RULE_SCHEMA,
            }
            jsonschema.validate(manifest, crd_schemas[manifest["kind"]])
            continue
        try:
            kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{values_file.name}: {where} is invalid: {e.message}")


@SCENARIOS
def test_rendered_yaml_is_well_formed_without_duplicate_keys(values_file: Path) -> None:
    rendered = render(ci_values(values_file))
    for path, text in rendered.sources.items():
        if path.endswith(".txt") or not text.strip():
            continue
        problems = [
            f"{path}:{p.line}: {p.message}"
            for p in yamllint_linter.run(text, RENDERED_LINT)
            if p.level == "error"
        ]
        assert problems == []


def test_values_and_ci_files_pass_yamllint() -> None:
    for path in [CHART_DIR / "values.yaml", CHART_DIR / "Chart.yaml", *CI_VALUES]:
        problems = [
            f"{path.name}:{p.line}: {p.message}"
            for p in yamllint_linter.run(path.read_text(), SOURCE_LINT)
        ]
        assert problems == []


@SCENARIOS
def test_every_object_is_labelled_and_lives_in_the_release_namespace(values_file: Path) -> None:
    values = ci_values(values_file)
    watched = set(values.get("cacher", {}).get("watch", {}).get("namespaces", [NAMESPACE]))
    for manifest in render(values):
        labels = manifest["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/part-of"] == "kubecache"
        assert labels["app.kubernetes.io/component"] in ("cacher", "redis")
        namespace = manifest["metadata"].get("namespace", NAMESPACE)
        # Helm sets the release namespace; only per-namespace Roles name another.
        assert namespace == NAMESPACE or (
            manifest["kind"] in ("Role", "RoleBinding") and namespace in watched
        )


def test_default_install_runs_two_cachers_and_one_redis_without_persistence() -> None:
    rendered = render()
    deployment = cacher_deployment(rendered)
    assert deployment["spec"]["replicas"] == 2
    redis = rendered.one("StatefulSet", "-redis")
    assert redis["spec"]["replicas"] == 1
    assert "volumeClaimTemplates" not in redis["spec"]
    container = redis["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "valkey/valkey:8.1.10"
    config = rendered.one("ConfigMap", "-redis-config")["data"]["redis.conf"]
    assert 'save ""' in config and "appendonly no" in config
    assert rendered.one("PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    assert rendered.of_kind("ServiceMonitor") == []
    assert len(rendered.of_kind("NetworkPolicy")) == 2


def test_cacher_pods_are_locked_down_and_sized_for_fifty_thousand_pods() -> None:
    spec = cacher_deployment(render())["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = spec["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["resources"]["requests"]["memory"] == "200Mi"
    assert container["resources"]["limits"]["memory"] == "400Mi"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["command"] == ["kubecache-cacher"]


def test_each_cacher_names_itself_in_the_lease_by_its_pod_name() -> None:
    (container,) = cacher_deployment(render())["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["KUBECACHE_IDENTITY"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["KUBECACHE_LEASE_NAMESPACE"]["valueFrom"] == {
        "fieldRef": {"fieldPath": "metadata.namespace"}
    }


def test_the_redis_passwords_are_never_on_a_command_line_or_in_a_config_map() -> None:
    rendered = render()
    secret = rendered.one("Secret", "-redis")["data"]
    for manifest in rendered:
        if manifest["kind"] != "Secret":
            text = yaml.safe_dump(manifest)
            assert not any(password in text for password in secret.values())
    container = rendered.one("StatefulSet")["spec"]["template"]["spec"]["containers"][0]
    assert "requirepass" not in " ".join(container["command"])
    assert {"name": "data", "emptyDir": {}} in rendered.one("StatefulSet")["spec"]["template"][
        "spec"
    ]["volumes"]


def test_external_redis_mounts_the_password_and_ca_secrets_and_runs_no_redis() -> None:
    values = ci_values(CHART_DIR / "ci" / "external-redis-tls-values.yaml")
    rendered = render(values)
    assert rendered.of_kind("StatefulSet") == [] and rendered.of_kind("Secret") == []
    spec = cacher_deployment(rendered)["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["redis-password"]["secret"] == {
        "secretName": "kubecache-redis-credentials",
        "defaultMode": 0o440,
        "items": [{"key": "redis-password", "path": "password"}],
    }
    assert volumes["redis-ca"]["secret"]["secretName"] == "kubecache-redis-ca"
    assert volumes["redis-ca"]["secret"]["items"] == [{"key": "ca.pem", "path": "ca.crt"}]
    config = rendered.one("ConfigMap")["data"]
    assert config["KUBECACHE_REDIS_URL"] == "rediss://redis.example.internal:6380/0"
    assert config["KUBECACHE_REDIS_USERNAME"] == "kubecache"
    assert 'KUBECACHE_REDIS_URL: "rediss://redis.example.internal:6380/0"' in rendered.notes
    assert 'KUBECACHE_REDIS_USERNAME: "kubecache"' in rendered.notes
    hub = hub_values_in_notes(rendered.notes)
    env = hub["extraEnv"]
    assert env["KUBECACHE_REDIS_CA_FILE"] == "/etc/kubecache/redis-ca/ca.crt"
    assert env["KUBECACHE_REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "kubecache-redis-credentials",
        "key": "redis-password",
    }
    (volume,) = hub["extraVolumes"]
    assert volume["secret"]["secretName"] == "kubecache-redis-ca"
    assert volume["secret"]["items"] == [{"key": "ca.pem", "path": "ca.crt"}]
    assert hub["extraVolumeMounts"][0]["mountPath"] == "/etc/kubecache/redis-ca"


def hub_values_in_notes(notes: str) -> dict[str, Any]:
    """The zero-to-jupyterhub ``hub:`` block NOTES.txt prints, parsed as YAML."""
    lines = notes.splitlines()
    start = lines.index("  hub:")
    block = []
    for line in lines[start:]:
        if line and not line.startswith("  "):
            break
        block.append(line)
    parsed: dict[str, Any] = yaml.safe_load("\n".join(block).rstrip())["hub"]
    return parsed


def test_notes_tell_how_to_point_a_hub_at_the_cache() -> None:
    notes = render().notes
    hub = hub_values_in_notes(notes)
    assert hub["config"] == {"JupyterHub": {"spawner_class": "kubecache"}}
    assert hub["extraEnv"]["KUBECACHE_REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": f"{RELEASE}-kubecache-redis",
        "key": "hub-password",
    }
    assert hub["extraEnv"]["KUBECACHE_REDIS_USERNAME"] == "kubecache-hub"
    assert "kubecache-cacher" not in yaml.safe_dump(hub)
    assert "spawner_class: kubecache" in notes
    assert f'KUBECACHE_REDIS_URL: "redis://{RELEASE}-kubecache-redis.{NAMESPACE}.svc:6379/0"' in (
        notes
    )
    assert "KUBECACHE_REDIS_PASSWORD:" in notes and f"name: {RELEASE}-kubecache-redis" in notes
    assert "KUBECACHE_KEY_PREFIX" in notes
