"""The safety sampler counts what it must: a lying poll, a failed start of a Ready pod, a crash."""

from __future__ import annotations

import logging
from typing import Any, cast

from kubecache.spawner import KubeCacheSpawner
from kubecache.spawner.spawner import SpawnError
from kubesim.store import ObjectStore
from tests.support.fleet import mark_running
from tests.support.safety import KubesimTruth, SafetySampler

NS = "jhub"


def bare_pod(name: str) -> dict[str, Any]:
    container = {"name": "notebook", "image": "x"}
    return {"metadata": {"name": name}, "spec": {"containers": [container]}}


class FakeSpawner:
    def __init__(self, name: str, answer: Any = None) -> None:
        self.namespace = NS
        self.pod_name = name
        self.answer = answer
        self.start_error: BaseException | None = None
        self.store: ObjectStore | None = None

    async def poll(self) -> int | None:
        if isinstance(self.answer, BaseException):
            raise self.answer
        return cast(int | None, self.answer)

    async def start(self) -> str:
        assert self.store is not None
        self.store.create("pods", NS, bare_pod(self.pod_name))
        self.store.mutate("pods", NS, self.pod_name, lambda pod: mark_running(pod, "10.0.0.1"))
        if self.start_error is not None:
            raise self.start_error
        return "http://10.0.0.1:8888"


def store_with_running(*names: str) -> ObjectStore:
    store = ObjectStore()
    store.create("namespaces", None, {"metadata": {"name": NS}})
    for name in names:
        store.create("pods", NS, bare_pod(name))
        store.mutate("pods", NS, name, lambda pod: mark_running(pod, "10.0.0.1"))
    return store


async def test_a_stopped_verdict_on_a_running_pod_is_counted_false() -> None:
    store = store_with_running("honest", "liar", "crashing")
    store.create("pods", NS, bare_pod("pending"))
    spawners = [
        FakeSpawner("honest"),
        FakeSpawner("liar", 1),
        FakeSpawner("crashing", RuntimeError("bug")),
        FakeSpawner("pending", 1),  # not running in the API: not sampled
    ]
    truth = KubesimTruth(store)
    with SafetySampler(truth) as sampler:
        answers = await sampler.sample_polls(cast(list[KubeCacheSpawner], spawners))
    assert answers == [None, 1, None]
    figures = sampler.figures
    assert (figures.polls, figures.false_stopped, figures.unhandled_exceptions) == (3, 1, 1)
    assert not figures.safe


async def test_a_failed_start_of_a_pod_that_became_ready_is_counted() -> None:
    store = store_with_running()
    truth = KubesimTruth(store)
    ready = FakeSpawner("ready")
    ready.store = store
    ready.start_error = SpawnError("the cache said it failed")
    with SafetySampler(truth) as sampler:
        assert await sampler.start(cast(KubeCacheSpawner, ready)) is None
    assert sampler.figures.failed_starts == 1
    assert sampler.figures.failed_starts_of_ready_pods == 1


async def test_a_traceback_in_the_hubs_log_is_an_unhandled_exception() -> None:
    truth = KubesimTruth(store_with_running())
    with SafetySampler(truth) as sampler:
        try:
            raise KeyError("boom")
        except KeyError:
            logging.getLogger("traitlets").exception("kubecache: poll of x failed")
            logging.getLogger("aiohttp.server").exception("not the hub's")
    assert sampler.figures.unhandled_exceptions == 1
    assert len(sampler.tracebacks.others) == 1
