"""Helpers to drive a `Conversation` in tests and read what it said."""

from __future__ import annotations

from typing import Any

from agent.session import Conversation, Event


async def say(conv: Conversation, value: str | dict[str, Any]) -> list[Event]:
    return [e async for e in conv.send(value)]


def text(events: list[Event]) -> str:
    return "\n".join(e.full for e in events)


def errors(events: list[Event]) -> list[str]:
    return [e.text for e in events if e.kind == "error"]


def stage(events: list[Event]) -> str | None:
    prompts = [e for e in events if e.kind == "prompt"]
    return prompts[-1].data.get("stage") if prompts else None
