"""kubecache cacher: list+watch pods and their events, write compact state to Redis.

Layers, bottom up: :mod:`kubecache.contract` (the Redis contract, and the pure
translation of raw API objects into its records, :mod:`kubecache.contract.reduce`,
shared with the spawner), :mod:`kubecache.cacher.writer`
(the only code that writes Redis: fenced Lua scripts), and the control loops
(settings, watches, leader election, health) on top.
"""

from kubecache import __version__  # one version for the whole distribution

__all__ = ["__version__"]
