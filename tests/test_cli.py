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
