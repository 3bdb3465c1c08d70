"""A small in-test server speaking enough of Ollama's HTTP API for `langchain_ollama.ChatOllama`.

`/api/tags`, `/api/show` and `/api/chat` (NDJSON streaming or one JSON reply) are answered by the
real built-in SmolLM2 model through llama.cpp. A JSON-schema `format` becomes a llama.cpp
`response_format` schema, as Ollama turns it into a grammar. Each request body is recorded so tests
can check what reached the "server". `serve(app)` runs any ASGI app on a free 127.0.0.1 port in a
thread; `unauthorized_app()` is an OpenAI-compatible server that answers every call with 401.

To imitate a reasoning model (qwen3, deepseek-r1 …), set `OllamaState.think` to some reasoning:
every reply then begins with `<think>…</think>` — or, with `think_field=True`, the reasoning comes
in the message's separate `thinking` field, as a recent Ollama sends it. `responder` (the request
body → the reply's content) replaces SmolLM2 with scripted, instant replies; `refuse_think` makes
the server answer 400 to any body that carries `think`.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from agent.backends.local import MAX_TOKENS, grammar_schema, load_llama

_ROLES = {"system": "system", "user": "user", "assistant": "assistant"}


@dataclass
class OllamaState:
    """Which model names the server lists, and every `/api/chat` body it received."""

    models: list[str] = field(default_factory=lambda: ["llama3.1:latest"])
    requests: list[dict[str, Any]] = field(default_factory=list)
    think: str | None = None
    """Reasoning each reply starts with, as `<think>…</think>` (None: no reasoning)."""
    think_field: bool = False
    """Send `think` in the message's `thinking` field instead of inside the content."""
    responder: Callable[[dict[str, Any]], str] | None = None
    """Scripted replies: the chat body → the content (instead of SmolLM2)."""
    refuse_think: bool = False
    """Answer 400 "does not support thinking" to any body with a `think` field."""
    piece: int = 7
    """Streamed scripted replies come in pieces of this many characters (tags get split)."""

    @property
    def prefix(self) -> str:
        return f"<think>\n{self.think}\n</think>\n\n" if self.think and not self.think_field else ""

    @property
    def last_format(self) -> Any:
        return self.requests[-1].get("format") if self.requests else None

    def knows(self, name: str) -> bool:
        return name in self.models or f"{name}:latest" in self.models


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _completion_request(body: dict[str, Any]) -> dict[str, Any]:
    """An Ollama chat body as llama.cpp `create_chat_completion` arguments."""
    options = body.get("options") or {}
    fmt = body.get("format")
    request: dict[str, Any] = {
        "messages": [
            {"role": _ROLES.get(m.get("role", "user"), "user"), "content": m.get("content") or ""}
            for m in body.get("messages", [])
        ],
        "temperature": options.get("temperature", 0.8),
        "max_tokens": min(options.get("num_predict") or MAX_TOKENS, MAX_TOKENS),
        "stop": options.get("stop"),
    }
    if fmt == "json":
        request["response_format"] = {"type": "json_object"}
    elif isinstance(fmt, dict):
        request["response_format"] = {"type": "json_object", "schema": grammar_schema(fmt)}
    return request


