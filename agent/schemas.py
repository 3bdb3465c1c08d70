"""Structured-output schemas, all in one place. The model reads every `Field(description=…)`.

Lengths and list sizes are bounded with JSON-schema hints (`maxLength`, `maxItems`): with
constrained decoding (Ollama's `format`, llama.cpp grammars) they cap how long a model can ramble,
which matters most for small models. Validation truncates rather than rejects, so a backend that
ignores the hints still yields a usable object.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, create_model, model_validator

from agent.spec import Label, LengthBand, SpecEdit


def bounded(
    default: Any = ..., *, chars: int | None = None, items: int | None = None, **kw: Any
) -> Any:
    extra: dict[str, Any] = {}
    if chars is not None:
        extra["maxLength"] = chars
    if items is not None:
        extra["maxItems"] = items
    if "default_factory" in kw:
        return Field(json_schema_extra=extra, **kw)
    return Field(default, json_schema_extra=extra, **kw)


class Bounded(BaseModel):
    """Truncates strings and lists to their `maxLength` / `maxItems` hints before validation."""

    @model_validator(mode="before")
    @classmethod
    def _truncate(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for name, field in cls.model_fields.items():
            extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
            value = data.get(name)
            chars, items = extra.get("maxLength"), extra.get("maxItems")
            if isinstance(value, str) and isinstance(chars, int):
                data[name] = value[:chars]
            elif isinstance(value, list) and isinstance(items, int):
                data[name] = value[:items]
        return data


class Clarification(Bounded):
    """Decide whether the request is clear enough to propose a contract."""

    user_language: str = bounded(
        "English",
        chars=30,
        description="The language the USER writes in (not the data language), e.g. English.",
    )
    task: Literal["textcat", "chat", "rag"] = Field(
        "textcat",
        description="textcat: labelled texts for a classifier; chat: conversations to fine-tune an "
        "assistant; rag: passages with questions and grounded answers for a retrieval system.",
    )
    ready: bool = Field(
        description="True when a sensible contract can be proposed now, or the user said to just go."
    )
    question: str = bounded(
        "",
        chars=300,
        description="When not ready: one short clarifying question, in the user's language.",
    )


class ProposedLabel(Bounded):
    name: str = bounded(
        chars=40, description="Short label name, lower-case, words joined by hyphens."
    )
    definition: str = bounded(
        chars=200, description="One sentence saying which texts get this label."
    )

    def to_label(self) -> Label:
        return Label(name=self.name, definition=self.definition)


class Proposal(Bounded):
    """A first dataset contract for a text-classification dataset."""

    name: str = bounded(
        chars=50, description="Short dataset name, lower-case words joined by hyphens."
    )
    labels: list[ProposedLabel] = bounded(
        items=8, description="2 to 8 distinct labels, each with a one-line definition."
    )
    multi_label: bool = Field(False, description="True only if one text may carry several labels.")
    language: str = bounded("English", chars=30, description="Language of the data texts.")
    size: int = Field(100, description="Number of rows asked for; 100 when not said.")
    topics: list[str] = bounded(
        default_factory=list,
        items=8,
        description="3 to 8 short sub-topics to cover, for diversity.",
    )
    length: LengthBand = Field("medium", description="Text length: short, medium or long.")
    tones: list[str] = bounded(
        default_factory=list, items=4, description="1 to 4 tones to vary over."
    )
    intro: str = bounded(
        "",
        chars=300,
        description="One sentence in the language the USER writes in, presenting the contract and "
        "asking them to approve it or say what to change.",
    )


class ArchetypeChoice(Bounded):
    """Which standard kind of dataset the request is (or "other")."""

    archetype: str = Field(description="The id of the kind that fits the request best, or other.")


_CHOICES: dict[tuple[str, ...], type[ArchetypeChoice]] = {}


def archetype_choice_schema(ids: tuple[str, ...], *, chat: bool = False) -> type[ArchetypeChoice]:
    """ArchetypeChoice with the archetype ids (plus "other") as an enum: constrained decoding can
    only produce one of them, which small models follow far better than free JSON. Built once per
    set of ids."""
    key = (*ids, "chat" if chat else "textcat")
    if key not in _CHOICES:
        choice: Any = Literal[(*ids, "other")]  # type: ignore[valid-type]
        _CHOICES[key] = create_model(
            "ChatArchetypeChoice" if chat else "ArchetypeChoice",
            __base__=ArchetypeChoice,
            archetype=(
                choice,
                Field(description=ArchetypeChoice.model_fields["archetype"].description),
            ),
        )
    return _CHOICES[key]


class Intent(Bounded):
    """What the user's free-text reply at an approval point means."""

    kind: Literal["approve", "edit", "generate", "cancel", "question"] = Field(
        description=(
            "approve: accept what is shown and continue; edit: change the contract (labels, mix, length, "
            "topics, language, tone); generate: produce the full dataset now (optionally with a number of "
            "rows); cancel: stop; question: the user asks something about the data or the process."
        )
    )
    edits: list[SpecEdit] = bounded(
        default_factory=list, items=5, description="For kind=edit: the typed changes."
    )
    rows: int | None = Field(
        None, description="For kind=generate (or a size change): the number of rows."
    )
    answer: str = bounded(
        "", chars=600, description="For kind=question: a short answer, in the user's language."
    )


