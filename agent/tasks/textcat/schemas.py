"""Structured-output schemas of text classification: the proposal, the row, the judge's relabel and notes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from agent.schemas import Bounded, bounded
from agent.spec import Label, LengthBand


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
