"""The headless CLI, end to end through the same graph and the same model factory (scripted model)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import datasets
from typer.testing import CliRunner

from agent.cli import app

runner = CliRunner()


def test_generate_from_description_writes_a_loadable_folder(fake_model, tmp_path: Path) -> None:
    out = tmp_path / "reviews"
    result = runner.invoke(
        app,
        [
            "generate",
            "--description",
            "customer reviews for a shop",
            "--rows",
            "24",
            "--out",
            str(out),
            "--yes",
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == str(out.resolve())
    ds = datasets.load_dataset(str(out))["train"]
    assert ds.num_rows == 24
    counts = Counter(ds["label"])
    assert sorted(counts.values()) == [8, 8, 8]


def test_rerun_from_a_saved_spec(fake_model, tmp_path: Path) -> None:
    first = tmp_path / "first"
    assert (
        runner.invoke(
            app, ["generate", "-d", "reviews", "-n", "12", "-o", str(first), "-y"]
        ).exit_code
        == 0
    )
    spec = json.loads((first / "spec.json").read_text())
    assert spec["size"] == 12
    second = tmp_path / "second"
    result = runner.invoke(
        app, ["generate", "--spec", str(first / "spec.json"), "-o", str(second), "--yes"]
    )
    assert result.exit_code == 0, result.output
    assert datasets.load_dataset(str(second))["train"].num_rows == 12
    assert "Clarification" not in fake_model.kinds()[fake_model.kinds().index("GeneratedText") :]


def test_failures_exit_non_zero_with_one_line(fake_model, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "description": "x",
                "labels": [{"name": "a", "definition": "d"}, {"name": "A", "definition": "e"}],
            }
        )
    )
    result = runner.invoke(app, ["generate", "--spec", str(bad), "--yes"])
    assert result.exit_code == 1
    assert "not a valid contract: Label names must be unique; repeated: a." in result.stderr

    result = runner.invoke(app, ["generate", "--yes"])
    assert result.exit_code == 1 and "give --description TEXT or --spec FILE" in result.stderr

    result = runner.invoke(app, ["generate", "-d", "reviews"], input="")
    assert result.exit_code == 1 and "approvals need --yes" in result.stderr


def test_a_resumed_run_that_stops_says_why_in_one_line(
    tmp_path: Path, monkeypatch, settings_env: Path
) -> None:
    """`--resume` on a full disk: exit 1 with the engine's sentence, no traceback, rows kept."""
    import errno

    from agent.spec import make_spec
    from agent.tasks.textcat.rows import TextClassification
    from agent.tools.generate import RowWriter, init_run, read_rows
    from tests.fixed_delay_server import fixed_delay_server

    spec = make_spec(
        {
            "description": "Customer reviews.",
            "labels": [
                {"name": "positive", "definition": "Satisfied."},
                {"name": "negative", "definition": "Unhappy."},
            ],
            "size": 30,
        }
    )
    task = TextClassification(spec, 30, seed=1, judge=False)
    run_dir = tmp_path / "run"
    init_run(run_dir, {"task": "textcat", "n": 30, **task.meta()})
    real_write, writes = RowWriter._write, [0]

    def fill_up(self: RowWriter, data: bytes) -> None:
        writes[0] += 1
        if writes[0] > 10:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(self, data)

    monkeypatch.setattr(RowWriter, "_write", fill_up)
    with fixed_delay_server(delay=0.01) as (url, _):
        monkeypatch.setenv("LLM_PROVIDER", "ollama")
        monkeypatch.setenv("OLLAMA_BASE_URL", url)
        monkeypatch.setenv("JUDGE_FULL_RUN", "false")
        from agent.config import get_settings

        get_settings.cache_clear()
        result = runner.invoke(app, ["generate", "--resume", str(run_dir), "--yes"])
    assert result.exit_code == 1, result.output
    assert "error: The disk is full" in result.output and "Traceback" not in result.output
    assert len(list(read_rows(run_dir))) == 10


# --- passages: --documents, --seed-dataset / --seed-column ------------------------------------


def _store_chunks(data_dir: Path) -> list[dict[str, str]]:
    """The chunks of the one CLI conversation's documents store (its thread id is random)."""
    from agent.tools.documents import load_chunks

    (store,) = list((data_dir / "runs").glob("cli-*/documents"))
    return load_chunks(store)


def _seed_csv(tmp_path: Path) -> Path:
    import pandas as pd

    path = tmp_path / "seed.csv"
    texts = [
        "Card fees are waived for students under 26 who hold a current student card.",
        "A blocked card can be unblocked in the app under Cards > Unblock.",
        "",
        "Transfers abroad take up to two working days and need a confirmation by SMS.",
    ]
    pd.DataFrame({"text": texts, "id": range(len(texts))}).to_csv(path, index=False)
    return path


def test_the_seed_options_go_together(tmp_path: Path) -> None:
    seed = str(_seed_csv(tmp_path))
    for args in (["--seed-dataset", seed], ["--seed-column", "text"]):
        result = runner.invoke(app, ["generate", "-d", "support Q&A", *args, "--yes"])
        assert result.exit_code == 1, result.output
        assert "error: --seed-dataset and --seed-column go together: give both" in result.stderr
    result = runner.invoke(
        app, ["generate", "--resume", str(tmp_path), "--documents", seed, "--yes"]
    )
    assert result.exit_code == 1 and "--resume finishes a run" in result.stderr


