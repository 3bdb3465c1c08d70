"""Real-data check: end to end on the built-in toy CSV, and clear errors for bad CSVs."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from agent.spec import DatasetSpec, make_spec
from agent.tools.realcheck import RealDataError, load_real_csv, real_check, render_real_check

TOY = Path(__file__).parent / "data" / "real_reviews.csv"
LABELS = ["positive", "negative", "neutral"]
CUES = {
    "positive": "great love excellent happy perfect brilliant comfortable delighted".split(),
    "negative": "broken terrible awful refund disappointed damaged worst returning".split(),
    "neutral": "arrived standard contains size colour litres delivered described".split(),
}
NOUNS = "order kettle jacket charger lamp shoes camera cable box blender support delivery".split()


def _spec(multi: bool = False) -> DatasetSpec:
    return make_spec(
        {
            "description": "Product reviews.",
            "labels": [{"name": n, "definition": f"{n} review"} for n in LABELS],
            "multi_label": multi,
        }
    )


def _synthetic(n: int = 20) -> list[dict]:
    rng = random.Random(1)
    return [
        {"text": " ".join(rng.sample(CUES[lab], 3) + rng.sample(NOUNS, 3)), "label": lab}
        for lab in LABELS
        for _ in range(n)
    ]


def _in_unit(x: float) -> bool:
    return 0.0 <= x <= 1.0


def test_toy_set_end_to_end_numbers_in_unit_interval() -> None:
    result = real_check(_spec(), _synthetic(), TOY)
    assert result["labels"] == LABELS
    assert (result["synthetic_rows"], result["real_rows"]) == (60, 30)
    assert result["real_cv"]["folds"] == 5  # 10 real rows per label
    for part in ("synthetic_to_real", "real_cv"):
        scores = result[part]
        assert set(scores) >= {"accuracy", "macro_f1", "f1"}
        assert set(scores["f1"]) == set(LABELS)
        assert all(
            _in_unit(v) for v in [scores["accuracy"], scores["macro_f1"], *scores["f1"].values()]
        )
    assert result["synthetic_to_real"]["accuracy"] > 1 / 3  # the cue words carry over
    assert result["notes"] == []
    assert real_check(_spec(), _synthetic(), TOY.read_bytes()) == result  # bytes, deterministic
    card = render_real_check(result)
    assert "5-fold cross-validation" in card and "| F1 neutral |" in card


def test_folds_adapt_to_the_smallest_label_and_notes(tmp_path: Path) -> None:
    lines = TOY.read_text(encoding="utf-8").splitlines()
    keep = [lines[0], *[ln for ln in lines[1:] if not ln.endswith(",neutral")]]
    keep = [
        ln for i, ln in enumerate(keep) if not (ln.endswith(",negative") and i > 13)
    ]  # 3 negative
    path = tmp_path / "r.csv"
    path.write_text("\n".join(keep) + "\n", encoding="utf-8")
    synthetic = [r for r in _synthetic() if r["label"] != "negative"]
    result = real_check(_spec(), synthetic, path)
    assert result["labels"] == ["positive", "negative"]
    assert result["real_cv"]["folds"] == 3
    assert result["notes"] == [
        "no real rows for neutral: not scored",
        "no synthetic rows for negative: the classifier cannot predict it",
    ]
    assert result["synthetic_to_real"]["f1"]["negative"] == 0.0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"text,category\nhello,positive\n", "missing: label"),
        (b"body\nhello\n", "missing: text, label"),
        (b"", "found: no header"),
        (
            b"text,label\n" + b"nice,positive\nbad,negative\n" * 3 + b"meh,so-so\n",
            "Unknown labels in the CSV: “so-so” (1)",
        ),
        (
            b"text,label\n" + b"nice,positive\nbad,negative\n" * 4,
            "has 8 rows; the check needs at least 10",
        ),
        (b"text,label\n" + b"nice,positive\n" * 12, "at least two labels"),
        (
            b"text,label\n" + b"nice,positive\n" * 11 + b"bad,negative\n",
            "only one row for: negative",
        ),
        (b"text,label\ncaf\xe9,positive\n", "not UTF-8 (byte 0xe9 at position 14)"),
        (b"text,label\n,positive\n", "Line 2 has an empty text"),
    ],
)
def test_bad_csvs_give_clear_errors(content: bytes, message: str) -> None:
    with pytest.raises(RealDataError) as err:
        load_real_csv(content, LABELS)
    assert message in str(err.value)


def test_labels_and_headers_are_normalised() -> None:
    content = "\ufeffText,Label,source\n" + "Nice one,Positive,web\nBad one,NEGATIVE ,web\n" * 5
    pairs = load_real_csv(content.encode("utf-8"), LABELS)
    assert pairs[:2] == [("Nice one", "positive"), ("Bad one", "negative")]


def test_multi_label_and_one_label_synthetic_are_refused() -> None:
    with pytest.raises(RealDataError, match="single-label"):
        real_check(_spec(multi=True), _synthetic(), TOY)
    with pytest.raises(RealDataError, match="at least two labels to train"):
        real_check(_spec(), [{"text": "x", "label": "positive"}], TOY)
