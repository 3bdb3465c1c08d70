"""Retrieval (RAG) rows as a row task for the generation engine.

Each row is planned from its id: a topic (the quota), the difficulty and a sub-band of the answer
length — each with exact equal shares — and, when grounded, a document chunk. Chunks are dealt in
rounds: each run of `len(chunks)` consecutive row ids uses every chunk once (in a seeded order
that changes every round), so every chunk is used before any is used twice and the counts differ
by at most one. Without documents the model first writes the passage from the description.

One structured call then writes the question, the response and whatever retrieval / reranking
fields the contract asks for (the schema holds those fields only). A judge checks (reasons first)
that the question is answerable from the passage, the response supported by it and the hard
negative not answered by it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from agent import prompts
from agent.i18n import _
from agent.llm import LLMBadOutput, as_messages
from agent.reasoning import strip_reasoning
from agent.spec import LENGTH_BANDS, DatasetSpec
from agent.tasks.base import (
    DEFAULT_TOPICS,
    Caller,
    Permutation,
    Spread,
    even,
    length_bands,
    run_meta,
)
from agent.tasks.rag.schemas import (
    RAG_OPTIONAL_FIELDS,
    RagAnswer,
    RagJudgement,
    RagNegativeJudgement,
    RagPassage,
    rag_answer_schema,
)

PASSAGE_WORDS: dict[str, tuple[int, int]] = {
    "short": (80, 160),
    "medium": (120, 250),
    "long": (250, 450),
}
"""How long a passage written from the description is, by the contract's answer length."""
CONTEXT_CHARS = 8_000
"""At most this much of a passage goes into a prompt (the row keeps the whole passage)."""
OPTIONAL = ("positive_retrieval", "negative_retrieval", "positive_reranking", "negative_reranking")


@dataclass(frozen=True)
class RagPlan:
    row_id: int
    topic: str
    difficulty: str
    answer_length: str
    words: tuple[int, int]
    chunk: int | None


def word_count(text: str) -> int:
    """Words in `text`; for scripts written without spaces (Chinese, Japanese, Thai…), about two
    characters a word."""
    words = len(text.split())
    return words if len(text) <= 12 * max(words, 1) else len(text) // 2


# what the prompts and field descriptions say: a small model sometimes copies them as its answer
_ECHO = 6


def _shingles(text: str) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.casefold())
    return {tuple(words[i : i + _ECHO]) for i in range(len(words) - _ECHO + 1)}


_INSTRUCTIONS = _shingles(
    " ".join(
        [
            *(d for _, d in RAG_OPTIONAL_FIELDS.values()),
            *(str(f.description) for f in RagAnswer.model_fields.values()),
            *prompts.RAG_DIFFICULTY.values(),
            prompts.RAG_SYSTEM,
            prompts.RAG_USER,
        ]
    )
)


def echoes_instructions(text: str) -> bool:
    """The value repeats six or more words in a row of our own instructions."""
    return bool(_shingles(text) & _INSTRUCTIONS)


def _same(a: str, b: str) -> bool:
    def norm(s: str) -> str:
        return re.sub(r"\s+", " ", s.casefold()).strip(" .?!¿¡;:,\"'«»“”")

    return norm(a) == norm(b)


