"""Text classification in the conversation: the first contract (from an archetype, or the
model's proposal with its labels checked), the sample's critique, the run's report."""

from __future__ import annotations

from typing import Any, Literal

from langgraph.types import Command

from agent import prompts
from agent.config import get_settings
from agent.conversation import (
    first_contract,
    language_example,
    questions,
    say,
    transcript,
    user_language,
    user_said,
)
from agent.graph.state import State
from agent.i18n import _, language_name
from agent.llm import LLMBadOutput, as_messages, get_chat_model, structured_call
from agent.spec import (
    LENGTH_BANDS,
    DatasetSpec,
    SpecError,
    Style,
    length_word,
    pct,
)
from agent.tasks import archetypes
from agent.tasks.proposing import pick_archetype
from agent.tasks.textcat.contract import proposal_to_spec
from agent.tasks.textcat.schemas import CritiqueNotes, Proposal
from agent.tools import quality


def render(spec: DatasetSpec) -> str:
    """The text-classification contract as Markdown (a label table and the style)."""
    rows = "\n".join(
        f"| {lb.name} | {lb.definition} | {pct(spec.mix[lb.name])} |" for lb in spec.labels
    )
    style = spec.style
    head = _("**{name}** (contract v{version})", name=spec.name, version=spec.version)
    low, high = LENGTH_BANDS[style.length]
    lines = [
        _("task: text classification (multi-label)")
        if spec.multi_label
        else _("task: text classification (single-label)"),
        _("language: {language}", language=language_name(spec.language)),
        _("size: {n:,} rows", n=spec.size),
        _(
            "length: {length} ({low}–{high} words)",
            length=length_word(style.length),
            low=low,
            high=high,
        ),
        _("topics: {values}", values=", ".join(style.topics) or "—"),
        _("tones: {values}", values=", ".join(style.tones) or "—"),
        _("clarity: {values}", values=", ".join(style.clarity)),
    ]
    return (
        f"{head} — {spec.description}\n\n"
        + _("| label | definition | target share |")
        + f"\n|---|---|---|\n{rows}\n\n"
        + "\n".join(f"- {line}" for line in lines)
    )


async def propose(state: State) -> Command[Literal["review_contract"]]:
    """The first text-classification contract: from an archetype when the request is a known kind
    (the model adapts it; labels it gets wrong do not survive), else the model's free proposal."""
    locked = state.get("locked") or {}
    settings = get_settings()
    said = user_said(state)
    description = said[0] if said else "A synthetic dataset."
    arch = await pick_archetype(state, said, "textcat")
    system = prompts.PROPOSE_SYSTEM.format(user_language=user_language(state, said))
    if arch is not None:
        system += "\n\n" + prompts.PROPOSE_FROM_ARCHETYPE.format(
            title=arch.title, standard=arch.standard_json()
        )
    msgs = as_messages(
        system, prompts.PROPOSE_USER.format(conversation=transcript(state["messages"]))
    )
    problem = ""
    for _attempt in range(
        1 if arch else 3
    ):  # without an archetype, unusable labels are asked for again
        p = await structured_call(get_chat_model("steer"), Proposal, msgs)
        choice = archetypes.textcat_choice(arch, p, said, questions(state))
        if arch is None and choice.problems:
            problem = "; ".join(choice.problems[:2])
            continue
        try:
            spec, notes = proposal_to_spec(
                description=description,
                name=archetypes.dataset_name(description, p.name, arch),
                labels=choice.labels,
                multi_label=choice.multi_label,
                language=archetypes.data_language(
                    said, locked=locked, archetype=arch, model=p.language
                ),
                size=locked.get("size") or archetypes.stated_size(said) or p.size,
                style=Style(
                    topics=choice.topics,
                    length=choice.length,  # type: ignore[arg-type]
                    tones=choice.tones or ["neutral"],
                ),
                max_rows=settings.max_rows,
            )
            break
        except SpecError as exc:
            problem = str(exc)
    else:
        raise LLMBadOutput(
            _(
                "The model did not propose a usable contract ({problem}) — try naming the labels "
                "you want, e.g. “labels: positive, negative”.",
                problem=problem,
            )
        )
    ask = _(
        "Approve it to see a sample, or tell me what to change (e.g. {examples}).",
        examples=change_examples(spec),
    )
    return first_contract(state, spec, render(spec), choice.notes + notes, ask=ask, intro=p.intro)


