"""Pacing of term restarts after faults, and the leader's write deadline (pure)."""

from __future__ import annotations

from kubecache.cacher.prefix_owner import Owner, collision
from kubecache.cacher.term_pacing import TermPacer, WriteDeadline
from kubecache.redis_memory import MemoryPolicy, policy_problem


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_first_restarts_are_immediate_then_they_back_off_to_the_maximum() -> None:
    clock = Clock()
    pacer = TermPacer(burst=3, window=120, initial=1, maximum=30, clock=clock, rand=lambda: 1.0)
    delays = []
    for _ in range(10):
        delays.append(pacer.next_delay())
        clock.now += delays[-1] + 0.1
    assert delays == [0, 0, 0, 1, 2, 4, 8, 16, 30, 30]


def test_restarts_older_than_the_window_are_forgotten() -> None:
    clock = Clock()
    pacer = TermPacer(burst=2, window=60, clock=clock, rand=lambda: 1.0)
    assert [pacer.next_delay() for _ in range(3)] == [0, 0, 1]
    clock.now += 61
    assert pacer.next_delay() == 0


def test_a_storm_of_faults_is_bounded_to_a_few_restarts_a_minute() -> None:
    clock = Clock()
    pacer = TermPacer(clock=clock, rand=lambda: 0.0)  # the shortest delays jitter allows
    restarts = 0
    while clock.now < 1000 + 600:  # a fault right after every restart, for 10 minutes
        clock.now += pacer.next_delay() + 0.05
        restarts += 1
    assert restarts < 100  # the issue saw 517 full LISTs in 26 s


def test_the_write_deadline_passes_without_successes_and_a_paced_wait_does_not_count() -> None:
    clock = Clock()
    deadline = WriteDeadline(give_way_after=10, clock=clock)
    clock.now += 9
    assert not deadline.overdue()
    deadline.failed("ConnectionError: reset")
    clock.now += 2
    assert deadline.overdue() and "reset" in deadline.why()
    deadline.ok()
    deadline.pause(20)
    clock.now += 25
    assert not deadline.overdue()


def test_only_allkeys_policies_are_a_problem() -> None:
    assert policy_problem("noeviction") == ""
    assert policy_problem("volatile-lru") == ""
    assert "allkeys-lru" in policy_problem("allkeys-lru")
    assert MemoryPolicy("", "", unreadable="NOPERM").may_evict
    assert not MemoryPolicy("noeviction", "").may_evict


def test_a_collision_names_the_settings_that_differ_and_the_fix() -> None:
    me = Owner("b-0", "jhub-b/kubecache-cacher", "jhub-b", "")
    other = Owner("a-0", "jhub-a/kubecache-cacher", "", "")
    text = collision("kubecache:v1:", me, other, refusing=True)
    assert "Lease jhub-b/kubecache-cacher here, jhub-a/kubecache-cacher there" in text
    assert "namespaces jhub-b here, all there" in text
    assert "pod selector" not in text.split("differing:")[1].split(")")[0]
    assert "--key-prefix" in text and "does not take the cache over" in text
