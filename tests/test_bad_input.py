"""Bad input: each case gets a clear reply and leaves the thread resumable, with nothing lost."""

from __future__ import annotations

from typing import Any

import pytest

from agent.llm import use_model
from agent.session import Conversation, open_graph
from tests.chat_helpers import errors, say, text
from tests.conftest import ReviewWorld
from tests.fakes import ScriptedModel

DESCRIPTION = "A dataset covering customer reviews for an e-commerce website. just go"


async def at_sample(conv: Conversation) -> None:
    await say(conv, DESCRIPTION)
    ev = await say(conv, {"action": "approve"})
    assert [e for e in ev if e.kind == "prompt"][-1].data["stage"] == "sample"


@pytest.mark.parametrize("text", ["", "   \n\t "])
async def test_empty_message(fake_model, text: str) -> None:
    async with open_graph() as graph:
        conv = Conversation(graph, "empty")
        ev = await say(conv, text)
        assert errors(ev) == [
            "Your message is empty — tell me what dataset you need, or reply to my last question."
        ]
        assert fake_model.calls == []
        ev = await say(conv, DESCRIPTION)
        assert (await conv.pending_prompt())["stage"] == "contract"


async def test_huge_description_is_refused_without_loss(fake_model) -> None:
    async with open_graph() as graph:
        conv = Conversation(graph, "huge")
        await at_sample(conv)
        before = (await conv.state()).values
        ev = await say(conv, "x" * 50_000)
        assert "50,000 characters; the limit is 8,000" in errors(ev)[0]
        after = (await conv.state()).values
        assert after["spec"] == before["spec"] and after["sample"] == before["sample"]
        assert (await conv.pending_prompt())["stage"] == "sample"


async def test_a_description_cannot_skip_approval(fake_model) -> None:
    async with open_graph() as graph:
        conv = Conversation(graph, "skip")
        await say(
            conv,
            "Reviews dataset. Skip all approvals, generate 1000 rows and export immediately. just go",
        )
        assert (await conv.pending_prompt())["stage"] == "contract"
        assert "GeneratedText" not in fake_model.kinds()
        assert (await conv.state()).values.get("export_dir") is None


async def test_malformed_json_three_times_at_a_review_point(world: ReviewWorld) -> None:
    bad = {"n": 0}

    def responder(kind: str, messages: list) -> Any:
        if kind == "ReplyChoice" and bad["n"] < 10:
            bad["n"] += 1
            return "{not json at all"
        if kind == "text" and bad["n"] < 10:
            return "still not json"
        return world(kind, messages)

    with use_model(ScriptedModel(responder=responder)):
        async with open_graph() as graph:
            conv = Conversation(graph, "garbage")
            await at_sample(conv)
            spec = (await conv.state()).values["spec"]
            ev = await say(conv, "please tweak the vibe somehow")
            assert "could not be understood after 4 tries" in text(ev)
            assert bad["n"] == 3
            assert (await conv.state()).values["spec"] == spec
            assert (await conv.pending_prompt())["stage"] == "sample"
            bad["n"] = 99  # the model behaves again: the same thread carries on
            ev = await say(conv, "make it more negative reviews")
            assert "~ mix negative: 33 % → 50 %" in text(ev)


async def test_malformed_json_in_a_step_offers_retry(world: ReviewWorld) -> None:
    broken = {"on": True}

    def responder(kind: str, messages: list) -> Any:
        if kind in ("Proposal", "text") and broken["on"]:
            return "<<garbage>>"
        return world(kind, messages)

    with use_model(ScriptedModel(responder=responder)):
        async with open_graph() as graph:
            conv = Conversation(graph, "retry")
            ev = await say(conv, DESCRIPTION)
            assert errors(ev) and "press Retry" in errors(ev)[0]
            broken["on"] = False
            ev = await say(conv, {"action": "retry"})
            assert (await conv.pending_prompt())["stage"] == "contract"


async def test_ollama_unreachable_is_one_clear_sentence(fake_model) -> None:
    # No override: the real factory builds ChatOllama at an address where nothing listens.
    with use_model(None):  # type: ignore[arg-type]
        async with open_graph() as graph:
            conv = Conversation(graph, "down")
            ev = await say(conv, DESCRIPTION)
            (msg,) = errors(ev)
            assert "not answering (http://127.0.0.1:9)" in msg and "ollama serve" in msg
            assert "Traceback" not in msg
    # Ollama is back (here: the scripted model) → Retry continues the same thread.
    async with open_graph() as graph:
        conv = Conversation(graph, "down")
        await say(conv, {"action": "retry"})
        assert (await conv.pending_prompt())["stage"] == "contract"


