"""The retry policy: bounded exponential back-off with full jitter."""

from __future__ import annotations

from kubecache.backoff import Backoff, jittered, parse_retry_after


def test_delays_grow_exponentially_up_to_the_maximum() -> None:
    backoff = Backoff(initial=0.5, maximum=4.0, rand=lambda: 1.0)
    assert [backoff.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_full_jitter_draws_between_zero_and_the_ceiling() -> None:
    backoff = Backoff(initial=1.0, maximum=8.0, rand=lambda: 0.25)
    backoff.attempts = 3
    assert backoff.next_delay() == 2.0


def test_reset_starts_over_after_a_success() -> None:
    backoff = Backoff(initial=0.5, maximum=30, rand=lambda: 1.0)
    for _ in range(5):
        backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() == 0.5


def test_retry_after_is_a_floor_and_is_capped() -> None:
    backoff = Backoff(initial=0.1, maximum=1.0, retry_after_cap=60, rand=lambda: 0.0)
    assert backoff.next_delay(retry_after=5) == 5
    assert backoff.next_delay(retry_after=3600) == 60


def test_retry_after_headers_are_parsed_in_seconds() -> None:
    assert parse_retry_after("3") == 3
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("-1") is None


def test_jitter_only_lengthens() -> None:
    assert jittered(300, 0.1, rand=lambda: 0.0) == 300
    assert jittered(300, 0.1, rand=lambda: 1.0) == 330
