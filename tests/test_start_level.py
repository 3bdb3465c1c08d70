"""The concurrency the user asks for is where a run starts, not only its ceiling: no seconds lost
climbing from the default level when the user said 16 (the limit still backs off on errors —
`test_engine.py::test_the_engine_backs_off_when_the_server_refuses_excess_requests`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.config import get_settings
from agent.spec import make_spec
from agent.tools.generate import TextClassification, init_run, read_rows
from tests.fixed_delay_server import fixed_delay_server

SPEC = make_spec(
    {
        "description": "Customer reviews.",
        "labels": [
            {"name": "positive", "definition": "Satisfied."},
            {"name": "negative", "definition": "Unhappy."},
        ],
        "size": 16,
    }
)


def test_concurrency_16_sends_16_requests_at_once_from_the_first_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = tmp_path / "run"
    task = TextClassification(SPEC, 16, seed=1, judge=False)
    init_run(run_dir, {"task": "textcat", "n": 16, **task.meta()})
    with fixed_delay_server(delay=0.2) as (url, stats):
        monkeypatch.setenv("OLLAMA_BASE_URL", url)
        monkeypatch.setenv("JUDGE_FULL_RUN", "false")
        get_settings.cache_clear()  # CONCURRENCY=3 from conftest: the default start level
        result = CliRunner().invoke(
            app, ["generate", "--resume", str(run_dir), "--concurrency", "16", "--yes"]
        )
        assert result.exit_code == 0, result.output
        # every row's request went out together: one round, not a slow climb from 3
        assert stats.requests == 16 and stats.max_in_flight == 16
    assert sorted(r["row_id"] for r in read_rows(run_dir)) == list(range(16))
