"""Chat data in the conversation: the first contract (an archetype's shape, the model's system
prompt and personas where they pass their checks), the sample as dialogues, the run's report."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from langgraph.types import Command

from agent import prompts
from agent.config import get_settings
from agent.conversation import (
    first_contract,
    language_example,
    run_root,
    say,
    transcript,
    user_language,
    user_said,
)
from agent.graph.state import State
from agent.i18n import _, language_name, ngettext
from agent.llm import as_messages, get_chat_model, structured_call
from agent.spec import (
    LENGTH_BANDS,
    DatasetSpec,
    length_word,
    make_spec,
    show,
    value_word,
)
from agent.tasks import archetypes
from agent.tasks.chat.schemas import ChatProposal
from agent.tasks.proposing import pick_archetype
from agent.tools import quality
from agent.tools.documents import load_chunks


def render(spec: DatasetSpec) -> str:
    """The chat contract as Markdown."""
    c = spec.chat
    assert c is not None
    lo, hi = LENGTH_BANDS[c.answer_length]
    head = _("**{name}** (contract v{version})", name=spec.name, version=spec.version)
    system = _("System prompt")
    lines = [
        ngettext(
            "task: chat conversations for fine-tuning, {n} user turn each",
            "task: chat conversations for fine-tuning, {n} user turns each",
            c.turns,
        ),
        _("personas: {values}", values=show(c.personas) or "—"),
        _("intents: {values}", values=show(c.intents) or "—"),
        _("topics: {values}", values=show(spec.style.topics) or "—"),
        _(
            "answers: {style}; {length} ({low}–{high} words)",
            style=c.answer_style,
            length=length_word(c.answer_length),
            low=lo,
            high=hi,
        ),
        _("grounded in attached documents: {value}", value=value_word(c.grounded)),
        _("language: {language}", language=language_name(spec.language)),
        _("size: {n:,} conversations", n=spec.size),
    ]
    return (
        f"{head} — {spec.description}\n\n**{system}**\n\n> "
        + c.system_prompt.replace("\n", "\n> ")
        + "\n\n"
        + "\n".join(f"- {line}" for line in lines)
    )


async def propose(state: State) -> Command[Literal["review_contract"]]:
    """The first chat contract: an archetype's shape when the request is a known kind (the model's
    system prompt, personas … kept where they pass their checks; the archetype's rules always),
    else the model's own proposal."""
    settings = get_settings()
    locked = state.get("locked") or {}
    said = user_said(state)
    description = said[0] if said else "Chat data."
    arch = await pick_archetype(state, said, "chat")
    system = prompts.PROPOSE_CHAT_SYSTEM.format(user_language=user_language(state, said))
    if arch is not None:
        system += "\n\n" + prompts.PROPOSE_CHAT_FROM_ARCHETYPE.format(
            title=arch.title, standard=arch.standard_json()
        )
    msgs = as_messages(
        system, prompts.PROPOSE_USER.format(conversation=transcript(state["messages"]))
    )
    p = await structured_call(get_chat_model("steer"), ChatProposal, msgs)
    language = archetypes.data_language(said, locked=locked, archetype=arch, model=p.language)
    chat, topics, notes = archetypes.chat_choice(arch, p, said, language=language)
    wanted = locked.get("size") or archetypes.stated_size(said) or p.size
    size = min(max(wanted, 1), settings.max_rows)
    if size != wanted:
        notes.append(_("size {wanted:,} is out of range, using {size:,}", wanted=wanted, size=size))
    chunks = load_chunks(run_root() / "documents")
    spec = make_spec(
        {
            "task": "chat",
            "name": archetypes.dataset_name(description, p.name, arch),
            "description": description[:2000],
            "language": language,
            "size": size,
            "style": {"topics": topics},
            "chat": chat | {"grounded": bool(chunks)},
        }
    )
    docs = (
        "\n\n"
        + ngettext(
            "Conversations will be grounded in {n} chunk of your documents.",
            "Conversations will be grounded in {n} chunks of your documents.",
            len(chunks),
        )
        if chunks
        else ""
    )
    ask = _(
        "Approve it to see sample conversations, or tell me what to change (e.g. {examples}).",
        examples=change_examples(spec),
    )
    return first_contract(state, spec, render(spec), notes, ask=ask, intro=p.intro, extra=docs)


