"""How RAG rows show in the chat: the sample as a table, what the judge found in plain words,
the exact figures for the Details fold."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from langgraph.types import Command

from agent import prompts
from agent.config import get_settings
from agent.conversation import first_contract, run_root, say, transcript, user_language, user_said
from agent.graph.replies import read_reply
from agent.graph.state import State
from agent.i18n import _, language_name, ngettext
from agent.llm import LLMBadOutput, as_messages, get_chat_model, structured_call
from agent.spec import (
    LENGTH_BANDS,
    DatasetSpec,
    RagShape,
    difficulty_word,
    length_word,
    make_spec,
    show,
    value_word,
)
from agent.tasks import archetypes
from agent.tasks.rag import contract
from agent.tools.dedup import Deduper
from agent.tools.documents import load_chunks


def figures(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """One pass over RAG rows: passages used, repeated questions, and the judge's three checks."""
    n = 0
    chunks: set[str] = set()
    dedup = Deduper()
    duplicates = 0
    checks = {"answerable": [0, 0], "supported": [0, 0], "negative_unanswered": [0, 0]}
    ratings: list[int] = []
    q_words: list[int] = []
    a_words: list[int] = []
    for row in rows:
        n += 1
        chunks.add(str(row.get("chunk_id") or row.get("context", ""))[:200])
        if dedup.check_and_add(str(row.get("question", "")), str(n)):
            duplicates += 1
        q_words.append(len(str(row.get("question", "")).split()))
        a_words.append(len(str(row.get("response", "")).split()))
        for key, (count) in checks.items():
            if isinstance(row.get(key), bool):
                count[1] += 1
                count[0] += row[key]
        if isinstance(row.get("rating"), int | float) and 1 <= row["rating"] <= 5:
            ratings.append(round(row["rating"]))
    return {
        "rows": n,
        "passages": len(chunks),
        "duplicates": duplicates,
        "checks": {k: {"yes": v[0], "judged": v[1]} for k, v in checks.items()},
        "rating": round(sum(ratings) / len(ratings), 2) if ratings else None,
        "question_words": round(sum(q_words) / n, 1) if n else 0,
        "response_words": round(sum(a_words) / n, 1) if n else 0,
    }


def _check_words(key: str, yes: int, judged: int) -> str:
    if key == "answerable":
        return _("the question can be answered from its passage in {yes} of {n}", yes=yes, n=judged)
    if key == "supported":
        return _("the answer is supported by the passage in {yes} of {n}", yes=yes, n=judged)
    return _(
        "the hard negative is truly not answered by the passage in {yes} of {n}",
        yes=yes,
        n=judged,
    )


def summary(fig: dict[str, Any]) -> str:
    """What a second model found, and the repeats, in words."""
    parts = []
    found = [
        _check_words(k, c["yes"], c["judged"]) for k, c in fig["checks"].items() if c["judged"]
    ]
    if found:
        parts.append(
            _("A second model checked each row: {found}.", found="; ".join(found))
            + (" " + _("Good.") if all_good(fig) else " " + _("Some rows need a look (below)."))
        )
    else:
        parts.append(_("No second model checked these rows."))
    parts.append(
        ngettext(
            "The rows use {n} passage.",
            "The rows use {n} different passages.",
            fig["passages"],
        )
    )
    dup = fig["duplicates"]
    parts.append(
        _("No question repeats another.")
        if not dup
        else ngettext(
            "{n} question is (almost) the same as another.",
            "{n} questions are (almost) the same as others.",
            dup,
        )
    )
    return " ".join(parts)


def all_good(fig: dict[str, Any], *, floor: float = 0.8) -> bool:
    return all(c["yes"] >= floor * c["judged"] for c in fig["checks"].values() if c["judged"])


def details(fig: dict[str, Any]) -> str:
    """The exact figures, for the Details fold."""
    names = {
        "answerable": _("answerable from the passage"),
        "supported": _("answer supported by the passage"),
        "negative_unanswered": _("hard negative not answered"),
    }
    lines = [
        _("rows: {n}", n=fig["rows"]),
        _("different passages: {n}", n=fig["passages"]),
        _("near-duplicate questions: {n}", n=fig["duplicates"]),
        _("mean words per question: {n}", n=fig["question_words"]),
        _("mean words per answer: {n}", n=fig["response_words"]),
    ]
    for key, c in fig["checks"].items():
        if c["judged"]:
            lines.append(f"{names[key]}: {c['yes']} / {c['judged']} ({c['yes'] / c['judged']:.0%})")
    if fig.get("rating") is not None:
        lines.append(_("mean rating (1–5): {r}", r=fig["rating"]))
    return "\n".join(f"- {line}" for line in lines)


