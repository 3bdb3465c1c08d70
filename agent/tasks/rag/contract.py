"""The first RAG contract: what the model proposes (a name, topics, the data language — a short
schema a small model fills), what the person's own words switch on ("with hard negatives",
"for a reranker", "harder questions": read with the same tables as a reply), and where the
passages come from (a dataset column the person named, attached documents, or none)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from agent.schemas import Bounded, bounded
from agent.spec import RAG_OPS, DatasetSpec, SpecEdit, SpecError, apply_edits, make_spec

PROPOSE_RAG_SYSTEM = """You design synthetic RAG (retrieval) datasets: passages, a question each \
passage answers, and the answer taken from the passage. From the conversation, propose:
- name: a short dataset name, lower-case words joined by hyphens, about the subject;
- topics: 3 to 8 short sub-topics the passages and questions should cover (a few words each);
- language: the language the DATA must be written in;
- size: the number of rows asked for (100 when not said);
- intro: one sentence in {user_language} presenting the contract.
{source_note}"""

SOURCE_NOTES = {
    "documents": "The passages are chunks of {chunks} the person attached; topics may stay general.",
    "dataset": "The passages come from a column of an existing dataset; topics may stay general.",
    "description": "There are no documents: passages will be written from the description, so the "
    "topics decide what they are about.",
}


class RagProposal(Bounded):
    """A first RAG dataset contract."""

    name: str = bounded(
        "", chars=50, description="Short dataset name, lower-case words joined by hyphens."
    )
    topics: list[str] = bounded(default_factory=list, items=8, description="3 to 8 sub-topics.")
    language: str = bounded("English", chars=30, description="Language of the data.")
    size: int = Field(100, description="Number of rows; 100 when not said.")
    intro: str = bounded(
        "", chars=300, description="One sentence in the USER's language presenting the contract."
    )


def source_of(locked: dict[str, Any], chunks: int) -> dict[str, Any]:
    """Where the passages come from: a dataset column the CLI (or person) named, else the
    attached documents, else the description."""
    if locked.get("seed_dataset") and locked.get("seed_column"):
        return {
            "source": "dataset",
            "seed_dataset": str(locked["seed_dataset"]),
            "seed_column": str(locked["seed_column"]),
        }
    return {"source": "documents" if chunks else "description"}


def with_stated_shape(
    spec: DatasetSpec, said_edits: list[SpecEdit], *, max_rows: int
) -> DatasetSpec:
    """Version 1 with the switches the person's own words set (hard negatives, reranking,
    difficulty, answer length) — read by the reply tables, never guessed by a model."""
    edits = [e for e in said_edits if e.op in RAG_OPS or e.op == "set_length"]
    if not edits:
        return spec
    try:
        shaped = apply_edits(spec, edits, max_rows=max_rows)
    except SpecError:  # e.g. they asked for what is already the default
        return spec
    return make_spec(shaped.model_dump() | {"version": spec.version})