def change_examples(spec: DatasetSpec) -> str:
    """Two refinements that fit this contract, as a person would type them."""
    first = _("“3 turns”") if spec.chat is None or spec.chat.turns < 3 else _("“shorter answers”")
    return f"{first}, {language_example(spec)}"


def dialogue(row: dict[str, Any], limit: int = 600) -> str:
    """A conversation as a readable chat transcript (Markdown), not JSON."""
    lines = []
    for m in row["messages"]:
        if m["role"] == "system":
            continue
        who = _("**User:**") if m["role"] == "user" else _("**Assistant:**")
        content = m["content"][:limit] + ("…" if len(m["content"]) > limit else "")
        lines.append(f"{who} {content}")
    rating = " · " + _("rated {rating}/5", rating=row["rating"]) if row.get("rating") else ""
    head = f"_#{row['row_id']} · {row.get('persona', '')} · {row.get('intent', '')}{rating}_"
    reasons = (
        "\n> " + _("why: {reasons}", reasons=row["judge_reasons"])
        if row.get("judge_reasons")
        else ""
    )
    return head + "\n\n" + "\n\n".join(lines) + reasons


def weakest(rows: Iterable[dict[str, Any]], n: int = 3) -> str:
    """The n lowest-rated conversations as dialogues (unrated ones last)."""
    worst = sorted(rows, key=lambda r: (r.get("rating") or 6, r["row_id"]))[:n]
    return "\n\n---\n\n".join(dialogue(r) for r in worst)


def _ratings_words(fig: dict[str, Any]) -> str:
    """How a second model rated the conversations, in words."""
    ratings = fig.get("ratings") or {}
    dup = fig.get("duplicates") or 0
    parts = []
    if ratings.get("mean") is not None:
        parts.append(
            _(
                "A second model rated each conversation from 1 to 5: {mean:.1f} on average.",
                mean=ratings["mean"],
            )
        )
    parts.append(
        _("None repeats another.")
        if not dup
        else ngettext(
            "{n} is (almost) the same as another.", "{n} are (almost) the same as others.", dup
        )
    )
    return " ".join(parts)


async def critique(state: State, spec: DatasetSpec, rows: list[dict[str, Any]]) -> Command[Any]:
    fig = quality.figures(spec, rows)
    tips = quality.suggestions(fig)
    text = (
        _(
            "Sample {k} (contract v{version}): {n} conversations.",
            k=state.get("samples_made", 1),
            version=spec.version,
            n=len(rows),
        )
        + "\n\n"
        + _ratings_words(fig)
        + "\n\n"
        + _("The weakest conversations:")
        + "\n\n"
        + weakest(rows)
        + "\n\n"
        + ((_("Suggestions:") + "\n" + "\n".join(f"- {x}" for x in tips) + "\n\n") if tips else "")
        + _(
            "Approve to generate all {n:,} conversations, say “generate N” for another size, or "
            "ask for changes (e.g. “harder questions”, “shorter answers”, “3 turns”).",
            n=spec.size,
        )
    )
    return Command(
        goto="review_sample",
        update={"critique": fig, "messages": [say(text, kind="sample")], "stage": "sample"},
    )


def run_figures(spec: DatasetSpec, rows: Any) -> dict[str, Any]:
    return quality.figures(spec, rows)


def paused_tips(fig: dict[str, Any]) -> list[str]:
    return quality.suggestions(fig) or [_("add personas, intents or topics for more variety")]


def run_report(
    spec: DatasetSpec, fig: dict[str, Any], made: int, replaced: int, rows: Any
) -> tuple[str, str, str]:
    line = _(
        "Generated {made:,} of {n:,} conversations; {dup} near copies were replaced.",
        made=made,
        n=spec.size,
        dup=replaced,
    )
    report = _ratings_words(fig) + "\n\n" + _("The weakest conversations:") + "\n\n" + weakest(rows)
    return line, report, ""


def starting(n: int) -> str:
    return _("Starting the full run of {n:,} conversations…", n=n)
