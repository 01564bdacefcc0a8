from __future__ import annotations

import ipaddress

from kubesim.loopback import LoopbackAllocator


def test_addresses_are_unique_loopback_and_never_the_usual_ones() -> None:
    allocator = LoopbackAllocator(seed=1)
    addresses = [allocator.allocate() for _ in range(2000)]
    assert len(set(addresses)) == 2000
    for address in addresses:
        ip = ipaddress.IPv4Address(address)
        assert ip.is_loopback
        assert not address.startswith("127.0.0.")
        assert address.split(".")[-1] not in ("0", "255")


def test_released_addresses_are_no_longer_held() -> None:
    allocator = LoopbackAllocator()
    address = allocator.allocate()
    assert address in allocator
    allocator.release(address)
    assert address not in allocator
    allocator.release(None)
    assert len(allocator) == 0
