"""Redis topologies the cacher refuses, and how it says so."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from cacher.app import Cacher
from tests.support.cacher import cacher_settings
from tests.support.redis_server import RedisServer, free_port


@pytest.fixture
def cluster_node() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start(
        "--cluster-enabled", "yes",
        "--cluster-config-file", str(server.dir / "nodes.conf"),
        "--cluster-port", str(free_port()),  # the default (port + 10000) may not exist
    )  # fmt: skip
    yield server
    server.close()


async def test_a_redis_cluster_node_is_refused_with_a_clear_error(
    kubesim: Any, cluster_node: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    cacher = Cacher(cacher_settings(kubesim, cluster_node.url))
    with caplog.at_level(logging.ERROR, logger="cacher.app"):
        assert await cacher.run() == 2
    assert "Redis Cluster node" in caplog.text
    assert "redis+sentinel://" in caplog.text
