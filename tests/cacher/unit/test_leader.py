"""Lease election state machine against an in-memory Lease API."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubecache.cacher.kube_api import ApiStatusError
from kubecache.cacher.leader import LeaderElector, LeaseView, may_acquire


class FakeLeaseApi:
    """One Lease with optimistic concurrency, like the API server."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.rv = 0
        self.fail_next: int = 0

    async def request(
        self, method: str, path: str, *, body: Any = None, timeout: float | None = None, **_: Any
    ) -> dict[str, Any]:
        if self.fail_next:
            self.fail_next -= 1
            raise ApiStatusError(503, "ServiceUnavailable", "try later")
        if method == "GET":
            if self.lease is None:
                raise ApiStatusError(404, "NotFound", "leases not found")
            return copy.deepcopy(self.lease)
        if method == "POST" and self.lease is not None:
            raise ApiStatusError(409, "AlreadyExists", "exists")
        if method == "PUT":
            assert self.lease is not None
            if body["metadata"]["resourceVersion"] != self.lease["metadata"]["resourceVersion"]:
                raise ApiStatusError(409, "Conflict", "the object has been modified")
        self.rv += 1
        self.lease = copy.deepcopy(body)
        self.lease["metadata"]["resourceVersion"] = str(self.rv)
        return copy.deepcopy(self.lease)

    @property
    def holder(self) -> str:
        return (self.lease or {}).get("spec", {}).get("holderIdentity", "")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def elector(api: FakeLeaseApi, clock: Clock, identity: str) -> LeaderElector:
    return LeaderElector(
        api,  # type: ignore[arg-type]
        name="kubecache-cacher",
        namespace="default",
        identity=identity,
        lease_duration=15,
        renew_deadline=10,
        retry_period=2,
        clock=clock,
        sleep=clock.sleep,
    )


def test_a_lease_is_free_when_released_or_held_by_me_or_silent_for_its_duration() -> None:
    view = LeaseView(holder="a", duration=15, renew_time="t", transitions=0, resource_version="1")
    assert not may_acquire(view, identity="b", observed_at=100, now=114)
    assert may_acquire(view, identity="b", observed_at=100, now=115)
    assert may_acquire(view, identity="a", observed_at=100, now=100)
    released = LeaseView(holder="", duration=1, renew_time="t", transitions=0, resource_version="2")
    assert may_acquire(released, identity="b", observed_at=100, now=100)


async def test_the_first_candidate_creates_the_lease_and_leads() -> None:
    api, clock = FakeLeaseApi(), Clock()
    a = elector(api, clock, "a")
    assert await a.try_acquire_or_renew()
    assert a.is_leader and api.holder == "a"
    assert a.metrics.value("kubecache_cacher_leader") == 1


async def test_a_standby_waits_a_full_lease_duration_without_renewals() -> None:
    api, clock = FakeLeaseApi(), Clock()
    a, b = elector(api, clock, "a"), elector(api, clock, "b")
    await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    clock.now += 14
    assert not await b.try_acquire_or_renew()
    clock.now += 1
    assert await b.try_acquire_or_renew()
    assert api.holder == "b"
    assert api.lease is not None and api.lease["spec"]["leaseTransitions"] == 1


async def test_renewals_keep_a_standby_out() -> None:
    api, clock = FakeLeaseApi(), Clock()
    a, b = elector(api, clock, "a"), elector(api, clock, "b")
    await a.try_acquire_or_renew()
    for _ in range(20):
        clock.now += 2
        assert await a.try_acquire_or_renew()
        assert not await b.try_acquire_or_renew()


async def test_a_leader_whose_lease_was_taken_loses_at_its_next_renewal() -> None:
    api, clock = FakeLeaseApi(), Clock()
    a, b = elector(api, clock, "a"), elector(api, clock, "b")
    await a.try_acquire_or_renew()
    await b.try_acquire_or_renew()
    clock.now += 16
    assert await b.try_acquire_or_renew()  # a was silent (e.g. paused) for too long
    why = await a.hold()
    assert "taken by b" in why
    assert not a.is_leader


async def test_a_leader_that_cannot_renew_gives_up_at_the_renew_deadline() -> None:
    api, clock = FakeLeaseApi(), Clock()
    a = elector(api, clock, "a")
    await a.try_acquire_or_renew()
    start = clock.now
    api.fail_next = 100
    why = await a.hold()
    assert "could not renew" in why
    assert 10 <= clock.now - start < 15  # before the lease expires for the others


