"""A poll the cache cannot answer (PodReader.poll, degraded): the API read's "running"
stands alone; its "stopped" or "absent" stands only when read after the question."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from kubecache.spawner.cache_client import CacheClient, CacheUnavailable
from kubecache.spawner.pod_reader import LazyLabels, PodReader, PodTarget
from kubecache.spawner.pod_reads import PodRead
from tests.spawner.unit.records import container, pod, running

STOPPED = pod("Failed", containers=[container(state="terminated", exit_code=3)])


class Api:
    """Answers each read with the next of ``answers``: (record, read before the question?)."""

    def __init__(self, *answers: tuple[Any, bool]) -> None:
        self.answers = list(answers)
        self.max_ages: list[float] = []

    async def __call__(self, *, max_age: float, **_: Any) -> PodRead:
        self.max_ages.append(max_age)
        record, earlier = self.answers.pop(0)
        return PodRead(record, time.monotonic() - (10.0 if earlier else 0.0), "recent")


def down() -> CacheClient:
    raise CacheUnavailable("Redis is down")


def reader(api: Api) -> PodReader:
    target = PodTarget(
        namespace="jhub",
        pod_name="jupyter-alice",
        key="jhub/jupyter-alice",
        labels=LazyLabels(dict),
        stale_after_ms=15_000,
        log_id="alice",
    )
    return PodReader(target, cache=down, read_api=api, log=logging.getLogger("test"))


async def test_the_apis_running_is_the_answer_without_another_read() -> None:
    api = Api((running(), True))
    answer, record = await reader(api).poll()
    assert answer.status is None and record == running()
    assert len(api.max_ages) == 1


@pytest.mark.parametrize("said", [STOPPED, None], ids=["stopped", "absent"])
async def test_a_stopped_or_absent_pod_from_an_earlier_read_is_read_again(said: Any) -> None:
    api = Api((said, True), (running(), False))  # a remembered LIST, then a new read
    answer, record = await reader(api).poll()
    assert answer.status is None and record == running()
    assert api.max_ages[1] == 0  # the confirmation is read anew


@pytest.mark.parametrize("said", [STOPPED, None], ids=["stopped", "absent"])
async def test_a_stopped_or_absent_pod_stands_once_a_new_read_agrees(said: Any) -> None:
    api = Api((said, True), (said, False))
    answer, _ = await reader(api).poll()
    assert answer.status is not None
    assert len(api.max_ages) == 2


async def test_a_stopped_pod_read_after_the_question_stands_alone() -> None:
    api = Api((STOPPED, False))
    answer, record = await reader(api).poll()
    assert answer.status == 3 and record == STOPPED
    assert len(api.max_ages) == 1
