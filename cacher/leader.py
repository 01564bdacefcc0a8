"""Leader election through a coordination.k8s.io/v1 Lease.

Semantics follow client-go's leaderelection: a candidate takes the lease when
it is released (empty holder) or when the record has not changed for
``leaseDurationSeconds`` *as observed locally* (monotonic clock, so clock skew
between replicas does not matter); every write carries the resourceVersion
read just before, so of two candidates exactly one wins (the other gets 409).
The leader renews every ``retry_period``, with one PUT of the version it
last wrote while its lease is valid as observed locally (client-go's fast
path in ``tryAcquireOrRenew``; a 409 sends it back to reading the lease
first); when it could not renew for
``renew_deadline`` (shorter than the lease duration) or someone else holds the
lease, it has lost and must stop writing at once. A graceful shutdown releases
the lease (empty holder, duration 1 s) so a standby takes over immediately.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubecache.backoff import jittered
from kubecache.cacher.kube_api import ApiStatusError, KubeHttp
from kubecache.cacher.metrics import CacherMetrics

log = logging.getLogger(__name__)


def micro_time(now: datetime | None = None) -> str:
    """A metav1.MicroTime string (RFC 3339 with microseconds, UTC)."""
    return (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class LeaseView:
    """What matters of a Lease object."""

    holder: str
    duration: float
    renew_time: str
    transitions: int
    resource_version: str
    acquire_time: str = ""

    @classmethod
    def from_object(cls, obj: dict[str, Any]) -> LeaseView:
        spec = obj.get("spec") or {}
        return cls(
            holder=str(spec.get("holderIdentity") or ""),
            duration=float(spec.get("leaseDurationSeconds") or 0),
            renew_time=str(spec.get("renewTime") or ""),
            transitions=int(spec.get("leaseTransitions") or 0),
            resource_version=str((obj.get("metadata") or {}).get("resourceVersion") or ""),
            acquire_time=str(spec.get("acquireTime") or ""),
        )

    def changed_from(self, other: LeaseView | None) -> bool:
        return other is None or (self.holder, self.renew_time, self.resource_version) != (
            other.holder,
            other.renew_time,
            other.resource_version,
        )


def may_acquire(view: LeaseView, *, identity: str, observed_at: float, now: float) -> bool:
    """Whether ``identity`` may take (or keep) the lease ``view`` at ``now``.

    ``observed_at`` is when this record was first seen unchanged (monotonic).
    """
    if view.holder in ("", identity):
        return True
    return now >= observed_at + view.duration


class LeaderElector:
    def __init__(
        self,
        http: KubeHttp,
        *,
        name: str,
        namespace: str,
        identity: str,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        metrics: CacherMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.http = http
        self.name = name
        self.namespace = namespace
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.metrics = metrics or CacherMetrics()
        self.clock = clock
        self.sleep = sleep
        # One lease request may not outlast half the renew deadline: a hung
        # renewal must not keep a leader writing past its lease.
        self.request_timeout = max(0.5, min(10.0, renew_deadline / 2))
        self.is_leader = False
        self.observed: LeaseView | None = None
        self.observed_at = 0.0
        self.last_renew = 0.0
        self.last_attempt = clock()  # when a lease request was last sent (liveness)

    @property
    def path(self) -> str:
        return f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases/{self.name}"

    def _body(self, view: LeaseView | None, *, acquire: bool) -> dict[str, Any]:
        now = micro_time()
        spec: dict[str, Any] = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.lease_duration)),
            "renewTime": now,
            "leaseTransitions": (view.transitions if view else 0) + (1 if acquire and view else 0),
        }
        if acquire:
            spec["acquireTime"] = now
        elif view is not None and view.acquire_time:
            spec["acquireTime"] = view.acquire_time  # a renewal keeps it, as client-go does
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if view is not None:
            metadata["resourceVersion"] = view.resource_version
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": spec,
        }

    def _observe(self, view: LeaseView) -> None:
        if view.changed_from(self.observed):
            self.observed = view
            self.observed_at = self.clock()

    async def try_acquire_or_renew(self) -> bool:
        """One attempt; True when this replica holds the lease afterwards.

        API errors other than a lost race propagate as :class:`ApiStatusError`.
        """
        self.last_attempt = self.clock()
        if await self._renewed_optimistically():
            return self._won()
        try:
            current = await self.http.request("GET", self.path, timeout=self.request_timeout)
        except ApiStatusError as e:
            if e.status != 404:
                raise
            try:
                created = await self.http.request(
                    "POST",
                    self.path.rsplit("/", 1)[0],
                    body=self._body(None, acquire=True),
                    timeout=self.request_timeout,
                )
            except ApiStatusError as e2:
                if e2.status == 409:
                    return False  # another candidate created it first
                raise
            self._observe(LeaseView.from_object(created))
            return self._won()
        view = LeaseView.from_object(current)
        self._observe(view)
        if not may_acquire(
            view, identity=self.identity, observed_at=self.observed_at, now=self.clock()
        ):
            return False
        acquire = view.holder != self.identity
        if not await self._put(view, acquire=acquire):
            return False  # someone else wrote the lease between our read and write
        if acquire:
            log.info(
                "acquired lease %s/%s as %s (previous holder %r)",
                self.namespace,
                self.name,
                self.identity,
                view.holder,
            )
        return self._won()

    async def _renewed_optimistically(self) -> bool:
        """client-go's fast path: a leader whose lease is still valid (as observed
        locally) renews with one PUT of the version it last wrote, without reading the
        lease first (half the requests of an idle deployment).

        True when renewed. False when this replica is not such a leader, or when the
        lease changed since (409): the caller then reads it (the slow path). Any other
        failure propagates: falling back would send a second request in the same attempt,
        and one attempt may not outlast half the renew deadline (``request_timeout``).
        """
        observed = self.observed
        if not (
            self.is_leader
            and observed is not None
            and observed.holder == self.identity
            and self.clock() < self.observed_at + observed.duration
        ):
            return False
        if await self._put(observed, acquire=False):
            return True
        log.info(
            "lease %s/%s changed since this leader's last renewal; reading it",
            self.namespace,
            self.name,
        )
        return False

    async def _put(self, view: LeaseView, *, acquire: bool) -> bool:
        """Write the lease over ``view`` (its resourceVersion: optimistic concurrency);
        False when it changed since (409). Other API errors propagate."""
        try:
            updated = await self.http.request(
                "PUT",
                self.path,
                body=self._body(view, acquire=acquire),
                timeout=self.request_timeout,
            )
        except ApiStatusError as e:
            if e.status == 409:
                return False
            raise
        self._observe(LeaseView.from_object(updated))
        return True

    def _won(self) -> bool:
        self.last_renew = self.clock()
        if not self.is_leader:
            self.is_leader = True
            self.metrics.leader.set(1)
            self.metrics.leader_transitions.labels("gained").inc()
        return True

    def _lost(self, why: str, *, level: int = logging.WARNING, event: str = "lost lease") -> None:
        if self.is_leader:
            log.log(level, "%s %s/%s: %s", event, self.namespace, self.name, why)
            self.is_leader = False
            self.metrics.leader.set(0)
            self.metrics.leader_transitions.labels("lost").inc()

    async def acquire(self) -> None:
        """Return once this replica is the leader (tries every retry period)."""
        while True:
            try:
                if await self.try_acquire_or_renew():
                    return
            except ApiStatusError as e:
                log.warning("cannot read or write lease %s/%s: %s", self.namespace, self.name, e)
            await self.sleep(jittered(self.retry_period, 0.2))

    async def hold(self) -> str:
        """Renew until leadership is lost; returns why."""
        while True:
            await self.sleep(self.retry_period)
            try:
                if await self.try_acquire_or_renew():
                    continue
                why = f"lease taken by {self.observed.holder if self.observed else '?'}"
                self._lost(why)
                return why
            except ApiStatusError as e:
                log.warning("renewing lease %s/%s failed: %s", self.namespace, self.name, e)
            if self.clock() - self.last_renew >= self.renew_deadline:
                why = f"could not renew for {self.renew_deadline:g} s"
                self._lost(why)
                return why

    def step_down(self, why: str) -> None:
        """Forget leadership locally (the lease expires or is released)."""
        self._lost(why)

    async def release(self) -> None:
        """Give the lease up now if this replica holds it (graceful shutdown)."""
        was_leader = self.is_leader
        self._lost("shutting down", level=logging.INFO, event="releasing lease")
        try:
            current = await self.http.request("GET", self.path, timeout=5)
            view = LeaseView.from_object(current)
            if view.holder != self.identity:
                return
            body = self._body(view, acquire=False)
            body["spec"].update(holderIdentity="", leaseDurationSeconds=1)
            await self.http.request("PUT", self.path, body=body, timeout=5)
            log.info("released lease %s/%s", self.namespace, self.name)
        except ApiStatusError as e:
            if was_leader:
                log.warning(
                    "could not release lease %s/%s (%s); it expires in %g s",
                    self.namespace,
                    self.name,
                    e,
                    self.lease_duration,
                )


__all__ = ["LeaderElector", "LeaseView", "may_acquire", "micro_time"]