class GeneratedText(Bounded):
    """One synthetic text."""

    text: str = bounded(chars=2400, description="The text itself, nothing else.")


class Relabel(Bounded):
    """A blind label for one text: the reasons first, then the verdict."""

    reasoning: str = bounded(
        chars=200, description="One sentence on which definition fits the text best."
    )
    label: str = Field(description="The single best label name, exactly as listed.")


class MultiRelabel(Bounded):
    reasoning: str = bounded(
        chars=200, description="One sentence on which definitions fit the text."
    )
    labels: list[str] = Field(description="Every label name that applies, exactly as listed.")


def relabel_schema(names: list[str], *, multi: bool) -> type[BaseModel]:
    """Relabel / MultiRelabel with the label set as an enum, so constrained decoding can only
    produce a listed label (the reasons still come first)."""
    choice: Any = Literal[tuple(names)]  # type: ignore[valid-type]
    if multi:
        return create_model(
            "MultiRelabel",
            __base__=MultiRelabel,
            labels=(
                list[choice],
                bounded(
                    items=len(names), description=MultiRelabel.model_fields["labels"].description
                ),
            ),
        )
    return create_model(
        "Relabel",
        __base__=Relabel,
        label=(choice, Field(description=Relabel.model_fields["label"].description)),
    )


class CritiqueNotes(Bounded):
    """Realism and diversity problems in a sample, with fixes."""

    problems: list[str] = bounded(
        default_factory=list,
        items=3,
        description="Up to 3 concrete problems seen in the rows (one short sentence each).",
    )
    suggestions: list[str] = bounded(
        default_factory=list,
        items=3,
        description="Up to 3 concrete fixes the user could ask for, e.g. 'shorter texts'.",
    )


class ChatProposal(Bounded):
    """A first dataset contract for chat conversations (supervised fine-tuning)."""

    name: str = bounded(
        chars=50, description="Short dataset name, lower-case words joined by hyphens."
    )
    system_prompt: str = bounded(
        chars=1200, description="The assistant's system prompt, with any rules asked for."
    )
    turns: int = Field(1, description="User turns per conversation, 1 to 8.")
    personas: list[str] = bounded(
        default_factory=list, items=6, description="3 to 6 kinds of users."
    )
    intents: list[str] = bounded(
        default_factory=list, items=6, description="3 to 6 things users want."
    )
    topics: list[str] = bounded(default_factory=list, items=8, description="3 to 8 topics.")
    answer_style: str = bounded(
        "helpful and concise", chars=120, description="How the assistant answers."
    )
    answer_length: LengthBand = Field("medium", description="Answer length: short, medium or long.")
    language: str = bounded("English", chars=30, description="Language of the conversations.")
    size: int = Field(100, description="Number of conversations; 100 when not said.")
    intro: str = bounded(
        "", chars=300, description="One sentence in the USER's language presenting the contract."
    )


class UserTurn(Bounded):
    """The user's next message."""

    text: str = bounded(chars=1200, description="The user's message only.")


class ChatJudgement(Bounded):
    """A review of one conversation: reasons first, then the verdicts and the rating."""

    reasons: str = bounded(chars=400, description="Two or three sentences of reasons.")
    follows_system_prompt: bool = Field(description="The assistant follows its system prompt.")
    helpful: bool = Field(description="The answers are helpful.")
    grounded: bool = Field(
        True, description="Every answer is supported by the document (true if none)."
    )
    realistic_user: bool = Field(description="The user sounds like a real person.")
    rating: Literal[1, 2, 3, 4, 5] = Field(
        description="Overall rating from 1 (bad) to 5 (excellent)."
    )


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


def rag_answer_schema(*, retrieval: bool, hard_negatives: bool, reranking: bool) -> type[RagAnswer]:
    """RagAnswer with exactly the fields the contract asks for (fewer fields, shorter replies;
    built once per combination so the structured-call cache keeps working)."""
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
    if not names:
        return RagAnswer
    if names not in _RAG_ANSWERS:
        fields: dict[str, Any] = {
            name: (
                str,
                bounded(
                    chars=RAG_OPTIONAL_FIELDS[name][0], description=RAG_OPTIONAL_FIELDS[name][1]
                ),
            )
            for name in names
        }
        _RAG_ANSWERS[names] = create_model("RagAnswer", __base__=RagAnswer, **fields)
    return _RAG_ANSWERS[names]


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
