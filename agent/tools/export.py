"""Export finished rows as a Hub-ready dataset folder: Parquet data, a dataset card and the contract.

Layout of `out_dir`::

    data/train-00000-of-00001.parquet   text + label (ClassLabel) or labels (List(ClassLabel)) + provenance
    README.md                           dataset card with a YAML header the Hub and `load_dataset` read
    spec.json                           the approved contract

The folder is written to a temporary sibling and swapped in, so a failed export never damages an
earlier one. Secrets are never written: model-info keys that look like credentials are dropped.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import datasets
import yaml

from agent.spec import DatasetSpec

DATA_FILE = "data/train-00000-of-00001.parquet"
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

# Provenance columns: name → (feature, description for the card).
_STR = datasets.Value("string")
PROVENANCE: dict[str, tuple[Any, str]] = {
    "judge_label": (
        _STR,
        "Label a blind judge model gave the text without seeing the target (or empty).",
    ),
    "judge_labels": (
        datasets.List(_STR),
        "Labels a blind judge model gave the text without seeing the targets (or empty).",
    ),
    "agreement": (datasets.Value("bool"), "Whether the judge agreed with the assigned label(s)."),
    "topic": (_STR, "Topic the generator was asked to write about."),
    "length": (_STR, "Length band the generator was asked for."),
    "tone": (_STR, "Tone the generator was asked for."),
    "clarity": (_STR, "How clearly the text was asked to express its label."),
    "row_id": (datasets.Value("int64"), "Position of the row in the generation plan."),
}


def export_dataset(
    spec: DatasetSpec,
    rows: Iterable[dict],
    out_dir: Path,
    *,
    model_info: dict[str, str],
    history: list[dict],
    metrics: dict[str, Any],
    license: str = "other",
) -> Path:
    """Write `out_dir` (replacing it atomically if present) and return it.

    Raises ValueError for a row whose label is not in the contract; nothing is written then.
    """
    out_dir = Path(out_dir)
    ds = _build_dataset(spec, rows)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        (tmp / "data").mkdir()
        ds.to_parquet(str(tmp / DATA_FILE))
        (tmp / "spec.json").write_text(spec.model_dump_json(indent=2), encoding="utf-8")
        card = render_card(
            spec, ds, model_info=model_info, history=history, metrics=metrics, license=license
        )
        (tmp / "README.md").write_text(card, encoding="utf-8")
        _swap(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def zip_folder(folder: Path) -> Path:
    """Zip `folder` into `<folder>.zip` next to it (the archive holds the folder itself)."""
    folder = Path(folder)
    archive = shutil.make_archive(str(folder), "zip", root_dir=folder.parent, base_dir=folder.name)
    return Path(archive)


# --- data --------------------------------------------------------------------------------------


def _features(spec: DatasetSpec, provenance: list[str]) -> datasets.Features:
    label = datasets.ClassLabel(names=spec.label_names)
    feats: dict[str, Any] = {"text": _STR}
    if spec.multi_label:
        feats["labels"] = datasets.List(label)
    else:
        feats["label"] = label
    feats.update({k: PROVENANCE[k][0] for k in provenance})
    return datasets.Features(feats)


def _build_dataset(spec: DatasetSpec, rows: Iterable[dict]) -> datasets.Dataset:
    """Validate rows and build columns directly (no list of row dicts is copied)."""
    index = {name: i for i, name in enumerate(spec.label_names)}
    label_key = "labels" if spec.multi_label else "label"
    other_judge = "judge_label" if spec.multi_label else "judge_labels"
    allowed = [k for k in PROVENANCE if k != other_judge]
    cols: dict[str, list[Any]] = {"text": [], label_key: [], **{k: [] for k in allowed}}
    seen: set[str] = set()

    def code(name: Any, n: int) -> int:
        if name not in index:
            raise ValueError(
                f"Row {n}: label {name!r} is not in the contract's labels ({', '.join(index)})."
            )
        return index[name]

    for n, row in enumerate(rows):
        if not isinstance(row.get("text"), str):
            raise ValueError(f"Row {n}: 'text' must be a string.")
        if label_key not in row:
            raise ValueError(f"Row {n}: missing {label_key!r} (multi_label={spec.multi_label}).")
        value = row[label_key]
        if spec.multi_label:
            if not isinstance(value, list | tuple):
                raise ValueError(f"Row {n}: 'labels' must be a list of label names.")
            cols[label_key].append([code(v, n) for v in value])
        else:
            cols[label_key].append(code(value, n))
        cols["text"].append(row["text"])
        for k in allowed:
            v = row.get(k)
            if v is not None:
                seen.add(k)
            cols[k].append(v)

    provenance = [k for k in allowed if k in seen]
    for k in allowed:
        if k not in seen:
            del cols[k]
    if "row_id" in provenance and None not in cols["row_id"]:  # rows arrive in completion order
        order = sorted(range(len(cols["row_id"])), key=cols["row_id"].__getitem__)
        cols = {k: [v[i] for i in order] for k, v in cols.items()}
    return datasets.Dataset.from_dict(cols, features=_features(spec, provenance))


def _swap(tmp: Path, out_dir: Path) -> None:
    """Put `tmp` in place of `out_dir`; the old folder is removed only once the new one is in place."""
    if not out_dir.exists():
        tmp.rename(out_dir)
        return
    old = out_dir.with_name(f".{out_dir.name}.old-{tmp.name.rsplit('-', 1)[-1]}")
    out_dir.rename(old)
    try:
        tmp.rename(out_dir)
    except BaseException:
        old.rename(out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)


# --- card --------------------------------------------------------------------------------------


def is_secret(key: str, value: Any) -> bool:
    """True for entries that look like credentials: suspicious key names or token-like values."""
    return bool(_SECRET_KEY.search(str(key)) or _SECRET_VALUE.match(str(value)))


def size_category(n: int) -> str:
    return next((band for limit, band in SIZE_BANDS if n < limit), "n>100M")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        value = f"{value:.3f}".rstrip("0").rstrip(".")
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: tuple[str, ...], rows: Iterable[Iterable[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _header(spec: DatasetSpec, n: int, license: str) -> str:
    meta: dict[str, Any] = {"license": license}
    code = LANGUAGE_CODES.get(spec.language.strip().lower())
    if code:
        meta["language"] = [code]
    meta |= {
        "task_categories": ["text-classification"],
        "task_ids": [
            "multi-label-classification" if spec.multi_label else "multi-class-classification"
        ],
        "size_categories": [size_category(n)],
        "tags": ["synthetic", "dataset-agent"],
        "pretty_name": spec.name,
        "configs": [
            {"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}
        ],
    }
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n"


def _history(history: list[dict]) -> str:
    if not history:
        return "No version history was recorded."
    lines = []
    for entry in history:
        diff = [str(d) for d in entry.get("diff") or []]
        brief = "; ".join(diff[:5]) + (f"; … ({len(diff) - 5} more)" if len(diff) > 5 else "")
        lines.append(f"- v{entry.get('version', '?')}: {brief or 'first version'}")
    return "\n".join(lines)


def render_card(
    spec: DatasetSpec,
    ds: datasets.Dataset,
    *,
    model_info: dict[str, str],
    history: list[dict],
    metrics: dict[str, Any],
    license: str = "other",
) -> str:
    """The dataset card: YAML header, purpose, labels, method, quality, limits, columns, loading."""
    n = ds.num_rows
    label_key = "labels" if spec.multi_label else "label"
    counts: Counter[int] = Counter()
    for value in ds.data.column(label_key).to_pylist():  # only the label column, as ints
        counts.update(value if spec.multi_label else [value])
    labels = _table(
        ("label", "id", "definition", "target share", "rows"),
        (
            (lb.name, i, lb.definition, f"{spec.mix[lb.name] * 100:.0f} %", counts[i])
            for i, lb in enumerate(spec.labels)
        ),
    )
    info = {k: v for k, v in model_info.items() if not is_secret(k, v)}
    made = (
        _table(("setting", "value"), info.items()) if info else "No model information was recorded."
    )
    shown = {k: v for k, v in metrics.items() if not is_secret("", v)}
    quality = (
        _table(("metric", "value"), shown.items()) if shown else "No quality figures were recorded."
    )
    refinements = max(len(history) - 1, 0)
    label_doc = (
        f"List of labels (`List(ClassLabel)`, names in contract order: {', '.join(spec.label_names)})."
        if spec.multi_label
        else f"Label (`ClassLabel`, names in contract order: {', '.join(spec.label_names)})."
    )
    columns = _table(
        ("column", "type", "description"),
        [
            ("text", "string", "The synthetic text."),
            (label_key, str(ds.features[label_key]), label_doc),
        ]
        + [(k, str(ds.features[k]), PROVENANCE[k][1]) for k in ds.column_names if k in PROVENANCE],
    )
    agreement = metrics.get("agreement")
    agree_note = f" (agreement: {_cell(agreement)})" if agreement is not None else ""
    kind = "multi-label" if spec.multi_label else "single-label"
    snippet = (
        "```python\nfrom datasets import load_dataset\n\n"
        f'ds = load_dataset("<user>/{spec.name}")  # or the local folder path\n'
        f'names = ds["train"].features["{label_key}"]'
        f"{'.feature' if spec.multi_label else ''}.names\n"
        f'print(ds["train"][0], names)\n```'
    )
    return f"""{_header(spec, n, license)}
# {spec.name}

A synthetic {kind} text-classification dataset in {spec.language} with {n:,} rows,
made by dataset-agent from an approved contract (v{spec.version}).

## What it is for

{spec.description}

## Labels

{labels}

## How it was made

An LLM wrote each text for a label assigned by quota to match the target shares, varying topic,
tone, length ({spec.style.length}) and clarity; a judge model then relabelled each text blind.

{made}

The contract went through {len(history) or 1} version(s) ({refinements} refinement(s)); it is in
`spec.json`.

{_history(history)}

## Quality

{quality}

## Known limits

- The texts are synthetic, written by an LLM: they may be repetitive, stilted or factually wrong,
  and they inherit the model's biases. Check them before training anything that matters.
- Labels were assigned by quota before writing, not by people; a blind relabel by a judge model
  checked them{agree_note}. Rows where `agreement` is false are worth a look.
- Topics, tones and lengths follow the contract, so the data covers only what the contract asked for.

## Columns

{columns}

## Loading

{snippet}
"""
