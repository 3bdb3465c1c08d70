"""Chainlit's own page in the user's language, with our words: Debian's Chromium, one app for the module.

What is checked is Chainlit's chrome — the sign-in page, the composer, the New chat dialog, the
settings panel, the session error — as translated by the files we ship in .chainlit/translations/
and fixed by public/chrome.js and public/chrome.css (loaded through .chainlit/config.toml). The
app's own sentences are not asserted on here. The app runs on the scripted model server of
tests/test_browser.py (answers at once), with sign-in on: alice and bob, password users.
Screenshots go to tests/artifacts/chrome/.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.auth import add_user
from tests.test_browser import (
    ARGS,
    ASSISTANT,
    CHROMIUM,
    PASSWORD,
    App,
    Knobs,
    ScriptedOllama,
    _make_app,
    say,
)

pytestmark = pytest.mark.e2e

from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "tests" / "artifacts" / "chrome"
TRANSLATIONS = ROOT / ".chainlit" / "translations"
CHAINLIT_EN = Path(__import__("chainlit").__file__).parent / "translations" / "en-US.json"
QUICK = 120_000  # ms: a step on the scripted model server, on a busy machine
DESCRIPTION = "A dataset covering customer reviews for an e-commerce website."
NOT_YOURS = {  # public/chrome.js
    "ro-RO": "Această conversație nu este a dumneavoastră",
    "en-US": "This conversation is not yours",
}


def words(locale: str) -> dict[str, Any]:
    return json.loads((TRANSLATIONS / f"{locale}.json").read_text(encoding="utf-8"))


def _leaves(tree: dict[str, Any], path: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out |= _leaves(value, f"{path}{key}.")
        else:
            out[path + key] = value
    return out


# --- the app and the browser, one of each for the module ------------------------------------


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    home = tmp_path_factory.mktemp("browser-chrome")
    add_user(home / "users.json", "alice", PASSWORD)
    add_user(home / "users.json", "bob", PASSWORD)
    server = ScriptedOllama(Knobs(delay=0.05))
    server.start()
    app = _make_app(home, LLM_PROVIDER="ollama", OLLAMA_BASE_URL=server.url, SAMPLE_SIZE="4")
    yield app
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "app.log").write_bytes(app.log.read_bytes())  # for people to look at
    assert app.proc is not None
    app.proc.terminate()
    try:
        app.proc.wait(20)
    except subprocess.TimeoutExpired:
        app.proc.kill()
    server.shutdown()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _context(browser: Browser, app: App, locale: str, theme: str = "dark") -> BrowserContext:
    """A browser whose language is `locale` (navigator.language, which Chainlit asks for)."""
    ctx = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
    ctx.add_init_script(f"localStorage.setItem('vite-ui-theme', '{theme}')")
    # Only the app: Google Fonts / jsDelivr requests otherwise make page loads unpredictable here.
    ctx.route(
        "**/*",
        lambda route: route.continue_() if route.request.url.startswith(app.url) else route.abort(),
    )
    return ctx


def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name))


def _login_page(ctx: BrowserContext, app: App) -> Page:
    page = ctx.new_page()
    page.goto(app.url + "/login")
    page.wait_for_selector("label[for=email]", timeout=60_000)
    return page


def _sign_in(ctx: BrowserContext, app: App, user: str) -> Page:
    page = _login_page(ctx, app)
    page.fill("#email", user)
    page.fill("#password", PASSWORD)
    page.locator("button[type=submit]").click()
    # the chat settings come from the app's on_chat_start: the session is live
    page.wait_for_selector("#chat-settings-open-modal", timeout=QUICK)
    return page


def _thread_of(ctx: BrowserContext, app: App, user: str) -> str:
    """A conversation of `user`'s (one message, answered): its /thread/<id> address."""
    page = _sign_in(ctx, app, user)
    say(page, DESCRIPTION, QUICK)
    page.wait_for_url(re.compile(re.escape(app.url) + "/thread/.+"), timeout=30_000)
    url = page.url
    page.close()
    return url


# --- the translation files we ship ------------------------------------------------------------


@pytest.mark.parametrize("locale", ["en-US", "ro-RO"])
def test_our_translation_files_have_every_key_chainlit_has(locale: str) -> None:
    ours = _leaves(words(locale))
    chainlit = _leaves(json.loads(CHAINLIT_EN.read_text(encoding="utf-8")))
    assert sorted(ours) == sorted(chainlit)  # a missing key shows as its path on the page
    for key, english in chainlit.items():  # {{provider}} and the like survive translation
        assert re.findall(r"{{\w+}}", ours[key]) == re.findall(r"{{\w+}}", english), key


