"""The three model back-ends with real parts: the built-in llama.cpp model in-process, Ollama's API over
real HTTP (an in-test server backed by SmolLM2, since no Ollama binary installs here), and an
OpenAI-compatible server (`llama_cpp.server` in a subprocess). Also the error sentences users see.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Literal

import httpx
import pytest
from pydantic import BaseModel, Field

from agent.backends.local import LocalChatModel, inline_refs, model_path, to_chat_messages
from agent.config import Settings, get_settings
from agent.llm import (
    LLMError,
    LLMUnavailable,
    as_messages,
    check_ollama,
    get_chat_model,
    structured_call,
)
from tests.ollama_api_server import OllamaState, free_port, ollama_server, serve, unauthorized_app

PROMPT = as_messages(
    "You write synthetic product reviews. Reply as JSON.",
    "Write one short product review for the label <label>positive</label>.",
)


class Aspect(BaseModel):
    name: str
    score: int = Field(description="1 to 5")


class Review(BaseModel):
    """Small, but with a Literal, a list, an optional field and a nested model."""

    text: str = Field(description="The review, two sentences at most.")
    label: Literal["positive", "negative", "neutral"]
    tags: list[str] = Field(default_factory=list, description="Up to 3 tags.")
    note: str | None = None
    aspect: Aspect


class Text(BaseModel):
    text: str


@pytest.fixture(scope="module")
def ollama() -> Iterator[tuple[str, OllamaState]]:
    with ollama_server(["llama3.1:latest"]) as served:
        yield served


@pytest.fixture(scope="module")
def openai_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m llama_cpp.server` with SmolLM2, started through `avoid_amx` (see its docstring)."""
    port = free_port()
    boot = (
        "from agent.backends.local import avoid_amx; avoid_amx(); import runpy; "
        "runpy.run_module('llama_cpp.server', run_name='__main__', alter_sys=True)"
    )
    args = ["--model", str(model_path("smollm2")), "--model_alias", "smollm2"]
    args += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "2"]
    # A log file, not a pipe: llama.cpp's log would fill the pipe and block the server.
    log = tmp_path_factory.mktemp("llama_server") / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", boot, *args], stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited: {log.read_text()[-2000:]}")
            try:
                httpx.get(f"{url}/models", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    pytest.fail("llama_cpp.server did not start within 60 s")
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _openai(url: str, method: str, monkeypatch: pytest.MonkeyPatch, **kw: str) -> Settings:
    # structured_call reads the method from the global settings, so set it in the environment too.
    monkeypatch.setenv("OPENAI_STRUCTURED_METHOD", method)
    get_settings.cache_clear()
    return Settings(llm_provider="openai", openai_base_url=url, openai_model="smollm2", **kw)  # type: ignore[arg-type]


# --- helpers, no model -------------------------------------------------------------------------


def test_inline_refs_removes_defs_and_rejects_recursion() -> None:
    schema = inline_refs(Review.model_json_schema())
    assert "$defs" not in str(schema) and "$ref" not in str(schema)
    assert schema["properties"]["aspect"]["properties"]["score"]["type"] == "integer"

    class Node(BaseModel):
        children: list[Node]

    with pytest.raises(ValueError, match="recursive"):
        inline_refs(Node.model_json_schema())


def test_gemma_messages_fold_the_system_prompt_into_the_first_turn() -> None:
    # llama.cpp's "gemma" chat format silently drops system messages.
    folded = to_chat_messages(PROMPT, fold_system=True)
    assert [m["role"] for m in folded] == ["user"]
    assert folded[0]["content"].startswith("You write synthetic product reviews.")


# --- the built-in model, in-process ------------------------------------------------------------


@pytest.mark.e2e
async def test_local_structured_call_returns_valid_objects() -> None:
    model = get_chat_model("generate", Settings(llm_provider="local", local_model="smollm2"))
    assert isinstance(model, LocalChatModel)
    for _ in range(3):
        review = await structured_call(model, Review, PROMPT)
        assert isinstance(review, Review) and isinstance(review.aspect, Aspect)


@pytest.mark.e2e
async def test_local_streams_tokens_without_blocking_the_event_loop() -> None:
    model = get_chat_model("steer", Settings(llm_provider="local"))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    chunks = [c async for c in model.astream("Describe a kettle in two sentences.")]
    task.cancel()
    assert len([c for c in chunks if c.content]) >= 3
    assert ticks >= 5, "the event loop was blocked while the model ran"
    assert len(list(model.stream("Say hello."))) >= 2


# --- Ollama's API over real HTTP ---------------------------------------------------------------


@pytest.mark.e2e
async def test_ollama_structured_call_sends_the_json_schema(
    ollama: tuple[str, OllamaState],
) -> None:
    url, state = ollama
    model = get_chat_model("generate", Settings(llm_provider="ollama", ollama_base_url=url))
    assert type(model).__name__ == "ChatOllama"
    review = await structured_call(model, Review, PROMPT)
    assert isinstance(review, Review)
    fmt = state.last_format
    assert isinstance(fmt, dict) and set(fmt["properties"]) == set(Review.model_fields)
    assert state.requests[-1]["stream"] is True
    chunks = [c async for c in model.astream("Say hello in five words.")]
    assert len([c for c in chunks if c.content]) >= 2


def test_check_ollama(ollama: tuple[str, OllamaState]) -> None:
    url, _ = ollama
    assert check_ollama(Settings(ollama_base_url=url, ollama_model="llama3.1")) is None
    missing = check_ollama(Settings(ollama_base_url=url, ollama_model="mistral"))
    assert missing and "ollama pull mistral" in missing
    dead = check_ollama(Settings(ollama_base_url=f"http://127.0.0.1:{free_port()}"))
    assert dead and "ollama serve" in dead


async def test_unknown_ollama_model_is_a_friendly_404(
    ollama: tuple[str, OllamaState], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = ollama
    monkeypatch.setenv("OLLAMA_MODEL", "mistral")  # friendly_error names the configured model
    get_settings.cache_clear()
    model = get_chat_model("steer", Settings(ollama_base_url=url, ollama_model="mistral"))
    with pytest.raises(LLMUnavailable, match="ollama pull mistral"):
        await structured_call(model, Text, PROMPT)


async def test_connection_refused_says_start_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    model = get_chat_model("steer", Settings(llm_provider="ollama", ollama_base_url=dead))
    with pytest.raises(LLMUnavailable, match="ollama serve"):
        await structured_call(model, Text, PROMPT)
    model = get_chat_model("steer", _openai(f"{dead}/v1", "function_calling", monkeypatch))
    with pytest.raises(LLMUnavailable, match="not answering"):
        await structured_call(model, Text, PROMPT)


async def test_openai_401_says_check_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with serve(unauthorized_app()) as url:
        model = get_chat_model("steer", _openai(f"{url}/v1", "function_calling", monkeypatch))
        with pytest.raises(LLMUnavailable, match="OPENAI_API_KEY"):
            await structured_call(model, Text, PROMPT)


# --- an OpenAI-compatible server: llama_cpp.server ---------------------------------------------


# langchain-openai caches its async HTTP client per base URL, bound to the first event loop:
# both tests against this server share one loop, or the second fails with "Event loop is closed".
@pytest.mark.e2e
@pytest.mark.asyncio(loop_scope="module")
async def test_openai_function_calling_works(
    openai_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = get_chat_model("generate", _openai(openai_url, "function_calling", monkeypatch))
    assert type(model).__name__ == "ChatOpenAI"
    review = await structured_call(model, Review, PROMPT)
    assert isinstance(review, Review)


@pytest.mark.e2e
@pytest.mark.asyncio(loop_scope="module")
async def test_openai_json_schema_is_rejected_by_llama_cpp_server(
    openai_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """llama_cpp.server accepts only text/json_object response formats; it answers json_schema with a
    500 validation error. That is not a retryable parse error, so no fallback runs: the user gets,
    at once, one sentence naming the fix."""
    model = get_chat_model("generate", _openai(openai_url, "json_schema", monkeypatch))
    started = time.monotonic()
    with pytest.raises(LLMError) as err:
        await structured_call(model, Review, PROMPT)
    assert "OPENAI_STRUCTURED_METHOD=function_calling" in str(err.value)
    assert time.monotonic() - started < 10
