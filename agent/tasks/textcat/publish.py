"""Text classification on the way out: features, dataset card and Argilla settings/records.

Columns: ``text``, ``label`` (`ClassLabel`) or ``labels`` (`List(ClassLabel)` when the contract
is multi-label), names in contract order, then the provenance columns the rows carry
(`PROVENANCE`), sorted back into plan order by ``row_id``.

Argilla settings:
- field ``text`` (`TextField`);
- question ``label`` (`LabelQuestion`) or ``labels`` (`MultiLabelQuestion` when the contract is
  multi-label), with the contract's labels in order; label definitions go into the guidelines;
- the generated label(s) as a suggestion from agent ``dataset-agent``. Its score is the judge's
  agreement: 1.0 when the blind judge agreed, 0.0 when it disagreed, none when the row was not
  judged. Multi-label suggestions carry one score per suggested label: 1.0 when the judge also gave
  that label, 0.0 when it did not (from ``judge_labels``; from ``agreement`` when those are absent);
- metadata: ``text_length`` (characters, integer), ``judge_label`` (terms; a list for multi-label),
  ``agreement`` (terms ``yes``/``no``), ``topic``, ``tone``, ``clarity``, ``length`` (the requested
  band) (terms) and ``row_id`` (integer). Missing values are left out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import datasets
from huggingface_hub import DatasetCardData

from agent.spec import DatasetSpec
from agent.tools.cards import (
    AGENT,
    STR,
    card_markdown,
    cell,
    history_section,
    method_and_quality,
    record_id,
    sort_by_row_id,
    table,
)
from agent.tools.cards import card_data as _card_data

if TYPE_CHECKING:
    import argilla as rg

TERMS = ("topic", "tone", "clarity", "length")

# Provenance columns: name → (feature, description for the card).
PROVENANCE: dict[str, tuple[Any, str]] = {
    "judge_label": (
        STR,
        "Label a blind judge model gave the text without seeing the target (or empty).",
    ),
    "judge_labels": (
        datasets.List(STR),
        "Labels a blind judge model gave the text without seeing the targets (or empty).",
    ),
    "agreement": (datasets.Value("bool"), "Whether the judge agreed with the assigned label(s)."),
    "topic": (STR, "Topic the generator was asked to write about."),
    "length": (STR, "Length band the generator was asked for."),
    "tone": (STR, "Tone the generator was asked for."),
    "clarity": (STR, "How clearly the text was asked to express its label."),
    "row_id": (datasets.Value("int64"), "Position of the row in the generation plan."),
}


# --- data --------------------------------------------------------------------------------------


def _features(spec: DatasetSpec, provenance: list[str]) -> datasets.Features:
    label = datasets.ClassLabel(names=spec.label_names)
    feats: dict[str, Any] = {"text": STR}
    if spec.multi_label:
        feats["labels"] = datasets.List(label)
    else:
        feats["label"] = label
    feats.update({k: PROVENANCE[k][0] for k in provenance})
    return datasets.Features(feats)


def build_dataset(spec: DatasetSpec, rows: Iterable[dict]) -> datasets.Dataset:
    """Validate rows and build columns directly (no list of row dicts is copied).

    Raises ValueError for a row whose label is not in the contract."""
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
    cols = sort_by_row_id(cols)
    return datasets.Dataset.from_dict(cols, features=_features(spec, provenance))


# --- card --------------------------------------------------------------------------------------


def card_data(spec: DatasetSpec, ds: datasets.Dataset, license: str) -> DatasetCardData:
    """The card's metadata for a text-classification dataset."""
    kind = "multi-label-classification" if spec.multi_label else "multi-class-classification"
    return _card_data(spec, ds, license, task_categories=["text-classification"], task_ids=[kind])


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
    labels = table(
        ("label", "id", "definition", "target share", "rows"),
        (
            (lb.name, i, lb.definition, f"{spec.mix[lb.name] * 100:.0f} %", counts[i])
            for i, lb in enumerate(spec.labels)
        ),
    )
    made, quality = method_and_quality(model_info, metrics)
    refinements = max(len(history) - 1, 0)
    label_doc = (
        f"List of labels (`List(ClassLabel)`, names in contract order: {', '.join(spec.label_names)})."
        if spec.multi_label
        else f"Label (`ClassLabel`, names in contract order: {', '.join(spec.label_names)})."
    )
    columns = table(
        ("column", "type", "description"),
        [
            ("text", "string", "The synthetic text."),
            (label_key, str(ds.features[label_key]), label_doc),
        ]
        + [(k, str(ds.features[k]), PROVENANCE[k][1]) for k in ds.column_names if k in PROVENANCE],
    )
    agreement = metrics.get("agreement")
    agree_note = f" (agreement: {cell(agreement)})" if agreement is not None else ""
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

