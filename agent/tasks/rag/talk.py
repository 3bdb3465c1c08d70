"""How RAG rows show in the chat: the sample as a table, what the judge found in plain words,
the exact figures for the Details fold."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from agent.i18n import _, ngettext
from agent.tools.dedup import Deduper


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
        row = {
            _("passage"): str(r.get("context", "")),
            _("question"): str(r.get("question", "")),
            _("answer"): str(r.get("response", "")),
        }
        for key, title in extra:
            if r.get(key):
                row[title] = str(r[key])
        row[_("second model")] = _verdict(r)
        out.append(row)
    return out
