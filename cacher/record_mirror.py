"""What the writer knows is in ``P pods``, and the check that Redis still holds it.

The writer mirrors, per record it wrote (or found in place), a 32-bit
fingerprint of the stored bytes: about 100 bytes per pod, 5 MB at 50,000.
Once the epoch's first list is reconciled, every heartbeat compares
``HLEN P pods`` with the mirror and audits one page of ``P pods`` against it
(fingerprints computed in Redis, :data:`kubecache.cacher.lua_scripts.AUDIT_PODS`), round
robin. Pod writes wait while a check runs (:class:`WriteGate`), so a write in
flight never looks like a difference.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any


def fingerprint(payload: bytes) -> int:
    """32 bits of a stored record's SHA-1 (the Lua scripts compute the same)."""
    return int(hashlib.sha1(payload).hexdigest()[:8], 16)


class WriteGate:
    """Pod writes run concurrently, a check runs alone (after writes in flight)."""

    def __init__(self) -> None:
        self._writers = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._open = asyncio.Event()
        self._open.set()

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[None]:
        await self._open.wait()
        self._writers += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._writers -= 1
            if not self._writers:
                self._idle.set()

    @contextlib.asynccontextmanager
    async def checking(self) -> AsyncIterator[None]:
        self._open.clear()
        try:
            await self._idle.wait()
            yield
        finally:
            self._open.set()


#: Runs the audit script: (cursor, count) -> {next cursor, key, fingerprint, ...}.
AuditPage = Callable[[str, int], Awaitable[Any]]


class RecordMirror:
    def __init__(self, *, page: int = 1000) -> None:
        self.page = page
        self.gate = WriteGate()
        self.ready = False  # the epoch's first list is reconciled: checks run
        self._prints: dict[str, int] = {}  # pod key -> fingerprint of its record in Redis
        self._cursor = "0"

    def __len__(self) -> int:
        return len(self._prints)

    def clear(self) -> None:
        self._prints.clear()
        self.ready = False
        self._cursor = "0"

    def wrote(self, key: str, payload: bytes) -> None:
        self._prints[key] = fingerprint(payload)

    def found(self, key: str, printed: str) -> None:
        """A record left in place, with the fingerprint Redis computed (hex)."""
        self._prints[key] = int(printed, 16)

    def forget(self, key: str) -> None:
        self._prints.pop(key, None)

    async def differences(self, stored_count: int, audit: AuditPage) -> tuple[str, list[str]]:
        """("", []) when Redis holds what was written, else (check, findings)."""
        if stored_count != len(self._prints):
            count = f"{stored_count} records in Redis, {len(self._prints)} written by this epoch"
            return "count", [count, *await self._audit(audit, whole=True)]
        findings = await self._audit(audit, whole=False)
        return ("audit", findings) if findings else ("", [])

    async def _audit(self, audit: AuditPage, *, whole: bool) -> list[str]:
        """Compare one HSCAN page of ``P pods`` (every page when ``whole``)."""
        findings: list[str] = []
        seen: set[str] = set()
        if whole:
            self._cursor = "0"
        while True:
            reply = await audit(self._cursor, self.page)
            self._cursor = _text(reply[0])
            for raw_key, raw_print in zip(reply[1::2], reply[2::2], strict=True):
                key = _text(raw_key)
                seen.add(key)
                expected = self._prints.get(key)
                if expected is None:
                    findings.append(f"unexpected record {key}")
                elif expected != int(_text(raw_print), 16):
                    findings.append(f"altered record {key}")
            if not whole or self._cursor == "0":
                break
        if whole:
            findings += [f"missing record {key}" for key in self._prints if key not in seen]
        return findings


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


__all__ = ["AuditPage", "RecordMirror", "WriteGate", "fingerprint"]
