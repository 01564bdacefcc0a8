"""The spawn form in headless Chromium: what a user picks is what options_from_form receives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.spawner.unit.golden import make_pair

CHROMIUM = "/usr/bin/chromium"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.usefixtures("reference_kubespawner"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium not installed"),
]
PROFILES = [
    {"display_name": "Small", "slug": "small"},
    {
        "display_name": "Custom",
        "slug": "custom",
        "profile_options": {
            "image": {
                "display_name": "Image",
                "choices": {"a": {"display_name": "A"}, "b": {"display_name": "B"}},
                "unlisted_choice": {"enabled": True, "display_name": "Other image"},
            }
        },
    },
]


async def _submitted(form_html: str, actions: Any) -> dict[str, list[str]]:
    playwright_api = pytest.importorskip("playwright.async_api")
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = await browser.new_page()
            await page.set_content(f"<form id='spawn'>{form_html}</form>")
            await actions(page)
            pairs = await page.evaluate(
                "() => Array.from(new FormData(document.getElementById('spawn')).entries())"
            )
        finally:
            await browser.close()
    formdata: dict[str, list[str]] = {}
    for key, value in pairs:
        formdata.setdefault(key, []).append(value)
    return formdata


async def test_choosing_a_listed_choice_submits_it() -> None:
    spawner = make_pair({"profile_list": PROFILES}).ours

    async def pick(page: Any) -> None:
        await page.select_option("#profile-option-custom--image", "b")

    formdata = await _submitted(spawner.options_form, pick)
    assert spawner._options_from_form(formdata) == {"profile": "custom", "image": "b"}


async def test_choosing_other_submits_only_the_free_text() -> None:
    spawner = make_pair({"profile_list": PROFILES}).ours

    async def pick(page: Any) -> None:
        await page.select_option("#profile-option-custom--image", "unlisted-choice")
        await page.fill("#profile-option-custom--image--unlisted-choice", "my/image:1")

    formdata = await _submitted(spawner.options_form, pick)
    assert spawner._options_from_form(formdata) == {
        "profile": "custom",
        "image--unlisted-choice": "my/image:1",
    }


async def test_saved_options_are_preselected() -> None:
    saved = {"profile": "custom", "image--unlisted-choice": "saved/image:2"}
    spawner = make_pair({"profile_list": PROFILES}, user_options=saved).ours

    async def nothing(page: Any) -> None:
        return None

    formdata = await _submitted(spawner.options_form, nothing)
    assert spawner._options_from_form(formdata) == saved


async def test_default_profile_is_submitted_untouched() -> None:
    spawner = make_pair({"profile_list": PROFILES}).ours

    async def nothing(page: Any) -> None:
        return None

    formdata = await _submitted(spawner.options_form, nothing)
    assert spawner._options_from_form(formdata) == {"profile": "small"}
