"""When a watch with bookmarks gets the next one (kube-apiserver's watch cache rule)."""

from __future__ import annotations

import math

from kubesim.watch import next_bookmark_time


def test_a_bookmark_comes_two_seconds_before_the_timeout_when_sooner_than_the_interval() -> None:
    assert next_bookmark_time(100.0, 60.0, 120.0) == 118.0
    assert next_bookmark_time(100.0, 5.0, 120.0) == 105.0


def test_no_bookmark_once_the_pre_timeout_one_is_past_or_when_bookmarks_are_off() -> None:
    assert next_bookmark_time(118.0, 60.0, 120.0) == math.inf
    assert next_bookmark_time(100.0, None, 120.0) == math.inf