class RagRows:
    """The RAG task: `n` rows of (context, question, response[, retrieval/reranking pairs])."""

    kind = "rag"

    def __init__(
        self,
        spec: DatasetSpec,
        n: int,
        seed: int,
        *,
        judge: bool,
        chunks: list[dict[str, str]] | None = None,
    ) -> None:
        assert spec.rag is not None
        self.spec, self.rag, self.n, self.seed, self.judge = spec, spec.rag, n, seed, judge
        self.grounded = self.rag.source != "description"
        self.chunks = list(chunks or []) if self.grounded else []
        if self.grounded and not self.chunks:
            raise ValueError(
                _("This contract asks for passages from documents, but none are attached.")
                if self.rag.source == "documents"
                else _("This contract asks for passages from a dataset, but none were loaded.")
            )
        self._words = length_bands(self.rag.answer_length)
        self._topics = Spread(even(spec.style.topics or DEFAULT_TOPICS), n, f"{seed}/topic")
        self._spreads = {
            "difficulty": Spread(even([self.rag.difficulty]), n, f"{seed}/difficulty"),
            "answer_length": Spread(even(list(self._words)), n, f"{seed}/answer_length"),
        }
        self.hard_negatives = self.rag.hard_negatives
        self.retrieval = self.rag.retrieval or self.hard_negatives
        # built once: a new class per row would miss the structured-call cache every time
        # twice the band's longest answer at about eight characters a word: a reply that reaches
        # it was cut off (by the grammar or by truncation) and is refused, not kept half-said
        self._answer_chars = min(2400, 16 * LENGTH_BANDS[self.rag.answer_length][1])
        self._schema = rag_answer_schema(
            retrieval=self.retrieval,
            hard_negatives=self.hard_negatives,
            reranking=self.rag.reranking,
            answer_chars=self._answer_chars,
        )
        self._judgement: type[RagJudgement] | type[RagNegativeJudgement] = (
            RagNegativeJudgement if self.hard_negatives else RagJudgement
        )

    def meta(self) -> dict[str, Any]:
        docs = hashlib.sha256("".join(c["id"] for c in self.chunks).encode()).hexdigest()[:12]
        return {**run_meta(self.spec, self.seed), "docs": docs}

    def chunk_of(self, row_id: int) -> int:
        """The chunk of a row: round `row_id // k` deals the k chunks once each, in its own order."""
        k = len(self.chunks)
        return Permutation(k, f"{self.seed}/chunk/{row_id // k}")(row_id % k)

    def plan(self, row_id: int) -> RagPlan:
        a = {k: spread(row_id) for k, spread in self._spreads.items()}
        return RagPlan(
            row_id=row_id,
            topic=self._topics(row_id),
            difficulty=a["difficulty"],
            answer_length=a["answer_length"],
            words=self._words[a["answer_length"]],
            chunk=self.chunk_of(row_id) if self.grounded else None,
        )

    def quota_key(self, plan: RagPlan) -> str:
        return plan.topic

    def quota_targets(self) -> dict[str, int]:
        return dict(self._topics.targets)

    def attributes(self, plan: RagPlan) -> dict[str, str]:
        return {"difficulty": plan.difficulty, "answer_length": plan.answer_length}

    def attribute_targets(self) -> dict[str, dict[str, int]]:
        return {k: dict(spread.targets) for k, spread in self._spreads.items()}

    async def _passage(self, plan: RagPlan, seed: str, llm: Caller) -> str | None:
        lo, hi = PASSAGE_WORDS[self.rag.answer_length]
        msgs = as_messages(
            prompts.RAG_PASSAGE_SYSTEM.format(
                description=self.spec.description, language=self.spec.language
            ),
            prompts.RAG_PASSAGE_USER.format(
                min_words=lo, max_words=hi, topic=plan.topic, seed=seed
            ),
        )
        text = strip_reasoning((await llm.structured("generate", RagPassage, msgs)).text).strip()
        return text if word_count(text) >= lo // 3 else None

    def _ask(self, plan: RagPlan, context: str, seed: str) -> str:
        extra = (prompts.RAG_RETRIEVAL_FIELD if self.retrieval else "") + (
            prompts.RAG_HARD_NEGATIVE_FIELD if self.hard_negatives else ""
        )
        if self.rag.reranking:
            extra += prompts.RAG_RERANKING_FIELDS
        return prompts.RAG_USER.format(
            context=context[:CONTEXT_CHARS],
            difficulty_rule=prompts.RAG_DIFFICULTY[plan.difficulty],
            topic=plan.topic,
            min_words=plan.words[0],
            max_words=plan.words[1],
            extra_fields=extra,
            seed=seed,
        )

    def _valid(self, fields: dict[str, str], context: str) -> bool:
        if any(not v or echoes_instructions(v) for v in fields.values()):
            return False
        lo, hi = LENGTH_BANDS[self.rag.answer_length]
        question, response = fields["question"], fields["response"]
        if len(response) >= self._answer_chars:
            return False
        if not 2 <= word_count(question) <= 80 or _same(question, response):
            return False
        if not max(1, lo // 3) <= word_count(response) <= 2 * hi:
            return False
        positive, negative = fields.get("positive_retrieval"), fields.get("negative_retrieval")
        for query in (positive, negative):
            if query is not None and word_count(query) > 80:
                return False
        if positive is not None and _same(positive, question):
            return False
        if negative is not None and any(_same(negative, q) for q in (question, positive or "")):
            return False
        if self.rag.reranking:
            good, bad = fields["positive_reranking"], fields["negative_reranking"]
            if any(not 8 <= word_count(p) <= 800 for p in (good, bad)):
                return False
            if _same(good, bad) or any(_same(p, context) for p in (good, bad)):
                return False
        return True

    async def draft(self, plan: RagPlan, attempt: int, llm: Caller) -> dict[str, Any] | None:
        seed = f"{self.seed}-{plan.row_id}-{attempt}"
        try:
            if plan.chunk is not None:
                chunk = self.chunks[plan.chunk]
                context, chunk_id, source = chunk["text"], chunk["id"], chunk["source"]
            else:
                passage = await self._passage(plan, seed, llm)
                if passage is None:
                    return None
                context, chunk_id, source = passage, f"gen-{plan.row_id}", "generated"
            msgs = as_messages(
                prompts.RAG_SYSTEM.format(
                    description=self.spec.description, language=self.spec.language
                ),
                self._ask(plan, context, seed),
            )
            out = await llm.structured("generate", self._schema, msgs)
        except LLMBadOutput:
            return None
        names = ("question", "response", *(f for f in OPTIONAL if f in type(out).model_fields))
        fields = {name: strip_reasoning(str(getattr(out, name) or "")).strip() for name in names}
        if not self._valid(fields, context):
            return None
        return {
            "context": context,
            **fields,
            "chunk_id": chunk_id,
            "source": source,
            "topic": plan.topic,
            "difficulty": plan.difficulty,
            "answer_length": plan.answer_length,
        }

    def dedup_text(self, row: dict[str, Any]) -> str:
        return str(row["question"])

    async def review(self, row: dict[str, Any], plan: RagPlan, llm: Caller) -> dict[str, Any]:
        if not self.judge:
            return row
        negative = row.get("negative_retrieval")
        schema = self._judgement if negative else RagJudgement
        msgs = as_messages(
            prompts.RAG_JUDGE_SYSTEM.format(
                negative_question=prompts.RAG_JUDGE_NEGATIVE if negative else ""
            ),
            prompts.RAG_JUDGE_USER.format(
                context=str(row["context"])[:CONTEXT_CHARS],
                question=row["question"],
                response=row["response"],
                negative_block=(
                    f"<negative_query>\n{negative}\n</negative_query>\n" if negative else ""
                ),
            ),
        )
        try:
            verdict = await llm.structured("judge", schema, msgs)
        except LLMBadOutput:
            return row
        answered = getattr(verdict, "negative_answered", None) if negative else None
        row.update(
            answerable=verdict.answerable,
            supported=verdict.supported,
            negative_unanswered=None if answered is None else not answered,
            rating=int(verdict.rating),
            judge_reasons=strip_reasoning(verdict.reasons),
        )
        return row
