"""Without sign-in, in a real browser: a reload keeps the conversation, the history lists it, and
"Continue it" shows the contract it continues.

The app starts with no users (the default on one's own machine) on the scripted Ollama server of
tests/test_browser.py, whose app-starting helpers this module reuses. No sign-in page is shown: the
app signs in its one local user by itself. Screenshots go to tests/artifacts/browser/history-*.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.test_browser import (
    ASSISTANT,
    QUICK,
    SHOTS,
    USER,
    App,
    _context,
    _make_app,
    _shot,
    _stop,
    _texts,
    _to_contract,
    _wait_step,
    browser,
    click,
    model_server,
)

pytestmark = pytest.mark.e2e

__all__ = ["browser", "model_server"]  # fixtures, used by name

from playwright.sync_api import Browser, Page  # noqa: E402

DESCRIPTION = "A dataset covering customer reviews for an e-commerce website."
CONTRACT = "Here is the proposed contract"
WELCOME = "Welcome back"


@pytest.fixture(scope="module")
def open_app(tmp_path_factory: pytest.TempPathFactory, model_server) -> Iterator[App]:
    """The app with nobody to sign in: no users file, no Hugging Face sign-in."""
    home = tmp_path_factory.mktemp("browser-nobody")
    app = _make_app(
        home,
        LLM_PROVIDER="ollama",
        OLLAMA_BASE_URL=model_server.url,
        SAMPLE_SIZE="10",
        CONCURRENCY="1",
        MAX_CONCURRENCY="2",
    )
    assert not (home / "users.json").exists()
    yield app
    _stop(app, "app-history.log")


def _open(page: Page, url: str) -> None:
    """Open the app: no sign-in form on the way (the local user is signed in by itself)."""
    page.goto(url)
    page.wait_for_selector("#chat-input", timeout=QUICK)
    assert page.locator("input[type=password]").count() == 0
    assert "/login" not in page.url


def _sidebar_threads(page: Page) -> list[str]:
    """The thread links of the history sidebar, as the page shows them."""
    page.wait_for_selector("a[href*='/thread/']", timeout=QUICK)
    return [
        str(a.get_attribute("href")).rsplit("/", 1)[1]
        for a in page.locator("a[href*='/thread/']").all()
    ]


def _bottom_shot(page: Page, name: str) -> None:
    """A screenshot of the end of the chat (it scrolls inside the page): the latest buttons."""
    last = page.locator(ASSISTANT).last
    buttons = last.locator("button[id]")
    (buttons.last if buttons.count() else last).scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    _shot(page, name)


def _after_continuing(page: Page) -> str:
    """What the chat shows after "Continuing your unfinished dataset", up to its buttons (the
    buttons are on the last message, which _wait_step waited for)."""
    said = page.locator(ASSISTANT).all_inner_texts()
    at = max(i for i, text in enumerate(said) if "Continuing your unfinished dataset" in text)
    assert at < len(said) - 1, said  # something is shown after it
    return "\n".join(said[at + 1 :])


def _welcomes(page: Page) -> int:
    return page.locator(ASSISTANT, has_text=WELCOME).count()


def _reload(page: Page) -> list[str]:
    """Reload; wait for the stored conversation and the pending step's buttons again."""
    page.reload()
    page.wait_for_selector(f"text={WELCOME}", timeout=QUICK)
    return _wait_step(page, 0, timeout=QUICK)


