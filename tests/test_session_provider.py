"""Runtime choices are per session: two users in one process, each on their own provider.

The provider (and a model per role) lives on the session's `Context`, handed to the graph as its
runtime context; the app's default is resolved once at start-up. A user who switches the provider
in the chat settings switches it for their own chat only. The CLI's overrides go in its own copy of
the settings: the cached `get_settings()` object is left as the environment made it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage
from typer.testing import CliRunner

from agent import llm
from agent.cli import app
from agent.config import get_settings
from agent.context import Context
from agent.graph import nodes
from agent.llm import get_chat_model, set_provider, use_model
from agent.session import Conversation, open_graph
from tests.chat_helpers import say, stage
from tests.conftest import ReviewWorld
from tests.fakes import ScriptedModel

SHOP = "A dataset covering customer reviews for an e-commerce website."
HOTEL = "A dataset covering guest reviews for a seaside hotel."


def _seen(model: ScriptedModel) -> str:
    """Everything a model was asked, as one text."""
    return "\n".join(str(m.content) for _, messages in model.calls for m in messages)


class Rendezvous:
    """Holds the first call of each model until both sessions have made one: the two
    conversations are provably in the graph at the same time."""

    def __init__(self) -> None:
        self.barrier = asyncio.Barrier(2)
        self.met: set[int] = set()

    async def meet(self, model: ScriptedModel) -> None:
        if id(model) not in self.met:
            self.met.add(id(model))
            await asyncio.wait_for(self.barrier.wait(), 10)


class MeetingModel(ScriptedModel):
    """A scripted model whose structured calls wait at a rendezvous the first time."""

    rendezvous: Any = None

    def with_structured_output(self, schema: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        inner = super().with_structured_output(schema, **kwargs)
        outer = self

        class Gate:
            async def ainvoke(self, messages: list[BaseMessage], *a: Any, **kw: Any) -> Any:
                await outer.rendezvous.meet(outer)
                return await inner.ainvoke(messages, *a, **kw)

        return Gate()


async def test_two_sessions_on_one_graph_each_write_with_their_own_provider(
    settings_env: Path,
) -> None:
    meeting = Rendezvous()
    on_ollama = MeetingModel(responder=ReviewWorld(), rendezvous=meeting)
    on_local = MeetingModel(responder=ReviewWorld(), rendezvous=meeting)
    elsewhere = ScriptedModel(responder=ReviewWorld())
    set_provider("openai")  # the app's default: neither session uses it
    with (
        use_model(on_ollama, provider="ollama"),
        use_model(on_local, provider="local"),
        use_model(elsewhere, provider="openai"),
    ):
        async with open_graph() as graph:
            shop, hotel = Conversation(graph, "shop"), Conversation(graph, "hotel")
            shop.context.provider, hotel.context.provider = "ollama", "local"

            # both at once: the first model call of each waits for the other's
            events = await asyncio.gather(
                say(shop, SHOP + " just go"), say(hotel, HOTEL + " just go")
            )
            assert [stage(e) for e in events] == ["contract", "contract"]
            events = await asyncio.gather(
                say(shop, {"action": "approve"}), say(hotel, {"action": "approve"})
            )
            assert [stage(e) for e in events] == ["sample", "sample"]

    assert meeting.met == {id(on_ollama), id(on_local)}  # both were mid-conversation together
    assert "e-commerce" in _seen(on_ollama) and "seaside hotel" not in _seen(on_ollama)
    assert "seaside hotel" in _seen(on_local) and "e-commerce" not in _seen(on_local)
    # each sample's rows were written and judged by its own session's model
    for model in (on_ollama, on_local):
        assert model.kinds().count("GeneratedText") == 10
        assert model.kinds().count("Relabel") == 10
    assert elsewhere.calls == []
    assert llm._resolved_provider == "openai"  # the app's default is untouched by the sessions


async def test_a_provider_switch_in_one_session_leaves_the_other_unchanged(
    settings_env: Path,
) -> None:
    on_ollama = ScriptedModel(responder=ReviewWorld())
    on_local = ScriptedModel(responder=ReviewWorld())
    set_provider("ollama")  # what start-up resolved for the app
    with use_model(on_ollama, provider="ollama"), use_model(on_local, provider="local"):
        async with open_graph() as graph:
            shop, hotel = Conversation(graph, "shop"), Conversation(graph, "hotel")
            await asyncio.gather(say(shop, SHOP + " just go"), say(hotel, HOTEL + " just go"))

            shop.context.provider = "local"  # what the chat settings do for the shop's user
            on_ollama.calls.clear()
            await asyncio.gather(
                say(shop, {"action": "approve"}), say(hotel, {"action": "approve"})
            )
        assert get_chat_model("generate") is on_ollama  # outside any session: the app's default

    assert "e-commerce" in _seen(on_local) and "e-commerce" not in _seen(on_ollama)
    assert "seaside hotel" in _seen(on_ollama) and "seaside hotel" not in _seen(on_local)


def test_a_session_may_choose_its_own_model_per_role(settings_env: Path) -> None:
    mine = Context(provider="ollama", models={"judge": "qwen2.5:7b"})
    theirs = Context(provider="ollama")
    assert get_chat_model("judge", context=mine).model == "qwen2.5:7b"  # type: ignore[attr-defined]
    assert get_chat_model("generate", context=mine).model == "llama3.1"  # type: ignore[attr-defined]
    assert get_chat_model("judge", context=theirs).model == "llama3.1"  # type: ignore[attr-defined]


def test_the_cli_overrides_reach_the_run_and_leave_the_cached_settings_alone(
    settings_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = get_settings()
    before = cached.model_dump()
    asked: list[dict[str, Any]] = []
    real = nodes.run_generation

    async def recorded(*args: Any, **kwargs: Any) -> Any:
        asked.append(kwargs)
        return await real(*args, **kwargs)

    monkeypatch.setattr(nodes, "run_generation", recorded)
    on_local = ScriptedModel(responder=ReviewWorld())
    on_ollama = ScriptedModel(responder=ReviewWorld())
    with use_model(on_local, provider="local"), use_model(on_ollama, provider="ollama"):
        result = CliRunner().invoke(
            app,
            [
                "generate",
                "-d",
                "customer reviews for a shop",
                "-n",
                "12",
                "-o",
                str(tmp_path / "out"),
                "--yes",
                "--provider",
                "local",
                "--concurrency",
                "5",
                "--engine",
                "local",
                "--endpoints",
                "127.0.0.1:9,127.0.0.1:10",
            ],
        )
    assert result.exit_code == 0, result.output
    # the run used the provider and the concurrency asked for …
    assert on_local.kinds().count("GeneratedText") >= 12 and on_ollama.calls == []
    assert {(a["concurrency"], a["start"]) for a in asked} == {(5, 5)}
    assert asked[-1]["engine"] == "local"
    # … and the process's settings are as the environment made them
    assert get_settings() is cached and cached.model_dump() == before
    assert cached.llm_provider == "ollama" and cached.concurrency == 3 and cached.endpoints == []
    assert llm._resolved_provider is None
