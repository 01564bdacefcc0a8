"""A hub resumed after a freeze longer than its lease is not Ready, even before its wrapper acts.

The HA test's SIGSTOP phase once saw two hubs answer /hub/health in one probe round: the
probe that waited in the frozen hub's socket was answered in the hub's first loop
iteration after SIGCONT, before its wrapper killed it.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from tornado import web

from kubecache import hub_preload
from kubecache.hub_lease_clock import ENV, LeaseClockWriter, lease_expired
from kubecache.hub_standby import LeaseLost, LeaseTiming, hold_lease
from tests.support.waiting import wait_for


def test_the_hub_reads_what_the_wrapper_wrote(tmp_path: Path) -> None:
    writer = LeaseClockWriter(tmp_path / "clock")
    path = str(writer.path)
    assert lease_expired(path)  # not active until the wrapper says so
    writer.write(time.monotonic() + 10)
    assert not lease_expired(path)
    assert lease_expired(path, now=time.monotonic() + 11)  # a freeze of 11 s, resumed
    writer.close()
    assert not writer.path.exists()


def test_a_clock_that_cannot_be_read_never_makes_the_hub_unready(tmp_path: Path) -> None:
    assert not lease_expired(str(tmp_path / "missing"))
    (tmp_path / "short").write_bytes(b"\x00\x01")
    assert not lease_expired(str(tmp_path / "short"))


def test_health_answers_503_once_the_lease_can_have_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jupyterhub.handlers import pages

    monkeypatch.setattr(pages.HealthCheckHandler, "get", pages.HealthCheckHandler.get)
    monkeypatch.setattr(pages.HealthCheckHandler, "head", pages.HealthCheckHandler.head)
    writer = LeaseClockWriter(tmp_path / "clock")
    monkeypatch.setenv(ENV, str(writer.path))
    hub_preload.gate_health_on_the_lease()
    handler = object()  # JupyterHub's handler does nothing but answer 200
    writer.write(time.monotonic() + 30)
    assert pages.HealthCheckHandler.get(handler) is None
    writer.write(time.monotonic() - 0.001)
    for method in (pages.HealthCheckHandler.get, pages.HealthCheckHandler.head):
        with pytest.raises(web.HTTPError) as refused:
            method(handler)
        assert refused.value.status_code == 503
    writer.close()


def test_without_hub_standby_health_is_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    from jupyterhub.handlers import pages

    before = pages.HealthCheckHandler.get
    monkeypatch.delenv(ENV, raising=False)
    hub_preload.gate_health_on_the_lease()
    assert pages.HealthCheckHandler.get is before


class _Lease:
    """Renews at once, every time (what hold_lease asks of a RedisLease)."""

    key = "hub"
    timing = LeaseTiming(duration=3.0, renew_deadline=2.0, retry_period=0.05)

    def __init__(self) -> None:
        self.confirmed: float | None = time.monotonic()
        self.renewals = 0

    async def renew(self) -> bool:
        self.renewals += 1
        self.confirmed = time.monotonic()
        return self.renewals < 4  # then someone else holds it

    async def holder(self) -> str:
        return "other"


async def test_the_wrapper_writes_the_end_of_each_renewed_lease() -> None:
    lease = _Lease()
    written: list[float] = []
    lost = await asyncio.wait_for(hold_lease(lease, None, written.append), 10)  # type: ignore[arg-type]
    assert isinstance(lost, LeaseLost) and lost.reason == "taken"
    margin = lease.timing.margin
    assert len(written) == 3 and written == sorted(written)
    assert lease.confirmed is not None
    assert written[-1] == pytest.approx(lease.confirmed + lease.timing.duration - margin, abs=0.5)


class _HeldLease(_Lease):
    """A renewal that completes when the test says so."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: asyncio.Future[bool] | None = None

    async def renew(self) -> bool:
        self.renewals += 1
        self.pending = asyncio.get_running_loop().create_future()
        return await self.pending


async def test_a_cancel_that_arrives_as_a_renewal_completes_ends_the_holding() -> None:
    """The wrapper cancels the holding when its hub is gone; it must end, not renew on.

    Python 3.11's ``asyncio.wait_for`` returned the inner result when the cancellation
    arrived in the same loop iteration as the inner completion, and the loop went on
    renewing the lease of a dead hub.
    """
    lease = _HeldLease()
    holding = asyncio.create_task(hold_lease(lease))  # type: ignore[arg-type]
    await wait_for(lambda: lease.pending is not None, message="the first renewal")
    assert lease.pending is not None
    lease.pending.set_result(True)
    holding.cancel()
    await asyncio.wait([holding], timeout=2)
    assert holding.cancelled(), "the holding went on after being cancelled"
    assert lease.renewals == 1