async def test_a_write_race_is_lost_not_an_error() -> None:
    """A candidate taking an expired lease reads it, then writes: a write by someone
    else in between makes its write fail with 409, and it does not lead."""
    api, clock = FakeLeaseApi(), Clock()
    a, b = elector(api, clock, "a"), elector(api, clock, "b")
    await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    clock.now += 16  # a was silent for longer than the lease
    real = api.request

    async def sneaky(method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        got = await real(method, path, **kwargs)
        if method == "GET":  # someone writes between our GET and PUT
            assert api.lease is not None
            api.rv += 1
            api.lease["metadata"]["resourceVersion"] = str(api.rv)
            api.lease["spec"]["holderIdentity"] = "c"
        return got

    api.request = sneaky  # type: ignore[method-assign]
    assert not await b.try_acquire_or_renew()
    assert not b.is_leader


async def test_release_empties_the_holder_so_a_standby_takes_over_at_once() -> None:
    api, clock = FakeLeaseApi(), Clock()
    a, b = elector(api, clock, "a"), elector(api, clock, "b")
    await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    await a.release()
    assert not a.is_leader and api.holder == ""
    assert api.lease is not None and api.lease["spec"]["leaseDurationSeconds"] == 1
    assert await b.try_acquire_or_renew()


async def test_release_by_a_non_holder_changes_nothing() -> None:
    api, clock = FakeLeaseApi(), Clock()
    a, b = elector(api, clock, "a"), elector(api, clock, "b")
    await a.try_acquire_or_renew()
    await b.release()
    assert api.holder == "a"


@pytest.mark.parametrize("status", [500, 403])
async def test_acquire_keeps_trying_through_api_errors(status: int) -> None:
    api, clock = FakeLeaseApi(), Clock()
    api.fail_next = 3
    a = elector(api, clock, "a")
    await a.acquire()
    assert a.is_leader


async def test_a_graceful_release_is_logged_as_a_release_not_a_loss(caplog) -> None:
    api, clock = FakeLeaseApi(), Clock()
    a = elector(api, clock, "a")
    await a.acquire()
    with caplog.at_level("INFO", logger="kubecache.cacher.leader"):
        await a.release()
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("releasing lease default/kubecache-cacher") for m in messages)
    assert not any("lost lease" in m for m in messages)


def test_a_transport_error_says_the_api_server_is_unreachable_not_0() -> None:
    error = ApiStatusError(0, "ClientConnectorError", "Cannot connect to host k8s:6443")
    assert str(error) == (
        "API server not reachable (ClientConnectorError): Cannot connect to host k8s:6443"
    )
    assert str(ApiStatusError(403, "Forbidden", "no")) == "403 Forbidden: no"


class CountingLeaseApi(FakeLeaseApi):
    def __init__(self) -> None:
        super().__init__()
        self.methods: list[str] = []

    async def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        self.methods.append(method)
        return await super().request(method, path, **kwargs)


async def test_a_leader_renews_with_one_put_and_keeps_its_acquire_time() -> None:
    """client-go's fast path: a leader with a valid lease writes the version it last
    wrote, without a GET first; acquireTime stays the acquisition's."""
    api, clock = CountingLeaseApi(), Clock()
    a = elector(api, clock, "a")
    assert await a.try_acquire_or_renew()
    assert api.lease is not None
    acquired = api.lease["spec"]["acquireTime"]
    api.methods.clear()
    for _ in range(5):
        clock.now += 2
        assert await a.try_acquire_or_renew()
    assert api.methods == ["PUT"] * 5
    assert api.lease["spec"]["holderIdentity"] == "a"
    assert api.lease["spec"]["acquireTime"] == acquired


async def test_a_leader_whose_lease_changed_reads_it_and_loses_to_its_new_holder() -> None:
    """The fast path's write of an old version is refused (409): the slow path reads the
    lease, sees another holder (e.g. an operator's `kubectl edit`) and keeps out."""
    api, clock = CountingLeaseApi(), Clock()
    a = elector(api, clock, "a")
    assert await a.try_acquire_or_renew()
    assert api.lease is not None
    api.lease["spec"]["holderIdentity"] = "b"  # written behind a's back
    api.rv += 1
    api.lease["metadata"]["resourceVersion"] = str(api.rv)
    api.methods.clear()
    clock.now += 2
    assert not await a.try_acquire_or_renew()
    assert api.methods == ["PUT", "GET"]
    assert api.holder == "b"


async def test_a_failed_fast_renewal_is_not_retried_in_the_same_attempt() -> None:
    api, clock = CountingLeaseApi(), Clock()
    a = elector(api, clock, "a")
    assert await a.try_acquire_or_renew()
    api.methods.clear()
    api.fail_next = 1
    clock.now += 2
    with pytest.raises(ApiStatusError):
        await a.try_acquire_or_renew()
    assert api.methods == ["PUT"]
    clock.now += 2
    assert await a.try_acquire_or_renew()  # the next period renews
