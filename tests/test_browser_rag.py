"""Retrieval (RAG) data in a real browser, in English and in Romanian: Debian's Chromium (locale
en-US or ro-RO), nobody signed in, the scripted model server. The person attaches a small .md
manual through the composer's upload button, asks for questions and answers for a retrieval
system, approves the contract (its RAG shape and columns shown), reads the sample (the judge's
checks in words, the rows as a table with passage / question / answer) and types "add hard
negatives" (the diff, then a new sample with the hard-negative column). Screenshots of each step
go to tests/artifacts/browser/rag-<lang>-*.png.

Like the other browser tests this one starts `chainlit run app.py` from the repository folder:
do not run it at the same time as another browser test (they share Chainlit's `.files/`).
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
    browser,  # noqa: F401 - the module's Chromium
    click,
    say,
)

pytestmark = pytest.mark.e2e
QUICK = 120_000  # ms: a step on the scripted model server, on a busy machine
SAMPLE = 4

SECTIONS = 3  # the manual's Markdown sections: a passage each
MANUAL = """# The coffee machine

Fill the water tank up to the MAX line with cold water. The machine heats up in about forty
seconds; the green light stops blinking when it is ready. Use ground coffee of medium grind: two
level spoons for a large cup, one for an espresso. Press the cup button once for a small cup and
twice for a large one.

# Cleaning

Empty the drip tray and the grounds box every day. Once a month run the descaling program: pour
the descaler into the tank with half a litre of water, hold the two cup buttons for five seconds,
and rinse twice with clean water when the red light turns off. Never put the tank in the
dishwasher.

# Problems

