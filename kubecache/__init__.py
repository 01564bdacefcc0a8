"""kubecache: the pieces shared by the cacher, the spawner and the CLI.

``kubecache.contract`` is the Redis contract (keys, records, health);
``kubecache.redis_connection`` builds Redis clients from settings.
"""

__version__ = "0.1.0"
