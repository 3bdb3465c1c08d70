"""The app in a real browser (Debian's Chromium via Playwright) on the built-in model.

A person's journey: describe → contract → approve → sample table with critique → "generate 6" →
progress → export → download the zip → `datasets` loads it.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import datasets
import pytest

from tests.browser import CHROMIUM, FLAGS, only_local, running_app

pytestmark = pytest.mark.e2e

STEP_TIMEOUT = 240_000  # ms: the built-in model on 2 shared cores is slow


def test_journey_in_the_browser(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    assert Path(CHROMIUM).exists(), (
        "needs Debian's chromium: apt-get install chromium (./test.sh does it as root)"
    )

    env = {
        "DATA_DIR": str(tmp_path / "data"),
        "LLM_PROVIDER": "local",
        "SAMPLE_SIZE": "4",
        "MAX_ROWS": "30",
        "CONCURRENCY": "2",
    }
    with running_app(env, tmp_path / "app.log") as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(accept_downloads=True)
        page.route("**/*", only_local)
        page.goto(url)
        assistant = page.locator("div.step[data-step-type=assistant_message]")

        page.locator("#chat-input").fill(
            "A dataset covering customer reviews for an e-commerce website."
        )
        page.keyboard.press("Enter")
        approve = page.get_by_role("button", name="Approve contract")
        just_go = page.get_by_role("button", name="Just go")
        expect(approve.or_(just_go).first).to_be_visible(timeout=STEP_TIMEOUT)
        if just_go.count():
            just_go.first.click()
        expect(assistant.filter(has_text="Here is the proposed contract")).to_have_count(
            1, timeout=STEP_TIMEOUT
        )
        approve.last.click()

        expect(assistant.filter(has_text="Critique")).to_have_count(1, timeout=STEP_TIMEOUT)
        expect(page.get_by_role("button", name="Generate full size")).to_be_visible()

        page.locator("#chat-input").fill("generate 6")
        page.keyboard.press("Enter")
        expect(assistant.filter(has_text="Generating:")).to_have_count(1, timeout=STEP_TIMEOUT)
        export = page.get_by_role("button", name="Export dataset")
        expect(export).to_be_visible(timeout=STEP_TIMEOUT)
        export.click()

        link = page.locator("a[download]").last
        expect(link).to_be_visible(timeout=STEP_TIMEOUT)
        with page.expect_download() as info:
            link.click()
        target = tmp_path / "download.zip"
        info.value.save_as(target)
        browser.close()

    with zipfile.ZipFile(target) as zf:
        zf.extractall(tmp_path / "unzipped")
    (folder,) = [p.parent for p in (tmp_path / "unzipped").rglob("spec.json")]
    ds = datasets.load_dataset(str(folder))["train"]
    assert 1 <= ds.num_rows <= 6
    assert set(ds["label"]) <= set(range(len(ds.features["label"].names)))
