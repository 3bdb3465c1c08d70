"""Chat / SFT conversations on the way out: features, dataset card and Argilla settings/records.

Columns: ``messages`` (a list of ``{role, content}``, as TRL's SFTTrainer reads it), then the
provenance columns the rows carry (`PROVENANCE`), sorted back into plan order by ``row_id``.

Argilla: the conversation as a `ChatField` ``messages``; a 1–5 ``rating`` (the judge's as a
suggestion) and an optional free-text ``correction``; metadata ``turns``, ``judge_rating``,
``persona``, ``intent``, ``topic``, ``source`` and ``row_id``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import datasets
from huggingface_hub import DatasetCardData

from agent.spec import DatasetSpec
from agent.tasks.chat.rows import validate_messages
from agent.tools.cards import (
    AGENT,
    STR,
    card_markdown,
    history_section,
    method_and_quality,
    record_id,
    sort_by_row_id,
    table,
)
from agent.tools.cards import card_data as _card_data

if TYPE_CHECKING:
    import argilla as rg

MESSAGE = {"role": STR, "content": STR}
TERMS = ("persona", "intent", "topic", "source")
PROVENANCE: dict[str, tuple[Any, str]] = {
    "persona": (STR, "Kind of user the generator played."),
    "intent": (STR, "What the user wanted (quota-balanced)."),
    "topic": (STR, "Topic the conversation was asked to cover."),
    "source": (STR, "Attached document the conversation is grounded in (or empty)."),
    "chunk_id": (STR, "Id of the document chunk the answers must be supported by (or empty)."),
    "rating": (datasets.Value("int64"), "Judge model's overall rating, 1 (bad) to 5 (excellent)."),
    "judge_reasons": (STR, "The judge's reasons, written before its rating."),
    "follows_system_prompt": (
        datasets.Value("bool"),
        "Judge: the assistant follows its system prompt.",
    ),
    "grounded": (
        datasets.Value("bool"),
        "Judge: every answer is supported by the document (grounded runs).",
    ),
    "row_id": (datasets.Value("int64"), "Position of the row in the generation plan."),
}


def build_dataset(spec: DatasetSpec, rows: Iterable[dict]) -> datasets.Dataset:
    """`messages` as TRL's SFTTrainer expects, plus provenance; every row is checked first."""
    cols: dict[str, list[Any]] = {"messages": [], **{k: [] for k in PROVENANCE}}
    seen: set[str] = set()
    for n, row in enumerate(rows):
        messages = row.get("messages")
        problem = validate_messages(messages) if isinstance(messages, list) else "no messages list"
        if problem:
            raise ValueError(f"Row {n}: {problem}.")
        cols["messages"].append([{"role": m["role"], "content": m["content"]} for m in messages])  # type: ignore[union-attr]
        for k in PROVENANCE:
            v = row.get(k)
            if v is not None:
                seen.add(k)
            cols[k].append(v)
    for k in PROVENANCE:
        if k not in seen:
            del cols[k]
    cols = sort_by_row_id(cols)
    feats = {
        "messages": datasets.List(MESSAGE),
        **{k: PROVENANCE[k][0] for k in cols if k != "messages"},
    }
    return datasets.Dataset.from_dict(cols, features=datasets.Features(feats))


def card_data(spec: DatasetSpec, ds: datasets.Dataset, license: str) -> DatasetCardData:
    """The card's metadata for a conversation dataset."""
    return _card_data(
        spec, ds, license, task_categories=["text-generation"], tags=["sft", "conversational"]
    )


