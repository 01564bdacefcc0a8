"""A person's path in headless Chromium: log in, pick a profile and an option, watch, land.

Debian's chromium driven by Playwright for Python through its executable
path (no browser download). On failure a screenshot and the processes' logs
are kept in ``test-artifacts/<test>/``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.support.artifacts import artifact_dir, failed
from tests.e2e.support.stack import Cluster

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
NAMESPACE = "e2e-browser"
USER = "carol"
WELCOME = "carol's server, spawned by kubecache"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing: run bash scripts/install.sh"
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("playwright") is None,
        reason="playwright for Python is missing: run bash scripts/install.sh",
    ),
]

#: Records every line the spawn-pending page adds to its event log, across page loads.
RECORD_PROGRESS = """
new MutationObserver((mutations) => {
  for (const mutation of mutations) {
    for (const node of mutation.addedNodes) {
      if (node.classList && node.classList.contains("progress-log-event")) {
        window.recordProgress(node.textContent);
      }
    }
  }
}).observe(document, {childList: true, subtree: true});
"""


@pytest.fixture
async def page(cluster: Cluster, request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """A Chromium page; its screenshot is kept when the test fails."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000
        )
        try:
            context = await browser.new_context()
            made = await context.new_page()
            made.set_default_timeout(30_000)
            yield made
            if failed(request):
                path = artifact_dir(request) / "screenshot.png"
                await made.screenshot(path=str(path), full_page=True)
                print(f"screenshot of the failed browser test: {path} (at {made.url})")
        finally:
            await browser.close()


async def test_a_user_logs_in_picks_a_profile_and_option_watches_progress_and_lands_on_the_server(
    cluster: Cluster, page: Any
) -> None:
    proxy = await cluster.start_proxy()
    # The server's own page after the OAuth round trip: a file jupyter_server serves to its
    # authenticated user from the pod's working directory (API URLs never start OAuth).
    home = cluster.work_dir / "home"
    home.mkdir()
    (home / "welcome.txt").write_text(WELCOME)
    hub = cluster.hub(
        "hub",
        proxy,
        namespace=NAMESPACE,
        default_url="/files/welcome.txt",
        working_dir=str(home),
    )
    await cluster.start_hub(hub)
    base = proxy.public_url
    progress: list[str] = []

    def record_progress(message: str) -> None:
        progress.append(message)

    await page.expose_function("recordProgress", record_progress)
    await page.add_init_script(RECORD_PROGRESS)

    # Log in through the login form.
    await page.goto(f"{base}/hub/login")
    await page.fill("#username_input", USER)
    await page.fill("#password_input", "any password")
    async with page.expect_navigation():
        await page.click("#login_submit")
    assert "/hub/login" not in page.url, page.url

    # Choose a profile and one of its options in the spawn form.
    await page.goto(f"{base}/hub/spawn")
    await page.check("#profile-item-large")
    await page.select_option("#profile-option-large--flavour", "spicy")
    async with page.expect_navigation():
        await page.click("#spawn_form button[type=submit]")
    assert f"/hub/spawn-pending/{USER}" in page.url, page.url

    # The pending page shows the pod's events, then the browser lands on the server.
    landing = f"/user/{USER}/files/welcome.txt"
    await page.wait_for_url(lambda url: urlsplit(url).path == landing, timeout=90_000)
    assert (await page.text_content("body") or "").strip() == WELCOME
    assert any(f"Successfully assigned {NAMESPACE}/jupyter-{USER}" in m for m in progress), progress
    assert any("Started container" in m for m in progress), progress

    # What the user chose is what runs.
    pod = cluster.pod(NAMESPACE, f"jupyter-{USER}")
    assert pod is not None
    assert pod["metadata"]["labels"]["e2e/flavour"] == "spicy"
    assert float(pod["spec"]["containers"][0]["resources"]["limits"]["cpu"]) == 1.0
    assert await hub.api.server_ready(USER)