def _cell(text: Any, limit: int) -> str:
    t = str(text or "").replace("|", "\\|").replace("\n", " ")
    return t[:limit] + ("…" if len(t) > limit else "")


def _verdict(row: dict[str, Any]) -> str:
    marks = []
    for key, word in (
        ("answerable", _("answerable")),
        ("supported", _("supported")),
        ("negative_unanswered", _("negative ok")),
    ):
        if isinstance(row.get(key), bool):
            marks.append(("✓ " if row[key] else "✗ ") + word)
    return ", ".join(marks) or "—"


def table(rows: list[dict[str, Any]], limit: int = 20) -> str:
    """The sample as a Markdown table (for the message text and the CLI)."""
    out = [
        "| # | " + " | ".join((_("passage"), _("question"), _("answer"), _("second model"))) + " |",
        "|---|---|---|---|---|",
    ]
    for r in rows[:limit]:
        out.append(
            f"| {r['row_id']} | {_cell(r.get('context'), 160)} | {_cell(r.get('question'), 160)}"
            f" | {_cell(r.get('response'), 200)} | {_verdict(r)} |"
        )
    return "\n".join(out)


def shown(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The sample's rows as the chat's table shows them: the column titles in the reader's
    language, the retrieval / reranking columns when the contract has them."""
    extra = (
        ("positive_retrieval", _("another query")),
        ("negative_retrieval", _("hard negative")),
        ("negative_reranking", _("look-alike passage")),
    )
    out = []
    for r in rows:
        # a passage can be a page long: the table shows its start, so every row stays readable
        row = {
            _("passage"): _cell(r.get("context"), 240),
            _("question"): str(r.get("question", "")),
            _("answer"): _cell(r.get("response"), 400),
        }
        for key, title in extra:
            if r.get(key):
                row[title] = _cell(r[key], 240)
        row[_("second model")] = _verdict(r)
        out.append(row)
    return out


def _rag_columns(rag: RagShape) -> list[str]:
    cols = ["context", "question", "response"]
    if rag.retrieval:
        cols.append("positive_retrieval")
    if rag.hard_negatives:
        cols.append("negative_retrieval")
    if rag.reranking:
        cols += ["positive_reranking", "negative_reranking"]
    return cols


def render(spec: DatasetSpec) -> str:
    """The RAG contract as Markdown: its shape and the columns it makes."""
    rag = spec.rag
    assert rag is not None
    lo, hi = LENGTH_BANDS[rag.answer_length]
    head = _("**{name}** (contract v{version})", name=spec.name, version=spec.version)
    source = {
        "documents": _("passages: chunks of your documents, verbatim"),
        "dataset": _(
            "passages: the column “{column}” of {dataset}",
            column=rag.seed_column or "",
            dataset=rag.seed_dataset or "",
        ),
        "description": _("passages: written by the model from your description"),
    }[rag.source]
    lines = [
        _("task: questions and answers grounded in passages (retrieval / RAG)"),
        source,
        _("questions: {level}", level=difficulty_word(rag.difficulty)),
        _(
            "answers: {length} ({low}–{high} words), only from the passage",
            length=length_word(rag.answer_length),
            low=lo,
            high=hi,
        ),
        _(
            "retrieval pairs (another query the passage answers): {value}",
            value=value_word(rag.retrieval),
        ),
        _(
            "hard negatives (a close query the passage does not answer): {value}",
            value=value_word(rag.hard_negatives),
        ),
        _(
            "reranking pairs (a relevant and a look-alike passage): {value}",
            value=value_word(rag.reranking),
        ),
        _("topics: {values}", values=show(spec.style.topics) or "—"),
        _("language: {language}", language=language_name(spec.language)),
        _("size: {n:,} rows", n=spec.size),
        _("columns: {names}", names=", ".join(f"`{c}`" for c in _rag_columns(rag))),
    ]
    return f"{head} — {spec.description}\n\n" + "\n".join(f"- {line}" for line in lines)


async def propose(state: State) -> Command[Literal["review_contract"]]:
    """The first RAG contract: passages from the dataset column named, else the attached
    documents, else written from the description; the switches the person's words set (hard
    negatives, reranking, difficulty) read by the reply tables; a name and topics from the model."""
    settings = get_settings()
    locked = state.get("locked") or {}
    said = user_said(state)
    description = said[0] if said else "Questions and answers."
    chunks = load_chunks(run_root() / "documents")
    source = contract.source_of(locked, len(chunks))
    note = contract.SOURCE_NOTES[source["source"]].format(
        chunks=ngettext("{n} chunk", "{n} chunks", len(chunks))
    )
    msgs = as_messages(
        contract.PROPOSE_RAG_SYSTEM.format(
            user_language=user_language(state, said), source_note=note
        ),
        prompts.PROPOSE_USER.format(conversation=transcript(state["messages"])),
    )
    notes: list[str] = []
    try:
        p = await structured_call(get_chat_model("steer"), contract.RagProposal, msgs)
    except LLMBadOutput:  # a name and topics are all it gives: the contract stands without them
        p = contract.RagProposal()
        notes.append(_("could not read the model's proposal, so I used plain defaults"))
    language = archetypes.data_language(said, locked=locked, archetype=None, model=p.language)
    wanted = locked.get("size") or archetypes.stated_size(said) or p.size
    size = min(max(wanted, 1), settings.max_rows)
    if size != wanted:
        notes.append(_("size {wanted:,} is out of range, using {size:,}", wanted=wanted, size=size))
    spec = make_spec(
        {
            "task": "rag",
            "name": archetypes.dataset_name(description, p.name, None),
            "description": description[:2000],
            "language": language,
            "size": size,
            # passages from documents or a dataset say what the rows are about; the model's
            # topics only steer passages it writes itself
            "style": {
                "topics": archetypes.merge_topics(p.topics, None)
                if source["source"] == "description"
                else []
            },
            "rag": source,
        }
    )
    stated = read_reply(" ".join(said), spec, "contract")
    spec = contract.with_stated_shape(
        spec, stated.edits if stated else [], max_rows=settings.max_rows
    )
    docs = (
        "\n\n"
        + ngettext(
            "Every passage is the one chunk of your documents, used verbatim.",
            "Each passage is one of the {n} chunks of your documents, used verbatim; every chunk "
            "is used once before any is used twice.",
            len(chunks),
        )
        if chunks
        else ""
    )
    ask = _(
        "Approve it to see a sample, or tell me what to change (e.g. {examples}).",
        examples=change_examples(spec),
    )
    return first_contract(state, spec, render(spec), notes, ask=ask, intro=p.intro, extra=docs)


def change_examples(spec: DatasetSpec) -> str:
    """Two refinements that fit this contract, as a person would type them."""
    hard = spec.rag is not None and spec.rag.hard_negatives
    first = _("“harder questions”") if not hard else _("“shorter answers”")
    second = _("“add hard negatives”") if not hard else _("“add reranking”")
    return f"{first}, {second}"


async def critique(state: State, spec: DatasetSpec, rows: list[dict[str, Any]]) -> Command[Any]:
    """The RAG sample: the rows as a table, what the judge found (answerable, supported,
    negatives not answered) in words, the exact figures in the fold."""
    fig = figures(rows)
    text = (
        _(
            "Sample {k} (contract v{version}): {n} rows.",
            k=state.get("samples_made", 1),
            version=spec.version,
            n=len(rows),
        )
        + "\n\n"
        + summary(fig)
        + "\n\n"
        + _(
            "Approve to generate all {n:,} rows, say “generate N” for another size, or ask for "
            "changes (e.g. {examples}).",
            n=spec.size,
            examples=change_examples(spec),
        )
    )
    return Command(
        goto="review_sample",
        update={
            "critique": fig,
            "messages": [
                say(
                    text,
                    kind="sample",
                    table=table(rows),
                    details=details(fig),
                    rows=shown(rows),
                )
            ],
            "stage": "sample",
        },
    )


def run_figures(spec: DatasetSpec, rows: Any) -> dict[str, Any]:
    return figures(rows)


def paused_tips(fig: dict[str, Any]) -> list[str]:
    return [_("add topics, or attach more documents: the questions repeat")]


def run_report(
    spec: DatasetSpec, fig: dict[str, Any], made: int, replaced: int, rows: Any
) -> tuple[str, str, str]:
    line = _(
        "Generated {made:,} of {n:,} rows; {dup} near copies were replaced.",
        made=made,
        n=spec.size,
        dup=replaced,
    )
    return line, summary(fig), details(fig)


def starting(n: int) -> str:
    return _("Starting the full run of {n:,} rows…", n=n)
