"""Structured-output schemas, all in one place. The model reads every `Field(description=…)`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from agent.spec import Label, LengthBand, SpecEdit


class Clarification(BaseModel):
    """Decide whether the request is clear enough to propose a contract."""

    user_language: str = Field(
        "English",
        description="The language the USER writes in (not the data language), e.g. English.",
    )
    ready: bool = Field(
        description="True when a sensible contract can be proposed now, or the user said to just go."
    )
    question: str = Field(
        "",
        description="When not ready: one short clarifying question, in the user's language.",
    )


class Proposal(BaseModel):
    """A first dataset contract for a text-classification dataset."""

    name: str = Field(description="Short dataset name, lower-case words joined by hyphens.")
    labels: list[Label] = Field(
        description="2 to 8 distinct labels, each with a one-line definition."
    )
    multi_label: bool = Field(False, description="True only if one text may carry several labels.")
    language: str = Field("English", description="Language of the data texts.")
    size: int = Field(100, description="Number of rows asked for; 100 when not said.")
    topics: list[str] = Field(
        default_factory=list, description="3 to 8 sub-topics to cover, for diversity."
    )
    length: LengthBand = Field("medium", description="Text length: short, medium or long.")
    tones: list[str] = Field(default_factory=list, description="1 to 4 tones to vary over.")
    intro: str = Field(
        "",
        description="One sentence in the language the USER writes in, presenting the contract and "
        "asking them to approve it or say what to change.",
    )


class Intent(BaseModel):
    """What the user's free-text reply at an approval point means."""

    kind: Literal["approve", "edit", "generate", "cancel", "question"] = Field(
        description=(
            "approve: accept what is shown and continue; edit: change the contract (labels, mix, length, "
            "topics, language, tone); generate: produce the full dataset now (optionally with a number of "
            "rows); cancel: stop; question: the user asks something about the data or the process."
        )
    )
    edits: list[SpecEdit] = Field(
        default_factory=list, description="For kind=edit: the typed changes."
    )
    rows: int | None = Field(
        None, description="For kind=generate (or a size change): the number of rows."
    )
    answer: str = Field(
        "", description="For kind=question: a short answer, in the user's language."
    )


class GeneratedText(BaseModel):
    """One synthetic text."""

    text: str = Field(description="The text itself, nothing else.")


class Relabel(BaseModel):
    """A blind label for one text: the reasons first, then the verdict."""

    reasoning: str = Field(description="One sentence on which definition fits the text best.")
    label: str = Field(description="The single best label name, exactly as listed.")


class MultiRelabel(BaseModel):
    reasoning: str = Field(description="One sentence on which definitions fit the text.")
    labels: list[str] = Field(description="Every label name that applies, exactly as listed.")


class CritiqueNotes(BaseModel):
    """Realism and diversity problems in a sample, with fixes."""

    problems: list[str] = Field(
        default_factory=list, description="Up to 3 concrete problems seen in the rows."
    )
    suggestions: list[str] = Field(
        default_factory=list,
        description="Up to 3 concrete fixes the user could ask for, e.g. 'shorter texts'.",
    )
