"""One whole conversation on a real model: the built-in one, in-process (no fakes anywhere).

The tiny model writes poor text; these tests assert structure, not prose: valid rows, labels within
the set, counts that match the quotas, a folder that `datasets` loads.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import datasets
import pytest

from agent.config import get_settings
from agent.llm import set_provider
from agent.session import Conversation, Event, open_graph
from agent.tasks.base import quotas

pytestmark = pytest.mark.e2e


async def say(conv: Conversation, value: str | dict[str, Any]) -> list[Event]:
    events = [e async for e in conv.send(value)]
    errors = [e.text for e in events if e.kind == "error"]
    assert not errors, errors
    return events


def stage(events: list[Event]) -> str | None:
    prompts = [e for e in events if e.kind == "prompt"]
    return prompts[-1].data.get("stage") if prompts else None


@pytest.fixture
def local_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_PROVIDER", "local")
    monkeypatch.setenv("SAMPLE_SIZE", "6")
    monkeypatch.setenv("CONCURRENCY", "2")
    get_settings.cache_clear()
    set_provider("local")


async def test_the_seed_conversation_on_the_builtin_model(local_model: None) -> None:
    async with open_graph() as graph:
        conv = Conversation(graph, "real")
        ev = await say(conv, "A dataset covering customer reviews for an e-commerce website.")
        for _ in range(2):  # the model may ask up to two questions
            if stage(ev) != "clarify":
                break
            ev = await say(conv, "just go")
        assert stage(ev) == "contract"
        ev = await say(conv, {"action": "approve"})
        assert stage(ev) == "sample"
        assert any("Critique" in e.full for e in ev)  # the exact figures, in the details
        state = (await conv.state()).values
        names = [lb["name"] for lb in state["spec"]["labels"]]
        assert state["sample"] and all(r["label"] in names for r in state["sample"])

        # a refinement in words, interpreted by the real model: whatever it decides, the thread
        # must land at a review point with the contract still valid
        ev = await say(conv, "make the texts shorter")
        assert stage(ev) in ("sample", "contract", "dataset")
        if (
            stage(ev) == "dataset"
        ):  # the model took it as "approve": fine, but then size is the spec's
            pytest.fail("a refinement must not start the full run")

        ev = await say(conv, "generate 30")
        if stage(ev) == "paused":
            # The tiny judge disagrees often, so the agreement stop rule may pause the run — the
            # product working as designed. Finishing it anyway must lose and duplicate nothing.
            assert any("Paused at" in e.text for e in ev)
            ev = await say(conv, "continue anyway")
        assert stage(ev) == "dataset"
        ev = await say(conv, {"action": "approve"})
        assert stage(ev) == "publish"
        state = (await conv.state()).values

    ds = datasets.load_dataset(str(state["export_dir"]))["train"]
    spec = state["spec"]
    assert spec["size"] == 30
    label_names = ds.features["label"].names
    assert label_names == [lb["name"] for lb in spec["labels"]]
    assert all(t.strip() for t in ds["text"])
    counts = Counter(label_names[i] for i in ds["label"])
    want = quotas(spec["mix"], 30)
    failed = state["critique"].get("failed", 0)
    assert ds.num_rows == 30 - failed
    for label, quota in want.items():
        assert quota - failed <= counts[label] <= quota, (label, counts, want)
    assert Path(state["export_dir"], "README.md").read_text().count("synthetic") >= 1


def test_ten_two_turn_conversations_on_the_builtin_model(
    local_model: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chat task on the real built-in model, through the CLI (`--provider local`) and a saved
    contract."""
    import json

    monkeypatch.setenv("SAMPLE_SIZE", "2")
    get_settings.cache_clear()

    from typer.testing import CliRunner

    from agent.cli import app
    from agent.tasks.chat.rows import validate_messages

    spec = {
        "task": "chat",
        "name": "shop-help",
        "description": "Customer questions to an online shop's assistant.",
        "size": 10,
        "style": {"topics": ["delivery", "returns", "payment"]},
        "chat": {
            "system_prompt": "You are the helpful assistant of an online shop.",
            "turns": 2,
            "personas": ["new customer", "regular customer"],
            "intents": ["track an order", "return an item"],
            "answer_length": "short",
        },
    }
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    out = tmp_path / "shop-help"
    result = CliRunner().invoke(
        app, ["generate", "--spec", str(path), "-o", str(out), "--yes", "--provider", "local"]
    )
    assert result.exit_code == 0, result.output
    ds = datasets.load_dataset(str(out))["train"]
    assert ds.num_rows == 10
    for messages in ds["messages"]:
        assert validate_messages(messages) is None
        assert sum(m["role"] == "user" for m in messages) == 2
