"""Structured-output schemas, all in one place. The model reads every `Field(description=…)`.

Lengths and list sizes are bounded with JSON-schema hints (`maxLength`, `maxItems`): with
constrained decoding (Ollama's `format`, llama.cpp grammars) they cap how long a model can ramble,
which matters most for small models. Validation truncates rather than rejects, so a backend that
ignores the hints still yields a usable object.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, create_model, model_validator

from agent.spec import SpecEdit


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
