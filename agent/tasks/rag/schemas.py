"""Structured-output schemas of RAG rows: a written passage, the answer fields, the judge's verdicts."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, create_model

from agent.schemas import Bounded, bounded


class RagPassage(Bounded):
    """One passage for a retrieval (RAG) dataset, written from the description."""

    text: str = bounded(chars=3600, description="The passage itself, nothing else.")


class RagAnswer(Bounded):
    """A question the passage answers and the answer from the passage alone (the retrieval and
    reranking fields are added by `rag_answer_schema` when the contract asks for them)."""

    question: str = bounded(
        chars=400, description="A question a user would ask that the passage alone answers."
    )
    response: str = bounded(
        chars=2400, description="The answer to the question, using only facts from the passage."
    )


RAG_OPTIONAL_FIELDS: dict[str, tuple[int, str]] = {
    "positive_retrieval": (
        400,
        "Another search query a user would type to find this passage; different from the question.",
    ),
    "negative_retrieval": (
        400,
        "A hard-negative query: close to the passage in words and topic, but the passage does NOT "
        "answer it.",
    ),
    "positive_reranking": (
        2400,
        "The passage paraphrased in other words, still relevant to the question and answering it.",
    ),
    "negative_reranking": (
        2400,
        "A passage that looks similar (same topic, shared words) but does NOT answer the question.",
    ),
}


_RAG_ANSWERS: dict[tuple[str, ...], type[RagAnswer]] = {}


def rag_answer_schema(
    *, retrieval: bool, hard_negatives: bool, reranking: bool, answer_chars: int = 2400
) -> type[RagAnswer]:
    """RagAnswer with exactly the fields the contract asks for (fewer fields, shorter replies;
    built once per combination so the structured-call cache keeps working). The response is
    capped at `answer_chars` — about the contract's longest answer — so constrained decoding
    stops a small model from rambling on to the generic cap."""
    names = tuple(
        name
        for name, wanted in (
            ("positive_retrieval", retrieval or hard_negatives),
            ("negative_retrieval", hard_negatives),
            ("positive_reranking", reranking),
            ("negative_reranking", reranking),
        )
        if wanted
    )
    key = (*names, str(answer_chars))
    if key not in _RAG_ANSWERS:
        fields: dict[str, Any] = {
            name: (
                str,
                bounded(
                    chars=RAG_OPTIONAL_FIELDS[name][0], description=RAG_OPTIONAL_FIELDS[name][1]
                ),
            )
            for name in names
        }
        fields["response"] = (
            str,
            bounded(
                chars=answer_chars,
                description=RagAnswer.model_fields["response"].description,
            ),
        )
        _RAG_ANSWERS[key] = create_model("RagAnswer", __base__=RagAnswer, **fields)
    return _RAG_ANSWERS[key]


class RagJudgement(Bounded):
    """A review of one RAG row: reasons first, then the verdicts and the rating."""

    reasons: str = bounded(chars=400, description="Two or three sentences of reasons.")
    answerable: bool = Field(description="The question can be answered from the passage alone.")
    supported: bool = Field(description="Every claim of the response is supported by the passage.")
    rating: Literal[1, 2, 3, 4, 5] = Field(
        description="Overall rating from 1 (bad) to 5 (excellent)."
    )


class RagNegativeJudgement(Bounded):
    """A review of one RAG row with a hard-negative query: reasons first, then the verdicts."""

    reasons: str = bounded(chars=400, description="Two or three sentences of reasons.")
    answerable: bool = Field(description="The question can be answered from the passage alone.")
    supported: bool = Field(description="Every claim of the response is supported by the passage.")
    negative_answered: bool = Field(
        description="The passage answers the negative query (it should not)."
    )
    rating: Literal[1, 2, 3, 4, 5] = Field(
        description="Overall rating from 1 (bad) to 5 (excellent)."
    )