If coffee runs slowly, the grind is too fine or the filter is blocked: rinse the filter under hot
water. If the red light blinks, the tank is empty or not seated; lift it and press it down firmly.
A machine that stays cold after two minutes needs service: call the number on the warranty card.
"""

REQUESTS = {
    "en": "Questions and answers from my documents for a retrieval system, 12 rows",
    "ro": "Întrebări și răspunsuri din documentele mele pentru un sistem RAG, 12 rânduri",
}
HARD_NEGATIVES = {"en": "add hard negatives", "ro": "adaugă negative dificile"}

WORDS = {
    "English": (
        "tank water light button cup grind filter tray descaler spoon espresso warranty service "
        "morning kitchen office guest weekend cold hot red green small large daily monthly"
    ).split(),
    "Romanian": (
        "rezervor apă lumină buton ceașcă filtru tavă cafea lingură espresso garanție service "
        "dimineață bucătărie birou oaspete weekend rece fierbinte roșu verde mic mare zilnic lunar"
    ).split(),
}
PHRASES = {
    "English": {
        "question": "what does the manual say about",
        "retrieval": "coffee machine instructions on",
        "negative": "warranty terms of a different toaster for",
        "reasons": "The passage states the answer plainly and the response keeps to it.",
    },
    "Romanian": {
        "question": "ce spune manualul despre",
        "retrieval": "instrucțiunile aparatului de cafea despre",
        "negative": "garanția unui alt prăjitor de pâine pentru",
        "reasons": "Pasajul spune clar răspunsul, iar răspunsul rămâne la el.",
    },
}


def _language(body: dict[str, Any]) -> str:
    said = "\n".join(str(m.get("content") or "") for m in body.get("messages") or [])
    return (
        "Romanian" if re.search(r"\bin Romanian\b|Întrebări|ce spune manualul", said) else "English"
    )


def _user(body: dict[str, Any]) -> str:
    messages = body.get("messages") or []
    return next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")


class RagOllama(ScriptedOllama):
    """ScriptedOllama that also answers the RAG calls in shape: a proposal, per-row questions made
    from the prompt's variation seed (never two alike), answers taken from the passage, retrieval
    queries unlike the question, and a judge that finds every row fine."""

    async def _chat(self, body: dict[str, Any]) -> tuple[int, str, bytes]:
        fmt = body.get("format")
        title = fmt.get("title") if isinstance(fmt, dict) else None
        if title not in ("RagProposal", "RagAnswer", "RagJudgement", "RagNegativeJudgement"):
            return await super()._chat(body)
        assert isinstance(fmt, dict)
        language = _language(body)
        if title == "RagProposal":
            ro = language == "Romanian"
            reply: dict[str, Any] = {
                "name": "manual-cafea-qa" if ro else "coffee-manual-qa",
                "topics": ["umplere", "curățare", "probleme"] if ro else ["filling", "cleaning"],
                "language": language,
                "size": 100,
                "intro": "Iată întrebări și răspunsuri din manualul tău, pentru un sistem de regăsire."
                if ro
                else "Here are questions and answers from your manual.",
            }
        elif title == "RagAnswer":
            await asyncio.sleep(self.knobs.delay)  # rows take a while, as a real model's do
            reply = _answer(_user(body), set(fmt.get("properties", {})), language)
        else:
            reply = {
                "reasons": PHRASES[language]["reasons"],
                "answerable": True,
                "supported": True,
                "rating": 4,
            }
            if title == "RagNegativeJudgement":
                reply["negative_answered"] = False
        return _reply(body, json.dumps(reply))


def _answer(prompt: str, fields: set[str], language: str) -> dict[str, str]:
    found = re.search(r"<passage>\s*(.*?)\s*</passage>", prompt, re.S)
    seed = re.search(r"Variation seed: (\S+)", prompt)
    assert found and seed, prompt[:300]
    rng = random.Random(seed.group(1))
    vocab, phrase = WORDS[language], PHRASES[language]

    def words(k: int) -> str:
        return " ".join(rng.sample(vocab, k))

    passage = [w for w in found.group(1).split() if not w.startswith("#")]
    out = {
        "question": f"{phrase['question']} {words(7)}?",  # 12 words, different for every seed
        "response": " ".join(passage[:22]),  # from the passage, within 5-40 words
    }
    extra = {
        "positive_retrieval": f"{phrase['retrieval']} {words(5)}",
        "negative_retrieval": f"{phrase['negative']} {words(5)}",
        "positive_reranking": " ".join(passage[3:40]),
        "negative_reranking": f"{phrase['negative']} {words(12)}",
    }
    return out | {k: v for k, v in extra.items() if k in fields}


def _reply(body: dict[str, Any], content: str) -> tuple[int, str, bytes]:
    done = {
        "model": body.get("model", "llama3.1"),
        "created_at": "2024-01-01T00:00:00Z",
        "message": {"role": "assistant", "content": content},
        "done": True,
        "done_reason": "stop",
    }
    if not body.get("stream", True):
        return 200, "application/json", json.dumps(done).encode()
    part = done | {"done": False}
    end = done | {"message": {"role": "assistant", "content": ""}}
    return 200, "application/x-ndjson", f"{json.dumps(part)}\n{json.dumps(end)}\n".encode()


@pytest.fixture(scope="module")
def rag_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    server = RagOllama(Knobs(delay=0.05))
    server.start()
    home = tmp_path_factory.mktemp("browser-rag")  # no users.json: nobody signs in
    app = _make_app(
        home,
        LLM_PROVIDER="ollama",
        OLLAMA_BASE_URL=server.url,
        SAMPLE_SIZE=str(SAMPLE),
        CONCURRENCY="2",
    )
    yield app
    _stop(app, "app-rag.log")
    server.shutdown()


def t(code: str, msgid: str, **values: object) -> str:
    if code != "en":
        assert msgid in i18n.catalogue(code), msgid  # a sentence the app really says
    with i18n.using(code):
        return i18n._(msgid, **values)


def _shot(page: Page, code: str, name: str) -> Path:
    """The conversation as far as the window can show it: the chat scrolls inside its own box, so
    the window is made as tall as the conversation for the screenshot, cut below the newest
    message (Chainlit keeps a window-high space under it)."""
    path = SHOTS / f"rag-{code}-{name}.png"
    size = page.viewport_size or {"width": 1280, "height": 900}
    tall = page.evaluate(
        """() => Math.max(0, ...[...document.querySelectorAll('*')]
            .filter(e => e.scrollHeight > e.clientHeight + 10
                && getComputedStyle(e).overflowY !== 'visible')
            .map(e => e.scrollHeight - e.clientHeight))"""
    )
    page.set_viewport_size({"width": size["width"], "height": min(size["height"] + tall, 6000)})
    page.wait_for_timeout(300)
    box = page.locator(ASSISTANT).last.bounding_box()
    bottom = (box["y"] + box["height"] + 40) if box else size["height"]
    page.screenshot(path=str(path), clip={"x": 0, "y": 0, "width": size["width"], "height": bottom})
    page.set_viewport_size(size)
    return path


def _attach(page: Page, tmp: Path) -> None:
    """The manual through the composer's upload button, as a person picks a file."""
    doc = tmp / "coffee-manual.md"
    doc.write_text(MANUAL, encoding="utf-8")
    assert page.locator("#upload-button").is_visible()  # the paperclip of the composer …
    page.locator("#upload-button-input").set_input_files(str(doc))  # … and the file input it opens
    page.wait_for_selector("text=coffee-manual.md", timeout=QUICK)  # the attachment shows
    page.wait_for_function(  # and its upload finished: the composer can send
        "() => !document.querySelector('#upload-button-loading')", timeout=QUICK
    )