{history_section(history)}

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
    return card_markdown(card_data(spec, ds, license), text)


# --- Argilla -------------------------------------------------------------------------------------


def _question(spec: DatasetSpec) -> str:
    return "labels" if spec.multi_label else "label"


def _name(spec: DatasetSpec, value: Any) -> str:
    """Label name from a name or a ClassLabel index (rows read back from Parquet carry ints)."""
    return spec.label_names[value] if isinstance(value, int) else str(value)


def argilla_settings(spec: DatasetSpec) -> rg.Settings:
    """Argilla dataset settings for a text-classification contract (see the module docstring)."""
    import argilla as rg  # the SDK is only needed when pushing

    question_cls = rg.MultiLabelQuestion if spec.multi_label else rg.LabelQuestion
    guidelines = (
        spec.description
        + "\n\n"
        + "\n".join(f"- **{lb.name}**: {lb.definition}" for lb in spec.labels)
    )
    return rg.Settings(
        guidelines=guidelines,
        fields=[rg.TextField(name="text", title="Text", use_markdown=False)],
        questions=[
            question_cls(
                name=_question(spec),
                labels=spec.label_names,
                title="Labels" if spec.multi_label else "Label",
                description="Pick every label that fits."
                if spec.multi_label
                else "Pick one label.",
            )
        ],
        metadata=[
            rg.IntegerMetadataProperty(name="text_length", title="Text length (characters)"),
            rg.TermsMetadataProperty(name="judge_label", title="Judge label"),
            rg.TermsMetadataProperty(name="agreement", options=["yes", "no"], title="Judge agreed"),
            *(rg.TermsMetadataProperty(name=k, title=k.capitalize()) for k in TERMS),
            rg.IntegerMetadataProperty(name="row_id", title="Row id"),
        ],
    )


def argilla_record(spec: DatasetSpec, row: dict, dataset_name: str, position: int) -> rg.Record:
    """One row as an Argilla record with its suggestion and metadata (see the module docstring)."""
    import argilla as rg

    agreement = row.get("agreement")
    metadata: dict[str, Any] = {"text_length": len(row["text"])}
    value: str | list[str]
    score: float | list[float] | None
    if spec.multi_label:
        value = [_name(spec, v) for v in row.get("labels") or []]
        judged = row.get("judge_labels")
        judge = [_name(spec, v) for v in judged] if judged is not None else None
        if judge is not None:
            metadata["judge_label"] = judge
            score = [1.0 if v in judge else 0.0 for v in value]
        elif agreement is not None:
            score = [1.0 if agreement else 0.0] * len(value)
        else:
            score = None
    else:
        value = _name(spec, row["label"])
        if row.get("judge_label") is not None:
            metadata["judge_label"] = _name(spec, row["judge_label"])
        score = None if agreement is None else (1.0 if agreement else 0.0)
    if agreement is not None:
        metadata["agreement"] = "yes" if agreement else "no"
    metadata |= {k: str(row[k]) for k in TERMS if row.get(k) is not None}
    row_id = row.get("row_id")
    if row_id is not None:
        metadata["row_id"] = int(row_id)
    suggestions = (
        [rg.Suggestion(question_name=_question(spec), value=value, score=score, agent=AGENT)]
        if value
        else []
    )
    return rg.Record(
        id=record_id(dataset_name, row, position),
        fields={"text": row["text"]},
        metadata=metadata,
        suggestions=suggestions,
    )