def test_task_accepts_rag_and_names_the_kinds(tmp_path: Path) -> None:
    from agent.cli import _first_message

    _, extra = _first_message("support Q&A", None, None, "rag", None)
    assert extra["locked"] == {"task": "rag"} and extra["task"] == "rag"
    result = runner.invoke(app, ["generate", "-d", "x", "--task", "ranking", "--yes"])
    assert result.exit_code == 1
    assert "unknown task “ranking”: use textcat, chat or rag" in result.stderr


def test_documents_and_seed_passages_fill_the_store_and_are_locked(
    fake_model, tmp_path: Path, settings_env: Path
) -> None:
    from tests.test_cli_say import _threads_state

    faq = tmp_path / "faq.md"
    faq.write_text(
        "# Opening hours\n\nThe branches open from 9 to 5 on weekdays and from 10 to 1 on "
        "Saturdays; they are closed on Sundays and public holidays.",
        encoding="utf-8",
    )
    docx = tmp_path / "notes.docx"
    docx.write_bytes(b"PK\x03\x04")
    seed = _seed_csv(tmp_path)
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "generate",
            "-d",
            "customer reviews for a shop",
            "--task",
            "textcat",
            "-n",
            "12",
            "--documents",
            str(faq),
            "--documents",
            str(docx),
            "--seed-dataset",
            str(seed),
            "--seed-column",
            "text",
            "-o",
            str(out),
            "--yes",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "note: “notes.docx” is not a .txt, .md or .pdf file." in result.stderr
    assert "added 1 chunk from faq.md\n" in result.stderr
    assert f"added 3 chunks from column “text” of {seed}" in result.stderr
    chunks = _store_chunks(settings_env)
    assert [c["source"] for c in chunks] == ["faq.md", "seed.csv", "seed.csv", "seed.csv"]
    assert chunks[1]["text"].startswith("Card fees are waived")
    (state,) = _threads_state()
    assert state["locked"] == {
        "task": "textcat",
        "size": 12,
        "documents": True,
        "seed_dataset": str(seed),
        "seed_column": "text",
    }


def test_an_unusable_seed_or_documents_stop_before_the_conversation(
    fake_model, tmp_path: Path, settings_env: Path
) -> None:
    seed = str(_seed_csv(tmp_path))
    args = ["generate", "-d", "support Q&A", "--seed-dataset", seed, "--seed-column", "body"]
    result = runner.invoke(app, [*args, "--yes"])
    assert result.exit_code == 1, result.output
    assert "error: The dataset has no column “body”; its columns are: text, id." in result.stderr
    assert fake_model.kinds() == []  # no model was asked anything

    empty = tmp_path / "empty.txt"
    empty.write_text("  \n", encoding="utf-8")
    result = runner.invoke(app, ["generate", "-d", "support Q&A", "--documents", str(empty), "-y"])
    assert result.exit_code == 1, result.output
    assert "note: “empty.txt” has no text I can read" in result.stderr
    assert "error: no usable text in the documents given with --documents" in result.stderr
    missing = tmp_path / "missing.md"
    result = runner.invoke(app, ["generate", "-d", "x", "--documents", str(missing), "-y"])
    assert result.exit_code == 1 and f"error: cannot read {missing}" in result.stderr


def test_a_rag_dataset_from_a_seed_dataset_end_to_end(tmp_path: Path, monkeypatch) -> None:
    """`--task rag --seed-dataset … --seed-column …`: the contract records the seed, and every
    row's passage is one of the seed's cells, verbatim, with its source."""
    import pandas as pd

    from agent.config import get_settings
    from agent.llm import use_model
    from tests.fakes import ScriptedModel
    from tests.test_rag import HANDBOOK, HandbookWorld

    monkeypatch.setenv("SAMPLE_SIZE", "4")
    get_settings.cache_clear()
    paragraphs = [" ".join(p.split()) for p in HANDBOOK.split("\n\n") if p.strip()]
    seed = tmp_path / "handbook.parquet"
    pd.DataFrame({"passage": paragraphs}).to_parquet(seed)
    out = tmp_path / "rag"
    with use_model(ScriptedModel(responder=HandbookWorld())):
        result = runner.invoke(
            app,
            [
                "generate",
                "-d",
                "questions and answers over our HR handbook, for a retriever",
                "--task",
                "rag",
                "-n",
                "6",
                "--seed-dataset",
                str(seed),
                "--seed-column",
                "passage",
                "-o",
                str(out),
                "--yes",
            ],
        )
    assert f"added 12 chunks from column “passage” of {seed}" in result.stderr
    from agent.tools.generate import load_run, read_rows

    (full,) = (tmp_path / "data" / "runs").glob("cli-*/full-v1-n6")
    rag = load_run(full)["spec"]["rag"]
    assert (rag["source"], rag["seed_dataset"], rag["seed_column"]) == (
        "dataset",
        str(seed),
        "passage",
    )
    rows = list(read_rows(full))
    assert rows and all(r["context"] in paragraphs for r in rows)
    assert {r["source"] for r in rows} == {"handbook.parquet"}

    assert result.exit_code == 0, result.output  # then exported as the rag kind publishes
    spec = json.loads((out / "spec.json").read_text())
    assert spec["task"] == "rag" and spec["rag"]["source"] == "dataset"
    ds = datasets.load_dataset(str(out))["train"]
    assert 0 < ds.num_rows <= 6 and set(ds["source"]) == {"handbook.parquet"}
    assert all(c in paragraphs for c in ds["context"])
