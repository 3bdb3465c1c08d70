"""Seed passages from an existing dataset's column: real files written here, no network."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from agent.tools.documents import CHUNK_WORDS, DocumentError, load_chunks
from agent.tools.sources import seed_chunks, store_chunks

TEXTS = [
    "Card fees are waived for students under 26 who hold a current student card.",
    "A blocked card can be unblocked in the app under Cards > Unblock.",
    "Transfers abroad take up to two working days and need a second confirmation by SMS.",
]
LONG = " ".join(f"word{i}" for i in range(CHUNK_WORDS * 3 + 5))


def frame() -> pd.DataFrame:
    return pd.DataFrame({"text": [*TEXTS, "", None, LONG], "label": ["a", "b", "c", "d", "e", "f"]})


def write(path: Path, df: pd.DataFrame) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        df.to_parquet(path)
    elif path.suffix == ".csv":
        df.to_csv(path, index=False)
    else:
        df.to_json(path, orient="records", lines=True, force_ascii=False)
    return path


@pytest.mark.parametrize("name", ["seed.parquet", "seed.csv", "seed.jsonl", "seed.json"])
def test_a_file_gives_chunks_in_the_documents_shape(tmp_path: Path, name: str) -> None:
    path = write(tmp_path / name, frame())
    chunks = seed_chunks(str(path), "text")
    assert all(set(c) == {"id", "source", "text"} for c in chunks)
    assert all(isinstance(v, str) for c in chunks for v in c.values())
    assert all(re.fullmatch(r"[0-9a-f]{16}", c["id"]) for c in chunks)
    assert {c["source"] for c in chunks} == {name}
    texts = [c["text"] for c in chunks]
    assert texts[:3] == TEXTS  # short cells whole, empty cells skipped
    # the long cell is split into pieces of at most CHUNK_WORDS words, nothing lost
    long = texts[3:]
    assert len(long) == 3 and all(len(t.split()) <= CHUNK_WORDS + 20 for t in long)
    assert " ".join(long) == LONG
    assert len({c["id"] for c in chunks}) == len(chunks)


def test_a_json_array_file_is_read_too(tmp_path: Path) -> None:
    path = tmp_path / "seed.json"
    path.write_text(json.dumps([{"body": t} for t in TEXTS]), encoding="utf-8")
    assert [c["text"] for c in seed_chunks(str(path), "body")] == TEXTS


def test_a_folder_reads_its_data_files_not_the_contract_next_to_them(tmp_path: Path) -> None:
    folder = tmp_path / "exported"
    write(folder / "data" / "train-00000-of-00002.parquet", frame().iloc[:2])
    write(folder / "data" / "train-00001-of-00002.parquet", frame().iloc[2:])
    (folder / "spec.json").write_text(json.dumps({"description": "x"}), encoding="utf-8")
    (folder / "README.md").write_text("# card", encoding="utf-8")
    chunks = seed_chunks(str(folder), "text")
    assert [c["text"] for c in chunks[:3]] == TEXTS
    assert {c["source"] for c in chunks} == {
        "train-00000-of-00002.parquet",
        "train-00001-of-00002.parquet",
    }


def test_ids_are_stable_across_calls_and_limit_bounds_the_chunks(tmp_path: Path) -> None:
    path = write(tmp_path / "seed.parquet", frame())
    first, again = seed_chunks(str(path), "text"), seed_chunks(str(path), "text")
    assert first == again
    assert seed_chunks(str(path), "text", limit=2) == first[:2]


def test_repeated_passages_are_kept_once(tmp_path: Path) -> None:
    path = write(tmp_path / "seed.csv", pd.DataFrame({"text": [TEXTS[0]] * 5 + [TEXTS[1]]}))
    assert [c["text"] for c in seed_chunks(str(path), "text")] == TEXTS[:2]


def test_an_unknown_column_lists_the_columns(tmp_path: Path) -> None:
    for name in ("seed.parquet", "seed.csv", "seed.jsonl"):
        path = write(tmp_path / name, frame())
        with pytest.raises(DocumentError) as info:
            seed_chunks(str(path), "passage")
        assert str(info.value) == (
            "The dataset has no column “passage”; its columns are: text, label."
        )


def test_a_column_without_text_is_refused(tmp_path: Path) -> None:
    df = pd.DataFrame({"text": ["", "  ", None], "score": [1, 2, 3]})
    path = write(tmp_path / "seed.parquet", df)
    with pytest.raises(DocumentError, match=r"^The column “text” of seed.parquet has no text"):
        seed_chunks(str(path), "text")
    with pytest.raises(DocumentError, match=r"^The column “score” of seed.parquet has no text"):
        seed_chunks(str(path), "score")  # numbers are not passages


def test_missing_and_unsupported_files_say_so(tmp_path: Path) -> None:
    with pytest.raises(DocumentError) as info:
        seed_chunks(str(tmp_path / "nowhere.parquet"), "text")
    assert str(info.value) == f"I could not find “{tmp_path / 'nowhere.parquet'}”."
    with pytest.raises(DocumentError, match=r"^I could not find “./missing.csv”\.$"):
        seed_chunks("./missing.csv", "text")
    sheet = tmp_path / "book.xlsx"
    sheet.write_bytes(b"PK\x03\x04")
    with pytest.raises(DocumentError) as info:
        seed_chunks(str(sheet), "text")
    assert str(info.value) == "“book.xlsx” is not a Parquet, CSV or JSON Lines file."
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DocumentError, match="has no Parquet, CSV or JSON Lines files"):
        seed_chunks(str(empty), "text")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    with pytest.raises(DocumentError) as info:
        seed_chunks(str(broken), "text")
    assert str(info.value) == "“broken.parquet” could not be read as a Parquet file."


def test_store_chunks_round_trips_and_skips_known_ids(tmp_path: Path) -> None:
    store = tmp_path / "documents"
    chunks = seed_chunks(str(write(tmp_path / "seed.parquet", frame())), "text")
    assert store_chunks(store, chunks) == len(chunks)
    assert load_chunks(store) == chunks
    assert store_chunks(store, chunks) == 0  # a second call adds nothing
    assert load_chunks(store) == chunks
    # with the documents' own chunks in the same store
    from agent.tools.documents import add_documents

    added, notes = add_documents(store, [("faq.md", ("Opening hours are 9 to 5. " * 10).encode())])
    assert added == 1 and notes == []
    assert (
        load_chunks(store)[: len(chunks)] == chunks and len(load_chunks(store)) == len(chunks) + 1
    )


def test_a_hub_id_offline_says_the_hub_cannot_be_reached(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DocumentError) as info:
        seed_chunks("nobody-xyz/no-such-dataset-123", "text")
    message = str(info.value)
    assert message.startswith(
        "I could not reach the Hugging Face Hub to read “nobody-xyz/no-such-dataset-123”"
    )
    assert "\n" not in message and "Traceback" not in message


def test_a_hub_id_offline_with_the_libraries_told_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """The libraries' own offline mode (set before import, as in a real offline run)."""
    import datasets.config
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(DocumentError, match=r"^I could not (reach|find)"):
        seed_chunks("nobody-xyz/no-such-dataset-123:default", "text")
