"""`python -m agent report DIR [--json]`: the quality figures of an exported dataset folder.

Without `--json` it prints rich tables; with it, one JSON object with these stable keys:

    folder        str         the folder as given
    name          str         the contract's dataset name (spec.json)
    version       int         the contract's version
    multi_label   bool
    figures       object      `agent.tools.quality.figures` — rows, mix, judged, agreement,
                              agreement_per_label, confusion, disagreements, duplicates,
                              exact_duplicates, near_duplicates, duplicate_rate,
                              exact_duplicate_rate, near_duplicate_rate, diversity, length, ratings,
                              generation (always null here: a folder has no run progress); the
                              meaning of each is in that module's docstring
    suggestions   [str]       at most 3, worst problem first

Exit code 1 with a one-line reason on stderr when DIR is not an exported folder.
"""

from __future__ import annotations

import json as jsonlib
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from agent.tools import quality


def report_data(folder: Path, *, embeddings: bool = False) -> dict[str, Any]:
    """The JSON report of an exported folder (keys in the module docstring)."""
    spec = quality.load_spec(folder)
    fig = quality.figures(spec, quality.rows_from_folder(folder), embeddings=embeddings)
    return {
        "folder": str(folder),
        "name": spec.name,
        "version": spec.version,
        "multi_label": spec.multi_label,
        "figures": fig,
        "suggestions": quality.suggestions(fig),
    }


def report(
    dir: Path = typer.Argument(
        ..., help="An exported dataset folder (data/, README.md, spec.json)."
    ),
    json: bool = typer.Option(False, "--json", help="Print machine-readable JSON (stable keys)."),
    embeddings: bool = typer.Option(
        False, "--embeddings", help="Similarity from MiniLM embeddings (needs the `quality` extra)."
    ),
) -> None:
    """Print the quality figures of an exported dataset folder."""
    try:
        data = report_data(dir, embeddings=embeddings)
    except (OSError, ValueError) as exc:
        Console(stderr=True, soft_wrap=True).print(
            f"[red]Not a readable dataset folder:[/red] {dir} ({exc})"
        )
        raise typer.Exit(1) from None
    if json:
        typer.echo(jsonlib.dumps(data, ensure_ascii=False, indent=2))
        return
    _print(data, Console())


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.1f} %"


def _print(data: dict[str, Any], out: Console) -> None:
    fig = data["figures"]
    div, length = fig["diversity"], fig["length"]
    head = Table(title=f"{data['name']} (contract v{data['version']})", show_header=False)
    head.add_column("metric")
    head.add_column("value", justify="right")
    sim = div["mean_similarity"]
    for k, v in [
        ("rows", f"{fig['rows']:,}"),
        ("judge agreement", f"{_pct(fig['agreement'])} of {fig['judged']:,} judged"),
        ("exact duplicates", f"{fig['exact_duplicates']} ({_pct(fig['exact_duplicate_rate'])})"),
        ("near duplicates", f"{fig['near_duplicates']} ({_pct(fig['near_duplicate_rate'])})"),
        ("distinct-1 / distinct-2", f"{div['distinct_1']:.3f} / {div['distinct_2']:.3f}"),
        (
            "mean pairwise similarity",
            "—"
            if sim is None
            else f"{sim:.3f} ({div['similarity_method']}, {div['sampled']} rows)",
        ),
        (
            "words min / median / mean / max",
            " / ".join(
                "—" if length[k] is None else f"{length[k]:g}"
                for k in ("min", "median", "mean", "max")
            ),
        ),
    ]:
        head.add_row(k, v)
    out.print(head)
    mix = Table(title="Labels")
    for col in ("label", "rows", "share", "target", "error", "judge agrees"):
        mix.add_column(col, justify="left" if col == "label" else "right")
    for name, m in fig["mix"].items():
        mix.add_row(
            name,
            str(m["count"]),
            _pct(m["share"]),
            _pct(m["target"]),
            f"{m['error_pp']:+.1f} pp",
            _pct(fig["agreement_per_label"].get(name)),
        )
    out.print(mix)
    if fig["judged"]:
        conf = Table(title="Confusion (rows: intended, columns: judge)")
        cols = list(next(iter(fig["confusion"].values()), {}))
        conf.add_column("intended")
        for c in cols:
            conf.add_column(c, justify="right")
        for name, row in fig["confusion"].items():
            conf.add_row(name, *(str(row[c]) for c in cols))
        out.print(conf)
    for s in data["suggestions"]:
        out.print(f"• {s}")
