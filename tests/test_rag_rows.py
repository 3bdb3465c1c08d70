"""The RAG row task: every chunk before any twice, verbatim contexts, exactly the columns asked
for, passages written from the description, bad replies refused, the judge's verdicts."""

from __future__ import annotations

import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage
from pydantic import BaseModel

from agent.config import get_settings
from agent.llm import LLMBadOutput
from agent.spec import DatasetSpec, make_spec
from agent.tasks.rag.rows import RagRows
from agent.tasks.rag.schemas import RagJudgement, RagNegativeJudgement, RagPassage
from tests.conftest import VOCAB
from tests.fakes import ScriptedModel

BASE = ("context", "question", "response")
TAIL = ("chunk_id", "source", "topic", "difficulty", "answer_length")


def rag_spec(**rag: Any) -> DatasetSpec:
    return make_spec(
        {
            "task": "rag",
            "description": "Questions about a city's public library.",
            "size": 20,
            "style": {"topics": ["opening hours", "membership", "events", "loans"]},
            "rag": {"source": "documents", **rag},
        }
    )


def make_chunks(k: int) -> list[dict[str, str]]:
    return [
        {
            "id": f"doc.md#{i}",
            "source": "doc.md",
            "text": f"  Passage {i}: the library opens at {8 + i} o'clock.\n",
        }
        for i in range(k)
    ]


def words(key: str, k: int = 12) -> str:
    rng = random.Random(key)
    return " ".join(rng.choice(VOCAB) for _ in range(k))


def seed_of(messages: list[BaseMessage]) -> str:
    m = re.search(r"Variation seed: (\S+?)\.?$", str(messages[-1].content))
    assert m
    return m.group(1)


def answer(schema: type[BaseModel], seed: str, **over: Any) -> dict[str, Any]:
    """A valid reply for `schema`: every field it has, distinct from one another."""
    fields = {
        "question": f"{words('q' + seed, 8)}?",
        "response": words("r" + seed, 15),
        "positive_retrieval": words("p" + seed, 6),
        "negative_retrieval": words("n" + seed, 6),
        "positive_reranking": words("pr" + seed, 20),
        "negative_reranking": words("nr" + seed, 20),
    }
    return {k: v for k, v in {**fields, **over}.items() if k in schema.model_fields}


class FakeLLM:
    """A Caller: structured replies from `reply(role, schema, messages)` (default: valid ones)."""

    def __init__(self, reply: Any = None, verdict: dict[str, Any] | None = None) -> None:
        self.reply = reply
        self.verdict = verdict or {"reasons": "Fine.", "answerable": True, "supported": True}
        self.calls: list[tuple[str, type[BaseModel], list[BaseMessage]]] = []

    async def structured(self, role: str, schema: Any, messages: Any) -> Any:
        self.calls.append((role, schema, list(messages)))
        if self.reply is not None:
            out = self.reply(role, schema, list(messages))
            if isinstance(out, BaseException):
                raise out
            if out is not None:
                return schema.model_validate(out)
        if role == "judge":
            return schema.model_validate({"rating": 4, "negative_answered": False, **self.verdict})
        if schema is RagPassage:
            return RagPassage(text=f"Written passage {seed_of(messages)}: " + words("w", 60))
        return schema.model_validate(answer(schema, seed_of(messages)))

    async def text(self, role: str, messages: Any) -> str:
        raise AssertionError("the RAG task makes structured calls only")