def _table_columns(page: Page) -> list[str]:
    """The column titles of the newest message's table (the sample's Dataframe element), which
    holds every row of the sample."""
    last = page.locator(ASSISTANT).last
    last.locator("table th").first.wait_for(timeout=QUICK)
    assert last.locator("table tbody tr").count() == SAMPLE
    return [h.strip() for h in last.locator("table th").all_inner_texts()]


@pytest.mark.parametrize(("locale", "code"), [("en-US", "en"), ("ro-RO", "ro")])
def test_rag_from_an_attached_manual_in_the_browser(
    rag_app: App, browser: Browser, locale: str, code: str, tmp_path: Path
) -> None:
    ctx = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
    ctx.route(
        "**/*",
        lambda route: (
            route.continue_() if route.request.url.startswith(rag_app.url) else route.abort()
        ),
    )
    page = ctx.new_page()
    try:
        page.goto(rag_app.url)
        # the chat settings come from on_chat_start: the session is live, a message is heard
        page.wait_for_selector("#chat-settings-open-modal", timeout=QUICK)

        # 1-2. the manual attached, then the request
        _attach(page, tmp_path)
        buttons = say(page, REQUESTS[code], QUICK)
        texts = _texts(page)
        with i18n.using(code):  # one passage per section of the manual
            attached = i18n.ngettext(
                "Attached: {n} passage from {files} file; the data will be grounded in it.",
                "Attached: {n} passages from {files} file(s); the data will be grounded in them.",
                SECTIONS,
                files=1,
            )
        assert attached in texts, texts

        # 3. the contract in its RAG shape
        approve = t(code, "Approve contract")
        assert approve in buttons, texts
        assert t(code, "Here is the proposed contract:") in texts
        task = t(code, "task: questions and answers grounded in passages (retrieval / RAG)")
        assert task in texts, texts
        assert t(code, "passages: chunks of your documents, verbatim") in texts
        assert "positive_retrieval" in texts and "negative_retrieval" not in texts
        contract = page.locator(ASSISTANT).last
        assert contract.locator("code:text-is('positive_retrieval')").count() == 1  # not raw `…`
        _shot(page, code, "1-contract")

        # 4. the sample: the judge's checks in words, the rows as a table
        buttons = click(page, approve, QUICK)
        generate = t(code, "Generate full size")
        assert generate in buttons, _texts(page)
        texts = _texts(page)
        checked = t(
            code,
            "the question can be answered from its passage in {yes} of {n}",
            yes=SAMPLE,
            n=SAMPLE,
        )
        assert checked in texts, texts
        columns = _table_columns(page)
        for title in ("passage", "question", "answer"):
            assert t(code, title) in columns, columns
        assert t(code, "hard negative") not in columns
        assert page.locator(f"{ASSISTANT} th:text-is('#')").count() == 0  # not also as Markdown
        assert "|---|" not in texts
        _shot(page, code, "2-sample")

        # 5. "add hard negatives": the diff, then a new sample with the hard-negative column
        buttons = say(page, HARD_NEGATIVES[code], QUICK)
        texts = _texts(page)
        diff = f"~ {t(code, 'hard negatives')}: {t(code, 'no')} → {t(code, 'yes')}"
        assert diff in texts, texts
        if approve in buttons:  # shown as the contract's review first
            buttons = click(page, approve, QUICK)
        assert generate in buttons, _texts(page)
        texts = _texts(page)
        negatives = t(
            code,
            "the hard negative is truly not answered by the passage in {yes} of {n}",
            yes=SAMPLE,
            n=SAMPLE,
        )
        assert negatives in texts, texts
        assert t(code, "hard negative") in _table_columns(page)
        # the used buttons went: only the newest message has them (the "Continue it" offer of
        # the other language's unfinished dataset, shown when this chat opened, stays: not ours)
        offer = t(code, "Continue it")
        with_buttons = [
            m.inner_text()[:80]
            for m in page.locator(f"{ASSISTANT}:has(button[id])").all()
            if offer not in m.locator("button[id]").all_inner_texts()
        ]
        assert len(with_buttons) == 1, with_buttons
        _shot(page, code, "3-hard-negatives")
        if code == "ro":  # no English sentence of the app is left on the page
            for english in (
                "Here is the proposed contract:",
                "Approve it to see a sample",
                "can be answered from its passage",
                "hard negatives:",
                "Attached:",
            ):
                assert english not in texts, english
    except BaseException:
        _shot(page, code, "failed")
        raise
    finally:
        ctx.close()
