"""`python -m agent push`: confirmation first, then exactly that folder to exactly that target."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from agent.cli import app
from tests.test_hub import TOKEN, FakeHub, _folder, fake  # noqa: F401  (fixture)

runner = CliRunner()


def test_push_asks_then_sends_the_folder(fake: FakeHub, tmp_path: Path, monkeypatch) -> None:
    from agent.config import get_settings

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    get_settings.cache_clear()
    folder = _folder(tmp_path)

    result = runner.invoke(app, ["push", str(folder), "--hub", "my-org/reviews"], input="")
    assert result.exit_code == 1 and "confirmation needs --yes" in result.stderr
    assert "4 rows, columns text, label" in result.stderr
    assert fake.calls == []

    result = runner.invoke(
        app, ["push", str(folder), "--hub", "my-org/reviews", "--public", "--yes"]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "https://huggingface.co/datasets/my-org/reviews"
    create = dict(fake.calls)["create_repo"]
    assert create["private"] is False
    assert TOKEN not in result.output


def test_push_refuses_bad_targets(fake: FakeHub, tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    result = runner.invoke(app, ["push", str(folder), "--hub", "../etc/passwd", "--yes"])
    assert result.exit_code == 1 and "error:" in result.stderr
    result = runner.invoke(app, ["push", str(tmp_path), "--hub", "my-org/x", "--yes"])
    assert result.exit_code == 1 and "not an exported dataset" in result.stderr
    assert fake.calls == []