# --- planning ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("k", "n"), [(7, 20), (1, 5), (5, 5), (30, 7), (4, 100)])
def test_every_chunk_is_used_before_any_is_used_twice(k: int, n: int) -> None:
    task = RagRows(rag_spec(), n, seed=3, judge=False, chunks=make_chunks(k))
    plan = [task.plan(i).chunk for i in range(n)]
    counts = Counter(plan)
    assert sorted(counts.values(), reverse=True) == [n // k + (i < n % k) for i in range(min(k, n))]
    for start in range(0, n, k):  # each round of k row ids: k distinct chunks (fewer in the last)
        block = plan[start : start + k]
        assert len(set(block)) == len(block)
    assert len(set(plan[:k])) == min(k, n)  # the first round: all k chunks (n distinct if fewer)


def test_seven_chunks_twenty_rows() -> None:
    task = RagRows(rag_spec(), 20, seed=0, judge=False, chunks=make_chunks(7))
    plan = [task.plan(i).chunk for i in range(20)]
    assert sorted(Counter(plan).values()) == [2, 3, 3, 3, 3, 3, 3]
    assert set(plan[:7]) == set(range(7)) and set(plan[7:14]) == set(range(7))
    assert plan[:7] != plan[7:14] or plan[7:14] != plan[14:]  # rounds are reshuffled


def test_plan_is_deterministic_and_topics_and_lengths_are_exact() -> None:
    spec = rag_spec(answer_length="medium", difficulty="hard")
    task = RagRows(spec, 24, seed=5, judge=False, chunks=make_chunks(5))
    plans = [task.plan(i) for i in range(24)]
    again = RagRows(spec, 24, seed=5, judge=False, chunks=make_chunks(5))
    assert [again.plan(i) for i in reversed(range(24))] == plans[::-1]
    assert Counter(task.quota_key(p) for p in plans) == task.quota_targets()
    assert task.quota_targets() == dict.fromkeys(
        ["opening hours", "membership", "events", "loans"], 6
    )
    for attribute, targets in task.attribute_targets().items():
        assert Counter(task.attributes(p)[attribute] for p in plans) == targets, attribute
    assert Counter(p.words for p in plans) == {(40, 67): 8, (67, 93): 8, (93, 120): 8}
    assert {p.difficulty for p in plans} == {"hard"}
    other = RagRows(spec, 24, seed=6, judge=False, chunks=make_chunks(5))
    assert [other.plan(i) for i in range(24)] != plans


def test_a_grounded_contract_without_chunks_is_refused_in_a_sentence() -> None:
    with pytest.raises(ValueError, match="documents"):
        RagRows(rag_spec(), 10, seed=0, judge=False, chunks=[])
    with pytest.raises(ValueError, match=r"\w+ \w+ \w+"):
        RagRows(rag_spec(), 10, seed=0, judge=False)
    RagRows(rag_spec(source="description"), 10, seed=0, judge=False)  # needs none


def test_meta_changes_with_other_chunks() -> None:
    spec = rag_spec()
    one = RagRows(spec, 10, seed=0, judge=False, chunks=make_chunks(3)).meta()
    same = RagRows(spec, 10, seed=0, judge=False, chunks=make_chunks(3)).meta()
    other = RagRows(spec, 10, seed=0, judge=False, chunks=make_chunks(4)).meta()
    assert one == same and one["docs"] != other["docs"]
    assert one["seed"] == 0 and one["fingerprint"] == other["fingerprint"]


# --- drafting ------------------------------------------------------------------------------------


async def test_context_is_the_chunk_verbatim_with_its_provenance() -> None:
    chunks = make_chunks(3)
    task = RagRows(rag_spec(retrieval=False), 6, seed=1, judge=False, chunks=chunks)
    llm = FakeLLM()
    for i in range(6):
        plan = task.plan(i)
        row = await task.draft(plan, 0, llm)
        assert row is not None
        assert plan.chunk is not None
        chunk = chunks[plan.chunk]
        assert row["context"] == chunk["text"]  # not even stripped
        assert (row["chunk_id"], row["source"]) == (chunk["id"], chunk["source"])
        assert chunk["text"] in str(llm.calls[-1][2][-1].content)
        assert task.dedup_text(row) == row["question"]
    assert len(llm.calls) == 6 and {c[0] for c in llm.calls} == {"generate"}


@pytest.mark.parametrize(
    ("rag", "extra"),
    [
        ({"retrieval": False}, ()),
        ({"retrieval": True}, ("positive_retrieval",)),
        (
            {"retrieval": False, "hard_negatives": True},
            ("positive_retrieval", "negative_retrieval"),
        ),
        ({"retrieval": False, "reranking": True}, ("positive_reranking", "negative_reranking")),
        (
            {"hard_negatives": True, "reranking": True},
            (
                "positive_retrieval",
                "negative_retrieval",
                "positive_reranking",
                "negative_reranking",
            ),
        ),
    ],
)
async def test_the_columns_are_exactly_those_asked_for(
    rag: dict[str, Any], extra: tuple[str, ...]
) -> None:
    task = RagRows(rag_spec(**rag), 4, seed=0, judge=False, chunks=make_chunks(2))
    llm = FakeLLM()
    row = await task.draft(task.plan(0), 0, llm)
    assert row is not None
    assert tuple(row) == (*BASE, *extra, *TAIL)
    schema = llm.calls[0][1]
    assert tuple(schema.model_fields) == ("question", "response", *extra)  # one call, these fields
    prompt = str(llm.calls[0][2][-1].content)
    for name in ("positive_retrieval", "negative_retrieval", "positive_reranking"):
        assert (f"- {name}:" in prompt) == (name in extra)
    again = RagRows(rag_spec(**rag), 9, seed=2, judge=False, chunks=make_chunks(2))
    assert again._schema is task._schema  # one class per combination, not per task or row


async def test_without_documents_the_model_writes_each_passage() -> None:
    spec = rag_spec(source="description", reranking=True)
    task = RagRows(spec, 4, seed=0, judge=False, chunks=make_chunks(2))  # chunks are ignored
    llm = FakeLLM()
    row = await task.draft(task.plan(3), 1, llm)
    assert row is not None
    assert llm.calls[0][1] is RagPassage
    assert row["context"].startswith("Written passage 0-3-1:")
    assert (row["chunk_id"], row["source"]) == ("gen-3", "generated")
    passage_prompt = llm.calls[0][2]
    assert "English" in str(passage_prompt[0].content)
    assert task.plan(3).topic in str(passage_prompt[-1].content)
    assert row["context"] in str(llm.calls[1][2][-1].content)
    assert task.plan(3).chunk is None
    assert task.meta()["docs"] == RagRows(spec, 4, seed=0, judge=False).meta()["docs"]


async def test_a_too_short_written_passage_is_refused() -> None:
    task = RagRows(rag_spec(source="description"), 4, seed=0, judge=False)

    def short(role: str, schema: Any, messages: Any) -> Any:
        return {"text": "Too short."} if schema is RagPassage else None

    assert await task.draft(task.plan(0), 0, FakeLLM(short)) is None


def _bad(**over: Any) -> Any:
    def reply(role: str, schema: Any, messages: Any) -> Any:
        return answer(schema, seed_of(messages), **over)

    return reply


@pytest.mark.parametrize(
    "reply",
    [
        _bad(question=""),
        _bad(response="   "),
        _bad(question="Why?"),
        _bad(response="no"),
        _bad(response=words("long", 200)),  # short band: at most 80 words
        _bad(positive_retrieval="  "),
        _bad(positive_retrieval="SAME question"),
        _bad(negative_retrieval="A different query here"),
        _bad(negative_reranking="  "),
        _bad(positive_reranking="alike alike alike alike alike alike alike alike"),
        _bad(negative_reranking="  Passage 0: the library opens at 8 o'clock."),
        _bad(response="<think>hmm</think>"),
        # a small model copying our instructions as its answer (seen on the built-in model)
        _bad(
            question="A question a real user would ask that this passage alone answers; medium: "
            "worded differently from the passage"
        ),
        lambda role, schema, messages: LLMBadOutput("no"),
    ],
)
async def test_unusable_replies_give_none(reply: Any) -> None:
    spec = rag_spec(hard_negatives=True, reranking=True)
    task = RagRows(spec, 1, seed=0, judge=False, chunks=make_chunks(1))

    def patched(role: str, schema: Any, messages: Any) -> Any:
        out = reply(role, schema, messages)
        if isinstance(out, dict):
            if out.get("positive_retrieval") == "SAME question":
                out["positive_retrieval"] = out["question"].upper()
            if out.get("negative_retrieval") == "A different query here":
                out["negative_retrieval"] = out["positive_retrieval"] + " ."
            if out.get("positive_reranking", "").startswith("alike"):
                out["negative_reranking"] = out["positive_reranking"]
        return out

    assert await task.draft(task.plan(0), 0, FakeLLM(patched)) is None
    assert await task.draft(task.plan(0), 0, FakeLLM()) is not None  # the valid reply passes


async def test_reasoning_inside_the_fields_is_stripped() -> None:
    task = RagRows(rag_spec(retrieval=False), 1, seed=0, judge=False, chunks=make_chunks(1))

    def reply(role: str, schema: Any, messages: Any) -> Any:
        return answer(schema, "x", response="<think>let me see</think>" + words("r", 10))

    row = await task.draft(task.plan(0), 0, FakeLLM(reply))
    assert row is not None and row["response"] == words("r", 10)


# --- review --------------------------------------------------------------------------------------


async def test_the_judge_fields_are_set_and_the_negative_is_checked() -> None:
    task = RagRows(rag_spec(hard_negatives=True), 2, seed=0, judge=True, chunks=make_chunks(2))
    llm = FakeLLM(
        verdict={"reasons": "<think>x</think>Good.", "answerable": True, "supported": False}
    )
    row = await task.draft(task.plan(0), 0, llm)
    assert row is not None
    row = await task.review(row, task.plan(0), llm)
    role, schema, msgs = llm.calls[-1]
    assert role == "judge" and schema is RagNegativeJudgement
    assert row["negative_retrieval"] in str(msgs[-1].content)
    assert row["context"] in str(msgs[-1].content)
    assert (row["answerable"], row["supported"], row["negative_unanswered"]) == (True, False, True)
    assert (row["rating"], row["judge_reasons"]) == (4, "Good.")
    assert next(iter(RagNegativeJudgement.model_fields)) == "reasons"  # reasons first


async def test_without_a_negative_the_judge_is_not_asked_about_one() -> None:
    task = RagRows(rag_spec(), 2, seed=0, judge=True, chunks=make_chunks(2))
    llm = FakeLLM()
    row = await task.draft(task.plan(1), 0, llm)
    assert row is not None
    row = await task.review(row, task.plan(1), llm)
    assert llm.calls[-1][1] is RagJudgement and "negative" not in str(llm.calls[-1][2][0].content)
    assert row["negative_unanswered"] is None and row["answerable"] is True


async def test_a_failed_judge_leaves_the_row_usable_and_unjudged() -> None:
    task = RagRows(rag_spec(hard_negatives=True), 2, seed=0, judge=True, chunks=make_chunks(2))

    def reply(role: str, schema: Any, messages: Any) -> Any:
        return LLMBadOutput("bad") if role == "judge" else None

    llm = FakeLLM(reply)
    row = await task.draft(task.plan(0), 0, llm)
    assert row is not None
    before = dict(row)
    assert await task.review(row, task.plan(0), llm) == before
    off = RagRows(rag_spec(), 2, seed=0, judge=False, chunks=make_chunks(2))
    calls = len(llm.calls)
    assert await off.review(dict(before), off.plan(0), llm) == before and len(llm.calls) == calls


# --- through the engine --------------------------------------------------------------------------


async def test_run_generation_makes_n_rows_with_unique_questions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent.tools.generate import read_rows, run_generation

    monkeypatch.setenv("LLM_RETRIES", "1")
    get_settings.cache_clear()
    chunks = make_chunks(5)

    def respond(kind: str, messages: list[BaseMessage]) -> Any:
        if kind == "text":
            return "sorry, no"
        seed = seed_of(messages)
        if seed.endswith("-4-0"):  # row 4's first reply is unusable: the engine retries it
            return {"question": "", "response": ""}
        return {
            "question": f"{words('q' + seed, 10)}?",
            "response": words("r" + seed, 15),
            "positive_retrieval": words("p" + seed, 6),
        }

    model = ScriptedModel(responder=respond)
    spec = rag_spec()
    result = await run_generation(
        spec, 12, tmp_path / "run", generator=model, judge=None, chunks=chunks
    )
    assert result.complete and result.rows == 12
    rows = list(read_rows(tmp_path / "run"))
    assert sorted(r["row_id"] for r in rows) == list(range(12))
    assert len({r["question"] for r in rows}) == 12
    assert sorted(Counter(r["chunk_id"] for r in rows).values()) == [2, 2, 2, 3, 3]
    assert {r["context"] for r in rows} == {c["text"] for c in chunks}
    assert Counter(r["topic"] for r in rows) == {
        "opening hours": 3,
        "membership": 3,
        "events": 3,
        "loans": 3,
    }
    assert all(set(r) >= {*BASE, "positive_retrieval", *TAIL} for r in rows)


async def test_the_prompt_carries_the_language_difficulty_topic_and_word_band() -> None:
    spec = make_spec(
        {
            "task": "rag",
            "description": "Întrebări despre biblioteca orașului.",
            "language": "Romanian",
            "style": {"topics": ["program"]},
            "rag": {"source": "documents", "difficulty": "hard", "answer_length": "medium"},
        }
    )
    task = RagRows(spec, 3, seed=0, judge=False, chunks=make_chunks(3))
    llm = FakeLLM()
    plan = task.plan(2)
    assert await task.draft(plan, 0, llm) is not None
    system, user = (str(m.content) for m in llm.calls[0][2])
    assert "in Romanian" in system and spec.description in system
    assert "hard: it needs reasoning" in user and "program" in user
    assert f"{plan.words[0]}-{plan.words[1]} words" in user