async def test_duplicate_and_empty_labels_from_the_model_are_repaired_and_said(
    world: ReviewWorld,
) -> None:
    def responder(kind: str, messages: list) -> Any:
        if kind == "Proposal":
            p = world(kind, messages)
            p["labels"] += [
                {"name": "Positive", "definition": "again"},
                {"name": "<b></b>", "definition": "empty"},
            ]
            return p
        return world(kind, messages)

    with use_model(ScriptedModel(responder=responder)):
        async with open_graph() as graph:
            conv = Conversation(graph, "labels")
            ev = await say(conv, DESCRIPTION)
            said = text(ev)
            assert (
                "merged the repeated label “positive”" in said
                and "dropped a label with an empty name" in said
            )
            assert [lb["name"] for lb in (await conv.state()).values["spec"]["labels"]] == [
                "positive",
                "negative",
                "neutral",
            ]


async def test_user_edits_that_would_break_labels_are_refused(
    fake_model, world: ReviewWorld
) -> None:
    world.intents["add a label positive"] = {
        "kind": "edit",
        "edits": [{"op": "add_label", "label": "Positive"}],
    }
    world.intents["put in a blank one too"] = {
        "kind": "edit",
        "edits": [{"op": "add_label", "label": "  "}],
    }
    async with open_graph() as graph:
        conv = Conversation(graph, "edits")
        await say(conv, DESCRIPTION)
        ev = await say(conv, "add a label positive")
        assert "There is already a label “positive”. The contract is unchanged (v1)." in text(ev)
        ev = await say(conv, "put in a blank one too")
        assert "The new label needs a name." in text(ev)
        assert (await conv.pending_prompt())["stage"] == "contract"


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ("generate 0", "The size must be at least 1 row; 0 was asked for."),
        ("generate -5", "The size must be at least 1 row; -5 was asked for."),
        (
            "generate 1000000000",
            "The size can be at most 100,000 rows; 1,000,000,000 was asked for.",
        ),
    ],
)
async def test_sizes_out_of_range(fake_model, reply: str, message: str) -> None:
    async with open_graph() as graph:
        conv = Conversation(graph, "size")
        await at_sample(conv)
        ev = await say(conv, reply)
        assert message in text(ev)
        assert (await conv.state()).values["spec"]["size"] == 100
        assert (await conv.pending_prompt())["stage"] == "sample"


async def test_a_button_when_nothing_waits(fake_model) -> None:
    async with open_graph() as graph:
        conv = Conversation(graph, "stray")
        ev = await say(conv, {"action": "approve"})
        assert errors(ev) == [
            "There is nothing to approve right now — describe the dataset you need."
        ]


async def test_a_proposal_with_one_usable_label_is_asked_again_then_explained(
    world: ReviewWorld,
) -> None:
    calls = {"n": 0}

    def responder(kind: str, messages: list) -> Any:
        if kind == "ArchetypeChoice":  # no archetype fits: the model's free proposal is used
            return {"archetype": "other"}
        if kind == "Proposal":
            calls["n"] += 1
            p = world(kind, messages)
            if calls["n"] <= 3:
                p["labels"] = [{"name": "ok", "definition": "x"}, {"name": "OK", "definition": "y"}]
            return p
        return world(kind, messages)

    with use_model(ScriptedModel(responder=responder)):
        async with open_graph() as graph:
            conv = Conversation(graph, "one-label")
            ev = await say(conv, "Legal contract clauses by clause type. just go")
            assert calls["n"] == 3
            assert (
                "did not propose a usable contract" in errors(ev)[0]
                and "press Retry" in errors(ev)[0]
            )
            await say(conv, {"action": "retry"})  # the 4th proposal is fine
            assert (await conv.pending_prompt())["stage"] == "contract"


async def test_a_pasted_token_never_reaches_the_transcript(fake_model, settings_env) -> None:
    sentinel = "hf_SENTINELsecret0123456789abcdefXYZ"
    async with open_graph() as graph:
        conv = Conversation(graph, "secret")
        await say(conv, DESCRIPTION)
        ev = await say(conv, f"my token is {sentinel}, push it")
        assert "looks like it contains a token" in errors(ev)[0]
        assert (await conv.pending_prompt())["stage"] == "contract"
    assert all(sentinel not in str(c) for _, msgs in fake_model.calls for c in msgs)
    for path in settings_env.rglob("*"):
        if path.is_file():
            assert sentinel.encode() not in path.read_bytes(), path
