"""The one error of the Redis contract: data that does not follow it."""

from __future__ import annotations


class ContractError(ValueError):
    """Data in Redis does not follow this contract (malformed or foreign)."""