def ollama_app(state: OllamaState) -> Starlette:
    """The ASGI app; every model name in `state.models` is served by SmolLM2."""

    def details() -> dict[str, Any]:
        return {
            "format": "gguf",
            "family": "llama",
            "parameter_size": "135M",
            "quantization_level": "Q4_1",
        }

    async def tags(_: Request) -> Response:
        models = [
            {
                "name": n,
                "model": n,
                "modified_at": _now(),
                "size": 1,
                "digest": "0" * 64,
                "details": details(),
            }
            for n in state.models
        ]
        return JSONResponse({"models": models})

    async def show(request: Request) -> Response:
        name = (await request.json()).get("model", "")
        if not state.knows(name):
            return JSONResponse({"error": f"model '{name}' not found"}, status_code=404)
        return JSONResponse(
            {
                "modelfile": "",
                "parameters": "",
                "template": "",
                "details": details(),
                "model_info": {},
                "capabilities": ["completion"],
            }
        )

    async def chat(request: Request) -> Response:
        body = await request.json()
        state.requests.append(body)
        name = body.get("model", "")
        if not state.knows(name):
            return JSONResponse(
                {"error": f"model '{name}' not found, try pulling it first"}, status_code=404
            )
        if state.refuse_think and "think" in body:
            return JSONResponse({"error": f'"{name}" does not support thinking'}, status_code=400)
        head = {"model": name, "created_at": _now()}
        thinking = {"thinking": state.think} if state.think and state.think_field else {}
        if state.responder is not None:
            return _scripted(state, body, head, thinking)
        completion = _completion_request(body)
        llama, lock = load_llama("smollm2")

        def final(reason: str | None, usage: dict[str, int], started: float) -> dict[str, Any]:
            return {
                **head,
                "message": {"role": "assistant", "content": ""},
                "done": True,
                "done_reason": "length" if reason == "length" else "stop",
                "total_duration": int((time.perf_counter() - started) * 1e9),
                "prompt_eval_count": usage.get("prompt_tokens", 0),
                "eval_count": usage.get("completion_tokens", 0),
            }

        if not body.get("stream", True):

            def run() -> dict[str, Any]:
                started = time.perf_counter()
                with lock:
                    reply = llama.create_chat_completion(**completion)
                choice = reply["choices"][0]
                out = final(choice["finish_reason"], reply["usage"], started)
                out["message"]["content"] = state.prefix + (choice["message"]["content"] or "")
                out["message"].update(thinking)
                return out

            return JSONResponse(await run_in_threadpool(run))

        def lines() -> Iterator[str]:
            started, reason, count = time.perf_counter(), None, 0
            if state.prefix or thinking:
                message = {"role": "assistant", "content": state.prefix, **thinking}
                yield json.dumps({**head, "message": message, "done": False}) + "\n"
            with lock:
                for part in llama.create_chat_completion(**completion, stream=True):
                    choice = part["choices"][0]
                    reason = choice.get("finish_reason") or reason
                    if text := choice["delta"].get("content"):
                        count += 1
                        message = {"role": "assistant", "content": text}
                        yield json.dumps({**head, "message": message, "done": False}) + "\n"
            text = "\n".join(m["content"] for m in completion["messages"])
            prompt = len(llama.tokenize(text.encode(), add_bos=False))
            usage = {"prompt_tokens": prompt, "completion_tokens": count}
            yield json.dumps(final(reason, usage, started)) + "\n"

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    return Starlette(
        routes=[
            Route("/api/tags", tags),
            Route("/api/show", show, methods=["POST"]),
            Route("/api/chat", chat, methods=["POST"]),
            Route("/", lambda _: Response("Ollama is running")),
        ]
    )


def _scripted(
    state: OllamaState, body: dict[str, Any], head: dict[str, Any], thinking: dict[str, str]
) -> Response:
    """A scripted reply (`state.responder`), streamed in small pieces or sent whole."""
    assert state.responder is not None
    content = state.prefix + state.responder(body)
    done = {**head, "done": True, "done_reason": "stop", "prompt_eval_count": 1, "eval_count": 1}
    if not body.get("stream", True):
        message = {"role": "assistant", "content": content, **thinking}
        return JSONResponse({**done, "message": message})
    pieces = [content[i : i + state.piece] for i in range(0, len(content), state.piece)]
    first = {**head, "message": {"role": "assistant", "content": "", **thinking}, "done": False}
    out = [first] if thinking else []
    out += [{**head, "message": {"role": "assistant", "content": p}, "done": False} for p in pieces]
    out.append({**done, "message": {"role": "assistant", "content": ""}})
    text = "".join(json.dumps(o) + "\n" for o in out)
    return Response(text, media_type="application/x-ndjson")


def unauthorized_app() -> Starlette:
    """An OpenAI-compatible server that rejects every API key."""

    async def deny(_: Request) -> Response:
        error = {
            "message": "Incorrect API key provided.",
            "type": "invalid_request_error",
            "code": "invalid_api_key",
        }
        return JSONResponse({"error": error}, status_code=401)

    return Starlette(routes=[Route("/v1/{path:path}", deny, methods=["GET", "POST"])])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run `app` with uvicorn on a free 127.0.0.1 port in a thread; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextlib.contextmanager
def ollama_server(
    models: list[str] | None = None, **options: Any
) -> Iterator[tuple[str, OllamaState]]:
    """The Ollama-speaking server; yields (base URL, state). `options` set `OllamaState`'s fields
    (`think`, `think_field`, `responder`, `refuse_think`, `piece`)."""
    state = OllamaState(models=models or ["llama3.1:latest"], **options)
    with serve(ollama_app(state)) as url:
        yield url, state