def render_card(
    spec: DatasetSpec,
    ds: datasets.Dataset,
    *,
    model_info: dict[str, str],
    history: list[dict],
    metrics: dict[str, Any],
    license: str = "other",
) -> str:
    """The card for conversations: shape, system prompt, method, quality, limits, columns, loading."""
    chat = spec.chat
    assert chat is not None
    n = ds.num_rows
    made, quality = method_and_quality(model_info, metrics)
    columns = table(
        ("column", "type", "description"),
        [
            (
                "messages",
                "list of {role, content}",
                "System (optional), then alternating user and assistant turns, ending with the assistant.",
            )
        ]
        + [(k, str(ds.features[k]), PROVENANCE[k][1]) for k in ds.column_names if k in PROVENANCE],
    )
    grounded = (
        "Each conversation was grounded in a chunk of the attached documents; the assistant was told to "
        "answer only from it, and the judge checked that."
        if chat.grounded
        else "Conversations are not grounded in documents: answers come from the model's own knowledge."
    )
    system = chat.system_prompt.replace("\n", "\n> ")
    text = f"""
# {spec.name}

Synthetic chat conversations in {spec.language} for supervised fine-tuning: {n:,} conversations of
{chat.turns} user turn(s) each, made by dataset-agent from an approved contract (v{spec.version}).

## What it is for

{spec.description}

## Conversation shape

> {system}

- personas: {", ".join(chat.personas) or "—"}
- intents: {", ".join(chat.intents) or "—"} (balanced by quota)
- topics: {", ".join(spec.style.topics) or "—"}
- answers: {chat.answer_style}; {chat.answer_length}

## How it was made

An LLM wrote each user turn from a sampled persona, intent and topic (follow-ups from the
conversation so far); the assistant turns are ordinary chat completions under the system prompt.
{grounded} A judge model rated every conversation (reasons first) from 1 to 5.

{made}

The contract went through {len(history) or 1} version(s); it is in `spec.json`.

{history_section(history)}

## Quality

{quality}

## Known limits

- Both sides of every conversation were written by an LLM: users may sound less varied than real
  people, and answers may be wrong or inherit the model's biases. Check before training.
- The judge's ratings are another model's opinion, not human review.

## Columns

{columns}

## Loading

```python
from datasets import load_dataset

ds = load_dataset("<user>/{spec.name}")  # or the local folder path
# TRL: SFTTrainer(model=..., train_dataset=ds["train"])  — the `messages` column is used as is
```
"""
    return card_markdown(card_data(spec, ds, license), text)


# --- Argilla -------------------------------------------------------------------------------------


def argilla_settings(spec: DatasetSpec) -> rg.Settings:
    """Argilla settings for conversations: the chat, a 1–5 rating (the judge's as a suggestion),
    a free-text correction, and metadata."""
    import argilla as rg  # the SDK is only needed when pushing

    assert spec.chat is not None
    return rg.Settings(
        guidelines=f"{spec.description}\n\nThe assistant's system prompt:\n\n{spec.chat.system_prompt}",
        fields=[rg.ChatField(name="messages", title="Conversation")],
        questions=[
            rg.RatingQuestion(
                name="rating",
                values=[1, 2, 3, 4, 5],
                title="Rating",
                description="1 bad – 5 excellent.",
            ),
            rg.TextQuestion(
                name="correction",
                title="Correction",
                description="A better last answer, if needed.",
                required=False,
            ),
        ],
        metadata=[
            rg.IntegerMetadataProperty(name="turns", title="User turns"),
            rg.IntegerMetadataProperty(name="judge_rating", title="Judge rating"),
            *(rg.TermsMetadataProperty(name=k, title=k.capitalize()) for k in TERMS),
            rg.IntegerMetadataProperty(name="row_id", title="Row id"),
        ],
    )


def argilla_record(spec: DatasetSpec, row: dict, dataset_name: str, position: int) -> rg.Record:
    """One conversation as an Argilla record, the judge's rating as a suggestion."""
    import argilla as rg

    messages = [{"role": m["role"], "content": m["content"]} for m in row["messages"]]
    metadata: dict[str, Any] = {"turns": sum(m["role"] == "user" for m in messages)}
    metadata |= {k: str(row[k]) for k in TERMS if row.get(k) is not None}
    rating = row.get("rating")
    suggestions = []
    if rating is not None:
        metadata["judge_rating"] = int(rating)
        suggestions.append(rg.Suggestion(question_name="rating", value=int(rating), agent=AGENT))
    row_id = row.get("row_id")
    if row_id is not None:
        metadata["row_id"] = int(row_id)
    return rg.Record(
        id=record_id(dataset_name, row, position),
        fields={"messages": messages},
        metadata=metadata,
        suggestions=suggestions,
    )
