"""The CLI's explicit choices: `--task`/`--rows` are final (the state's `locked`), `--say` refines
at the sample review; and the contract's names and languages, normalised wherever they enter."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import datasets
import pytest
from langchain_core.messages import BaseMessage, HumanMessage
from typer.testing import CliRunner

from agent.cli import _first_message, app
from agent.llm import use_model
from agent.session import open_graph
from agent.spec import DatasetSpec, Label, SpecEdit, Style, apply_edits, make_spec
from agent.tasks.textcat.contract import proposal_to_spec
from tests.conftest import ReviewWorld
from tests.fakes import ScriptedModel

runner = CliRunner()
MORE_NEGATIVE = "make it more negative reviews"


def _spec(**kw: Any) -> DatasetSpec:
    data: dict[str, Any] = {
        "description": "Customer reviews.",
        "labels": [
            {"name": "positive", "definition": "Satisfied."},
            {"name": "negative", "definition": "Unhappy."},
        ],
    }
    return make_spec(data | kw)


# --- names and languages -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "slug"),
    [
        ("recenzii-clienților", "recenzii-clientilor"),
        ("Recenzii ale clienților (magazin online)", "recenzii-ale-clientilor-magazin-online"),
        ("Știri și știință", "stiri-si-stiinta"),
        ("Avis des clients — été 2024", "avis-des-clients-ete-2024"),
        ("Kundenbewertungen für Größen", "kundenbewertungen-fur-grossen"),
        ("customer_reviews v2", "customer-reviews-v2"),
        ("", "synthetic-dataset"),
        ("!!! ??? …", "synthetic-dataset"),
    ],
)
def test_dataset_names_are_transliterated_slugs(raw: str, slug: str) -> None:
    assert _spec(name=raw).name == slug


def test_a_long_name_is_cut_at_60_characters_without_a_trailing_hyphen() -> None:
    name = _spec(name="recenzii ale clienților " * 10).name
    assert len(name) <= 60 and not name.endswith("-") and name.startswith("recenzii-ale-clientilor")
    assert re.fullmatch(r"[a-z0-9-]+", name)


@pytest.mark.parametrize(
    "raw", ["Roman", "română", "Romana", "ro", "romanian language", "ROMANIAN"]
)
def test_the_contract_language_has_one_canonical_name(raw: str) -> None:
    assert _spec(language=raw).language == "Romanian"


def test_language_is_normalised_in_proposals_and_edits() -> None:
    spec, _ = proposal_to_spec(
        description="Reviews.",
        name="recenzii-clienților",
        labels=[
            Label(name="pozitiv", definition="Mulțumit."),
            Label(name="negativ", definition="Nu."),
        ],
        multi_label=False,
        language="Roman",
        size=20,
        style=Style(),
        max_rows=1000,
    )
    assert (spec.language, spec.name) == ("Romanian", "recenzii-clientilor")
    empty, _ = proposal_to_spec(
        description="Reviews.",
        name="x",
        labels=[Label(name="a", definition="A."), Label(name="b", definition="B.")],
        multi_label=False,
        language="",
        size=20,
        style=Style(),
        max_rows=1000,
    )
    assert empty.language == "English"
    edited = apply_edits(
        _spec(), [SpecEdit(op="set_language", value="în limba română")], max_rows=1000
    )
    assert (edited.language, edited.version) == ("Romanian", 2)
    assert (
        apply_edits(edited, [SpecEdit(op="set_language", value="français")], max_rows=1000).language
        == "French"
    )
    # an unknown name is kept (title-cased), not refused
    assert (
        apply_edits(_spec(), [SpecEdit(op="set_language", value="klingon")], max_rows=1000).language
        == "Klingon"
    )


def test_a_contract_loaded_with_spec_gets_the_canonical_language(
    fake_model, tmp_path: Path
) -> None:
    saved = tmp_path / "spec.json"
    data = _spec().model_dump() | {"language": "română", "name": "recenzii-clienților", "size": 6}
    saved.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "out"
    result = runner.invoke(app, ["generate", "--spec", str(saved), "-o", str(out), "--yes"])
    assert result.exit_code == 0, result.output
    exported = json.loads((out / "spec.json").read_text(encoding="utf-8"))
    assert (exported["language"], exported["name"]) == ("Romanian", "recenzii-clientilor")


# --- --task and --rows are final ------------------------------------------------------------------


class ChatMindedWorld(ReviewWorld):
    """A model whose clarify answer reads every request as chat data."""

    def __call__(self, kind: str, messages: list[BaseMessage]) -> Any:
        out = super().__call__(kind, messages)
        if kind == "Clarification":
            return out | {"task": "chat"}
        if kind == "ChatProposal":
            return {
                "name": "support-chats",
                "system_prompt": "You are a shop's support assistant.",
                "turns": 1,
                "language": "English",
                "size": 100,
            }
        if kind == "UserTurn":
            seed = re.search(r"Variation seed: (\S+)", str(messages[-1].content))
            return {"text": f"question {seed.group(1) if seed else len(messages)}"}
        if kind == "text" and "Variation seed" not in str(messages[-1].content):
            return f"answer to: {str(messages[-1].content)[:60]}"
        if kind == "ChatJudgement":
            verdicts = ("follows_system_prompt", "helpful", "grounded", "realistic_user")
            return {"reasons": "fine", "rating": 4} | dict.fromkeys(verdicts, True)
        return out


class SmallWorld(ReviewWorld):
    """The review world with a small first contract (a quick full run)."""

    def __call__(self, kind: str, messages: list[BaseMessage]) -> Any:
        out = super().__call__(kind, messages)
        return out | {"size": 12} if kind == "Proposal" else out


def _threads_state() -> list[dict[str, Any]]:
    """The last state of every thread in the checkpoint (the CLI's thread id is random)."""

    async def read() -> list[dict[str, Any]]:
        async with open_graph() as graph:
            ids: list[str] = []
            async for tup in graph.checkpointer.alist(None):  # type: ignore[union-attr]
                tid = tup.config["configurable"]["thread_id"]
                if tid not in ids:
                    ids.append(tid)
            return [
                (await graph.aget_state({"configurable": {"thread_id": t}})).values for t in ids
            ]

    return asyncio.run(read())


def test_task_and_rows_given_go_into_locked() -> None:
    _, extra = _first_message("reviews", None, None, "textcat", 40)
    assert extra["locked"] == {"task": "textcat", "size": 40} and extra["task"] == "textcat"
    _, extra = _first_message("reviews", None, None, None, None)
    assert "locked" not in extra and "task" not in extra  # not given: the conversation decides
    _, extra = _first_message("reviews", None, None, None, 40)
    assert extra["locked"] == {"size": 40}


def test_locked_reaches_the_graph_state(fake_model, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["generate", "-d", "shop reviews", "--task", "textcat", "-n", "12", "-o", str(out), "-y"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    (state,) = _threads_state()
    assert state["locked"] == {"task": "textcat", "size": 12}
    assert state["task"] == "textcat"


def test_task_textcat_is_final_even_when_the_model_reads_chat(tmp_path: Path) -> None:
    """`--task textcat` with a model whose clarify answer says "chat": text classification data,
    and `--rows 12` is already the size of the first contract (no later size edit)."""
    model = ScriptedModel(responder=ChatMindedWorld())
    out = tmp_path / "out"
    with use_model(model):
        result = runner.invoke(
            app,
            [
                "generate",
                "-d",
                "shop reviews",
                "--task",
                "textcat",
                "-n",
                "12",
                "-o",
                str(out),
                "-y",
            ],
        )
    assert result.exit_code == 0, result.output
    spec = json.loads((out / "spec.json").read_text())
    assert (spec["task"], spec["size"], spec["version"]) == ("textcat", 12, 1)
    assert {"text", "label"} <= set(datasets.load_dataset(str(out))["train"].column_names)
    assert "ChatProposal" not in model.kinds()


def test_without_task_the_conversation_decides(tmp_path: Path) -> None:
    model = ScriptedModel(responder=ChatMindedWorld())
    out = tmp_path / "out"
    description = "conversations between shoppers and a shop's support assistant"
    with use_model(model):
        result = runner.invoke(
            app, ["generate", "-d", description, "-n", "4", "-o", str(out), "-y"]
        )
    assert result.exit_code == 0, result.output
    assert json.loads((out / "spec.json").read_text())["task"] == "chat"


def test_task_contradicting_the_saved_contract_fails(fake_model, tmp_path: Path) -> None:
    saved = tmp_path / "spec.json"
    saved.write_text(_spec().model_dump_json())
    result = runner.invoke(app, ["generate", "--spec", str(saved), "--task", "chat", "--yes"])
    assert result.exit_code == 1
    assert "--task chat contradicts spec.json, whose task is textcat" in result.stderr


# --- --say ----------------------------------------------------------------------------------------


def _run(world: ReviewWorld, tmp_path: Path, *says: str) -> tuple[Any, Path]:
    model = ScriptedModel(responder=world)
    out = tmp_path / "out"
    args = ["generate", "-d", "customer reviews for a shop", "-o", str(out), "--yes"]
    for text in says:
        args += ["--say", text]
    with use_model(model):
        result = runner.invoke(app, args)
    return result, out


def _times_said(text: str) -> int:
    """How many times `text` reached the conversation as the user's message."""
    (state,) = _threads_state()
    return sum(isinstance(m, HumanMessage) and m.content == text for m in state["messages"])


def test_say_refines_the_sample_before_the_full_run(tmp_path: Path) -> None:
    result, out = _run(SmallWorld(), tmp_path, MORE_NEGATIVE)
    assert result.exit_code == 0, result.output
    err = result.stderr
    assert "Contract v1 → v2:" in err and "~ mix negative: 33 % → 50 %" in err
    assert f'say "{MORE_NEGATIVE}": v1 → v2' in err
    # the diff, then a new sample of v2, the summary, and only then the full run
    order = [
        "Contract v1 → v2:",
        "Sample 2 (contract v2)",
        f'say "{MORE_NEGATIVE}"',
        "Generated 12",
    ]
    assert [err.index(x) for x in order] == sorted(err.index(x) for x in order)
    spec = json.loads((out / "spec.json").read_text())
    assert spec["version"] == 2 and spec["mix"]["negative"] == 0.5
    assert _times_said(MORE_NEGATIVE) == 1
    assert datasets.load_dataset(str(out))["train"].num_rows == 12


def test_a_say_that_changes_nothing_is_reported_and_the_next_is_said(tmp_path: Path) -> None:
    says = ("what does neutral mean?", "drop the shipping label", MORE_NEGATIVE)
    result, out = _run(SmallWorld(), tmp_path, *says)
    assert result.exit_code == 0, result.output
    err = result.stderr
    lines = [ln for ln in err.splitlines() if ln.startswith('say "')]
    assert len(lines) == 3 and lines[2] == f'say "{MORE_NEGATIVE}": v1 → v2'
    assert lines[0] == 'say "what does neutral mean?": no change (I am a scripted model.)'
    nothing = re.fullmatch(r'say "drop the shipping label": no change \((.+)\)', lines[1])
    assert nothing, lines[1]
    assert nothing.group(1) in err.splitlines()  # the first line of the graph's own reply
    assert json.loads((out / "spec.json").read_text())["version"] == 2
    assert [_times_said(text) for text in says] == [1, 1, 1]  # each said exactly once


def test_a_say_that_moves_on_leaves_the_rest_unsaid(tmp_path: Path) -> None:
    """A --say of "generate 12" starts the full run: the next has no sample review to be said at."""
    result, out = _run(SmallWorld(), tmp_path, "generate 12", MORE_NEGATIVE)
    assert result.exit_code == 0, result.output
    assert 'say "generate 12": moved on to dataset (' in result.stderr
    assert f'say "{MORE_NEGATIVE}": not said (the conversation ended at done)' in result.stderr
    assert _times_said(MORE_NEGATIVE) == 0
    assert json.loads((out / "spec.json").read_text())["version"] == 1


def test_say_is_checked_before_anything_runs(fake_model, tmp_path: Path) -> None:
    result = runner.invoke(app, ["generate", "-d", "reviews", "--say", "  ", "--yes"])
    assert result.exit_code == 1 and "--say needs some text" in result.stderr
    result = runner.invoke(app, ["generate", "--resume", str(tmp_path), "--say", "x", "--yes"])
    assert result.exit_code == 1 and "--say is for a new conversation" in result.stderr
    result = runner.invoke(app, ["generate", "-d", "reviews", "-n", "0", "--yes"])
    assert result.exit_code == 1 and "--rows must be between 1 and" in result.stderr


# --- on the real built-in model -------------------------------------------------------------------


@pytest.mark.e2e
def test_say_through_the_cli_on_the_builtin_model(tmp_path: Path) -> None:
    """`python -m agent generate --say …` in a subprocess on the built-in model (no fakes): the
    request must become a typed edit, shown as a diff, and a new sample before the full run."""
    out = tmp_path / "out"
    env = {
        **os.environ,
        "DATA_DIR": str(tmp_path / "data"),
        "LLM_PROVIDER": "local",
        "SAMPLE_SIZE": "2",
        "CONCURRENCY": "2",
        "JUDGE_FULL_RUN": "false",
    }
    args = [sys.executable, "-m", "agent", "generate", "-d", "customer reviews for a shop"]
    args += ["--task", "textcat", "--rows", "4", "--say", MORE_NEGATIVE, "-o", str(out), "--yes"]
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f'say "{MORE_NEGATIVE}": v1 → v2' in proc.stderr, proc.stderr[-3000:]
    assert re.search(r"Contract v1 → v2:\n```diff\n[~+-] ", proc.stderr), proc.stderr[-3000:]
    assert json.loads((out / "spec.json").read_text())["version"] == 2  # --rows 4 is in v1
    assert proc.stdout.strip().splitlines()[-1] == str(out.resolve())