def test_a_reload_keeps_the_conversation_and_the_history_lists_it(
    open_app: App,
    browser: Browser,
) -> None:
    ctx = _context(browser, open_app)
    page = ctx.new_page()
    try:
        _open(page, open_app.url)
        _shot(page, "history-01-first-screen.png")
        _to_contract(page)
        page.wait_for_url(re.compile(r"/thread/[0-9a-f-]+$"), timeout=QUICK)
        thread = page.url.rsplit("/", 1)[1]
        _shot(page, "history-02-contract.png")

        buttons = _reload(page)
        assert page.url.endswith(thread)
        assert buttons == ["Approve contract", "Cancel"]
        assert page.locator(USER, has_text=DESCRIPTION).count() == 1  # what the user wrote
        assert CONTRACT in _texts(page)  # and what the app answered
        assert thread in _sidebar_threads(page)  # the history sidebar, with this chat in it
        assert _welcomes(page) == 1
        _bottom_shot(page, "history-03-after-reload.png")

        # reloaded again (and again): still one "Welcome back", the buttons under it
        _reload(page)
        assert _reload(page) == ["Approve contract", "Cancel"]
        assert _welcomes(page) == 1
        assert page.locator(USER, has_text=DESCRIPTION).count() == 1
        _bottom_shot(page, "history-04-reloaded-twice.png")

        # the reloaded buttons work: the contract is approved and a sample comes
        buttons = click(page, "Approve contract", QUICK)
        assert "Generate full size" in buttons, _texts(page)
        ctx.close()

        # a new chat offers it; "Continue it" shows that sample (its table) above its buttons
        ctx = _context(browser, open_app)
        page = ctx.new_page()
        _open(page, open_app.url)
        page.locator(ASSISTANT, has_text="You have an unfinished dataset").wait_for(timeout=QUICK)
        assert click(page, "Continue it", QUICK) == ["Generate full size", "Cancel"]
        assert "Sample 1" in _after_continuing(page)  # the sample it continues, then its buttons
        sample = page.locator(ASSISTANT, has_text="Sample 1").last
        assert sample.locator("table").count() >= 1  # the rows, as a table
        _bottom_shot(page, "history-05-sample-continued.png")
    except BaseException:
        page.screenshot(path=str(SHOTS / "failed-history-reload.png"), full_page=True)
        raise
    finally:
        ctx.close()


def test_continue_it_shows_the_contract_it_continues(open_app: App, browser: Browser) -> None:
    ctx = _context(browser, open_app)
    page = ctx.new_page()
    try:
        _open(page, open_app.url)  # a dataset left at its contract
        _to_contract(page)
        page.wait_for_url(re.compile(r"/thread/[0-9a-f-]+$"), timeout=QUICK)
        left = page.url.rsplit("/", 1)[1]
        ctx.close()

        ctx = _context(browser, open_app)  # another day, a new tab: a new chat
        page = ctx.new_page()
        _open(page, open_app.url)
        offer = page.locator(ASSISTANT, has_text="You have an unfinished dataset")
        offer.wait_for(timeout=QUICK)
        # the whole description, not cut; the sentence's full stop after the quote
        assert f"“{DESCRIPTION[:-1]}”." in offer.inner_text()
        _shot(page, "history-06-offer.png")

        buttons = click(page, "Continue it", QUICK)
        assert buttons == ["Approve contract", "Cancel"]
        shown = _after_continuing(page)  # the contract it continues, then its buttons
        assert CONTRACT in shown and "positive" in shown and "neutral" in shown
        assert offer.locator("button[id]").count() == 0  # the offer is used up
        page.wait_for_url(re.compile(r"/thread/[0-9a-f-]+$"), timeout=QUICK)
        chat = page.url.rsplit("/", 1)[1]
        assert chat != left
        # the sidebar lists this chat under the dataset's name (not the button's)
        entry = page.locator(f"a[href$='/thread/{chat}']", has_text="A dataset covering")
        entry.wait_for(timeout=QUICK)
        assert "continue_thread" not in page.locator("body").inner_text()
        _bottom_shot(page, "history-07-continued.png")

        # this chat is now that dataset's: a reload keeps it (the continued contract, its buttons)
        assert _reload(page) == ["Approve contract", "Cancel"]
        assert CONTRACT in _texts(page) and _welcomes(page) == 1
        names = page.locator(f"a[href$='/thread/{chat}']").inner_text()
        assert "customer reviews" in names  # the sidebar names it after the dataset
        _bottom_shot(page, "history-08-continued-reloaded.png")
    except BaseException:
        page.screenshot(path=str(SHOTS / "failed-history-continue.png"), full_page=True)
        raise
    finally:
        ctx.close()
