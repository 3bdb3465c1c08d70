"""Reasoning text never reaches the data or the chat.

Reasoning models (qwen3, deepseek-r1 …) write `<think>…</think>` before the answer; some servers
send the reasoning in a separate field instead (Ollama's `thinking`, OpenAI-compatible servers'
`reasoning_content` / `reasoning`). No reasoning model installs here, so stand-in servers answer as
one would: `tests.ollama_api_server` (Ollama's API, scripted replies each starting with a `<think>`
block, streamed in small pieces so that tags are split) and a small OpenAI-compatible server below
(reasoning in `reasoning_content` and `reasoning`). The whole graph and engine run against them;
the exported datasets, the chat messages and the streamed tokens are then searched for reasoning.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import datasets
import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from agent import ollama_http
from agent.config import get_settings
from agent.llm import get_chat_model, parse_tolerant, set_provider, structured_call
from agent.reasoning import ReasoningFilter, strip_reasoning
from agent.session import Conversation, Event, open_graph
from agent.tasks.textcat.schemas import GeneratedText
from tests.chat_helpers import say, stage
from tests.conftest import ReviewWorld
from tests.ollama_api_server import ollama_server, serve
from tests.test_chat import REQUEST, BankWorld

MARK = "zebrathought"
THOUGHT = (
    f'Okay, the user wants data. Hmm, {MARK}: maybe {{"text": "a decoy"}} would do?\n'
    "Let me plan the answer step by step. Wait, no, first the persona."
)


# --- strip_reasoning and the streaming filter -----------------------------------------------------

CASES = [
    ("<think>\nplan\nmore plan\n</think>\n\nThe answer.", "The answer."),
    ("<THINK>x</Think>Hi", "Hi"),
    ("<thinking>a\nb</thinking>  ok ", "ok"),
    ("<reasoning>r</reasoning>A", "A"),
    ("<think type='deep'>r</think>answer", "answer"),
    ("<think>a</think><think>b</think>c", "c"),
    ("<think>cut off in the middle of", ""),  # unclosed: nothing but reasoning
    ("  <think></think>  ", ""),
    ("…the reasoning, whose opening tag the server ate</think>\nanswer", "answer"),
    ("a</think>b</think>c", "c"),
    ("Answer first. <think>then it thought on and was cut", "Answer first."),
    ("no tags at all\n", "no tags at all"),
    (
        "I think <b>bold</b> is fine, and <thinker> too",
        "I think <b>bold</b> is fine, and <thinker> too",
    ),
    ("", ""),
]


@pytest.mark.parametrize(("raw", "clean"), CASES)
def test_strip_reasoning(raw: str, clean: str) -> None:
    assert strip_reasoning(raw) == clean


def _streamed(text: str, size: int) -> str:
    hide = ReasoningFilter()
    shown = [hide.feed(text[i : i + size]) for i in range(0, len(text), size)]
    return "".join(shown) + hide.flush()


@pytest.mark.parametrize(("raw", "clean"), CASES)
@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 1000])
def test_the_streaming_filter_shows_what_strip_keeps(raw: str, clean: str, size: int) -> None:
    shown = _streamed(raw, size)
    if "</think>" in raw and "<think>" not in raw:
        # without an opening tag the text before the closing one was already shown; the
        # complete reply (stripped) replaces it, but nothing after the tag leaks either way
        assert shown.endswith(clean) and "</think>" not in shown
    else:
        assert shown.strip() == clean


def test_the_streaming_filter_holds_back_only_what_may_be_a_tag() -> None:
    hide = ReasoningFilter()
    assert hide.feed("Hello <") == "Hello "
    assert hide.feed("b>world") == "<b>world"
    assert hide.feed(" <thin") == " "
    assert hide.feed("k>secret</th") == ""
    assert hide.feed("ink> and on") == " and on"
    assert hide.feed(" 3 < 4") == " 3 < 4"  # "< 4": a space, then no tag name
    assert hide.feed(" <") == " "
    assert hide.flush() == "<"  # the reply ended: it was text after all


def test_a_json_object_is_found_after_reasoning_with_braces() -> None:
    reply = f'<think>{THOUGHT} {{"text": 1}}</think>\n```json\n{{"text": "the real one"}}\n```'
    assert parse_tolerant(reply, GeneratedText).text == "the real one"


def test_the_built_in_model_streams_and_returns_no_reasoning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from agent.backends import local

    reply = f"<think>{THOUGHT}</think>\n\nThe answer."

    def parts(self: Any, *args: Any, **kwargs: Any) -> Iterator[tuple[str, str | None]]:
        for i in range(0, len(reply), 4):
            yield reply[i : i + 4], None
        yield "", "stop"

    class Vocab:
        def tokenize(self, text: bytes, add_bos: bool = False) -> list[int]:
            return list(range(len(text.split())))

    monkeypatch.setattr(local.LocalChatModel, "_parts", parts)
    monkeypatch.setattr(local, "load_llama", lambda name: (Vocab(), threading.Lock()))
    model = local.LocalChatModel()
    assert model.invoke("hi").content == "The answer."
    assert "".join(str(c.content) for c in model.stream("hi")) == "The answer."


# --- stand-in servers that answer like a reasoning model -----------------------------------------

_LC: dict[str, type[BaseMessage]] = {
    "system": SystemMessage,
    "user": HumanMessage,
    "assistant": AIMessage,
    "tool": HumanMessage,
}
World = Callable[[str, list[BaseMessage]], Any]


def _as_text(out: Any) -> str:
    if isinstance(out, BaseModel):
        return out.model_dump_json()
    if isinstance(out, dict):
        return json.dumps(out, ensure_ascii=False)
    return str(out)


def _messages(body: dict[str, Any]) -> list[BaseMessage]:
    return [
        _LC.get(m.get("role", "user"), HumanMessage)(content=m.get("content") or "")
        for m in body.get("messages", [])
    ]


def ollama_responder(world: World) -> Callable[[dict[str, Any]], str]:
    """A scripted world (schema name or "text", messages) as the stand-in's `responder`."""

    def respond(body: dict[str, Any]) -> str:
        fmt = body.get("format")
        kind = str(fmt.get("title", "")) if isinstance(fmt, dict) else "text"
        return _as_text(world(kind, _messages(body)))

    return respond


