"""The engine's lean Ollama path sends what ChatOllama sends and fails the way it fails."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_ollama import ChatOllama

from agent import ollama_http
from agent.llm import LLMUnavailable, structured_call
from agent.tasks.textcat.schemas import GeneratedText
from agent.tools.scheduler import is_transient, is_unreachable
from tests.fixed_delay_server import fixed_delay_server

MESSAGES = [SystemMessage(content="Write one review."), HumanMessage(content="About shoes.")]


def _model(url: str, **kw: Any) -> ChatOllama:
    return ChatOllama(
        base_url=url,
        model="llama3.1",
        temperature=0.7,
        num_ctx=4096,
        keep_alive="5m",
        client_kwargs={"timeout": kw.pop("timeout", 30)},
        **kw,
    )


async def test_the_lean_path_sends_what_chatollama_sends(monkeypatch: pytest.MonkeyPatch) -> None:
    lean_calls: list[int] = []
    real = ollama_http.LeanChat.content

    async def spy(self: ollama_http.LeanChat, messages: Any) -> str:
        lean_calls.append(1)
        return await real(self, messages)

    monkeypatch.setattr(ollama_http.LeanChat, "content", spy)
    with fixed_delay_server(delay=0) as (url, stats):
        # credentials in the address become a Basic auth header, as the ollama client does it
        model = _model(url.replace("http://", "http://ann:s3cret@"))
        through_langchain = await structured_call(model, GeneratedText, MESSAGES)
        assert lean_calls == []
        async with ollama_http.session_scope():
            lean = await structured_call(model, GeneratedText, MESSAGES)
        assert lean_calls == [1]
        assert not ollama_http.usable(model)  # the scope is over
    assert isinstance(lean, GeneratedText) and isinstance(through_langchain, GeneratedText)
    before, after = stats.seen[-2:]
    # the same body, but for the ollama client's empty `tools: []`
    assert after["body"] == {k: v for k, v in before["body"].items() if v != []}
    body = after["body"]
    assert body["format"] == GeneratedText.model_json_schema()
    assert body["options"] == {"num_ctx": 4096, "temperature": 0.7}
    assert body["keep_alive"] == "5m" and body["stream"] is True
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    for name in ("authorization", "user-agent", "content-type"):
        assert after["headers"][name] == before["headers"][name]
    assert after["headers"]["authorization"].startswith("Basic ")


async def test_a_model_with_callbacks_keeps_langchains_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ollama_http.LeanChat, "content", None)  # would fail if called
    with fixed_delay_server(delay=0) as (url, _):
        model = _model(url)
        model.callbacks = []  # an empty list is no callback
        assert model.callbacks == [] and not ollama_http.usable(model)  # no scope yet
        from langchain_core.callbacks import BaseCallbackHandler

        model.callbacks = [BaseCallbackHandler()]
        async with ollama_http.session_scope():
            assert not ollama_http.usable(model)
            assert isinstance(await structured_call(model, GeneratedText, MESSAGES), GeneratedText)


async def test_nobody_listening_reads_as_an_unreachable_server() -> None:
    async with ollama_http.session_scope():
        with pytest.raises(LLMUnavailable, match="not answering") as caught:
            await structured_call(_model("http://127.0.0.1:9"), GeneratedText, MESSAGES)
    assert is_unreachable(caught.value) and is_transient(caught.value)


async def test_a_wrong_address_reads_as_model_not_found() -> None:
    with fixed_delay_server(delay=0) as (url, _):
        async with ollama_http.session_scope():
            with pytest.raises(LLMUnavailable, match="ollama pull") as caught:
                await structured_call(_model(url + "/nope"), GeneratedText, MESSAGES)
    assert not is_transient(caught.value)  # a 404 is not retried


async def test_a_slow_reply_reads_as_a_timeout() -> None:
    with fixed_delay_server(delay=2.0) as (url, _):
        async with ollama_http.session_scope():
            with pytest.raises(LLMUnavailable, match="took longer than") as caught:
                await structured_call(_model(url, timeout=0.3), GeneratedText, MESSAGES)
    assert not is_unreachable(caught.value)
