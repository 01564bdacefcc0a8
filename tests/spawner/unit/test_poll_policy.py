"""poll()'s decision table, including kubespawner#742: never dead because the cache is unknown."""

from __future__ import annotations

import pytest

from kubecache.contract import Freshness
from kubecache.spawner.poll_policy import (
    PrePoll,
    Source,
    from_api,
    from_cache,
    interpret_pre_poll_hook,
    needs_confirmation,
    when_unknown,
)
from tests.spawner.unit.records import container, pod, running


@pytest.mark.parametrize(
    ("result", "action", "status"),
    [
        (True, PrePoll.POLL, None),
        (False, PrePoll.KEEP_RUNNING, None),
        (None, PrePoll.KEEP_RUNNING, None),
        (0, PrePoll.EXIT, 0),
        (143, PrePoll.EXIT, 143),
    ],
)
def test_pre_poll_hook_results_follow_outpostspawners_contract(
    result: object, action: PrePoll, status: int | None
) -> None:
    interpreted = interpret_pre_poll_hook(result)
    assert interpreted.action is action
    assert interpreted.status == status


def test_a_fresh_cache_answers_running_pods_as_running() -> None:
    answer = from_cache(running(), Freshness.FRESH, keep_running_on_404=False)
    assert answer is not None and answer.status is None and answer.source is Source.CACHE


def test_a_fresh_cache_answers_an_exited_server_with_its_exit_code() -> None:
    record = pod("Running", containers=[container(state="terminated", exit_code=7)])
    answer = from_cache(record, Freshness.FRESH, keep_running_on_404=False)
    assert answer is not None and answer.status == 7


def test_a_pod_absent_from_a_fresh_cache_is_stopped_unless_the_404_policy_says_otherwise() -> None:
    answer = from_cache(None, Freshness.FRESH, keep_running_on_404=False)
    assert answer is not None and answer.status == 1
    kept = from_cache(None, Freshness.FRESH, keep_running_on_404=True)
    assert kept is not None and kept.status is None


@pytest.mark.parametrize(
    "freshness",
    [Freshness.STALE, Freshness.NOT_SYNCED, Freshness.UNKNOWN, Freshness.INCOMPATIBLE],
)
def test_an_untrusted_cache_never_answers_so_a_missing_record_is_not_a_dead_server(
    freshness: Freshness,
) -> None:
    assert from_cache(None, freshness, keep_running_on_404=False) is None
    assert from_cache(running(), freshness, keep_running_on_404=False) is None


def test_the_api_read_answers_when_the_cache_cannot() -> None:
    assert from_api(running(), found=True, keep_running_on_404=False).status is None
    assert from_api(None, found=False, keep_running_on_404=False).status == 1
    assert from_api(None, found=False, keep_running_on_404=True).status is None


def test_when_nothing_can_answer_the_server_keeps_running_by_default() -> None:
    assert when_unknown(keep_running=True, why="Redis unreachable").status is None
    assert when_unknown(keep_running=False, why="Redis unreachable").status == 1


@pytest.mark.parametrize(
    "record",
    [None, pod("Failed"), pod("Running", containers=[container(state="terminated", exit_code=0)])],
    ids=["absent", "failed", "terminated"],
)
def test_the_caches_stopped_is_never_the_answer_without_the_api(record: object) -> None:
    answer = from_cache(record, Freshness.FRESH, keep_running_on_404=False)  # type: ignore[arg-type]
    assert answer is not None and answer.status is not None
    assert needs_confirmation(answer, fresh=False)


def test_the_caches_running_needs_no_confirmation() -> None:
    answer = from_cache(running(), Freshness.FRESH, keep_running_on_404=False)
    assert answer is not None and not needs_confirmation(answer, fresh=False)


def test_the_apis_stopped_counts_only_from_a_read_sent_after_the_question() -> None:
    answer = from_api(None, found=False, keep_running_on_404=False)
    assert needs_confirmation(answer, fresh=False)  # a remembered LIST
    assert not needs_confirmation(answer, fresh=True)
    assert not needs_confirmation(
        from_api(running(), found=True, keep_running_on_404=False), fresh=False
    )


def test_the_policys_answers_need_no_confirmation() -> None:
    assert not needs_confirmation(when_unknown(keep_running=False, why="x"), fresh=False)
