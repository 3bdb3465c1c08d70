"""Retrieval (RAG) data on the real built-in model, in-process, from an attached .md file: no fakes.

The tiny model writes poor questions; these tests assert structure: passages that are chunks of the
file verbatim, the columns the contract asks for, every chunk used before any twice, a folder that
`datasets` loads.
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

pytestmark = pytest.mark.e2e

MANUAL = """# The coffee machine

Fill the water tank up to the MAX line with cold water. The machine heats up in about forty
seconds; the green light stops blinking when it is ready. Use ground coffee of medium grind: two
level spoons for a large cup, one for an espresso. Press the cup button once for a small cup and
twice for a large one.

# Cleaning

Empty the drip tray and the grounds box every day. Once a month run the descaling program: pour
the descaler into the tank with half a litre of water, hold the two cup buttons for five seconds,
and rinse twice with clean water when the red light turns off. Never put the tank in the
dishwasher.

# Problems

If coffee runs slowly, the grind is too fine or the filter is blocked: rinse the filter under hot
water. If the red light blinks, the tank is empty or not seated; lift it and press it down firmly.
A machine that stays cold after two minutes needs service: call the number on the warranty card.
"""


async def say(conv: Conversation, value: str | dict[str, Any]) -> list[Event]:
    events = [e async for e in conv.send(value)]
    errors = [e.text for e in events if e.kind == "error"]
    assert not errors, errors
    return events


def stage(events: list[Event]) -> str | None:
    prompts = [e for e in events if e.kind == "prompt"]
    return prompts[-1].data.get("stage") if prompts else None


@pytest.fixture
def local_model(monkeypatch: pytest.MonkeyPatch, settings_env: Path) -> None:
    monkeypatch.setenv("LLM_PROVIDER", "local")
    monkeypatch.setenv("SAMPLE_SIZE", "2")
    monkeypatch.setenv("CONCURRENCY", "2")
    get_settings.cache_clear()
    set_provider("local")


async def test_rag_from_an_md_file_on_the_builtin_model(local_model: None) -> None:
    async with open_graph() as graph:
        conv = Conversation(graph, "rag-real")
        added, problems = await conv.attach([("manual.md", MANUAL.encode())])
        assert added >= 1 and not problems
        ev = await say(
            conv,
            "Questions and answers from my documents for a retrieval system, with hard "
            "negatives, 4 rows",
        )
        assert stage(ev) == "contract"
        spec = (await conv.state()).values["spec"]
        assert spec["task"] == "rag" and spec["rag"]["source"] == "documents"
        assert spec["rag"]["hard_negatives"] is True  # read from the request's own words
        assert spec["size"] == 4

        ev = await say(conv, {"action": "approve"})
        assert stage(ev) == "sample"
        ev = await say(conv, {"action": "approve"})
        if stage(ev) == "paused":
            ev = await say(conv, "continue anyway")
        assert stage(ev) == "dataset"
        ev = await say(conv, {"action": "approve"})
        assert stage(ev) == "publish"
        state = (await conv.state()).values

    folder = Path(state["export_dir"])
    ds = datasets.load_dataset(str(folder))["train"]
    failed = state["critique"].get("failed", 0)
    assert ds.num_rows == 4 - failed and ds.num_rows >= 2
    assert ds.column_names[:5] == [
        "context",
        "question",
        "response",
        "positive_retrieval",
        "negative_retrieval",
    ]
    flat = " ".join(MANUAL.split())
    for row in ds:
        assert row["context"] in flat  # a chunk of the file, verbatim
        assert row["question"].strip() and row["response"].strip()
        assert row["negative_retrieval"].strip() and row["source"] == "manual.md"
    used = Counter(ds["chunk_id"])
    assert max(used.values()) - min(used.values()) <= 1 or failed
    assert "text-retrieval" in (folder / "README.md").read_text()