def test_the_romanian_file_is_romanian() -> None:
    ro = _leaves(words("ro-RO"))
    en = _leaves(json.loads(CHAINLIT_EN.read_text(encoding="utf-8")))
    same = {k for k in en if ro[k] == en[k]}
    assert same == {"navigation.user.menu.settingsKey", "alerts.important", "alerts.beta"}
    text = " ".join(ro.values())
    assert set("ăâîșț") <= set(text)
    assert not set("şţŞŢ") & set(text)  # Romanian's comma below, not the Turkish cedilla


# --- in the browser -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "label"), [("ro-RO", "Nume de utilizator"), ("en-US", "User name")]
)
def test_sign_in_asks_for_a_user_name(app: App, browser: Browser, locale: str, label: str) -> None:
    ctx = _context(browser, app, locale)
    page = _login_page(ctx, app)
    _shot(page, f"sign-in-{locale}.png")
    assert page.locator("label[for=email]").inner_text() == label
    body = page.locator("body").inner_text()
    assert "Email" not in body and "e-mail" not in body.lower()
    assert (
        page.locator("#email").get_attribute("placeholder")
        == (words(locale)["auth"]["login"]["form"]["email"]["placeholder"])
    )
    ctx.close()


@pytest.mark.parametrize("locale", ["ro-RO", "en-US"])
def test_the_first_screen_speaks_the_browsers_language(
    app: App, browser: Browser, locale: str
) -> None:
    ctx = _context(browser, app, locale)
    page = _sign_in(ctx, app, "alice")
    mine = words(locale)
    placeholder = mine["chat"]["input"]["placeholder"]
    page.wait_for_timeout(500)  # the starters and the sidebar settle
    _shot(page, f"first-screen-{locale}.png")
    assert page.locator("#chat-input").get_attribute("placeholder") == placeholder
    body = page.locator("body").inner_text()
    assert mine["navigation"]["header"]["readme"] in body
    english = _leaves(json.loads(CHAINLIT_EN.read_text(encoding="utf-8")))
    if locale == "ro-RO":
        assert placeholder == "Scrieți mesajul aici..."
        for key in ("navigation.header.readme", "threadHistory.sidebar.empty"):
            assert english[key] not in body, key
        assert "Toggle theme" not in body  # a screen reader's label (public/chrome.js)
    else:
        assert placeholder == english["chat.input.placeholder"]
    ctx.close()


@pytest.mark.parametrize("locale", ["ro-RO", "en-US"])
def test_new_chat_says_the_current_one_stays_in_the_history(
    app: App, browser: Browser, locale: str
) -> None:
    ctx = _context(browser, app, locale)
    page = _sign_in(ctx, app, "alice")
    page.locator("#new-chat-button").click()
    dialog = page.locator("#new-chat-dialog")
    dialog.wait_for(timeout=10_000)
    _shot(page, f"new-chat-{locale}.png")
    text = dialog.inner_text()
    assert words(locale)["navigation"]["newChat"]["dialog"]["description"] in text
    assert "clear" not in text and "șter" not in text  # nothing is cleared
    ctx.close()


def test_the_token_and_the_key_are_masked_in_the_settings(app: App, browser: Browser) -> None:
    ctx = _context(browser, app, "ro-RO")
    page = _sign_in(ctx, app, "alice")
    page.locator("#chat-settings-open-modal").click()
    page.locator("input#hf_token").wait_for(timeout=10_000)
    for secret in ("hf_token", "argilla_api_key"):
        field = page.locator(f"input#{secret}")
        assert field.get_attribute("type") == "password", secret
        assert field.get_attribute("autocomplete") == "new-password", secret
    assert page.locator("input#argilla_api_url").evaluate("e => e.type") == "text"  # not a secret
    page.locator("input#hf_token").fill("hf_typed_in_the_settings")
    assert page.locator("input#hf_token").input_value() == "hf_typed_in_the_settings"
    _shot(page, "settings-masked.png")
    assert "hf_typed_in_the_settings" not in page.locator("body").inner_text()
    # closed and opened again (React mounts the panel anew): still masked
    page.keyboard.press("Escape")
    page.locator("input#hf_token").wait_for(state="detached", timeout=10_000)
    page.locator("#chat-settings-open-modal").click()
    page.locator("input#hf_token").wait_for(timeout=10_000)
    assert page.locator("input#hf_token").get_attribute("type") == "password"
    assert page.locator("input#argilla_api_key").get_attribute("type") == "password"
    ctx.close()


