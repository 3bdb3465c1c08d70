"""Every step says at once that it works; after Stop, the next message is read for what it says.

`Conversation.send` yields a status first ("Reading your reply…", "Writing the sample…"), a
sample's rows as status lines, a full run's rows as progress. When the user stops a step (the app
calls `Conversation.stop()` and cancels the task), the next message is a reply at the review point
the stopped step started from — "generate 20" after stopping the full run is a new size, not "carry
on" — while Retry still carries the stopped step on, keeping the rows it made.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.runnables import RunnableLambda
from pydantic import Field

from agent.llm import use_model
from agent.session import RETRY, Conversation, Event, open_graph, sample_status
from tests.chat_helpers import say, stage, text
from tests.conftest import ReviewWorld
from tests.fakes import ScriptedModel

DESCRIPTION = "A dataset covering customer reviews for an e-commerce website."


class SlowModel(ScriptedModel):
    """The scripted model, with structured calls of some kinds taking time (without blocking)."""

    slow: dict[str, float] = Field(default_factory=dict)

    def with_structured_output(self, schema: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        inner = super().with_structured_output(schema, **kwargs)

        async def acall(messages: Any) -> Any:
            if delay := self.slow.get(schema.__name__):
                await asyncio.sleep(delay)
            return await inner.ainvoke(messages)

        return RunnableLambda(inner.invoke, afunc=acall)


@pytest.fixture
def model(world: ReviewWorld) -> Iterator[SlowModel]:
    m = SlowModel(responder=world)
    with use_model(m):
        yield m


async def _at_contract(conv: Conversation) -> None:
    ev = await say(conv, DESCRIPTION)
    for _ in range(3):  # the model may ask a question first
        if stage(ev) != "clarify":
            break
        ev = await say(conv, "just go")
    assert stage(ev) == "contract", text(ev)


async def _at_sample(conv: Conversation) -> None:
    await _at_contract(conv)
    ev = await say(conv, {"action": "approve"})
    assert stage(ev) == "sample", text(ev)


class Running:
    """A send running in its own task, as the app runs a step; `stop()` is the Stop button."""

    def __init__(self, conv: Conversation, value: str | dict[str, Any]) -> None:
        self.conv = conv
        self.events: list[Event] = []
        self.task = asyncio.create_task(self._collect(conv.send(value)))

    async def _collect(self, events: AsyncIterator[Event]) -> None:
        async for e in events:
            self.events.append(e)

    async def until(self, check: Any) -> None:
        async with asyncio.timeout(30):
            while not any(check(e) for e in self.events):
                assert not self.task.done(), [e.text for e in self.events]
                await asyncio.sleep(0.01)

    async def stop(self) -> None:
        assert self.conv.stop() is True  # first, as the app does: the step still holds the thread
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task
        assert not self.conv.lock.locked()


def _rows(folder: Path) -> list[dict[str, Any]]:
    path = folder / "rows.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def _full_run(settings_env: Path, size: int) -> Path:
    return next(settings_env.glob(f"runs/*/full-v*-n{size}"))


async def test_every_send_says_first_what_it_does(model: SlowModel, settings_env: Path) -> None:
    async with open_graph() as graph:
        conv = Conversation(graph, "status")
        first = [e async for e in conv.send(DESCRIPTION)]
        assert (first[0].kind, first[0].text) == ("status", "Reading your description…")
        while stage(first) == "clarify":
            first = await say(conv, "just go")
            assert (first[0].kind, first[0].text) == ("status", "Reading your reply…")

        ev = await say(conv, {"action": "approve"})
        assert (ev[0].kind, ev[0].text) == ("status", "Writing the sample…")
        rows = [e for e in ev if e.kind == "status" and e.data.get("phase") == "sample"]
        assert rows, [e.text for e in ev]
        assert all(e.text.startswith(("Writing sample row", "Sample: ")) for e in rows)
        assert rows[-1].text == "Sample: 10/10 rows written and judged."
        assert not [e for e in ev if e.kind == "progress"]  # a sample is not a full run
        assert any("critique" in e.text for e in ev if e.kind == "status")
        statuses = [i for i, e in enumerate(ev) if e.kind == "status"]
        sample_msg = next(i for i, e in enumerate(ev) if e.data.get("kind") == "sample")
        assert max(statuses) < sample_msg  # every status comes before the step's reply

        ev = await say(conv, "generate 30")
        assert ev[0].kind == "status"
        assert "Starting the full run of 30 rows…" in [e.text for e in ev if e.kind == "status"]
        progress = [e.data for e in ev if e.kind == "progress"]
        assert progress and progress[-1]["done"] == progress[-1]["total"] == 30
        assert all("phase" not in p for p in progress)

        ev = await say(conv, {"action": "approve"})
        assert (ev[0].kind, ev[0].text) == ("status", "Exporting the dataset…")


def test_sample_status_says_writing_and_judging() -> None:
    assert sample_status({"done": 0, "total": 10, "judged": 0}) == "Writing sample row 1/10"
    assert (
        sample_status({"done": 3, "total": 10, "judged": 3, "agreement": 2 / 3})
        == "Writing sample row 4/10 · judged 3/10 · judge agrees on 67 %"
    )
    assert sample_status({"done": 10, "total": 10}) == "Sample: 10/10 rows written and judged."


async def test_after_stop_during_the_full_run_a_message_is_read_at_the_sample_review(
    model: SlowModel, settings_env: Path
) -> None:
    async with open_graph() as graph:
        conv = Conversation(graph, "stop-run")
        await _at_sample(conv)
        model.slow["GeneratedText"] = 0.05
        run = Running(conv, {"action": "approve"})
        await run.until(lambda e: e.kind == "progress" and e.data["done"] >= 5)
        await run.stop()
        snap = await conv.state()
        assert snap.next == ("scale",) and not snap.interrupts
        stopped = _full_run(settings_env, 100)
        kept = _rows(stopped)
        assert 5 <= len(kept) < 100

        model.slow.clear()
        ev = await say(conv, "generate 20")
        assert "Picking up the step" not in text(ev)  # read, not resumed
        assert ev[0].kind == "status" and ev[0].text == "Reading your reply…"
        assert "~ size: 100 → 20" in text(ev), text(ev)
        assert stage(ev) == "dataset", text(ev)
        assert "Generated 20 of 20 rows" in text(ev)
        state = (await conv.state()).values
        assert state["spec"]["size"] == 20 and state["run_dir"].endswith("-n20")
        assert _rows(stopped) == kept  # the stopped run's rows stay in its folder
        assert not conv.stopped


async def test_retry_after_stop_carries_the_stopped_run_on(
    model: SlowModel, settings_env: Path
) -> None:
    async with open_graph() as graph:
        conv = Conversation(graph, "stop-retry")
        await _at_sample(conv)
        model.slow["GeneratedText"] = 0.05
        run = Running(conv, {"action": "approve"})
        await run.until(lambda e: e.kind == "progress" and e.data["done"] >= 5)
        await run.stop()
        kept = _rows(_full_run(settings_env, 100))

        model.slow.clear()
        ev = await say(conv, RETRY)
        assert ev[0].text == "Carrying on with the step that did not finish…"
        assert "Generated 100 of 100 rows" in text(ev), text(ev)
        assert stage(ev) == "dataset"
        rows = {r["row_id"]: r for r in _rows(_full_run(settings_env, 100))}
        assert len(rows) == 100
        assert all(rows[r["row_id"]] == r for r in kept)  # resumed, not made again


async def test_after_stop_during_the_sample_a_message_is_read_at_the_contract(
    model: SlowModel, world: ReviewWorld, settings_env: Path
) -> None:
    async with open_graph() as graph:
        conv = Conversation(graph, "stop-sample")
        await _at_contract(conv)
        model.slow["GeneratedText"] = 0.2
        run = Running(conv, {"action": "approve"})
        await run.until(lambda e: e.data.get("phase") == "sample")
        await run.stop()
        assert (await conv.state()).next == ("sample",)

        model.slow.clear()
        ev = await say(conv, "make it more negative reviews")
        assert "Picking up the step" not in text(ev)
        assert stage(ev) == "contract", text(ev)  # an edit at the contract: the new contract
        state = (await conv.state()).values
        assert state["spec"]["version"] == 2 and state["spec"]["mix"]["negative"] == 0.5
        assert not state.get("sample")  # no sample was shown for the stopped step


async def test_after_stop_while_asking_a_question_the_answer_is_read(
    model: SlowModel, settings_env: Path
) -> None:
    """Stopped while the first description is read (no review point yet): the next text joins it."""
    async with open_graph() as graph:
        conv = Conversation(graph, "stop-clarify")
        model.slow.update(Clarification=30, Proposal=30)  # the model is asked, and slow
        run = Running(conv, DESCRIPTION)
        await run.until(lambda e: e.kind == "status")
        await asyncio.sleep(0.3)
        await run.stop()
        assert (await conv.state()).next in (("clarify",), ("propose",))

        model.slow.clear()
        ev = await say(conv, "just go")
        assert "Picking up the step" not in text(ev)
        assert stage(ev) in ("clarify", "contract"), text(ev)
        said = [m.content for m in (await conv.state()).values["messages"] if m.type == "human"]
        assert said == [DESCRIPTION, "just go"]


async def test_stop_with_nothing_running_changes_nothing(
    model: SlowModel, settings_env: Path
) -> None:
    async with open_graph() as graph:
        conv = Conversation(graph, "idle-stop")
        await _at_sample(conv)
        assert conv.stop() is False and not conv.stopped
        ev = await say(conv, "generate 12")
        assert stage(ev) == "dataset" and "Generated 12 of 12 rows" in text(ev)


async def test_a_crash_still_carries_the_step_on(model: SlowModel, settings_env: Path) -> None:
    """Cut short without Stop (the app died): text typed next still carries the step on."""
    async with open_graph() as graph:
        conv = Conversation(graph, "crash")
        await _at_sample(conv)
        model.slow["GeneratedText"] = 0.05
        run = Running(conv, {"action": "approve"})
        await run.until(lambda e: e.kind == "progress" and e.data["done"] >= 3)
        run.task.cancel()  # no Stop: as if the process went away
        with pytest.raises(asyncio.CancelledError):
            await run.task
        model.slow.clear()
        ev = await say(conv, "generate 20")
        assert "Picking up the step that did not finish before…" in text(ev)
        assert "Generated 100 of 100 rows" in text(ev)


async def test_after_stop_a_button_of_that_review_point_is_read(
    model: SlowModel, settings_env: Path
) -> None:
    """The sample review's Cancel, still on screen after the full run was stopped, cancels."""
    async with open_graph() as graph:
        conv = Conversation(graph, "stop-button")
        await _at_sample(conv)
        model.slow["GeneratedText"] = 0.05
        run = Running(conv, {"action": "approve", "stage": "sample", "version": 1})
        await run.until(lambda e: e.kind == "progress" and e.data["done"] >= 3)
        await run.stop()
        assert conv.stopped
        ev = await say(conv, {"action": "cancel", "stage": "sample", "version": 1})
        assert "Picking up the step" not in text(ev)
        assert (await conv.state()).values["stage"] == "cancelled", text(ev)
