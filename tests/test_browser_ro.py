"""The journey in the browser in English and in Romanian: a Chromium whose language is en-US or
ro-RO, nobody signed in (the local user), the scripted model server. The first screen, the
contract, the sample and the export are screenshotted per language (tests/artifacts/browser/
lang-*.png); every fixed sentence and button checked here is the catalogue's, and in Romanian no
English sentence of the app shows."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agent import i18n
from tests.test_browser import (
    ASSISTANT,
    SHOTS,
    App,
    Browser,
    Knobs,
    Page,
    ScriptedOllama,
    _make_app,
    _stop,
    _texts,
    _wait_step,
    browser,  # noqa: F401 - the module's Chromium
    click,
    say,
)

pytestmark = pytest.mark.e2e
QUICK = 120_000

REQUESTS = {
    "en": "A dataset of customer reviews for an online shop, labelled by sentiment.",
    "ro": "Vreau un set de date cu recenzii de produse pentru un magazin online, etichetate după "
    "sentiment.",
}


WELCOME = (
    "**Describe the dataset you need, in your own words.** I propose what it will contain, show "
    "you a sample to check, and make the whole dataset when you agree — no code needed. Start by "
    "writing below, or pick an example."
)


def t(code: str, msgid: str, **values: object) -> str:
    if code != "en":
        assert msgid in i18n.catalogue(code), msgid  # a sentence the app really says
    with i18n.using(code):
        return i18n._(msgid, **values)


@pytest.fixture(scope="module")
def local_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    server = ScriptedOllama(Knobs(delay=0.1))
    server.start()
    home = tmp_path_factory.mktemp("browser-lang")  # no users.json: nobody signs in
    app = _make_app(
        home, LLM_PROVIDER="ollama", OLLAMA_BASE_URL=server.url, SAMPLE_SIZE="6", CONCURRENCY="2"
    )
    yield app
    _stop(app, "app-lang.log")
    server.shutdown()


def _shot(page: Page, code: str, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"lang-{code}-{name}.png"), full_page=True)


@pytest.mark.parametrize(("locale", "code"), [("en-US", "en"), ("ro-RO", "ro")])
def test_the_journey_speaks_the_browsers_language(
    local_app: App,
    browser: Browser,
    locale: str,
    code: str,
) -> None:
    ctx = browser.new_context(
        locale=locale, accept_downloads=True, viewport={"width": 1280, "height": 900}
    )
    ctx.route(
        "**/*",
        lambda route: (
            route.continue_() if route.request.url.startswith(local_app.url) else route.abort()
        ),
    )
    page = ctx.new_page()
    try:
        page.goto(local_app.url)
        page.wait_for_selector("#chat-settings-open-modal", timeout=QUICK)
        # the first screen: the welcome and the examples, in the browser's language
        welcome = t(code, WELCOME).split("**")[1]  # its first sentence, in bold
        page.wait_for_selector(f"text={welcome}", timeout=QUICK)
        starter = t(code, "Product reviews: positive or negative")
        assert page.locator(f"#starters >> text={starter}").count() == 1
        _shot(page, code, "1-first-screen")

        buttons = say(page, REQUESTS[code], QUICK)
        approve = t(code, "Approve contract")
        assert approve in buttons, _texts(page)
        assert t(code, "Here is the proposed contract:") in _texts(page)
        _shot(page, code, "2-contract")

        buttons = click(page, approve, QUICK)
        assert t(code, "Generate full size") in buttons, _texts(page)
        texts = _texts(page)
        assert t(code, "Sample {k} (contract v{version}): {n} rows.", k=1, version=1, n=6) in texts
        # the sample shows once: as the table, not also as Markdown rows
        assert page.locator(f"{ASSISTANT} th:text-is('#')").count() == 0
        # the exact figures are in a closed fold, opened with a click
        fold = page.locator("details.details-fold").last
        fold.wait_for(timeout=QUICK)
        assert fold.evaluate("el => el.open") is False
        assert t(code, "Details") in fold.locator("summary").inner_text()
        fold.locator("summary").click()
        assert fold.locator("table").first.is_visible()
        critique = (
            t(
                code,
                "**Critique** — {rows} rows · judge agrees on {agreement} ({judged} judged) · "
                "duplicates: {duplicates}",
                rows=6,
                agreement="X",
                judged=6,
                duplicates=0,
            )
            .split("—")[0]
            .replace("**", "")
            .strip()
        )
        assert critique in fold.inner_text()
        _shot(page, code, "3-sample")
        if code == "ro":  # no English sentence of the app is left on the page
            for english in ("Here is the proposed contract:", "Approve it to see a sample"):
                assert english not in texts

        # the used buttons went: only the newest message has them
        with_buttons = page.locator(f"{ASSISTANT}:has(button[id])").count()
        assert with_buttons == 1, with_buttons

        before = page.locator(ASSISTANT).count()
        page.fill("#chat-input", "generate 8" if code == "en" else "generează 8")
        page.keyboard.press("Enter")
        buttons = _wait_step(page, before, QUICK)
        export = t(code, "Export dataset")
        if t(code, "Continue anyway") in buttons:  # the stop rule may pause a tiny run
            buttons = click(page, t(code, "Continue anyway"), QUICK)
        assert export in buttons, _texts(page)
        done = t(code, "Done: **{done:,} / {total:,}** rows", done=8, total=8).replace("**", "")
        assert done in _texts(page)

        buttons = click(page, export, QUICK)
        assert t(code, "Done") in buttons, _texts(page)
        ready = t(
            code,
            "Your dataset **{name}** is ready: download it below (a zip with the data as a "
            "spreadsheet and in the Hugging Face format).",
            name="X",
        ).split("**")[0]
        assert ready in _texts(page)
        assert page.locator("a[download]").count() >= 1
        _shot(page, code, "4-export")
    except BaseException:
        _shot(page, code, "failed")
        raise
    finally:
        ctx.close()