def openai_app(world: World, requests: list[dict[str, Any]]) -> Starlette:
    """An OpenAI-compatible server whose replies carry reasoning in `reasoning_content` and
    `reasoning` (as vLLM, llama.cpp's server and others send it), streamed or not."""

    async def completions(request: Request) -> Response:
        body = await request.json()
        requests.append(body)
        messages = _messages(body)
        message: dict[str, Any] = {"role": "assistant"}
        if tools := body.get("tools"):
            name = tools[0]["function"]["name"]
            args = _as_text(world(name, messages))
            function = {"name": name, "arguments": args}
            call = {"id": "call_1", "type": "function", "function": function}
            message |= {"content": None, "tool_calls": [call]}
            finish = "tool_calls"
        else:
            message["content"], finish = _as_text(world("text", messages)), "stop"
        head = {"id": "chatcmpl-1", "created": 0, "model": body.get("model", "m")}
        reasoning = {"reasoning_content": THOUGHT, "reasoning": THOUGHT}
        if not body.get("stream"):
            choice = {"index": 0, "message": {**message, **reasoning}, "finish_reason": finish}
            usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
            return JSONResponse(
                {**head, "object": "chat.completion", "choices": [choice], "usage": usage}
            )

        def chunk(delta: dict[str, Any], reason: str | None = None) -> str:
            choice = {"index": 0, "delta": delta, "finish_reason": reason}
            data = {**head, "object": "chat.completion.chunk", "choices": [choice]}
            return f"data: {json.dumps(data)}\n\n"

        def events() -> Iterator[str]:
            yield chunk({"role": "assistant", "content": "", **reasoning})
            if "tool_calls" in message:
                calls = [{"index": 0, **message["tool_calls"][0]}]
                yield chunk({"tool_calls": calls})
            else:
                text = message["content"]
                for i in range(0, len(text), 7):
                    yield chunk({"content": text[i : i + 7]})
            yield chunk({}, finish)
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])


