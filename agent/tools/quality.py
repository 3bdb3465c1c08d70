"""Quality figures on a set of rows: label mix against the contract, blind-relabel agreement, duplicates."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from agent.spec import DatasetSpec
from agent.tools.generate import Deduper


def row_labels(row: dict[str, Any]) -> list[str]:
    return list(row["labels"]) if "labels" in row else [row["label"]]


def figures(spec: DatasetSpec, rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Mix (counts, shares, percentage-point error), agreement, per-row disagreements, duplicates."""
    counts: Counter[str] = Counter()
    n = judged = agreed = dupes = 0
    disagreements: list[dict[str, Any]] = []
    dedup = Deduper()
    for row in rows:
        n += 1
        labels = row_labels(row)
        counts.update(labels)
        if dedup.check_and_add(row["text"], str(n)) is not None:
            dupes += 1
        if row.get("agreement") is not None:
            judged += 1
            if row["agreement"]:
                agreed += 1
            elif len(disagreements) < 20:
                judge = row.get("judge_labels") or [row.get("judge_label")]
                disagreements.append(
                    {
                        "row_id": row.get("row_id"),
                        "text": row["text"],
                        "intended": labels,
                        "judge": judge,
                    }
                )
    mix = {}
    for name in spec.label_names:
        share = counts[name] / n if n else 0.0
        mix[name] = {
            "count": counts[name],
            "share": round(share, 4),
            "target": spec.mix[name],
            "error_pp": round((share - spec.mix[name]) * 100, 1),
        }
    return {
        "rows": n,
        "mix": mix,
        "judged": judged,
        "agreement": round(agreed / judged, 3) if judged else None,
        "disagreements": disagreements,
        "duplicates": dupes,
    }


def render_figures(fig: dict[str, Any], notes: dict[str, list[str]] | None = None) -> str:
    """A compact critique card in Markdown."""
    agreement = "n/a" if fig["agreement"] is None else f"{fig['agreement'] * 100:.0f} %"
    lines = [
        f"**Critique** — {fig['rows']} rows · judge agrees on {agreement} "
        f"({fig['judged']} judged) · duplicates: {fig['duplicates']}",
        "",
        "| label | rows | share | target | error |",
        "|---|---|---|---|---|",
    ]
    for name, m in fig["mix"].items():
        lines.append(
            f"| {name} | {m['count']} | {m['share'] * 100:.0f} % | {m['target'] * 100:.0f} % | {m['error_pp']:+.0f} pp |"
        )
    if fig["disagreements"]:
        lines += ["", "Rows the judge labelled differently:"]
        for d in fig["disagreements"][:3]:
            text = d["text"][:140] + ("…" if len(d["text"]) > 140 else "")
            lines.append(
                f"- #{d['row_id']} intended {', '.join(d['intended'])}, judge {d['judge']}: “{text}”"
            )
    if notes:
        if notes.get("problems"):
            lines += ["", "Problems:"] + [f"- {p}" for p in notes["problems"][:3]]
        if notes.get("suggestions"):
            lines += ["", "Suggestions:"] + [f"- {s}" for s in notes["suggestions"][:3]]
    return "\n".join(lines)
