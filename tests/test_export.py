"""Export: Hub-ready folder that loads back with ClassLabel names, a parseable card, no secrets;
the download also opens in a spreadsheet (CSV and .xlsx beside the folder)."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import datasets
import pandas as pd
import pytest
from huggingface_hub import DatasetCard

from agent.spec import DatasetSpec, make_spec
from agent.tasks.textcat.publish import card_data
from agent.tools.cards import size_category
from agent.tools.export import export_dataset, zip_folder

HISTORY = [
    {"version": 1, "diff": []},
    {"version": 2, "diff": ["~ mix positive: 50 % → 70 %", "~ size: 100 → 6"]},
]
METRICS = {"agreement": 0.833, "duplicates_replaced": 2, "failures": 0}
MODEL = {"provider": "ollama", "model": "llama3.1:8b", "temperature": "0.9"}


def _spec(multi: bool = False) -> DatasetSpec:
    # Contract order deliberately not alphabetical, to check it is kept.
    return make_spec(
        {
            "name": "Movie Reviews",
            "description": "Sentiment of short movie reviews.",
            "labels": [
                {"name": "positive", "definition": "Likes the film."},
                {"name": "negative", "definition": "Dislikes the film."},
                {"name": "mixed", "definition": "Both."},
            ],
            "mix": {"positive": 0.7, "negative": 0.2, "mixed": 0.1},
            "multi_label": multi,
            "language": "Romanian",
            "size": 6,
        }
    )


def _rows(multi: bool = False, n: int = 6) -> list[dict]:
    names = ["positive", "negative", "mixed"]
    rows = []
    for i in reversed(range(n)):  # completion order, not plan order
        row: dict = {"row_id": i, "text": f"text {i}", "topic": "drama", "tone": "calm"}
        if multi:
            row["labels"] = [names[i % 3], names[(i + 1) % 3]]
            row["judge_labels"] = None if i == 0 else [names[i % 3]]
        else:
            row["label"] = names[i % 3]
            row["judge_label"] = None if i == 0 else names[i % 3]
        row["agreement"] = None if i == 0 else i % 2 == 0
        rows.append(row)
    return rows


def _export(tmp_path: Path, multi: bool = False, **kw) -> Path:
    args = {"model_info": MODEL, "history": HISTORY, "metrics": METRICS} | kw
    return export_dataset(_spec(multi), _rows(multi), tmp_path / "out", **args)


@pytest.mark.parametrize("multi", [False, True])
def test_export_loads_back_with_classlabels(tmp_path: Path, multi: bool) -> None:
    folder = _export(tmp_path, multi)
    assert {p.name for p in folder.iterdir()} == {"data", "README.md", "spec.json"}
    assert (folder / "data" / "train-00000-of-00001.parquet").is_file()
    assert json.loads((folder / "spec.json").read_text())["multi_label"] is multi

    dd = datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "cache"))
    assert isinstance(dd, datasets.DatasetDict) and list(dd) == ["train"]
    train = dd["train"]
    assert train.num_rows == 6
    key = "labels" if multi else "label"
    feature = train.features[key]
    label_feature = feature.feature if multi else feature
    assert isinstance(label_feature, datasets.ClassLabel)
    assert label_feature.names == ["positive", "negative", "mixed"]
    first = train[0]  # sorted back into plan order
    assert first["row_id"] == 0 and first["text"] == "text 0"
    if multi:
        assert first["labels"] == [0, 1] and first["judge_labels"] is None
        assert train[1]["judge_labels"] == ["negative"]
        assert "judge_label" not in train.column_names
    else:
        assert first["label"] == 0 and label_feature.int2str(train[1]["label"]) == "negative"
        assert "judge_labels" not in train.column_names
    assert first["agreement"] is None and train[2]["agreement"] is True
    assert train.features["agreement"] == datasets.Value("bool")


@pytest.mark.parametrize("multi", [False, True])
def test_card_header_and_sections(tmp_path: Path, multi: bool) -> None:
    folder = _export(tmp_path, multi)
    card = DatasetCard.load(folder / "README.md")
    data = card.data.to_dict()
    assert "synthetic" in data["tags"]
    assert data["license"] == "other"
    assert data["language"] == ["ro"]
    assert data["task_categories"] == ["text-classification"]
    task = "multi-label-classification" if multi else "multi-class-classification"
    assert data["task_ids"] == [task]
    assert data["size_categories"] == ["n<1K"]
    assert data["configs"][0]["data_files"][0] == {"split": "train", "path": "data/train-*"}
    text = card.text
    assert "load_dataset(" in text
    assert "v2: ~ mix positive: 50 % → 70 %" in text and "v1: first version" in text
    assert "Sentiment of short movie reviews." in text
    assert "| duplicates_replaced | 2 |" in text and "| agreement | 0.833 |" in text
    assert "| positive | 0 | Likes the film. | 70 % |" in text
    assert "| judge_label" in text and "| agreement |" in text


def test_the_card_is_huggingface_hubs_dataset_card_and_keeps_the_users_words_verbatim(
    tmp_path: Path,
) -> None:
    # a description with template and YAML-fence look-alikes: written as typed, never rendered
    said = "Reviews {{ card_data }} {% raw %} and a line\n---\nthat looks like a fence."
    spec = _spec().model_copy(update={"description": said})
    folder = export_dataset(spec, _rows(), tmp_path / "x", model_info={}, history=[], metrics={})
    written = (folder / "README.md").read_text(encoding="utf-8")
    card = DatasetCard.load(folder / "README.md")
    assert str(card) == written  # the file is exactly what DatasetCard writes
    assert said in card.text
    expected = card_data(spec, datasets.load_dataset(str(folder))["train"], "other").to_dict()
    assert {k: v for k, v in card.data.to_dict().items() if k != "dataset_info"} == {
        k: v for k, v in expected.items() if k != "dataset_info"
    }
    assert datasets.load_dataset(str(folder))["train"].num_rows == 6


def test_license_and_unknown_language(tmp_path: Path) -> None:
    spec = _spec().model_copy(update={"language": "Klingon"})
    folder = export_dataset(
        spec, _rows(), tmp_path / "x", model_info={}, history=[], metrics={}, license="cc-by-4.0"
    )
    data = DatasetCard.load(folder / "README.md").data.to_dict()
    assert data["license"] == "cc-by-4.0" and "language" not in data


def test_unknown_label_raises_and_leaves_old_folder(tmp_path: Path) -> None:
    folder = _export(tmp_path)
    before = (folder / "README.md").read_text()
    bad = [*_rows(), {"text": "odd", "label": "sarcastic"}]
    with pytest.raises(ValueError, match="sarcastic"):
        export_dataset(_spec(), bad, folder, model_info=MODEL, history=HISTORY, metrics=METRICS)
    bad_multi = [*_rows(True), {"text": "odd", "labels": ["positive", "sarcastic"]}]
    with pytest.raises(ValueError, match="sarcastic"):
        export_dataset(_spec(True), bad_multi, folder, model_info={}, history=[], metrics={})
    with pytest.raises(ValueError, match="label"):
        export_dataset(_spec(True), _rows(False), folder, model_info={}, history=[], metrics={})
    assert (folder / "README.md").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp folders left


def test_reexport_replaces_folder(tmp_path: Path) -> None:
    folder = _export(tmp_path)
    (folder / "stale.txt").write_text("old")
    export_dataset(_spec(), _rows(n=3), folder, model_info={}, history=[], metrics={})
    assert not (folder / "stale.txt").exists()
    dd = datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "cache"))
    assert dd["train"].num_rows == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "out"]


def test_secrets_are_not_written(tmp_path: Path) -> None:
    info = MODEL | {
        "api_key": "abc123",
        "HF_TOKEN": "xyz789",
        "endpoint": "hf_leakedvalue",
        "db_password": "pw",
    }
    folder = _export(tmp_path, model_info=info, metrics=METRICS | {"note": "sk-secretvalue"})
    written = "".join(p.read_text() for p in folder.iterdir() if p.is_file())
    for secret in ("abc123", "xyz789", "hf_leakedvalue", "api_key", "pw |", "sk-secretvalue"):
        assert secret not in written
    assert "llama3.1:8b" in written


def test_zip_folder(tmp_path: Path) -> None:
    folder = _export(tmp_path)
    archive = zip_folder(folder)
    assert archive == tmp_path / "out.zip"
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
    assert "out/README.md" in names and "out/data/train-00000-of-00001.parquet" in names
    assert "out.csv" in names and "out.xlsx" in names  # beside the folder, not in it
    assert not any(n.startswith("out/") and n.endswith((".csv", ".xlsx")) for n in names)


@pytest.mark.parametrize("multi", [False, True])
def test_the_zip_opens_in_a_spreadsheet_with_label_names(tmp_path: Path, multi: bool) -> None:
    with zipfile.ZipFile(zip_folder(_export(tmp_path, multi))) as zf:
        raw = zf.read("out.csv")
        sheet = pd.read_excel(io.BytesIO(zf.read("out.xlsx")), keep_default_na=False)
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM: Excel then reads UTF-8 (ă, ș, ț)
    table = pd.read_csv(io.BytesIO(raw), keep_default_na=False)
    assert len(table) == 6 and list(table["text"]) == [f"text {i}" for i in range(6)]
    if multi:
        assert table["labels"][0] == "positive; negative" and table["judge_labels"][1] == "negative"
    else:
        assert list(table["label"][:3]) == ["positive", "negative", "mixed"]  # names, not ids
        assert table["judge_label"][0] == ""  # no judge label: an empty cell
    assert list(sheet.columns) == list(table.columns)
    assert sheet.astype(str).values.tolist() == table.astype(str).values.tolist()


def test_a_conversation_is_one_readable_column_in_the_spreadsheet(tmp_path: Path) -> None:
    spec = make_spec(
        {
            "task": "chat",
            "name": "bank",
            "description": "Bank support conversations.",
            "language": "Romanian",
            "size": 2,
            "chat": {"system_prompt": "Ești asistentul unei bănci.", "turns": 2},
        }
    )
    rows = []
    for i in range(2):
        messages = [{"role": "system", "content": "Ești asistentul unei bănci."}]
        for t in range(2):
            messages += [
                {"role": "user", "content": f"Întrebare {i}.{t}, cu virgulă"},
                {"role": "assistant", "content": f"Răspuns {i}.{t}:\nprimul pas; apoi „al doilea”"},
            ]
        rows.append({"row_id": i, "messages": messages, "persona": "student", "rating": 4})
    folder = export_dataset(spec, rows, tmp_path / "bank", model_info={}, history=[], metrics={})
    with zipfile.ZipFile(zip_folder(folder)) as zf:
        text = zf.read("bank.csv").decode("utf-8-sig")
        sheet = pd.read_excel(io.BytesIO(zf.read("bank.xlsx")))
    table = list(csv.DictReader(io.StringIO(text)))
    assert len(table) == 2 and set(table[0]) == {"conversation", "persona", "rating", "row_id"}
    assert table[1]["conversation"] == (
        "system: Ești asistentul unei bănci.\n\n"
        "user: Întrebare 1.0, cu virgulă\n\n"
        "assistant: Răspuns 1.0:\nprimul pas; apoi „al doilea”\n\n"
        "user: Întrebare 1.1, cu virgulă\n\n"
        "assistant: Răspuns 1.1:\nprimul pas; apoi „al doilea”"
    )
    assert list(sheet["conversation"]) == [r["conversation"] for r in table]
    # the folder itself is unchanged: `messages` as TRL reads it
    train = datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "cache"))["train"]
    assert train.column_names[0] == "messages" and train[1]["messages"] == rows[1]["messages"]


def test_the_unzipped_download_still_loads_as_one_train_split(tmp_path: Path) -> None:
    with zipfile.ZipFile(zip_folder(_export(tmp_path))) as zf:
        zf.extractall(tmp_path / "unzipped")
    assert (tmp_path / "unzipped" / "out.csv").is_file()
    dd = datasets.load_dataset(str(tmp_path / "unzipped" / "out"), cache_dir=str(tmp_path / "c"))
    assert list(dd) == ["train"] and dd["train"].num_rows == 6
    assert dd["train"].features["label"].names == ["positive", "negative", "mixed"]


def test_a_spreadsheet_cell_keeps_text_excel_would_refuse(tmp_path: Path) -> None:
    rows = _rows(n=3)
    rows[0]["text"] = "bell\x07 and form feed\x0c inside"
    rows[1]["text"] = "x" * 40_000  # past Excel's 32,767 characters a cell
    folder = export_dataset(_spec(), rows, tmp_path / "odd", model_info={}, history=[], metrics={})
    with zipfile.ZipFile(zip_folder(folder)) as zf:
        table = pd.read_csv(io.BytesIO(zf.read("odd.csv")))
        sheet = pd.read_excel(io.BytesIO(zf.read("odd.xlsx")))
    by_id = dict(zip(sheet["row_id"], sheet["text"], strict=True))
    assert by_id[2] == "bell and form feed inside"  # the CSV keeps every character
    assert len(by_id[1]) == 32_767 and by_id[1].endswith("…")
    assert table.set_index("row_id")["text"][1] == "x" * 40_000


def test_size_category() -> None:
    assert [size_category(n) for n in (6, 1_000, 99_999, 100_000, 10**9)] == [
        "n<1K",
        "1K<n<10K",
        "10K<n<100K",
        "100K<n<1M",
        "n>100M",
    ]


def test_a_new_export_of_the_same_name_is_what_load_dataset_returns(tmp_path: Path) -> None:
    """`datasets` keys its cache on the folder's name and card: a re-export (or another user's
    export of the same name) must not be answered from an earlier one's cache."""
    cache = str(tmp_path / "hf-cache")
    first = export_dataset(
        _spec(), _rows(n=3), tmp_path / "a" / "reviews", model_info={}, history=[], metrics={}
    )
    assert datasets.load_dataset(str(first), cache_dir=cache)["train"].num_rows == 3
    second = export_dataset(
        _spec(), _rows(n=5), tmp_path / "b" / "reviews", model_info={}, history=[], metrics={}
    )
    assert datasets.load_dataset(str(second), cache_dir=cache)["train"].num_rows == 5
    again = export_dataset(_spec(), _rows(n=4), first, model_info={}, history=[], metrics={})
    assert datasets.load_dataset(str(again), cache_dir=cache)["train"].num_rows == 4
    card = DatasetCard.load(again / "README.md").data.to_dict()
    assert card["dataset_info"]["splits"] == [
        {"name": "train", "num_bytes": card["dataset_info"]["dataset_size"], "num_examples": 4}
    ]
    assert [f["name"] for f in card["dataset_info"]["features"]][:2] == ["text", "label"]
