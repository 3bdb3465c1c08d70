"""The message catalogue: every sentence the code says has a Romanian translation with the same
placeholders; the language follows the setting, then what the user writes, then the browser."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest

from agent import i18n
from agent.i18n import _, ngettext

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import catalogue  # noqa: E402

CHUNKS = (
    "Conversations will be grounded in {n} chunk of your documents.",
    "Conversations will be grounded in {n} chunks of your documents.",
)
PLACEHOLDER = re.compile(r"(?<!\{)\{(\w*)[^{}]*\}")


def _names(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


@pytest.fixture(scope="module")
def said() -> dict[str, object]:
    return {m.id: m for m in catalogue.extract() if m.id}


def test_the_code_says_its_sentences_through_the_catalogue(said: dict[str, object]) -> None:
    # the app's own sentences (contract, buttons, progress, errors) — not an empty extraction
    assert len(said) > 150


def test_every_sentence_has_a_romanian_translation_with_the_same_placeholders(
    said: dict[str, object],
) -> None:
    ro = i18n.catalogue("ro")
    missing = [key for key in said if (key[0] if isinstance(key, tuple) else key) not in ro]
    assert not missing, f"{len(missing)} without Romanian, e.g. {missing[:5]}"
    wrong = []
    for key in said:
        msgid = key[0] if isinstance(key, tuple) else key
        forms = ro[msgid] if isinstance(ro[msgid], tuple) else (ro[msgid],)
        wanted = _names(key[-1] if isinstance(key, tuple) else key) - {"n"}
        for form in forms:
            if _names(form) - {"n"} != wanted:
                wrong.append((msgid, form))
    assert not wrong, wrong[:5]


def test_english_is_the_message_itself_and_fills_placeholders() -> None:
    with i18n.using("en"):
        assert _("Contract v{old} → v{new}:", old=1, new=2) == "Contract v1 → v2:"
        assert (
            ngettext(*CHUNKS, 1) == "Conversations will be grounded in 1 chunk of your documents."
        )
        assert (
            ngettext(*CHUNKS, 20)
            == "Conversations will be grounded in 20 chunks of your documents."
        )


def test_romanian_plural_forms_follow_cldr() -> None:
    with i18n.using("ro"):
        forms = [ngettext(*CHUNKS, n) for n in (1, 3, 20, 101)]
    ro = i18n.catalogue("ro")[CHUNKS[0]]
    assert len(ro) == 3 and len(set(ro)) == 3  # Romanian: three forms
    assert forms == [ro[0].format(n=1), ro[1].format(n=3), ro[2].format(n=20), ro[1].format(n=101)]


def test_an_unknown_sentence_or_language_falls_back_to_english() -> None:
    with i18n.using("ro"):
        assert _("No such sentence {x}", x=1) == "No such sentence 1"
    with i18n.using("fr-FR"):
        assert i18n.current() == "en"


@pytest.mark.parametrize(
    ("setting", "text", "browser", "expected"),
    [
        ("ro", "A dataset of reviews", "en-US", "ro"),  # the setting wins
        ("auto", "Vreau un set de date cu recenzii de produse", "en-US", "ro"),  # then the words
        ("auto", "I need a dataset of product reviews", "ro-RO", "en"),
        ("auto", "", "ro-RO", "ro"),  # then the browser
        (None, "12345", "ro", "ro"),  # words that say nothing keep the browser's
        (None, None, "de-DE", "en"),  # a language the app does not speak: English
    ],
)
def test_pick(setting: str | None, text: str | None, browser: str | None, expected: str) -> None:
    assert i18n.pick(setting=setting, text=text, browser=browser) == expected


async def test_the_language_is_per_task_not_per_process() -> None:
    async def speak(code: str) -> str:
        i18n.set_language(code)
        await asyncio.sleep(0.01)
        return _("Contract v{old} → v{new}:", old=1, new=2)

    en, ro = await asyncio.gather(
        asyncio.create_task(speak("en")), asyncio.create_task(speak("ro"))
    )
    assert en == "Contract v1 → v2:"
    assert ro == i18n.catalogue("ro")["Contract v{old} → v{new}:"].format(old=1, new=2) != en
    with i18n.using("ro"):
        assert await asyncio.to_thread(_, "Contract v{old} → v{new}:", old=1, new=2) == ro


RO_REQUEST = (
    "Vreau un set de date cu recenzii de produse pentru un magazin online, etichetate după "
    "sentiment."
)


async def test_a_romanian_conversation_is_answered_in_romanian(fake_model, settings_env) -> None:
    from agent.session import Conversation, open_graph
    from tests.chat_helpers import say, stage, text

    ro = i18n.catalogue("ro")
    async with open_graph() as graph:
        conv = Conversation(graph, "ro-1")
        ev = await say(conv, RO_REQUEST)
        assert stage(ev) == "contract" and conv.language == "ro"
        assert ro["Here is the proposed contract:"] in text(ev)
        assert "Here is the proposed contract:" not in text(ev)
        ev = await say(conv, "da")  # a yes in Romanian starts the sample
        assert stage(ev) == "sample"
        head = ro["Sample {k} (contract v{version}): {n} rows."].format(k=1, version=1, n=10)
        assert head in text(ev) and "Approve to generate" not in text(ev)
        ev = await say(conv, "generează 12")
        assert stage(ev) == "dataset"
        ev = await say(conv, {"action": "approve"})
        assert stage(ev) == "publish"
        ev = await say(conv, "gata")  # "done", in Romanian
        assert (await conv.state()).values["stage"] == "done"
        assert ro["All done. Your dataset is saved — download it with the link above."] in text(ev)


async def test_the_setting_wins_over_the_language_written_in(fake_model, settings_env) -> None:
    from agent.session import Conversation, open_graph
    from tests.chat_helpers import say, stage, text

    async with open_graph() as graph:
        conv = Conversation(graph, "ro-2")
        conv.language_setting = "en"
        ev = await say(conv, RO_REQUEST)
        assert stage(ev) == "contract" and conv.language == "en"
        assert "Here is the proposed contract:" in text(ev)


def test_data_languages_are_named_in_the_readers_language() -> None:
    with i18n.using("ro"):
        assert i18n.language_name("Romanian") == "română"
        assert i18n.language_name("English") == "engleză"
        assert i18n.language_name("Klingon") == "Klingon"  # no CLDR name: as it was written
    with i18n.using("en"):
        assert i18n.language_name("Romanian") == "Romanian"
