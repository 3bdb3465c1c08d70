"""What every kind's dataset card and Argilla records share: the card's metadata (`card_data`),
Markdown tables, the version history, the model-settings and quality tables (secrets left out),
size bands and language codes, and the Argilla record id.

A leaf module: it imports neither `agent.tasks` nor `agent.tools.export`/`argilla`, so each
kind's `publish` module and the generic export can both import it without a cycle.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import datasets
from huggingface_hub import DatasetCard, DatasetCardData

from agent.spec import DatasetSpec

AGENT = "dataset-agent"  # the tag on every card and the agent of every Argilla suggestion
STR = datasets.Value("string")
LANGUAGE_CODES = {
    "english": "en",
    "romanian": "ro",
    "french": "fr",
    "german": "de",
    "spanish": "es",
    "italian": "it",
    "portuguese": "pt",
    "dutch": "nl",
    "chinese": "zh",
    "japanese": "ja",
}
SIZE_BANDS = [
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
]
_SECRET_KEY = re.compile(r"token|key|secret|password", re.IGNORECASE)
_SECRET_VALUE = re.compile(r"^\s*(hf_|sk-|Bearer\s)", re.IGNORECASE)


def is_secret(key: str, value: Any) -> bool:
    """True for entries that look like credentials: suspicious key names or token-like values."""
    return bool(_SECRET_KEY.search(str(key)) or _SECRET_VALUE.match(str(value)))


def size_category(n: int) -> str:
    return next((band for limit, band in SIZE_BANDS if n < limit), "n>100M")


def cell(value: Any) -> str:
    """One Markdown table cell: floats to 3 decimals at most, no pipes or line breaks."""
    if isinstance(value, float):
        value = f"{value:.3f}".rstrip("0").rstrip(".")
    return str(value).replace("|", "\\|").replace("\n", " ")


def table(header: tuple[str, ...], rows: Iterable[Iterable[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def sort_by_row_id(cols: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Columns reordered by `row_id` (rows arrive in completion order), when every row has one."""
    ids = cols.get("row_id")
    if ids is None or None in ids:
        return cols
    order = sorted(range(len(ids)), key=ids.__getitem__)
    return {k: [v[i] for i in order] for k, v in cols.items()}


def card_data(
    spec: DatasetSpec,
    ds: datasets.Dataset,
    license: str,
    *,
    task_categories: Sequence[str],
    task_ids: Sequence[str] | None = None,
    tags: Sequence[str] = (),
) -> DatasetCardData:
    """The card's metadata: what the Hub shows and searches on, and what `load_dataset` reads."""
    n = ds.num_rows
    code = LANGUAGE_CODES.get(spec.language.strip().lower())
    return DatasetCardData(
        license=license,
        language=[code] if code else None,
        task_categories=list(task_categories),
        task_ids=list(task_ids) if task_ids else None,
        size_categories=[size_category(n)],
        tags=["synthetic", AGENT, *tags],
        pretty_name=spec.name,
        # The Hub's viewer reads this; `datasets` also keys its local cache on it — without it,
        # load_dataset(folder) serves an earlier export of the same name from ~/.cache.
        dataset_info={
            "features": ds.features._to_yaml_list(),
            "splits": [{"name": "train", "num_bytes": ds.data.nbytes, "num_examples": n}],
            "dataset_size": ds.data.nbytes,
        },
        configs=[
            {"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}
        ],
    )


def card_markdown(data: DatasetCardData, text: str) -> str:
    """A `DatasetCard` of that metadata and Markdown text, as README.md holds it. (Not
    `DatasetCard.from_template`: it renders Jinja, and the text quotes what the user wrote.)"""
    return str(DatasetCard(f"---\n{data.to_yaml()}\n---\n{text}"))


def history_section(history: list[dict]) -> str:
    """The contract's versions, one line each with (at most five of) its changes."""
    if not history:
        return "No version history was recorded."
    lines = []
    for entry in history:
        diff = [str(d) for d in entry.get("diff") or []]
        brief = "; ".join(diff[:5]) + (f"; … ({len(diff) - 5} more)" if len(diff) > 5 else "")
        lines.append(f"- v{entry.get('version', '?')}: {brief or 'first version'}")
    return "\n".join(lines)


def method_and_quality(model_info: dict[str, str], metrics: dict[str, Any]) -> tuple[str, str]:
    """The card's model-settings and quality tables, with anything secret-looking left out."""
    info = {k: v for k, v in model_info.items() if not is_secret(k, v)}
    made = (
        table(("setting", "value"), info.items()) if info else "No model information was recorded."
    )
    shown = {k: v for k, v in metrics.items() if not is_secret("", v)}
    quality = (
        table(("metric", "value"), shown.items()) if shown else "No quality figures were recorded."
    )
    return made, quality


def record_id(dataset_name: str, row: dict[str, Any], position: int) -> str:
    """An Argilla record id stable across retried pushes: the row's plan position when known."""
    row_id = row.get("row_id")
    return f"{dataset_name}-{row_id if row_id is not None else position}"
