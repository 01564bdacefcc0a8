"""Fixtures of the end-to-end tests: the whole system on loopback, torn down even on failure.

Every test here is marked ``e2e`` (select with ``-m e2e``, skip with ``-m "not e2e"``).
On failure the processes' logs are printed and copied to ``test-artifacts/<test>/``.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Generator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from kubesim.testing import running_kubesim
from tests.e2e.support.artifacts import artifact_dir, failed
from tests.e2e.support.stack import Cluster
from tests.support.postgres import PostgresServer, postgres_bin_dir
from tests.support.redis_server import RedisServer

E2E_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_DIR in item.path.resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    """Keep each phase's report on the item, so fixtures know whether the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture(scope="session")
def postgres() -> Generator[PostgresServer, None, None]:
    """PostgreSQL 15 from Debian's packages on 127.0.0.1, for the session (see
    tests.support.postgres); each HA test gets a database of its own (``hub_db_url``)."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip(
            "PostgreSQL is not installed (no /usr/lib/postgresql/15/bin/initdb): the HA tests "
            "run the hub on PostgreSQL; run `bash scripts/install.sh` (apt-get install postgresql)"
        )
    server = PostgresServer(bin_dir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def hub_db_url(postgres: PostgresServer, request: pytest.FixtureRequest) -> str:
    """A fresh PostgreSQL database for the hub replicas of one test (SQLAlchemy URL)."""
    hub_db_url.count = getattr(hub_db_url, "count", 0) + 1  # type: ignore[attr-defined]
    return postgres.create_database(f"hub{hub_db_url.count}")  # type: ignore[attr-defined]


@pytest.fixture
async def cluster(
    redis_server: RedisServer, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Cluster]:
    """kubesim with the process kubelet, a flushed redis-server and a synced cacher."""
    if redis_server.process is None or redis_server.process.poll() is not None:
        redis_server.start()
    redis = aioredis.Redis.from_url(redis_server.url)
    await redis.flushall()
    try:
        # a test module may size the simulated cluster (KUBESIM_NODES: a list of NodeSpec)
        nodes = getattr(request.module, "KUBESIM_NODES", None)
        async with running_kubesim(kubelet="process", nodes=nodes) as sim:
            made = Cluster(sim, redis, redis_server.url, tmp_path)
            try:
                await made.start_cacher()
                yield made
            finally:
                pod_logs = made.pod_logs()
                await made.close()
                if failed(request):
                    (made.processes.log_dir / "pods.log").write_text(pod_logs)
                    print(made.processes.report())
                    shutil.copytree(
                        made.processes.log_dir, artifact_dir(request) / "logs", dirs_exist_ok=True
                    )
    finally:
        await redis.aclose()
