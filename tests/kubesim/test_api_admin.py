"""Authentication, authorisation, fault injection, stats and the ``kubesim serve`` CLI."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import orjson
import pytest
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from kubesim.auth import Authenticator, Rule
from kubesim.testing import KubeSim, running_kubesim
from tests.kubesim.conftest import pod_manifest, raw_watch
from tests.support.waiting import wait_for


async def test_requests_without_a_token_are_403_for_system_anonymous(bare: KubeSim) -> None:
    configuration = client.Configuration()
    configuration.host = bare.url
    async with client.ApiClient(configuration) as api:
        with pytest.raises(ApiException) as caught:
            await client.CoreV1Api(api).list_namespaced_pod("default")
        with pytest.raises(ApiException) as discovery:
            await client.CoreApi(api).get_api_versions()
    assert caught.value.status == 403
    status = orjson.loads(caught.value.body)
    assert status["reason"] == "Forbidden"
    assert status["message"] == (
        'pods is forbidden: User "system:anonymous" cannot list resource "pods" in API group "" '
        'in the namespace "default"'
    )
    assert discovery.value.status == 403
    assert orjson.loads(discovery.value.body)["message"] == (
        'forbidden: User "system:anonymous" cannot get path "/api/"'
    )


async def test_requests_without_a_token_are_401_with_anonymous_auth_off() -> None:
    async with running_kubesim(kubelet=None, anonymous_auth=False) as sim:
        configuration = client.Configuration()
        configuration.host = sim.url
        async with client.ApiClient(configuration) as api:
            with pytest.raises(ApiException) as caught:
                await client.CoreV1Api(api).list_namespaced_pod("default")
    assert caught.value.status == 401
    assert orjson.loads(caught.value.body)["reason"] == "Unauthorized"


async def test_an_unknown_token_is_401_even_with_anonymous_auth_on(bare: KubeSim) -> None:
    configuration = client.Configuration()
    configuration.host = bare.url
    configuration.api_key = {"BearerToken": "not-a-token"}
    configuration.api_key_prefix = {"BearerToken": "Bearer"}
    async with client.ApiClient(configuration) as api:
        with pytest.raises(ApiException) as caught:
            await client.CoreV1Api(api).list_namespaced_pod("default")
    assert caught.value.status == 401


async def test_per_token_rules_deny_with_403() -> None:
    auth = Authenticator.single("admin-token")
    auth.add_token(
        "reader-token",
        "system:serviceaccount:default:reader",
        [Rule.of(["get", "list", "watch"], ["pods"], ["default"])],
    )
    sim_context = running_kubesim(kubelet=None, auth=auth, token="reader-token")
    async with sim_context as sim, sim.api_client() as api:
        core = client.CoreV1Api(api)
        assert (await core.list_namespaced_pod("default")).items == []
        with pytest.raises(ApiException) as caught:
            await core.create_namespaced_pod("default", pod_manifest("p"))
        assert caught.value.status == 403
        assert orjson.loads(caught.value.body)["message"] == (
            'pods is forbidden: User "system:serviceaccount:default:reader" cannot create '
            'resource "pods" in API group "" in the namespace "default"'
        )
        with pytest.raises(ApiException) as caught:
            await core.list_pod_for_all_namespaces()
        assert caught.value.status == 403


async def test_injected_failures_hit_the_matching_requests_count_times(
    bare: KubeSim, core: client.CoreV1Api
) -> None:
    await bare.fault(
        {"action": "fail", "verb": "list", "resource": "pods", "status": 503, "count": 2}
    )
    for _ in range(2):
        with pytest.raises(ApiException) as caught:
            await core.list_namespaced_pod("default")
        assert caught.value.status == 503
    await core.list_namespaced_config_map("default")  # other resources are unaffected
    await core.list_namespaced_pod("default")  # the count is used up


async def test_injected_429_carries_retry_after(bare: KubeSim, core: client.CoreV1Api) -> None:
    await bare.fault(
        {"action": "fail", "verb": "create", "resource": "pods", "status": 429, "retry_after": 3}
    )
    with pytest.raises(ApiException) as caught:
        await core.create_namespaced_pod("default", pod_manifest("p"))
    assert caught.value.status == 429
    assert caught.value.headers["Retry-After"] == "3"
    assert orjson.loads(caught.value.body)["reason"] == "TooManyRequests"
    await bare.fault({"action": "clear"})
    await core.create_namespaced_pod("default", pod_manifest("p"))


async def test_latency_delays_requests_until_cleared(bare: KubeSim, core: client.CoreV1Api) -> None:
    await bare.fault({"action": "latency", "ms": 300})
    request = asyncio.ensure_future(core.list_namespaced_pod("default"))
    done, _ = await asyncio.wait({request}, timeout=0.05)
    assert not done  # still held by the injected latency
    await asyncio.wait_for(request, 10)
    await bare.fault({"action": "clear"})
    assert bare.server.faults.latency_ms == 0


async def test_drop_watches_ends_every_open_stream(bare: KubeSim, core: client.CoreV1Api) -> None:
    streams = [await raw_watch(core.list_namespaced_pod, "default") for _ in range(3)]
    await wait_for(lambda: bare.server.hub.open_watches == 3, message="3 watches open")
    await bare.fault({"action": "drop_watches"})
    for stream in streams:
        assert await asyncio.wait_for(stream.rest(), 10) == []
    await wait_for(lambda: bare.server.hub.open_watches == 0, message="watches closed")


async def test_stalled_watches_stay_open_but_silent_until_cleared(
    bare: KubeSim, core: client.CoreV1Api
) -> None:
    stream = await raw_watch(core.list_namespaced_pod, "default")
    await wait_for(lambda: bare.server.hub.open_watches == 1, message="watch open")
    await bare.fault({"action": "stall_watches"})
    await core.create_namespaced_pod("default", pod_manifest("unseen"))
    pending = asyncio.ensure_future(stream.next())
    done, _ = await asyncio.wait({pending}, timeout=0.2)
    assert not done and (await bare.stats())["open_watches"] == 1
    await bare.fault({"action": "clear"})
    event = await asyncio.wait_for(pending, 10)
    assert event["object"]["metadata"]["name"] == "unseen"
    stream.close()


async def test_drop_watches_ends_stalled_streams_too(bare: KubeSim, core: client.CoreV1Api) -> None:
    stream = await raw_watch(core.list_namespaced_pod, "default")
    await wait_for(lambda: bare.server.hub.open_watches == 1, message="watch open")
    await bare.fault({"action": "stall_watches"})
    await bare.fault({"action": "drop_watches"})
    assert await asyncio.wait_for(stream.rest(), 10) == []


async def test_an_unknown_fault_is_rejected(bare: KubeSim) -> None:
    with pytest.raises(RuntimeError, match="unknown fault action"):
        await bare.fault({"action": "explode"})


async def test_stats_count_requests_watches_and_bytes(
    bare: KubeSim, core: client.CoreV1Api
) -> None:
    await core.create_namespaced_pod("default", pod_manifest("p"))
    await core.list_pod_for_all_namespaces()
    await core.list_pod_for_all_namespaces()
    stream = await raw_watch(core.list_namespaced_pod, "default")
    await stream.next()
    stats = await bare.stats()
    assert stats["requests"]["create"]["pods"] == 1
    assert stats["requests"]["list"]["pods"] == 2
    assert stats["requests"]["watch"]["pods"] == 1
    # the same, per authenticated user (one token here)
    assert list(stats["requests_by_user"]) == [bare.server.auth.users[bare.token]]
    by_user = next(iter(stats["requests_by_user"].values()))
    assert by_user["list"]["pods"] == 2 and by_user["create"]["pods"] == 1
    assert stats["open_watches"] == 1 and stats["watch_events_sent"] == 1
    assert stats["bytes_sent"] > 0
    stream.close()


async def test_kubesim_serve_writes_a_kubeconfig_and_stops_on_sigterm(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kubesim",
        "serve",
        "--port",
        "0",
        "--kubelet",
        "none",
        "--kubeconfig-out",
        str(kubeconfig),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        await wait_for(kubeconfig.exists, timeout=30, message="kubeconfig written")
        api = await config.new_client_from_config(config_file=str(kubeconfig))
        async with api:
            namespaces = await client.CoreV1Api(api).list_namespace()
        assert "default" in [n.metadata.name for n in namespaces.items]
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 30)
    assert process.returncode == 0


async def test_kubesim_serve_keeps_volumes_under_the_kubelet_root(tmp_path: Path) -> None:
    kubeconfig, root = tmp_path / "kubeconfig", tmp_path / "kubelet"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kubesim",
        "serve",
        "--kubelet",
        "process",
        "--kubelet-root",
        str(root),
        "--kubeconfig-out",
        str(kubeconfig),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        await wait_for(kubeconfig.exists, timeout=30, message="kubeconfig written")
        api = await config.new_client_from_config(config_file=str(kubeconfig))
        async with api:
            pod = pod_manifest("scratchy")
            pod["spec"]["volumes"] = [{"name": "scratch", "emptyDir": {}}]
            created = await client.CoreV1Api(api).create_namespaced_pod("default", pod)
        scratch = root / "pods" / created.metadata.uid / "volumes" / "scratch"
        await wait_for(scratch.is_dir, timeout=30, message="the emptyDir under the root")
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 30)
    assert process.returncode == 0
    assert root.is_dir()  # a root given on the command line is kept
