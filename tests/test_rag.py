"""Retrieval (RAG) data through the whole graph with a scripted model: documents → contract →
sample → "add hard negatives" → full run → export, and what the chat reads in words."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import datasets
import pytest
from langchain_core.messages import BaseMessage

from agent.graph.nodes import stated_choices
from agent.graph.replies import read_reply
from agent.llm import use_model
from agent.session import Conversation, open_graph
from agent.spec import make_spec
from tests.chat_helpers import say, stage, text
from tests.conftest import VOCAB, as_choice
from tests.fakes import ScriptedModel

REQUEST = "Questions and answers from my documents for a retrieval system, 12 rows"

HANDBOOK = """# Leave

Every employee has 21 days of paid leave a year. Unused days carry over to the first quarter of
the next year and are lost after March 31. Leave is requested in the HR portal at least five
working days ahead, and the team lead approves it within two working days.

# Pay

Salaries are paid on the 10th of each month by bank transfer. When the 10th falls on a weekend
or a public holiday, pay arrives on the working day before. Overtime is paid at 175 % of the
hourly rate and must be approved in writing by the department head before it is worked.

# Remote work

Employees may work remotely up to three days a week after their probation period. Remote days
are agreed with the team lead in the planning tool by Friday for the next week. Equipment for
home offices is lent by the IT desk against a signed hand-over form. Internet costs are not
refunded, but a monthly allowance of 100 lei covers electricity and heating on remote days.

# Sick leave

An employee who is ill tells the team lead before 10 in the morning and sends the doctor's
certificate to HR within three working days. The first five days are paid by the company at 75 %
of the salary; from the sixth day the health insurance fund pays, at the rate the law sets.
Sick days never reduce the 21 days of paid leave, and a certificate that arrives late delays pay.

# Training

Each employee has a training budget of 2,000 lei a year for courses, books and conferences that
fit their role. The request goes to the team lead with the course description and its price; HR
books and pays the course directly. An employee who leaves within a year of a course that cost
more than 1,000 lei pays back half of its price, as the training agreement says.

# Travel

Business trips are approved by the department head at least a week ahead. Train tickets are
second class for trips under six hours; flights are economy. The daily allowance is 50 lei in
Romania and 35 euro abroad, paid with the next salary after the expense report is filed in the
portal with every receipt attached. Taxis are refunded only between ten at night and six in the
morning, or when the trip carries equipment.
"""


class HandbookWorld:
    """Scripted answers: a proposal, questions made from the passage's own words, a judge."""

    def __init__(self) -> None:
        self.intents: dict[str, Any] = {}
        self.answer_fields: list[tuple[str, ...]] = []
        self.contexts: list[str] = []

    def __call__(self, kind: str, messages: list[BaseMessage]) -> Any:
        last = str(messages[-1].content)
        if kind == "Clarification":
            raise AssertionError("a RAG request is not asked a clarifying question")
        if kind == "RagProposal":
            return {
                "name": "handbook-qa",
                "topics": ["leave", "pay", "remote work"],
                "language": "English",
                "size": 100,
                "intro": "",
            }
        if kind == "ReplyChoice":
            reply = re.search(r"<reply>\s*(.*?)\s*</reply>", last, re.S)
            return as_choice(self.intents.get(reply.group(1) if reply else "", {"op": "question"}))
        if kind.startswith("RagAnswer"):
            passage = re.search(r"<passage>\s*(.*?)\s*</passage>", last, re.S).group(1)  # type: ignore[union-attr]
            seed = re.search(r"Variation seed: (\S+)", last).group(1)  # type: ignore[union-attr]
            self.contexts.append(passage)
            rng = random.Random(seed)
            words = passage.split()
            out = {
                "question": "what does the handbook say about "
                + " ".join(rng.choice(VOCAB) for _ in range(6))
                + "?",
                "response": " ".join(words[:14]),
            }
            fields = tuple(
                f
                for f in (
                    "positive_retrieval",
                    "negative_retrieval",
                    "positive_reranking",
                    "negative_reranking",
                )
                if f in last or f.replace("_", " ") in last.lower()
            )
            self.answer_fields.append(fields)
            out["positive_retrieval"] = "handbook rule " + " ".join(
                rng.choice(VOCAB) for _ in range(5)
            )
            out["negative_retrieval"] = "pension fund " + " ".join(
                rng.choice(VOCAB) for _ in range(5)
            )
            out["positive_reranking"] = "In other words: " + " ".join(words[:30])
            out["negative_reranking"] = "A similar rule of another firm " + " ".join(
                rng.choice(VOCAB) for _ in range(12)
            )
            return out
        if kind == "RagPassage":
            seed = re.search(r"Variation seed: (\S+)", last).group(1)  # type: ignore[union-attr]
            rng = random.Random(seed)
            return {"text": "Ghidul magazinului: " + " ".join(rng.choice(VOCAB) for _ in range(90))}
        if kind == "RagJudgement":
            return {"reasons": "fine", "answerable": True, "supported": True, "rating": 4}
        if kind == "RagNegativeJudgement":
            return {
                "reasons": "fine",
                "answerable": True,
                "supported": True,
                "negative_answered": False,
                "rating": 4,
            }
        raise AssertionError(f"unexpected call {kind}")


