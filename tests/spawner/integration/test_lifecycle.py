"""start / poll / progress / stop against kubesim, a real redis-server and a running cacher."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import pytest

from kubecache.spawner import KubeCacheSpawner
from kubecache.spawner.spawner import SpawnError
from tests.spawner.integration.conftest import NAMESPACE
from tests.support.waiting import wait_for

POD = "jupyter-alice"


def pod_in(cluster: Any, name: str = POD) -> dict[str, Any] | None:
    pod: dict[str, Any] | None = cluster.store.get("pods", NAMESPACE, name)
    return pod


async def test_a_server_starts_polls_shows_progress_and_stops(
    cluster: Any, make_spawner: Callable[..., KubeCacheSpawner]
) -> None:
    stops: list[str] = []

    def label(spawner: KubeCacheSpawner, pod: Any) -> Any:
        pod.metadata.labels["hooked"] = "yes"  # KubeSpawner hooks get a V1Pod
        return pod

    spawner = make_spawner(
        modify_pod_hook=label, pre_stop_hook=lambda spawner: stops.append(spawner.pod_name)
    )
    start = spawner.start()
    events = [e async for e in spawner.progress()]
    url = await asyncio.wait_for(start, 30)
    pod = pod_in(cluster)
    assert pod is not None
    assert url == f"http://{pod['status']['podIP']}:8888"
    assert spawner.pod_id == pod["metadata"]["uid"]
    assert pod["metadata"]["labels"]["hooked"] == "yes"
    assert await spawner.poll() is None
    messages = [e["message"] for e in events]
    assert any(f"Successfully assigned {NAMESPACE}/{POD}" in m for m in messages), messages
    assert all(" [Normal] " in m or " [Warning] " in m for m in messages)
    assert [e["progress"] for e in events] == sorted(e["progress"] for e in events)
    await spawner.stop()
    assert pod_in(cluster) is None
    assert await spawner.poll() == 1
    await spawner.stop()  # idempotent
    assert stops == [POD, POD]


async def test_an_unschedulable_server_fails_with_the_schedulers_words(
    cluster: Any, make_spawner: Callable[..., KubeCacheSpawner]
) -> None:
    spawner = make_spawner(cpu_guarantee=1000.0, start_timeout=4)
    with pytest.raises(TimeoutError) as failure:
        await spawner.start()
    message = str(failure.value)
    assert "Insufficient cpu" in message and "did not start in 4 seconds" in message, message
    assert pod_in(cluster) is None


async def test_an_image_that_cannot_be_pulled_fails_the_start_early(
    cluster: Any, make_spawner: Callable[..., KubeCacheSpawner]
) -> None:
    spawner = make_spawner(image="quay.io/jupyter/base-notebook:doesnotexist", start_timeout=60)
    with pytest.raises(SpawnError, match="ImagePullBackOff") as failure:
        await asyncio.wait_for(spawner.start(), 30)
    assert "doesnotexist" in str(failure.value)
    await wait_for(lambda: pod_in(cluster) is None, message="the failed pod deleted")


async def test_a_server_crashing_on_start_fails_with_its_exit_code(
    cluster: Any, make_spawner: Callable[..., KubeCacheSpawner]
) -> None:
    spawner = make_spawner(
        extra_annotations={"kubesim.dev/exit-code": "2"},
        start_timeout=60,
    )
    with pytest.raises(SpawnError, match=r"CrashLoopBackOff \(last exit code 2\)"):
        await asyncio.wait_for(spawner.start(), 30)
    await wait_for(lambda: pod_in(cluster) is None, message="the failed pod deleted")


async def test_a_server_never_ready_times_out_and_is_cleaned_up(
    cluster: Any, make_spawner: Callable[..., KubeCacheSpawner]
) -> None:
    spawner = make_spawner(extra_annotations={"kubesim.dev/never-ready": "true"}, start_timeout=3)
    with pytest.raises(TimeoutError, match="running but not ready"):
        await spawner.start()
    await wait_for(lambda: pod_in(cluster) is None, message="the timed-out pod deleted")


async def test_a_server_exiting_later_polls_as_its_exit_code_and_its_pod_is_deleted(
    cluster: Any, make_spawner: Callable[..., KubeCacheSpawner]
) -> None:
    spawner = make_spawner(
        extra_annotations={"kubesim.dev/exit-code": "0", "kubesim.dev/exit-after": "1"}
    )
    await spawner.start()
    assert await spawner.poll() is None
    status = await wait_for(lambda: _status(spawner), timeout=20, message="poll reporting the exit")
    assert status == ("exited", 0)
    await wait_for(lambda: pod_in(cluster) is None, message="the stopped pod deleted")


async def _status(spawner: KubeCacheSpawner) -> tuple[str, int] | None:
    code = await spawner.poll()
    return None if code is None else ("exited", code)


async def test_a_cancelled_start_deletes_its_pod(
    cluster: Any, make_spawner: Callable[..., KubeCacheSpawner]
) -> None:
    spawner = make_spawner(extra_annotations={"kubesim.dev/never-ready": "true"}, start_timeout=60)
    start = spawner.start()
    await wait_for(lambda: pod_in(cluster) is not None, message="the pod created")
    start.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await start
    await wait_for(lambda: pod_in(cluster) is None, message="the cancelled pod deleted")


async def test_stopping_a_pending_start_shows_the_cancelling_event_and_cleans_up(
    cluster: Any, make_spawner: Callable[..., KubeCacheSpawner]
) -> None:
    spawner = make_spawner(extra_annotations={"kubesim.dev/never-ready": "true"}, start_timeout=60)
    start = spawner.start()
    shown: list[dict[str, Any]] = []

    async def follow() -> None:
        async for event in spawner.progress():
            shown.append(event)

    follower = asyncio.ensure_future(follow())
    await wait_for(lambda: pod_in(cluster) is not None, message="the pod created")
    await spawner.stop(now=True)
    assert start.cancelled() or start.exception() is not None
    await asyncio.wait_for(follower, 10)
    assert any(e.get("html_message") == "JupyterLab is cancelling the start." for e in shown)
    assert pod_in(cluster) is None


async def test_a_leftover_pod_is_replaced_and_its_events_are_not_shown(
    cluster: Any, make_spawner: Callable[..., KubeCacheSpawner]
) -> None:
    first = make_spawner()
    await first.start()
    old_uid = pod_in(cluster)["metadata"]["uid"]  # type: ignore[index]
    # a new hub forgot the first server (e.g. its database was restored)
    second = make_spawner()
    start = second.start()
    events = [e async for e in second.progress()]
    await asyncio.wait_for(start, 30)
    assert pod_in(cluster)["metadata"]["uid"] != old_uid  # type: ignore[index]
    assert all(e["raw_event"]["involvedObject"]["uid"] == second.pod_id for e in events)
    await second.stop(now=True)


async def test_a_service_owned_by_the_pod_is_created_when_services_are_enabled(
    cluster: Any, make_spawner: Callable[..., KubeCacheSpawner]
) -> None:
    seen: list[str] = []
    spawner = make_spawner(
        services_enabled=True,
        after_pod_created_hook=lambda spawner, pod: seen.append(pod["metadata"]["uid"]),
    )
    url = await spawner.start()
    assert url == f"http://{POD}.{NAMESPACE}.svc.cluster.local:8888"
    service = cluster.store.get("services", NAMESPACE, POD)
    assert service is not None
    assert service["metadata"]["ownerReferences"][0]["uid"] == spawner.pod_id == seen[0]
    await spawner.stop(now=True)


async def test_delete_forever_deletes_the_users_pvc(
    cluster: Any, make_spawner: Callable[..., KubeCacheSpawner]
) -> None:
    spawner = make_spawner(storage_pvc_ensure=True, storage_capacity="1Gi", delete_pvc=True)
    await spawner.start()
    assert cluster.store.get("persistentvolumeclaims", NAMESPACE, "claim-alice") is not None
    assert spawner.get_state()["pvc_name"] == "claim-alice"
    await spawner.stop(now=True)
    await spawner.delete_forever()
    assert cluster.store.get("persistentvolumeclaims", NAMESPACE, "claim-alice") is None


async def test_internal_ssl_creates_the_certificate_secret_and_service_and_uses_https(
    cluster: Any, make_spawner: Callable[..., KubeCacheSpawner], tmp_path: Any
) -> None:
    paths = {}
    for name in ("keyfile", "certfile", "cafile", "hub-ca"):
        path = tmp_path / f"{name}.pem"
        path.write_text(f"-----BEGIN {name}-----\n")
        paths[name] = str(path)
    spawner = make_spawner(internal_ssl=True)
    spawner.cert_paths = {k: paths[k] for k in ("keyfile", "certfile", "cafile")}
    spawner.internal_trust_bundles = {"hub-ca": paths["hub-ca"]}
    url = await spawner.start()
    assert url == f"https://{POD}.{NAMESPACE}.svc.cluster.local:8888"
    secret = cluster.store.get("secrets", NAMESPACE, spawner.secret_name)
    service = cluster.store.get("services", NAMESPACE, POD)
    for owned in (secret, service):
        assert owned is not None
        assert owned["metadata"]["ownerReferences"][0]["uid"] == spawner.pod_id
    await spawner.stop(now=True)
