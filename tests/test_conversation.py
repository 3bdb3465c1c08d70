"""The whole conversation with a scripted model, read as a specification of the journey."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import datasets

from agent.session import Conversation, open_graph
from agent.tasks.base import quotas
from tests.chat_helpers import say, stage, text

DESCRIPTION = "A dataset covering customer reviews for an e-commerce website."


async def test_description_to_exported_dataset(fake_model, settings_env: Path) -> None:
    async with open_graph() as graph:
        conv = Conversation(graph, "t1")

        # a description the archetypes know (reviews → sentiment) → a contract at once, no question
        ev = await say(conv, DESCRIPTION)
        assert stage(ev) == "contract"
        assert "| negative |" in text(ev) and "33 %" in text(ev)

        # approve → sample of 10 rows with a critique
        ev = await say(conv, {"action": "approve"})
        assert stage(ev) == "sample"
        assert "Critique" in text(ev) and "judge agrees on 100 %" in text(ev)
        first = (await conv.state()).values["sample"]
        assert len(first) == 10
        before = Counter(r["label"] for r in first)["negative"]

        # "make it more negative reviews" → the mix moves toward negative → more negative rows
        ev = await say(conv, "make it more negative reviews")
        assert "~ mix negative: 33 % → 50 %" in text(ev)
        assert stage(ev) == "sample"
        state = (await conv.state()).values
        assert state["spec"]["version"] == 2 and state["spec"]["mix"]["negative"] == 0.5
        after = Counter(r["label"] for r in state["sample"])["negative"]
        assert after > before

        # "generate 50" → full run → review → approve → export
        ev = await say(conv, "generate 50")
        assert stage(ev) == "dataset"
        assert "~ size: 100 → 50" in text(ev)
        ev = await say(conv, {"action": "approve"})
        assert stage(ev) == "publish"  # exported; publishing is offered, never assumed
        ev = await say(conv, "done")
        state = (await conv.state()).values
        assert state["stage"] == "done" and state.get("published") is None

    folder = Path(state["export_dir"])
    ds = datasets.load_dataset(str(folder))["train"]
    assert ds.num_rows == 50
    names = ds.features["label"].names
    assert names == ["positive", "negative", "neutral"]
    counts = Counter(names[i] for i in ds["label"])
    want = quotas(state["spec"]["mix"], 50)
    for label, quota in want.items():
        assert abs(counts[label] - quota) <= 1, (label, counts, want)
    assert (folder / "spec.json").exists() and (folder / "README.md").exists()


async def test_resume_on_a_fresh_graph_after_interruption(fake_model, settings_env: Path) -> None:
    async with open_graph() as graph:
        conv = Conversation(graph, "t2")
        await say(conv, DESCRIPTION + " just go")
        assert (await conv.pending_prompt())["stage"] == "contract"
    # The app restarts: a new graph on the same checkpoint file continues the same thread.
    async with open_graph() as graph:
        conv = Conversation(graph, "t2")
        assert (await conv.pending_prompt())["stage"] == "contract"
        ev = await say(conv, "yes")
        assert stage(ev) == "sample"
        ev = await say(conv, "generate 12")
        ev = await say(conv, {"action": "approve"})
        assert (await conv.state()).values["stage"] == "publish"
        assert (await conv.state()).values["export_dir"]


async def test_a_romanian_speaker_gets_romanian_replies_while_the_data_language_is_separate(
    world, settings_env: Path
) -> None:
    from agent.llm import use_model
    from tests.fakes import ScriptedModel

    def responder(kind: str, messages: list) -> Any:
        if kind == "Clarification":
            return {"user_language": "Romanian", "ready": True, "question": ""}
        if kind == "Proposal":
            assert "(Romanian)" in str(
                messages[0].content
            )  # the prompt asks for the user's language
            return world(kind, messages) | {"intro": "Iată contractul propus. Îl aprobați?"}
        if kind == "Intent":
            return {"kind": "question", "answer": "(structured answer, unused)"}
        if kind == "text":  # the streamed prose answer
            assert "in Romanian" in str(messages[0].content)
            return "Da, textele vor fi în engleză."
        return world(kind, messages)

    with use_model(ScriptedModel(responder=responder)):
        async with open_graph() as graph:
            conv = Conversation(graph, "ro")
            ev = await say(conv, "Vreau un set de date cu recenzii de produse, în engleză.")
            assert "Iată contractul propus. Îl aprobați?" in text(ev)
            assert (await conv.state()).values["spec"]["language"] == "English"
            ev = await say(conv, "Textele vor fi în engleză?")
            assert "Da, textele vor fi în engleză." in text(ev)
            streamed = "".join(e.text for e in ev if e.kind == "token")
            assert streamed == "Da, textele vor fi în engleză."  # token events reach the UI
            assert (await conv.pending_prompt())["stage"] == "contract"


async def test_a_run_with_poor_agreement_pauses_and_continues_on_request(
    world, settings_env: Path
) -> None:
    from agent.llm import use_model
    from tests.fakes import ScriptedModel

    def responder(kind: str, messages: list) -> Any:
        if kind == "Relabel":  # the judge says "neutral" to everything: agreement about a third
            return {"reasoning": "unclear", "label": "neutral"}
        return world(kind, messages)

    with use_model(ScriptedModel(responder=responder)):
        async with open_graph() as graph:
            conv = Conversation(graph, "paused")
            await say(conv, DESCRIPTION + " just go")
            await say(conv, {"action": "approve"})
            ev = await say(conv, "generate 60")
            assert stage(ev) == "paused"
            paused = next(e.text for e in ev if e.data.get("kind") == "paused")
            assert "Paused at" in paused and "agreement" in paused
            run_dir = Path((await conv.state()).values["run_dir"])
            kept = sum(1 for _ in (run_dir / "rows.jsonl").open())
            assert 20 <= kept < 60  # the rule waited for 20 judged rows, then stopped the run

            ev = await say(conv, "continue anyway")
            assert stage(ev) == "dataset"
            ids = [json.loads(line)["row_id"] for line in (run_dir / "rows.jsonl").open()]
            assert sorted(ids) == list(range(60))  # nothing lost, nothing made twice


async def test_free_text_read_as_approval_never_starts_the_full_run_unasked(
    fake_model, world, settings_env: Path
) -> None:
    # words the tables do not know, which a model misreads as an approval
    world.intents["tweak the vibe a little"] = {"kind": "approve"}
    async with open_graph() as graph:
        conv = Conversation(graph, "misread")
        await say(conv, DESCRIPTION + " just go")
        await say(conv, {"action": "approve"})
        ev = await say(conv, "tweak the vibe a little")
        assert "Shall I generate all 100 rows now?" in text(ev) and stage(ev) == "sample"
        assert (await conv.state()).values.get("run_dir") is None
        ev = await say(conv, "yes")
        assert stage(ev) == "dataset"


async def test_real_examples_attached_as_csv_are_scored_against_the_sample(
    fake_model, settings_env: Path
) -> None:
    csv = (Path(__file__).parent / "data" / "real_reviews.csv").read_bytes()
    async with open_graph() as graph:
        conv = Conversation(graph, "real-check")
        early = await conv.real_check(csv)
        assert early.kind == "error" and "contract first" in early.text
        await say(conv, DESCRIPTION + " just go")
        await say(conv, {"action": "approve"})
        event = await conv.real_check(csv)
        assert event.kind == "message", event.text
        assert "accuracy" in event.text.lower() and "cross-validation" in event.text.lower()
        bad = await conv.real_check(b"text,label\nhello,spam\n")
        assert bad.kind == "error" and "Nothing was changed." in bad.text


async def test_an_exported_dataset_is_not_offered_as_unfinished(
    fake_model, settings_env: Path
) -> None:
    from agent.session import unfinished_threads

    async with open_graph() as graph:
        conv = Conversation(graph, "t-exported")
        await say(conv, DESCRIPTION + " just go")
        assert [t for t, _ in await unfinished_threads(graph)] == ["t-exported"]  # at a review
        await say(conv, {"action": "approve"})
        await say(conv, "generate 12")
        ev = await say(conv, {"action": "approve"})
        assert stage(ev) == "publish"  # exported: publishing is optional, the dataset is made
        assert await unfinished_threads(graph) == []
