"""Create/get/list/replace/patch/delete through the real kubernetes_asyncio client."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from kubesim.testing import KubeSim, running_kubesim
from tests.kubesim.conftest import pod_manifest
from tests.support.waiting import wait_for


def status_of(err: ApiException) -> dict:
    return orjson.loads(err.body)


async def test_created_pods_get_uid_timestamp_generated_name_and_increasing_versions(
    core: client.CoreV1Api,
) -> None:
    first = await core.create_namespaced_pod("default", pod_manifest(generate_name="jupyter-"))
    second = await core.create_namespaced_pod("default", pod_manifest("named"))
    assert first.metadata.name.startswith("jupyter-") and len(first.metadata.name) == 13
    assert first.metadata.uid and first.metadata.creation_timestamp is not None
    assert int(second.metadata.resource_version) > int(first.metadata.resource_version)
    assert first.status.phase == "Pending"
    listed = await core.list_pod_for_all_namespaces()
    assert int(listed.metadata.resource_version) >= int(second.metadata.resource_version)
    assert {p.metadata.name for p in listed.items} == {first.metadata.name, "named"}


async def test_get_of_a_missing_pod_is_a_404_status(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        await core.read_namespaced_pod("missing", "default")
    assert caught.value.status == 404
    body = status_of(caught.value)
    assert body["kind"] == "Status" and body["reason"] == "NotFound"
    assert body["message"] == 'pods "missing" not found'


async def test_creating_twice_is_409_already_exists(core: client.CoreV1Api) -> None:
    await core.create_namespaced_pod("default", pod_manifest("twice"))
    with pytest.raises(ApiException) as caught:
        await core.create_namespaced_pod("default", pod_manifest("twice"))
    assert caught.value.status == 409
    assert status_of(caught.value)["reason"] == "AlreadyExists"


async def test_create_in_a_missing_namespace_is_404(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        await core.create_namespaced_pod("nowhere", pod_manifest("p"))
    assert caught.value.status == 404
    assert status_of(caught.value)["message"] == 'namespaces "nowhere" not found'


async def test_invalid_objects_are_422_with_every_cause(core: client.CoreV1Api) -> None:
    bad = pod_manifest("Bad_Name", labels={"ok": "not a valid value!"})
    bad["spec"]["containers"] = []
    with pytest.raises(ApiException) as caught:
        await core.create_namespaced_pod("default", bad)
    assert caught.value.status == 422
    body = status_of(caught.value)
    assert body["reason"] == "Invalid"
    fields = {cause["field"] for cause in body["details"]["causes"]}
    assert {"metadata.name", "spec.containers"} <= fields
    assert any(field.startswith("metadata.labels") for field in fields)


async def test_a_service_name_must_be_a_dns_1035_label(core: client.CoreV1Api) -> None:
    service = {"metadata": {"name": "1starts-with-digit"}, "spec": {"ports": [{"port": 80}]}}
    with pytest.raises(ApiException) as caught:
        await core.create_namespaced_service("default", service)
    assert caught.value.status == 422


async def test_replace_with_a_stale_resource_version_is_409_conflict(
    core: client.CoreV1Api,
) -> None:
    created = await core.create_namespaced_config_map(
        "default", {"metadata": {"name": "cm"}, "data": {"a": "1"}}
    )
    created.data = {"a": "2"}
    replaced = await core.replace_namespaced_config_map("cm", "default", created)
    assert replaced.data == {"a": "2"}
    created.data = {"a": "3"}
    with pytest.raises(ApiException) as caught:
        await core.replace_namespaced_config_map("cm", "default", created)
    assert caught.value.status == 409
    assert status_of(caught.value)["reason"] == "Conflict"


async def test_status_subresource_changes_only_status(core: client.CoreV1Api) -> None:
    await core.create_namespaced_pod("default", pod_manifest("st"))
    # A write to the main resource ignores status.
    patched = await core.patch_namespaced_pod(
        "st", "default", {"metadata": {"labels": {"x": "y"}}, "status": {"phase": "Running"}}
    )
    assert patched.status.phase == "Pending" and patched.metadata.labels == {"x": "y"}
    # A write to /status changes status and nothing else.
    patched = await core.patch_namespaced_pod_status(
        "st", "default", {"metadata": {"labels": {"x": "z"}}, "status": {"phase": "Running"}}
    )
    assert patched.status.phase == "Running" and patched.metadata.labels == {"x": "y"}
    current = await core.read_namespaced_pod_status("st", "default")
    current.status.pod_ip = "10.0.0.9"
    replaced = await core.replace_namespaced_pod_status("st", "default", current)
    assert replaced.status.pod_ip == "10.0.0.9"


async def test_strategic_merge_patch_merges_containers_by_name(core: client.CoreV1Api) -> None:
    pod = pod_manifest("smp")
    pod["spec"]["containers"].append({"name": "sidecar", "image": "proxy:1"})
    await core.create_namespaced_pod("default", pod)
    patched = await core.patch_namespaced_pod(
        "smp", "default", {"spec": {"containers": [{"name": "sidecar", "image": "proxy:2"}]}}
    )
    images = {c.name: c.image for c in patched.spec.containers}
    assert images == {"notebook": "jupyter/base:1.0", "sidecar": "proxy:2"}


async def test_json_patch_and_merge_patch_apply(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    await core.create_namespaced_config_map(
        "default", {"metadata": {"name": "jp"}, "data": {"a": "1", "b": "2"}}
    )
    patched = await core.patch_namespaced_config_map(
        "jp", "default", [{"op": "replace", "path": "/data/a", "value": "9"}]
    )
    assert patched.data == {"a": "9", "b": "2"}
    merged = await core.patch_namespaced_config_map(
        "jp",
        "default",
        {"data": {"b": None}},
        _content_type="application/merge-patch+json",
    )
    assert merged.data == {"a": "9"}


async def test_secrets_services_and_pvcs_round_trip(core: client.CoreV1Api) -> None:
    secret = await core.create_namespaced_secret(
        "default", {"metadata": {"name": "s"}, "stringData": {"token": "abc"}}
    )
    assert secret.data == {"token": "YWJj"} and secret.type == "Opaque"
    service = await core.create_namespaced_service(
        "default",
        {"metadata": {"name": "svc"}, "spec": {"ports": [{"port": 8888}], "selector": {"a": "b"}}},
    )
    assert service.spec.cluster_ip and service.spec.ports[0].target_port == 8888
    pvc = await core.create_namespaced_persistent_volume_claim(
        "default",
        {
            "metadata": {"name": "claim"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    assert pvc.status.phase == "Pending"
    deleted = await core.delete_namespaced_secret("s", "default")
    assert deleted.status == "Success"
    assert (await core.list_namespaced_secret("default")).items == []


async def test_leases_use_optimistic_concurrency(api: client.ApiClient) -> None:
    coordination = client.CoordinationV1Api(api)
    lease = await coordination.create_namespaced_lease(
        "default", {"metadata": {"name": "leader"}, "spec": {"holderIdentity": "a"}}
    )
    stale = await coordination.read_namespaced_lease("leader", "default")
    lease.spec.holder_identity = "b"
    await coordination.replace_namespaced_lease("leader", "default", lease)
    stale.spec.holder_identity = "c"
    with pytest.raises(ApiException) as caught:
        await coordination.replace_namespaced_lease("leader", "default", stale)
    assert caught.value.status == 409
    current = await coordination.read_namespaced_lease("leader", "default")
    assert current.spec.holder_identity == "b"


async def test_delete_preconditions_on_uid_are_enforced(core: client.CoreV1Api) -> None:
    await core.create_namespaced_pod("default", pod_manifest("pre"))
    with pytest.raises(ApiException) as caught:
        await core.delete_namespaced_pod(
            "pre", "default", body=client.V1DeleteOptions(preconditions={"uid": "wrong"})
        )
    assert caught.value.status == 409


async def test_discovery_lists_resources_with_verbs(api: client.ApiClient) -> None:
    versions = await client.CoreApi(api).get_api_versions()
    assert versions.versions == ["v1"]
    resources = await client.CoreV1Api(api).get_api_resources()
    by_name = {r.name: r for r in resources.resources}
    assert "watch" in by_name["pods"].verbs and by_name["pods"].namespaced
    assert "pods/status" in by_name and not by_name["nodes"].namespaced
    groups = await client.ApisApi(api).get_api_versions()
    assert "coordination.k8s.io" in [g.name for g in groups.groups]
    leases = await client.CoordinationV1Api(api).get_api_resources()
    assert [r.name for r in leases.resources] == ["leases"]
    version = await client.VersionApi(api).get_code()
    assert version.major == "1"


async def test_kubectl_gets_pods_across_namespaces_over_tls() -> None:
    async with running_kubesim(kubelet=None, tls=True) as sim:
        async with sim.api_client() as api:
            pod = pod_manifest("kubectl-sees-me")
            await client.CoreV1Api(api).create_namespaced_pod("default", pod)
        out, err, code = await run_kubectl(sim, "get", "pods", "-A")
        assert code == 0, err
        assert "kubectl-sees-me" in out and "default" in out
        out, err, code = await run_kubectl(sim, "get", "pod", "missing")
        assert code == 1 and 'pods "missing" not found' in err


async def test_kubectl_shows_a_pods_readiness_status_node_and_ip() -> None:
    async with running_kubesim(kubelet="fake", tls=True) as sim:
        async with sim.api_client() as api:
            await client.CoreV1Api(api).create_namespaced_pod("default", pod_manifest("seen"))

            async def running() -> bool:
                found = await client.CoreV1Api(api).read_namespaced_pod("seen", "default")
                return found.status.phase == "Running"

            await wait_for(running, timeout=30, message="the pod to run")
        out, err, code = await run_kubectl(sim, "get", "pods", "-A")
        assert code == 0, err
        header, row = out.splitlines()
        assert header.split() == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
        assert row.split()[:5] == ["default", "seen", "1/1", "Running", "0"]
        out, err, code = await run_kubectl(sim, "get", "pod", "seen", "-o", "wide")
        assert code == 0, err
        wide = ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED", "NODE"]
        assert out.split()[:9] == wide
        assert "Running" in out and "<none>" in out


async def test_kubectl_get_pods_watch_keeps_the_columns() -> None:
    """Each watch event of ``kubectl get pods -w`` is a Table: no second NAME/AGE header."""
    async with running_kubesim(kubelet=None, tls=True) as sim:
        async with sim.api_client() as api:
            await client.CoreV1Api(api).create_namespaced_pod("default", pod_manifest("old"))
        watching = await asyncio.create_subprocess_exec(
            *("kubectl", "--kubeconfig", str(sim.kubeconfig_path), "get", "pods", "-w"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert watching.stdout is not None
        try:
            header = await asyncio.wait_for(watching.stdout.readline(), 30)
            listed = await asyncio.wait_for(watching.stdout.readline(), 30)
            async with sim.api_client() as api:  # a change kubectl learns from the watch
                await client.CoreV1Api(api).create_namespaced_pod("default", pod_manifest("new"))
            watched = await asyncio.wait_for(watching.stdout.readline(), 30)
        finally:
            watching.kill()
            await watching.wait()
        assert header.decode().split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
        assert listed.decode().split()[:3] == ["old", "0/1", "Pending"]
        assert watched.decode().split()[:3] == ["new", "0/1", "Pending"]


async def run_kubectl(sim: KubeSim, *args: str) -> tuple[str, str, int | None]:
    process = await asyncio.create_subprocess_exec(
        "kubectl",
        "--kubeconfig",
        str(sim.kubeconfig_path),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return out.decode(), err.decode(), process.returncode


async def test_quantities_come_back_canonical_as_from_a_real_api_server(
    core: client.CoreV1Api,
) -> None:
    manifest = pod_manifest("sized")
    manifest["spec"]["containers"][0]["resources"] = {
        "limits": {"cpu": 1.0, "memory": "1024Mi"},
        "requests": {"cpu": 0.5, "memory": 536870912},
    }
    created = await core.create_namespaced_pod("default", manifest)
    resources = created.spec.containers[0].resources
    assert resources.limits == {"cpu": "1", "memory": "1Gi"}
    assert resources.requests == {"cpu": "500m", "memory": "536870912"}
    read = await core.read_namespaced_pod("sized", "default")
    assert read.spec.containers[0].resources.limits == {"cpu": "1", "memory": "1Gi"}


async def test_a_claim_with_null_storage_is_refused_with_the_servers_field_path(
    core: client.CoreV1Api,
) -> None:
    body = {
        "metadata": {"name": "claim-alice"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": None}}},
    }
    with pytest.raises(ApiException) as caught:
        await core.create_namespaced_persistent_volume_claim("default", body)
    assert caught.value.status == 422
    status = status_of(caught.value)
    assert status["reason"] == "Invalid"
    assert status["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: "0": must be greater than zero',
            "field": "spec.resources[storage]",
        }
    ]
    assert status["message"] == (
        'PersistentVolumeClaim "claim-alice" is invalid: spec.resources[storage]: '
        'Invalid value: "0": must be greater than zero'
    )


# --- what admission and decoding do to a body, as on kube-apiserver ---------------------------

NOT_READY = {
    "key": "node.kubernetes.io/not-ready",
    "operator": "Exists",
    "effect": "NoExecute",
    "tolerationSeconds": 300,
}
UNREACHABLE = {**NOT_READY, "key": "node.kubernetes.io/unreachable"}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ([], [NOT_READY, UNREACHABLE]),
        (
            [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
            [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}, NOT_READY, UNREACHABLE],
        ),
        # Already tolerated (by key, or by an empty key/effect): left alone.
        (
            [{**NOT_READY, "tolerationSeconds": 30}],
            [{**NOT_READY, "tolerationSeconds": 30}, UNREACHABLE],
        ),
        ([{"operator": "Exists"}], [{"operator": "Exists"}]),
        (
            [{"key": "node.kubernetes.io/unreachable", "operator": "Exists"}],
            [{"key": "node.kubernetes.io/unreachable", "operator": "Exists"}, NOT_READY],
        ),
    ],
)
async def test_pods_get_the_default_toleration_seconds_tolerations_unless_already_tolerated(
    core: client.CoreV1Api, given: list[dict[str, object]], expected: list[dict[str, object]]
) -> None:
    manifest = pod_manifest("p")
    manifest["spec"]["tolerations"] = given
    await core.create_namespaced_pod("default", manifest)
    response = await core.read_namespaced_pod("p", "default", _preload_content=False)
    assert orjson.loads(await response.read())["spec"]["tolerations"] == expected


async def test_a_pod_update_keeps_the_default_tolerations(core: client.CoreV1Api) -> None:
    await core.create_namespaced_pod("default", pod_manifest("p"))
    response = await core.read_namespaced_pod("p", "default", _preload_content=False)
    pod = orjson.loads(await response.read())
    pod["spec"].pop("tolerations")  # a client that never knew of them
    pod["metadata"]["labels"] = {"changed": "yes"}
    await core.replace_namespaced_pod("p", "default", pod)
    response = await core.read_namespaced_pod("p", "default", _preload_content=False)
    assert orjson.loads(await response.read())["spec"]["tolerations"] == [NOT_READY, UNREACHABLE]


async def send(
    sim: KubeSim, method: str, path: str, body: object, *, content_type: str = "application/json"
) -> tuple[int, dict[str, object], list[str]]:
    """(status, JSON body, Warning headers) of one raw request with the token."""
    import aiohttp

    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method,
            sim.url + path,
            data=orjson.dumps(body),
            headers={"Authorization": f"Bearer {sim.token}", "Content-Type": content_type},
        ) as response,
    ):
        return (
            response.status,
            orjson.loads(await response.read()),
            response.headers.getall("Warning", []),
        )


def pod_with_unknown_fields() -> dict[str, object]:
    manifest = pod_manifest("p")
    manifest["spec"]["foo"] = 1
    manifest["spec"]["containers"][0]["bar"] = "x"
    return manifest


async def test_field_validation_strict_rejects_unknown_fields_with_400(bare: KubeSim) -> None:
    code, status, _ = await send(
        bare,
        "POST",
        "/api/v1/namespaces/default/pods?fieldValidation=Strict",
        pod_with_unknown_fields(),
    )
    assert code == 400
    assert status["reason"] == "BadRequest"
    assert status["message"] == (
        'Pod in version "v1" cannot be handled as a Pod: strict decoding error: '
        'unknown field "spec.containers[0].bar", unknown field "spec.foo"'
    )
    assert bare.store.get("pods", "default", "p") is None


@pytest.mark.parametrize("query", ["", "?fieldValidation=Warn"])
async def test_field_validation_warn_is_the_default_and_answers_with_warning_headers(
    bare: KubeSim, query: str
) -> None:
    code, pod, warnings = await send(
        bare, "POST", "/api/v1/namespaces/default/pods" + query, pod_with_unknown_fields()
    )
    assert code == 201
    assert warnings == [
        '299 - "unknown field \\"spec.containers[0].bar\\""',
        '299 - "unknown field \\"spec.foo\\""',
    ]
    spec = pod["spec"]
    assert isinstance(spec, dict)
    assert "foo" not in spec and "bar" not in spec["containers"][0]  # dropped, not stored


async def test_field_validation_ignore_drops_unknown_fields_silently(bare: KubeSim) -> None:
    code, _, warnings = await send(
        bare,
        "POST",
        "/api/v1/namespaces/default/pods?fieldValidation=Ignore",
        pod_with_unknown_fields(),
    )
    assert code == 201 and warnings == []
    stored = bare.store.get("pods", "default", "p")
    assert stored is not None and "foo" not in stored["spec"]


async def test_field_validation_applies_to_updates_and_patches(bare: KubeSim) -> None:
    path = "/api/v1/namespaces/default/configmaps"
    assert (await send(bare, "POST", path, {"metadata": {"name": "c"}, "data": {}}))[0] == 201
    code, status, _ = await send(
        bare,
        "PUT",
        path + "/c?fieldValidation=Strict",
        {"metadata": {"name": "c"}, "data": {}, "extra": True},
    )
    assert (code, status["message"]) == (
        400,
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: '
        'unknown field "extra"',
    )
    code, status, _ = await send(
        bare,
        "PATCH",
        path + "/c?fieldValidation=Strict",
        {"metadata": {"labels": {"a": "b"}, "nope": 1}},
        content_type="application/merge-patch+json",
    )
    assert (code, status["message"]) == (
        400,
        'strict decoding error: unknown field "metadata.nope"',
    )
    code, _, warnings = await send(
        bare,
        "PATCH",
        path + "/c",
        {"metadata": {"nope": 1}},
        content_type="application/merge-patch+json",
    )
    assert code == 200 and warnings == ['299 - "unknown field \\"metadata.nope\\""']


async def test_an_unsupported_field_validation_value_is_422(bare: KubeSim) -> None:
    code, status, _ = await send(
        bare,
        "POST",
        "/api/v1/namespaces/default/configmaps?fieldValidation=Loud",
        {"metadata": {"name": "c"}},
    )
    assert code == 422
    assert status["message"] == (
        'CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "Loud": '
        'supported values: "Ignore", "Strict", "Warn"'
    )
