"""Export finished rows as a Hub-ready dataset folder: Parquet data, a dataset card and the contract.

Layout of `out_dir`::

    data/train-00000-of-00001.parquet   text + label (ClassLabel) or labels (List(ClassLabel)) + provenance
    README.md                           dataset card (huggingface_hub's `DatasetCard`): metadata the Hub
                                        and `load_dataset` read, then the text
    spec.json                           the approved contract

The folder is written to a temporary sibling and swapped in, so a failed export never damages an
earlier one. Secrets are never written: model-info keys that look like credentials are dropped.

The download (`zip_folder`) is that folder plus the same rows for a spreadsheet, beside the folder
rather than in it (so `load_dataset` of the unzipped folder reads what it always did)::

    <name>/…                the folder above
    <name>.csv              UTF-8 (with a BOM, so Excel reads the diacritics)
    <name>.xlsx             the same table for Excel / LibreOffice (openpyxl)

Label ids become their names; a conversation (`messages`) becomes one column of "role: text"
paragraphs.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import shutil
import tempfile
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import datasets
import pyarrow.parquet as pq
from huggingface_hub import DatasetCard, DatasetCardData

from agent.spec import DatasetSpec

log = logging.getLogger(__name__)
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
    ds = _build_chat_dataset(spec, rows) if spec.task == "chat" else _build_dataset(spec, rows)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        (tmp / "data").mkdir()
        ds.to_parquet(str(tmp / DATA_FILE))
        (tmp / "spec.json").write_text(spec.model_dump_json(indent=2), encoding="utf-8")
        render = render_chat_card if spec.task == "chat" else render_card
        card = render(
            spec, ds, model_info=model_info, history=history, metrics=metrics, license=license
        )
        (tmp / "README.md").write_text(card, encoding="utf-8")
        _swap(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def zip_folder(folder: Path) -> Path:
    """Zip `folder` into `<folder>.zip` next to it: the folder itself, and beside it the rows as
    `<folder>.csv` and `<folder>.xlsx` for people who open data in a spreadsheet."""
    folder = Path(folder)
    archive = folder.with_name(f"{folder.name}.zip")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{archive.name}.", dir=folder.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(folder.rglob("*")):
                zf.write(path, Path(folder.name) / path.relative_to(folder))
            data = folder / DATA_FILE
            if data.is_file():
                with zf.open(f"{folder.name}.csv", "w") as raw:
                    write_csv(data, raw)
                if pq.ParquetFile(data).metadata.num_rows <= XLSX_MAX_ROWS:
                    with zf.open(f"{folder.name}.xlsx", "w") as raw:
                        write_xlsx(data, raw)
                else:
                    log.info("%s: too many rows for a spreadsheet; the zip holds the CSV", folder)
        tmp.replace(archive)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return archive


# --- the same rows for a spreadsheet ------------------------------------------------------------

XLSX_MAX_ROWS = 1_048_575  # Excel's sheet limit, less the header
XLSX_MAX_CELL = 32_767  # Excel's cell limit (characters)


def _readable(feature: Any) -> Any:
    """A function turning one stored value of `feature` into a spreadsheet cell."""
    if isinstance(feature, datasets.ClassLabel):
        return lambda v: None if v is None else feature.int2str(v)
    inner = getattr(feature, "feature", None)
    if isinstance(feature, datasets.List | datasets.Sequence) and isinstance(inner, dict):
        if {"role", "content"} <= set(inner):  # a conversation
            return lambda v: (
                None if v is None else "\n\n".join(f"{m['role']}: {m['content']}" for m in v)
            )
    if isinstance(feature, datasets.List | datasets.Sequence):
        item = _readable(inner)
        return lambda v: None if v is None else "; ".join(str(item(x)) for x in v)
    return lambda v: v


def spreadsheet_rows(parquet: Path, batch_size: int = 1_000) -> Iterator[list[Any]]:
    """The header, then each row as plain cells: label names, "role: text" conversations,
    lists joined with "; ". Streams the Parquet file in batches."""
    source = pq.ParquetFile(parquet)
    features = datasets.Features.from_arrow_schema(source.schema_arrow)
    columns = list(features)
    header = ["conversation" if c == "messages" else c for c in columns]
    cells = [_readable(features[c]) for c in columns]
    yield header
    for batch in source.iter_batches(batch_size=batch_size):
        values = [batch.column(c).to_pylist() for c in columns]
        for row in zip(*values, strict=True):
            yield [cell(v) for cell, v in zip(cells, row, strict=True)]


def write_csv(parquet: Path, out: Any) -> None:
    """The rows as CSV (UTF-8 with a BOM: Excel otherwise garbles ă, ș, ț) to a binary stream."""
    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="")
    writer = csv.writer(text)
    for row in spreadsheet_rows(parquet):
        writer.writerow(["" if v is None else v for v in row])
    text.flush()
    text.detach()


def write_xlsx(parquet: Path, out: Any) -> None:
    """The rows as one Excel sheet (openpyxl's streaming writer) to a binary stream."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    book = Workbook(write_only=True)
    sheet = book.create_sheet("data")
    sheet.freeze_panes = "A2"
    rows = spreadsheet_rows(parquet)
    header = next(rows)
    wide = {"text", "conversation", "judge_reasons"}
    for i, name in enumerate(header, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = 80 if name in wide else 16
    bold = Font(bold=True)
    titles = []
    for name in header:
        cell = WriteOnlyCell(sheet, value=name)
        cell.font = bold
        titles.append(cell)
    sheet.append(titles)
    wrap = Alignment(wrap_text=True, vertical="top")

    def clean(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        value = ILLEGAL_CHARACTERS_RE.sub("", value)  # control characters Excel refuses
        return value if len(value) <= XLSX_MAX_CELL else value[: XLSX_MAX_CELL - 1] + "…"

    conversation = header.index("conversation") if "conversation" in header else -1
    for row in rows:
        cells: list[Any] = [clean(v) for v in row]
        if conversation >= 0:
            cell = WriteOnlyCell(sheet, value=cells[conversation])
            cell.alignment = wrap
            cells[conversation] = cell
        sheet.append(cells)
    book.save(out)


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


def card_data(spec: DatasetSpec, ds: datasets.Dataset, license: str) -> DatasetCardData:
    """The card's metadata: what the Hub shows and searches on, and what `load_dataset` reads."""
    n = ds.num_rows
    code = LANGUAGE_CODES.get(spec.language.strip().lower())
    chat = spec.task == "chat"
    kind = "multi-label-classification" if spec.multi_label else "multi-class-classification"
    return DatasetCardData(
        license=license,
        language=[code] if code else None,
        task_categories=["text-generation"] if chat else ["text-classification"],
        task_ids=None if chat else [kind],
        size_categories=[size_category(n)],
        tags=["synthetic", "dataset-agent", *(["sft", "conversational"] if chat else [])],
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


def _card(data: DatasetCardData, text: str) -> str:
    """A `DatasetCard` of that metadata and Markdown text, as README.md holds it. (Not
    `DatasetCard.from_template`: it renders Jinja, and the text quotes what the user wrote.)"""
    return str(DatasetCard(f"---\n{data.to_yaml()}\n---\n{text}"))


def _history(history: list[dict]) -> str:
    if not history:
        return "No version history was recorded."
    lines = []
    for entry in history:
        diff = [str(d) for d in entry.get("diff") or []]
        brief = "; ".join(diff[:5]) + (f"; … ({len(diff) - 5} more)" if len(diff) > 5 else "")
        lines.append(f"- v{entry.get('version', '?')}: {brief or 'first version'}")
    return "\n".join(lines)


def _method_and_quality(model_info: dict[str, str], metrics: dict[str, Any]) -> tuple[str, str]:
    """The card's model-settings and quality tables, with anything secret-looking left out."""
    info = {k: v for k, v in model_info.items() if not is_secret(k, v)}
    made = (
        _table(("setting", "value"), info.items()) if info else "No model information was recorded."
    )
    shown = {k: v for k, v in metrics.items() if not is_secret("", v)}
    quality = (
        _table(("metric", "value"), shown.items()) if shown else "No quality figures were recorded."
    )
    return made, quality


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
    made, quality = _method_and_quality(model_info, metrics)
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
    text = f"""
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
    return _card(card_data(spec, ds, license), text)


# --- chat / SFT ----------------------------------------------------------------------------------

MESSAGE = {"role": _STR, "content": _STR}
CHAT_PROVENANCE: dict[str, tuple[Any, str]] = {
    "persona": (_STR, "Kind of user the generator played."),
    "intent": (_STR, "What the user wanted (quota-balanced)."),
    "topic": (_STR, "Topic the conversation was asked to cover."),
    "source": (_STR, "Attached document the conversation is grounded in (or empty)."),
    "chunk_id": (_STR, "Id of the document chunk the answers must be supported by (or empty)."),
    "rating": (datasets.Value("int64"), "Judge model's overall rating, 1 (bad) to 5 (excellent)."),
    "judge_reasons": (_STR, "The judge's reasons, written before its rating."),
    "follows_system_prompt": (
        datasets.Value("bool"),
        "Judge: the assistant follows its system prompt.",
    ),
    "grounded": (
        datasets.Value("bool"),
        "Judge: every answer is supported by the document (grounded runs).",
    ),
    "row_id": (datasets.Value("int64"), "Position of the row in the generation plan."),
}


def _build_chat_dataset(spec: DatasetSpec, rows: Iterable[dict]) -> datasets.Dataset:
    """`messages` as TRL's SFTTrainer expects, plus provenance; every row is checked first."""
    from agent.tools.chat_task import validate_messages

    cols: dict[str, list[Any]] = {"messages": [], **{k: [] for k in CHAT_PROVENANCE}}
    seen: set[str] = set()
    for n, row in enumerate(rows):
        messages = row.get("messages")
        problem = validate_messages(messages) if isinstance(messages, list) else "no messages list"
        if problem:
            raise ValueError(f"Row {n}: {problem}.")
        cols["messages"].append([{"role": m["role"], "content": m["content"]} for m in messages])  # type: ignore[union-attr]
        for k in CHAT_PROVENANCE:
            v = row.get(k)
            if v is not None:
                seen.add(k)
            cols[k].append(v)
    for k in CHAT_PROVENANCE:
        if k not in seen:
            del cols[k]
    if "row_id" in cols and None not in cols["row_id"]:
        order = sorted(range(len(cols["row_id"])), key=cols["row_id"].__getitem__)
        cols = {k: [v[i] for i in order] for k, v in cols.items()}
    feats = {
        "messages": datasets.List(MESSAGE),
        **{k: CHAT_PROVENANCE[k][0] for k in cols if k != "messages"},
    }
    return datasets.Dataset.from_dict(cols, features=datasets.Features(feats))


def render_chat_card(
    spec: DatasetSpec,
    ds: datasets.Dataset,
    *,
    model_info: dict[str, str],
    history: list[dict],
    metrics: dict[str, Any],
    license: str = "other",
) -> str:
    """The card for conversations: shape, system prompt, method, quality, limits, columns, loading."""
    chat = spec.chat
    assert chat is not None
    n = ds.num_rows
    made, quality = _method_and_quality(model_info, metrics)
    columns = _table(
        ("column", "type", "description"),
        [
            (
                "messages",
                "list of {role, content}",
                "System (optional), then alternating user and assistant turns, ending with the assistant.",
            )
        ]
        + [
            (k, str(ds.features[k]), CHAT_PROVENANCE[k][1])
            for k in ds.column_names
            if k in CHAT_PROVENANCE
        ],
    )
    grounded = (
        "Each conversation was grounded in a chunk of the attached documents; the assistant was told to "
        "answer only from it, and the judge checked that."
        if chat.grounded
        else "Conversations are not grounded in documents: answers come from the model's own knowledge."
    )
    system = chat.system_prompt.replace("\n", "\n> ")
    text = f"""
# {spec.name}

Synthetic chat conversations in {spec.language} for supervised fine-tuning: {n:,} conversations of
{chat.turns} user turn(s) each, made by dataset-agent from an approved contract (v{spec.version}).

## What it is for

{spec.description}

## Conversation shape

> {system}

- personas: {", ".join(chat.personas) or "—"}
- intents: {", ".join(chat.intents) or "—"} (balanced by quota)
- topics: {", ".join(spec.style.topics) or "—"}
- answers: {chat.answer_style}; {chat.answer_length}

## How it was made

An LLM wrote each user turn from a sampled persona, intent and topic (follow-ups from the
conversation so far); the assistant turns are ordinary chat completions under the system prompt.
{grounded} A judge model rated every conversation (reasons first) from 1 to 5.

{made}

The contract went through {len(history) or 1} version(s); it is in `spec.json`.

{_history(history)}

## Quality

{quality}

## Known limits

- Both sides of every conversation were written by an LLM: users may sound less varied than real
  people, and answers may be wrong or inherit the model's biases. Check before training.
- The judge's ratings are another model's opinion, not human review.

## Columns

{columns}

## Loading

```python
from datasets import load_dataset

ds = load_dataset("<user>/{spec.name}")  # or the local folder path
# TRL: SFTTrainer(model=..., train_dataset=ds["train"])  — the `messages` column is used as is
```
"""
    return _card(card_data(spec, ds, license), text)