Start = Callable[[str, World], dict[str, Any]]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Start]:
    """`start(kind, world)`: a stand-in of that kind answering from the world; the app uses it.

    Kinds: "ollama" (reasoning as `<think>` inside the content), "ollama-field" (reasoning in
    Ollama's `thinking` field), "openai" (reasoning in `reasoning_content` and `reasoning`).
    """
    stack: list[Any] = []

    def start(kind: str, world: World) -> dict[str, Any]:
        if kind == "openai":
            requests: list[dict[str, Any]] = []
            cm = serve(openai_app(world, requests))
            url = cm.__enter__()
            stack.append(cm)
            monkeypatch.setenv("LLM_PROVIDER", "openai")
            monkeypatch.setenv("OPENAI_BASE_URL", f"{url}/v1")
            seen = {"requests": requests}
        else:
            cm = ollama_server(
                think=THOUGHT, think_field=kind == "ollama-field", responder=ollama_responder(world)
            )
            url, state = cm.__enter__()
            stack.append(cm)
            monkeypatch.setenv("LLM_PROVIDER", "ollama")
            monkeypatch.setenv("OLLAMA_BASE_URL", url)
            seen = {"requests": state.requests}
        get_settings.cache_clear()
        set_provider(None)
        return seen

    yield start
    for cm in reversed(stack):
        cm.__exit__(None, None, None)


def _assert_clean(where: str, text: str) -> None:
    low = text.lower()
    assert MARK not in low and "<think" not in low and "</think" not in low, (where, text[:300])
    assert "step by step" not in low, (where, text[:300])


def _assert_events_clean(events: list[Event]) -> None:
    for e in events:
        _assert_clean(f"event {e.kind}", e.text)
    tokens = "".join(e.text for e in events if e.kind == "token")
    _assert_clean("streamed tokens", tokens)


async def _graph_messages_clean(conv: Conversation) -> None:
    for m in (await conv.state()).values.get("messages", []):
        if isinstance(m, AIMessage):
            _assert_clean("graph message", str(m.content))


def _assert_dataset_clean(folder: Path) -> datasets.Dataset:
    ds = datasets.load_dataset(str(folder))["train"]
    assert ds.num_rows > 0
    for row in ds:
        _assert_clean("exported row", json.dumps(row, ensure_ascii=False))
    for path in folder.rglob("*"):
        if path.is_file() and path.suffix in (".csv", ".json", ".jsonl", ".md"):
            _assert_clean(str(path.name), path.read_text(encoding="utf-8", errors="replace"))
    return ds