@pytest.fixture
def handbook(monkeypatch: pytest.MonkeyPatch) -> Any:
    from agent.config import get_settings

    monkeypatch.setenv("SAMPLE_SIZE", "4")
    get_settings.cache_clear()
    world = HandbookWorld()
    with use_model(ScriptedModel(responder=world)):
        yield world


def test_a_rag_request_is_recognised_in_english_and_romanian() -> None:
    from langchain_core.messages import HumanMessage

    def task(said: str) -> str | None:
        return stated_choices({"messages": [HumanMessage(content=said)]}).get("task")  # type: ignore[typeddict-item]

    assert task(REQUEST) == "rag"
    assert task("Pairs with hard negatives to train an embedder on our wiki") == "rag"
    assert task("Întrebări și răspunsuri din documentele mele pentru un sistem RAG") == "rag"
    assert task("Date pentru un motor de căutare peste manualele noastre") == "rag"
    # questions answered in conversations are chat data, not retrieval pairs
    assert task("Conversations where a bank assistant answers questions and answers") == "chat"
    assert task("Classify customer reviews as positive or negative") == "textcat"


@pytest.mark.parametrize(
    ("reply", "ops"),
    [
        ("add hard negatives", [("set_hard_negatives", "yes")]),
        ("harder questions", [("set_difficulty", "harder")]),
        ("shorter answers", [("set_length", "short")]),
        (
            "no hard negatives, add reranking",
            [("set_hard_negatives", "no"), ("set_reranking", "yes")],
        ),
        ("adaugă negative dificile", [("set_hard_negatives", "yes")]),
        ("întrebări mai grele, te rog", [("set_difficulty", "harder")]),
        ("răspunsuri mai scurte", [("set_length", "short")]),
        ("fără reranking", [("set_reranking", "no")]),
    ],
)
def test_rag_refinements_are_read_as_typed_edits(reply: str, ops: list[tuple[str, str]]) -> None:
    spec = make_spec(
        {"task": "rag", "description": "x", "rag": {"answer_length": "medium", "reranking": True}}
    )
    r = read_reply(reply, spec, "sample")
    assert r is not None and r.kind == "edit"
    assert [(e.op, e.value) for e in r.edits] == ops
    assert r.leftover == ""


