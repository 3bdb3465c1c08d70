"""Structured-output schemas of chat data: the proposal, a user turn, the judge's verdict."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agent.schemas import Bounded, bounded
from agent.spec import LengthBand


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
