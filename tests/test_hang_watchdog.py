"""A hanging test names itself: the test, the pending task and the line it awaits."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

HANGING = textwrap.dedent(
    """
    import asyncio
    import signal
    import time

    import pytest


    async def wait_for_the_cacher(event: asyncio.Event) -> None:
        await event.wait()  # never set: the hang


    @pytest.mark.timeout(4)
    async def test_waits_forever() -> None:
        await asyncio.gather(wait_for_the_cacher(asyncio.Event()))


    @pytest.mark.timeout(2)
    async def test_a_task_swallows_its_cancel() -> None:
        async def stubborn() -> None:
            while True:
                try:
                    await asyncio.sleep(100)
                except asyncio.CancelledError:
                    pass  # pytest-asyncio's teardown waits for it forever

        task = asyncio.get_running_loop().create_task(stubborn())
        await asyncio.sleep(100)
        task.cancel()


    def test_the_next_test() -> None:
        pass


    @pytest.mark.timeout(2)
    def test_cannot_be_interrupted() -> None:
        # pytest-timeout's signal and the watchdog's
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM, signal.SIGUSR2})
        time.sleep(60)
    """
)


def run_pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_hanging.py").write_text(HANGING)
    # the repository's plugin and settings, the hanging module from tmp_path
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["tests.hang_watchdog"]\n')
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "KUBECACHE_HANG_DUMP_LEAD": "1",
        "KUBECACHE_HANG_GRACE": "6",
        "KUBECACHE_HANG_NUDGE": "1",
    }
    # pytest's own capture on (fd 2 is redirected during a test): the dump must get out
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
    cmd += ["-o", "asyncio_mode=auto", "--rootdir", str(tmp_path), *args]
    return subprocess.run(
        cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_a_hanging_async_test_prints_its_pending_task_and_awaited_line(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, "test_hanging.py::test_waits_forever")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "test still running near its timeout: test_hanging.py::test_waits_forever" in (
        result.stderr
    )
    assert "in wait_for_the_cacher" in result.stderr
    assert "await event.wait()  # never set: the hang" in result.stderr
    assert "Timeout" in result.stdout + result.stderr  # pytest-timeout then failed the test


def test_a_test_that_cannot_be_interrupted_ends_the_run_with_every_stack(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, "test_hanging.py::test_cannot_be_interrupted")
    assert result.returncode != 0
    assert "test still running near its timeout" in result.stderr
    assert "Timeout (0:00:08)!" in result.stderr  # faulthandler's dump, then exit
    assert "test_cannot_be_interrupted" in result.stderr


def test_a_teardown_hung_after_the_timeout_fails_and_the_run_goes_on(tmp_path: Path) -> None:
    result = run_pytest(
        tmp_path,
        "test_hanging.py::test_a_task_swallows_its_cancel",
        "test_hanging.py::test_the_next_test",
    )
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "test still not ended 1 s after its timeout" in result.stderr, out
    assert "in stubborn" in result.stderr  # the task that does not end, named
    assert "1 failed, 1 passed, 1 error" in result.stdout, out
