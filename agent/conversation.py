"""What every step of the conversation uses: the graph's messages as text, what the user said,
the first contract's message, the thread's folder and status lines. A leaf for the graph's nodes
and the tasks' conversation modules (agent/tasks/<kind>/talk.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.config import get_config, get_stream_writer
from langgraph.types import Command

from agent.graph.state import State
from agent.i18n import _
from agent.languages import guess_language
from agent.paths import thread_root
from agent.spec import DatasetSpec


def say(text: str, **kwargs: Any) -> AIMessage:
    return AIMessage(content=text, additional_kwargs=kwargs)


def transcript(messages: list[AnyMessage], limit: int = 6000) -> str:
    lines = []
    for m in messages:
        who = "user" if isinstance(m, HumanMessage) else "assistant"
        lines.append(f"{who}: {m.content}")
    return "\n".join(lines)[-limit:]


def thread_id() -> str:
    return str(get_config()["configurable"].get("thread_id", "default"))


def user_said(state: State) -> list[str]:
    """The user's messages, first to last (the first one is the description)."""
    return [str(m.content) for m in state["messages"] if isinstance(m, HumanMessage)]


def questions(state: State) -> list[str]:
    """What the assistant said before each user message ("" before the first)."""
    out, last = [], ""
    for m in state["messages"]:
        if isinstance(m, HumanMessage):
            out.append(last)
        else:
            last = str(m.content)
    return out


def user_language(state: State, said: list[str]) -> str:
    return state.get("user_language") or guess_language("\n".join(said))


def first_contract(
    state: State,
    spec: DatasetSpec,
    shown: str,
    notes: list[str],
    *,
    ask: str,
    intro: str,
    extra: str = "",
) -> Command[Literal["review_contract"]]:
    """Show version 1 of the contract and wait for its review."""
    note = "\n\n_" + _("Note: I {notes}.", notes="; ".join(notes)) + "_" if notes else ""
    language = state.get("user_language") or guess_language("\n".join(user_said(state)))
    # the person's own language, written by the model — when it is in that language at all
    if language.lower() not in ("english", "en") and intro.strip():
        if guess_language(intro, default=language) == language:
            ask = f"{intro.strip()} {ask}"  # its own words first, then how to go on
    head = _("Here is the proposed contract:")
    text = f"{head}\n\n{shown}{note}{extra}\n\n{ask}"
    return Command(
        goto="review_contract",
        update={
            "spec": spec.model_dump(),
            "history": [{"version": 1, "diff": ["first proposal"]}],
            "stage": "contract",
            "messages": [say(text, kind="contract")],
        },
    )


def run_root() -> Path:
    return thread_root(thread_id())


def status(text: str) -> None:
    """Tell the UI at once that this step is working ({"status": …} on the custom stream), before
    its first row or reply arrives."""
    get_stream_writer()({"status": text})


def language_example(spec: DatasetSpec) -> str:
    """A language change a person would type for this contract."""
    return _("“in English”") if spec.language != "English" else _("“in Romanian”")
