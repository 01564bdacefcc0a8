"""Pod IPs on the loopback network: every pod gets its own 127.x.y.z address.

Linux routes all of 127.0.0.0/8 to the loopback interface, so a process can
bind 127.23.4.5:8888 without any set-up, and two pods may both listen on port
8888. Addresses are drawn at random from the whole range (not counted up from
127.0.0.2) because several kubesim instances may run side by side on one
machine (parallel test runs): random draws make their pods' addresses collide
with probability ~n/16M instead of always.
"""

from __future__ import annotations

import ipaddress
import random

# 127.0.0.0/24 holds addresses that real services use (127.0.0.1, 127.0.0.53 ...).
_FIRST = int(ipaddress.IPv4Address("127.0.1.1"))
_LAST = int(ipaddress.IPv4Address("127.255.255.254"))


class LoopbackAllocator:
    """Hands out unique loopback addresses and takes them back."""

    def __init__(self, *, seed: int | None = None) -> None:
        self._random = random.Random(seed)
        self._used: set[str] = set()

    def allocate(self) -> str:
        """Return an address not currently handed out (never 127.0.0.x, never .0/.255)."""
        while True:
            candidate = self._random.randint(_FIRST, _LAST)
            if candidate & 0xFF in (0, 255):
                continue
            address = str(ipaddress.IPv4Address(candidate))
            if address not in self._used:
                self._used.add(address)
                return address

    def release(self, address: str | None) -> None:
        """Give an address back (unknown or empty addresses are ignored)."""
        if address:
            self._used.discard(address)

    def __contains__(self, address: object) -> bool:
        return address in self._used

    def __len__(self) -> int:
        return len(self._used)