@pytest.fixture(scope="module")
def bobs_thread(app: App, browser: Browser) -> Iterator[str]:
    ctx = _context(browser, app, "en-US")
    yield _thread_of(ctx, app, "bob")
    ctx.close()


@pytest.mark.parametrize("locale", ["ro-RO", "en-US"])
def test_another_users_conversation_says_it_is_not_theirs(
    app: App, browser: Browser, bobs_thread: str, locale: str
) -> None:
    ctx = _context(browser, app, locale)
    page = _sign_in(ctx, app, "alice")
    page.goto(bobs_thread)
    error = page.locator("#session-error")
    error.wait_for(timeout=30_000)
    page.wait_for_function(
        "text => document.getElementById('session-error')?.innerText.includes(text)",
        arg=NOT_YOURS[locale],
        timeout=10_000,
    )
    _shot(page, f"not-yours-{locale}.png")
    body = page.locator("body").inner_text()
    assert DESCRIPTION not in body  # and nothing of Bob's shows
    assert "Couldn't resume chat" not in body or locale == "en-US"  # Chainlit's toast, ours in ro
    ctx.close()


def test_a_server_that_does_not_answer_is_not_called_someone_elses(
    app: App, browser: Browser
) -> None:
    """Chainlit's one sentence for a refused connection is also the one for a server that is down:
    on Alice's own conversation, with the app's socket cut, it stays the "not answering" one."""
    ctx = _context(browser, app, "en-US")
    mine = _thread_of(ctx, app, "alice")
    ctx.route("**/ws/socket.io/**", lambda route: route.abort())
    page = ctx.new_page()
    page.goto(mine)
    page.locator("#session-error").wait_for(timeout=60_000)
    page.wait_for_timeout(2000)  # time for chrome.js to ask the server whose the thread is
    _shot(page, "not-answering-en-US.png")
    text = page.locator("#session-error").inner_text()
    assert text == words("en-US")["common"]["status"]["error"]["serverConnection"]
    assert NOT_YOURS["en-US"] not in text
    ctx.close()


def _contrast(page: Page, selector: str) -> dict[str, float]:
    """WCAG contrast ratios of a button: its text on its own background (composited over what is
    behind it), and its border against the page behind it."""
    return page.locator(selector).evaluate(
        """el => {
        const rgba = s => { const m = s.match(/[\\d.]+/g).map(Number); return [m[0], m[1], m[2], m.length > 3 ? m[3] : 1] };
        const over = (top, bottom) => top.slice(0, 3).map((c, i) => c * top[3] + bottom[i] * (1 - top[3]));
        let behind = [255, 255, 255];
        const stack = [];
        for (let e = el.parentElement; e; e = e.parentElement) stack.push(rgba(getComputedStyle(e).backgroundColor));
        for (const c of stack.reverse()) behind = over(c, behind);
        const lum = c => { const [r, g, b] = c.map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4 }); return 0.2126 * r + 0.7152 * g + 0.0722 * b };
        const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05) };
        const style = getComputedStyle(el);
        const face = over(rgba(style.backgroundColor), behind);
        return {
            text: ratio(over(rgba(style.color), face), face),
            border: ratio(over(rgba(style.borderTopColor), behind), behind),
            border_width: parseFloat(style.borderTopWidth),
            weight: parseFloat(style.fontWeight),
        };
    }"""
    )


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_action_buttons_look_like_buttons(app: App, browser: Browser, theme: str) -> None:
    ctx = _context(browser, app, "en-US", theme)
    page = _sign_in(ctx, app, "alice")
    labels = say(page, DESCRIPTION, QUICK)
    assert labels  # the app's message has action buttons
    button = f"{ASSISTANT} >> nth=-1 >> button[id]"
    page.wait_for_timeout(500)  # the app's status line makes way
    _shot(page, f"buttons-{theme}.png")
    seen = _contrast(page, f"{button} >> nth=0")
    assert seen["border_width"] >= 1 and seen["border"] >= 3, seen  # WCAG: a visible edge
    assert seen["text"] >= 4.5 and seen["weight"] >= 600, seen  # WCAG AA text on its face
    # the copy and feedback icons beside them keep Chainlit's look
    copy = page.locator(f"{ASSISTANT} >> nth=-1 >> button:not([id])").first
    assert copy.evaluate("e => getComputedStyle(e).borderTopWidth") == "0px"
    ctx.close()
