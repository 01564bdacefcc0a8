"""The cacher's liveness (/healthz): wedged processes fail it, outages and standbys do not."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

from kubecache.cacher.app import Cacher
from kubecache.cacher.term_pacing import WriteDeadline
from tests.support.cacher import cacher_settings


def cacher(tmp_path: Path) -> Cacher:
    settings = cacher_settings(
        SimpleNamespace(kubeconfig_path=tmp_path / "kubeconfig"), "redis://x"
    )
    c = Cacher(settings)
    c.elector = SimpleNamespace(  # type: ignore[assignment]
        is_leader=False, last_attempt=time.monotonic(), last_renew=time.monotonic()
    )
    return c


def test_a_standby_that_cannot_reach_redis_is_alive_but_not_ready(tmp_path: Path) -> None:
    c = cacher(tmp_path)
    c.role, c.redis_answers, c.last_error = "standby", False, "ConnectionError: refused"
    assert c.liveness().ready
    assert not c.readiness().ready and "cannot reach Redis" in c.readiness().reason


def test_a_leader_that_kept_the_lease_without_writing_is_not_alive(tmp_path: Path) -> None:
    c = cacher(tmp_path)
    c.role = "leader"
    c.elector.is_leader = True  # type: ignore[union-attr]
    now = [1000.0]
    c.write_deadline = WriteDeadline(give_way_after=c.give_way_after, clock=lambda: now[0])
    now[0] += c.give_way_after + 1  # past the deadline: giving way is due, not yet wedged
    assert c.liveness().ready
    now[0] += c.settings.lease_duration + 2 * c.settings.redis.socket_timeout
    assert not c.liveness().ready and "should have given way" in c.liveness().reason


def test_a_control_loop_without_progress_is_not_alive(tmp_path: Path) -> None:
    c = cacher(tmp_path)
    c.role = "standby"
    c.progress_at = c.elector.last_attempt = time.monotonic() - c.wedged_after - 1  # type: ignore[union-attr]
    assert not c.liveness().ready and "no progress" in c.liveness().reason


def test_a_leader_whose_lease_expired_long_ago_is_not_alive(tmp_path: Path) -> None:
    c = cacher(tmp_path)
    c.role = "leader"
    c.elector.is_leader = True  # type: ignore[union-attr]
    c.elector.last_renew = time.monotonic() - c.settings.lease_duration - 21  # type: ignore[union-attr]
    assert not c.liveness().ready and "expired" in c.liveness().reason