async def test_rag_from_documents_to_export(handbook: HandbookWorld, settings_env: Path) -> None:
    async with open_graph() as graph:
        conv = Conversation(graph, "handbook")
        added, problems = await conv.attach([("handbook.md", HANDBOOK.encode())])
        assert added == 6 and problems == []  # a passage per Markdown section
        ev = await say(conv, REQUEST)
        assert stage(ev) == "contract"
        spec = (await conv.state()).values["spec"]
        assert spec["task"] == "rag" and spec["size"] == 12
        assert spec["rag"]["source"] == "documents" and spec["rag"]["hard_negatives"] is False
        shown = text(ev)
        assert "retrieval / RAG" in shown and "`positive_retrieval`" in shown
        assert "`negative_retrieval`" not in shown
        assert "chunks of your documents" in shown or "chunk of your documents" in shown

        ev = await say(conv, {"action": "approve"})
        assert stage(ev) == "sample"
        sample = (await conv.state()).values["sample"]
        assert len(sample) == 4
        chunks = {c.strip() for c in HANDBOOK.split("\n\n")}
        for row in sample:
            # the passage is a section of the document, verbatim (its title without the marks)
            assert row["context"] in " ".join(HANDBOOK.split())
            assert "#" not in row["context"]
            assert row["source"] == "handbook.md" and row["chunk_id"]
            assert row["answerable"] is True and row["supported"] is True
            assert "negative_retrieval" not in row
        said = text(ev)
        assert "can be answered from its passage in 4 of 4" in said
        assert "| passage | question | answer | second model |" in said
        assert chunks  # the document had paragraphs

        # the refinement is read without a model, shown as a diff, and makes a new sample
        ev = await say(conv, "add hard negatives")
        said = text(ev)
        assert "~ hard negatives: no → yes" in said
        assert stage(ev) in ("contract", "sample")
        if stage(ev) == "contract":
            ev = await say(conv, {"action": "approve"})
        assert stage(ev) == "sample"
        sample = (await conv.state()).values["sample"]
        assert all(r["negative_retrieval"] and r["negative_unanswered"] is True for r in sample)
        assert "the hard negative is truly not answered by the passage in 4 of 4" in text(ev)

        ev = await say(conv, {"action": "approve"})
        assert stage(ev) == "dataset"
        ev = await say(conv, {"action": "approve"})
        assert stage(ev) == "publish"
        folder = Path((await conv.state()).values["export_dir"])

    ds = datasets.load_dataset(str(folder))["train"]
    assert ds.num_rows == 12
    assert ds.column_names[:5] == [
        "context",
        "question",
        "response",
        "positive_retrieval",
        "negative_retrieval",
    ]
    assert {"chunk_id", "source"} <= set(ds.column_names)
    assert len(set(ds["question"])) == 12  # questions are not repeated
    # every chunk is used before any is used twice
    counts: dict[str, int] = {}
    for cid in ds["chunk_id"]:
        counts[cid] = counts.get(cid, 0) + 1
    assert max(counts.values()) - min(counts.values()) <= 1
    card = (folder / "README.md").read_text()
    assert "question-answering" in card and "text-retrieval" in card


async def test_a_romanian_request_without_documents_has_the_model_write_the_passages(
    handbook: HandbookWorld, settings_env: Path
) -> None:
    async with open_graph() as graph:
        conv = Conversation(graph, "fara-documente")
        ev = await say(
            conv,
            "Întrebări și răspunsuri pentru un sistem de regăsire peste paginile de ajutor ale "
            "unui magazin online, cu negative dificile.",
        )
        assert stage(ev) == "contract"
        spec = (await conv.state()).values["spec"]
        assert spec["task"] == "rag" and spec["rag"]["source"] == "description"
        assert spec["rag"]["hard_negatives"] is True  # „cu negative dificile”, read by the tables
        shown = text(ev)
        assert "pasaje: scrise de model după descrierea ta" in shown
        assert "negative dificile (o căutare apropiată la care pasajul nu răspunde): da" in shown
        ev = await say(conv, {"action": "approve"})
        assert stage(ev) == "sample"
        sample = (await conv.state()).values["sample"]
        assert all(r["chunk_id"].startswith("gen-") and r["source"] == "generated" for r in sample)
        assert all(r["context"].startswith("Ghidul magazinului:") for r in sample)
        assert "Un al doilea model a verificat fiecare rând" in text(ev)


async def test_an_empty_sample_says_why_and_stays_at_the_contract(
    handbook: HandbookWorld, settings_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent.config import get_settings

    monkeypatch.setenv("FAILURE_BUDGET", "0")  # the smallest budget: 20 attempts
    get_settings.cache_clear()
    real = handbook.__call__

    def unusable(kind: str, messages: list[BaseMessage]) -> Any:
        out = real(kind, messages)
        return out | {"question": ""} if kind.startswith("RagAnswer") else out

    with use_model(ScriptedModel(responder=unusable)):
        async with open_graph() as graph:
            conv = Conversation(graph, "empty")
            await conv.attach([("handbook.md", HANDBOOK.encode())])
            ev = await say(conv, REQUEST)
            ev = await say(conv, {"action": "approve"})
            assert stage(ev) == "contract"
            said = text(ev)
            assert "The sample came out empty:" in said
            assert "The contract is unchanged (v1)" in said
            assert (await conv.state()).values["spec"]["version"] == 1