def change_examples(spec: DatasetSpec) -> str:
    """Two refinements that fit this contract, as a person would type them."""
    names = spec.label_names
    label = next((n for n in names if n.startswith("neg")), names[-1])
    first = (
        _("“more {label}”", label=label) if len(names) < 3 else _("“drop {label}”", label=names[-1])
    )
    return f"{first}, {language_example(spec)}"


def _table(rows: list[dict[str, Any]], limit: int = 20) -> str:
    out = [_("| # | text | label | judge |"), "|---|---|---|---|"]
    for r in rows[:limit]:
        text = r["text"].replace("|", "\\|").replace("\n", " ")
        text = text[:220] + ("…" if len(text) > 220 else "")
        label = ", ".join(quality.row_labels(r))
        judge = r.get("judge_label") or ", ".join(r.get("judge_labels") or []) or "—"
        out.append(f"| {r['row_id']} | {text} | {label} | {judge} |")
    return "\n".join(out)


def _chart_figures(fig: dict[str, Any]) -> dict[str, Any]:
    """What the run review's charts draw, sent with its message (the charts must show this run)."""
    return {k: fig.get(k) for k in ("mix", "agreement_per_label", "agreement")}


async def critique(state: State, spec: DatasetSpec, rows: list[dict[str, Any]]) -> Command[Any]:
    """The sample: the judge's blind relabel, repeats and mix in words, the rows as a table, the
    exact figures and the judge's notes in the fold."""
    fig = quality.figures(spec, rows)
    notes: dict[str, list[str]] = {}
    summary = {k: fig[k] for k in ("rows", "agreement", "duplicates", "mix")}
    msgs = as_messages(
        prompts.CRITIQUE_SYSTEM.format(
            description=spec.description, user_language=state.get("user_language", "English")
        ),
        prompts.CRITIQUE_USER.format(
            figures=summary,
            rows="\n".join(
                f"- [{', '.join(quality.row_labels(r))}] {r['text'][:300]}" for r in rows[:10]
            ),
        ),
    )
    try:
        c = await structured_call(get_chat_model("judge"), CritiqueNotes, msgs)
        notes = {"problems": c.problems, "suggestions": c.suggestions}
    except LLMBadOutput:
        notes = {"problems": [_("(the judge's written notes could not be read this time)")]}
    text = (
        _(
            "Sample {k} (contract v{version}): {n} rows.",
            k=state.get("samples_made", 1),
            version=spec.version,
            n=len(rows),
        )
        + "\n\n"
        + quality.plain_summary(fig, notes)
        + "\n\n"
        + _(
            "Approve to generate all {n:,} rows, say “generate N” for another size, or ask for "
            "changes (e.g. “make it more negative reviews”).",
            n=spec.size,
        )
    )
    # the rows as a table and the exact figures: the chat shows them as a table and a fold
    table, details = _table(rows), quality.render_figures(fig, notes)
    shown = [
        {
            _("text"): r["text"],
            _("label"): ", ".join(quality.row_labels(r)),
            _("second model"): r.get("judge_label") or ", ".join(r.get("judge_labels") or []),
        }
        for r in rows
    ]
    return Command(
        goto="review_sample",
        update={
            "critique": fig | {"notes": notes},
            "messages": [say(text, kind="sample", table=table, details=details, rows=shown)],
            "stage": "sample",
        },
    )


def run_figures(spec: DatasetSpec, rows: Any) -> dict[str, Any]:
    return quality.figures(spec, rows)


def paused_tips(fig: dict[str, Any]) -> list[str]:
    return quality.suggestions(fig) or [_("add sub-topics, or sharpen the label definitions")]


def run_report(
    spec: DatasetSpec, fig: dict[str, Any], made: int, replaced: int, rows: Any
) -> tuple[str, str, str]:
    """The full run's report: what was made, the figures in words, the exact figures."""
    line = _(
        "Generated {made:,} of {n:,} rows; {dup} near copies were replaced.",
        made=made,
        n=spec.size,
        dup=replaced,
    )
    return line, quality.plain_summary(fig), quality.render_figures(fig)


def starting(n: int) -> str:
    return _("Starting the full run of {n:,} rows…", n=n)