@pytest.mark.parametrize("kind", ["ollama", "ollama-field", "openai"])
async def test_chat_data_from_a_reasoning_model_holds_no_reasoning(
    kind: str, server: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAMPLE_SIZE", "4")
    seen = server(kind, BankWorld())
    events: list[Event] = []
    async with open_graph() as graph:
        conv = Conversation(graph, f"think-{kind}")
        events += (ev := await say(conv, REQUEST))
        assert stage(ev) == "contract"
        events += (ev := await say(conv, {"action": "approve"}))
        assert stage(ev) == "sample", [e.text for e in ev]
        sample = (await conv.state()).values["sample"]
        assert len(sample) == 4
        assistant = [m for r in sample for m in r["messages"] if m["role"] == "assistant"]
        assert len(assistant) == 12 and all(m["content"].startswith("răspuns") for m in assistant)
        # a question: the prose answer is streamed token by token, then said whole
        events += (ev := await say(conv, "Could you explain how the answers will sound?"))
        answers = [e for e in ev if e.kind == "message" and e.data.get("kind") == "answer"]
        assert answers and answers[-1].text.startswith("răspuns ")
        assert any(e.kind == "token" for e in ev)  # streamed, its reasoning hidden
        events += (ev := await say(conv, "generate 6"))
        assert stage(ev) == "dataset"
        events += (ev := await say(conv, {"action": "approve"}))
        assert stage(ev) == "publish"
        await _graph_messages_clean(conv)
        folder = Path((await conv.state()).values["export_dir"])
    _assert_events_clean(events)
    ds = _assert_dataset_clean(folder)
    assert ds.num_rows == 6
    for row in ds:
        turns = [m for m in row["messages"] if m["role"] == "assistant"]
        assert turns and all(m["content"].startswith("răspuns ") for m in turns)
    if kind.startswith("ollama"):  # every call asked the server not to think
        assert seen["requests"] and all(b.get("think") is False for b in seen["requests"])


@pytest.mark.parametrize("kind", ["ollama", "openai"])
async def test_text_classification_from_a_reasoning_model_holds_no_reasoning(
    kind: str, server: Start
) -> None:
    server(kind, ReviewWorld())
    events: list[Event] = []
    async with open_graph() as graph:
        conv = Conversation(graph, f"think-textcat-{kind}")
        events += await say(
            conv, "A dataset covering customer reviews for an e-commerce website. just go"
        )
        events += (ev := await say(conv, {"action": "approve"}))
        assert stage(ev) == "sample", [e.text for e in ev]
        sample = (await conv.state()).values["sample"]
        assert len(sample) == 10 and all(r["text"].split()[0] == r["label"] for r in sample)
        events += await say(conv, "Could you tell me what neutral means here?")
        events += (ev := await say(conv, "generate 12"))
        assert stage(ev) == "dataset"
        events += (ev := await say(conv, {"action": "approve"}))
        assert stage(ev) == "publish"
        await _graph_messages_clean(conv)
        folder = Path((await conv.state()).values["export_dir"])
    _assert_events_clean(events)
    ds = _assert_dataset_clean(folder)
    assert ds.num_rows == 12
    names = ds.features["label"].names
    assert all(t.split()[0] == names[lb] for t, lb in zip(ds["text"], ds["label"], strict=True))


# --- a server that refuses `think` ----------------------------------------------------------------

MESSAGES = [SystemMessage(content="Write one review."), HumanMessage(content="About shoes.")]


def _texts(body: dict[str, Any]) -> str:
    return json.dumps({"text": "Good shoes, they fit well."})


@pytest.mark.parametrize("lean", [False, True], ids=["langchain", "lean"])
async def test_a_server_refusing_think_is_asked_again_without_it_and_remembered(
    lean: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ollama_http, "_THINK_REFUSED", set())
    with ollama_server(responder=_texts, refuse_think=True, think=THOUGHT) as (url, state):
        monkeypatch.setenv("OLLAMA_BASE_URL", url)
        get_settings.cache_clear()
        model = get_chat_model("generate")
        async with ollama_http.session_scope() if lean else contextlib.nullcontext():
            assert ollama_http.usable(model) is lean
            first = await structured_call(model, GeneratedText, MESSAGES)
            assert [b.get("think") for b in state.requests] == [False, None]
            assert "think" not in state.requests[-1]
            second = await structured_call(model, GeneratedText, MESSAGES)
            free = await model.ainvoke(MESSAGES)  # plain text, through langchain
        assert len(state.requests) == 4 and all("think" not in b for b in state.requests[1:])
    assert first.text == second.text == "Good shoes, they fit well."
    _assert_clean("free text", strip_reasoning(str(free.content)))


async def test_other_refusals_are_not_retried_without_think(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ollama_http, "_THINK_REFUSED", set())
    with ollama_server(responder=_texts) as (url, state):
        monkeypatch.setenv("OLLAMA_BASE_URL", url)
        monkeypatch.setenv("OLLAMA_MODEL", "no-such-model")
        get_settings.cache_clear()
        model = get_chat_model("generate")
        with pytest.raises(Exception, match="ollama pull"):
            await structured_call(model, GeneratedText, MESSAGES, retries=1)
        assert all(b.get("think") is False for b in state.requests)
    assert not ollama_http._THINK_REFUSED
