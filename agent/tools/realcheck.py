"""Real-data check: does a classifier trained on the synthetic rows work on real labelled rows?

The user attaches a small CSV of real examples (UTF-8, columns `text` and `label`; other columns are
ignored; label names are normalised like the contract's, so "Very Positive" matches `very-positive`).
`real_check` trains TF-IDF (word 1–2-grams) + logistic regression on the synthetic rows and scores
it on the real rows, beside the same classifier trained and scored on the real rows alone by
stratified k-fold cross-validation (k = min(5, rows of the smallest real label), at least 2). The
second number is what a little real data already gives; the first is what the synthetic data gives.

Return shape (every number within [0, 1]):

    {"labels": [...], "synthetic_rows": int, "real_rows": int,
     "synthetic_to_real": {"accuracy", "macro_f1", "f1": {label: float}},
     "real_cv": {"accuracy", "macro_f1", "f1": {label: float}, "folds": int},
     "notes": [str]}

`labels` are the contract's labels that occur in the real rows (scores are over those). Single-label
contracts only. Bad input raises `RealDataError` with a message written for the user.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from agent.i18n import _
from agent.spec import DatasetSpec, clean_label
from agent.tools.quality import row_labels

MIN_REAL_ROWS = 10
MAX_REAL_ROWS = 20_000
MAX_FOLDS = 5


class RealDataError(ValueError):
    """The real-data CSV cannot be used; the message says why and what to do."""


def load_real_csv(source: str | Path | bytes, labels: list[str]) -> list[tuple[str, str]]:
    """Read and validate (text, label) pairs from a CSV path or its bytes."""
    raw = source if isinstance(source, bytes) else Path(source).read_bytes()
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RealDataError(
            _(
                "The CSV is not UTF-8 (byte 0x{byte:02x} at position {at}); save it as UTF-8 and "
                "attach it again.",
                byte=raw[exc.start],
                at=exc.start,
            )
        ) from None
    try:
        reader = csv.DictReader(io.StringIO(content))
        header = [(h or "").strip().lower() for h in reader.fieldnames or []]
        missing = [c for c in ("text", "label") if c not in header]
        if missing:
            raise RealDataError(
                _(
                    "The CSV needs the columns text and label; missing: {missing} (found: {found}).",
                    missing=", ".join(missing),
                    found=", ".join(h for h in header if h) or _("no header"),
                )
            )
        reader.fieldnames = header
        records = list(reader)
    except csv.Error as exc:
        raise RealDataError(_("The CSV could not be read: {error}.", error=exc)) from None
    if len(records) > MAX_REAL_ROWS:
        raise RealDataError(
            _(
                "Use at most {most:,} real rows; the CSV has {n:,}.",
                most=MAX_REAL_ROWS,
                n=len(records),
            )
        )
    pairs: list[tuple[str, str]] = []
    unknown: Counter[str] = Counter()
    for n, rec in enumerate(records, start=2):  # line 1 is the header
        text, label = (rec.get("text") or "").strip(), (rec.get("label") or "").strip()
        if not text or not label:
            raise RealDataError(
                _("Line {n} has an empty text.", n=n)
                if not text
                else _("Line {n} has an empty label.", n=n)
            )
        name = clean_label(label)
        if name not in labels:
            unknown[label] += 1
        pairs.append((text, name))
    if unknown:
        shown = ", ".join(f"“{k}” ({v})" for k, v in sorted(unknown.items())[:10])
        raise RealDataError(
            _(
                "Unknown labels in the CSV: {shown}. The contract's labels are: {labels}.",
                shown=shown,
                labels=", ".join(labels),
            )
        )
    if len(pairs) < MIN_REAL_ROWS:
        raise RealDataError(
            _(
                "The CSV has {n} rows; the check needs at least {least} real rows.",
                n=len(pairs),
                least=MIN_REAL_ROWS,
            )
        )
    counts = Counter(label for _text, label in pairs)
    if len(counts) < 2:
        raise RealDataError(_("The real rows must cover at least two labels."))
    thin = sorted(k for k, v in counts.items() if v < 2)
    if thin:
        raise RealDataError(
            _(
                "Each label in the CSV needs at least 2 rows for cross-validation; only one row "
                "for: {labels}.",
                labels=", ".join(thin),
            )
        )
    return pairs


def _model(seed: int) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
        LogisticRegression(max_iter=2000, class_weight="balanced", random_state=seed),
    )


def _scores(truth: list[str], pred: list[str], labels: list[str]) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, f1_score

    f1 = f1_score(truth, pred, labels=labels, average=None, zero_division=0)
    return {
        "accuracy": round(float(accuracy_score(truth, pred)), 4),
        "macro_f1": round(float(f1.mean()), 4),
        "f1": {k: round(float(v), 4) for k, v in zip(labels, f1, strict=True)},
    }


def real_check(
    spec: DatasetSpec,
    synthetic: Iterable[dict[str, Any]],
    real: str | Path | bytes,
    *,
    seed: int = 0,
) -> dict[str, Any]:
    """Score a synthetic-trained classifier on the real rows, beside cross-validation on them."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    if spec.multi_label:
        raise RealDataError(_("The real-data check supports single-label datasets only."))
    pairs = load_real_csv(real, spec.label_names)
    syn = [(str(r["text"]), row_labels(r)[0]) for r in synthetic if row_labels(r)]
    syn_labels = Counter(label for _text, label in syn)
    if len(syn_labels) < 2:
        raise RealDataError(_("The synthetic rows must cover at least two labels to train on."))
    texts, truth = [t for t, _label in pairs], [lab for _text, lab in pairs]
    counts = Counter(truth)
    labels = [k for k in spec.label_names if k in counts]
    notes = []
    absent = [k for k in spec.label_names if k not in counts]
    if absent:
        notes.append(_("no real rows for {labels}: not scored", labels=", ".join(absent)))
    untrained = [k for k in labels if k not in syn_labels]
    if untrained:
        notes.append(
            _(
                "no synthetic rows for {labels}: the classifier cannot predict it",
                labels=", ".join(untrained),
            )
        )

    model = _model(seed).fit([t for t, _label in syn], [lab for _text, lab in syn])
    on_real = _scores(truth, list(model.predict(texts)), labels)

    folds = max(2, min(MAX_FOLDS, min(counts.values())))
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    cv_pred = cross_val_predict(_model(seed), texts, truth, cv=cv)
    return {
        "labels": labels,
        "synthetic_rows": len(syn),
        "real_rows": len(pairs),
        "synthetic_to_real": on_real,
        "real_cv": {**_scores(truth, list(cv_pred), labels), "folds": folds},
        "notes": notes,
    }


def render_real_check(result: dict[str, Any]) -> str:
    """A Markdown summary for the chat: accuracy and per-label F1, synthetic-trained vs real CV."""
    a, b = result["synthetic_to_real"], result["real_cv"]
    lines = [
        _(
            "**Real-data check** — {real} real rows, {synthetic} synthetic rows",
            real=result["real_rows"],
            synthetic=result["synthetic_rows"],
        ),
        "",
        _(
            "| | trained on synthetic, scored on real | real only, {folds}-fold cross-validation |",
            folds=b["folds"],
        ),
        "|---|---|---|",
        f"| accuracy | {a['accuracy']:.2f} | {b['accuracy']:.2f} |",
        f"| macro F1 | {a['macro_f1']:.2f} | {b['macro_f1']:.2f} |",
    ]
    lines += [f"| F1 {k} | {a['f1'][k]:.2f} | {b['f1'][k]:.2f} |" for k in result["labels"]]
    lines += [f"- {n}" for n in result["notes"]]
    return "\n".join(lines)
