"""A fake Ollama server that answers after a fixed delay with valid structured replies.

It speaks enough of Ollama's HTTP API for `langchain_ollama.ChatOllama` (`/api/tags`, `/api/show`,
`/api/chat` streamed as NDJSON or not) and reads the JSON schema in `format` to answer in shape: a
generation request (`text`) gets the asked-for label followed by words drawn from the prompt's
variation seed; a relabel request (`label`/`labels`) gets the label the text starts with. Knobs:
`delay` seconds per reply, `pool` (> 0: texts come from that many templates, repeated and lightly
perturbed, so the engine's dedup has work), `capacity` (> 0: more requests in flight than this get
503), `fail_every` (every k-th request gets 503). `GET /stats` reports requests, the most in flight
and tokens.

    python -m tests.fixed_delay_server --delay 0.2          # prints "READY <url>" then serves
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

VOCAB = (
    "order delivery price quality battery screen fabric size colour refund seller package box "
    "warranty cable charger shoe jacket lamp blender kettle camera lens strap zipper sole stitching "
    "manual app update courier tracking invoice coupon discount return exchange support email chat "
    "weekend morning evening gift birthday office kitchen garden travel gym winter summer rain child "
    "dog cat phone laptop tablet speaker headphones mouse keyboard monitor printer router sofa chair "
    "table pillow blanket mug plate knife fork spoon pan pot oven fridge freezer washer dryer vacuum"
).split()


@dataclass
class Knobs:
    delay: float = 0.2
    pool: int = 0
    capacity: int = 0
    fail_every: int = 0


@dataclass
class Stats:
    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    rejected: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    formats: list[str] = field(default_factory=list)


def pool_text(pool: int, seed: str) -> str:
    """A text from a small pool of templates, sometimes lightly perturbed (case, punctuation, +1 word)."""
    rng = random.Random(seed)
    base_rng = random.Random(rng.randrange(pool))
    words = [base_rng.choice(VOCAB) for _ in range(base_rng.randint(40, 60))]
    kind = rng.randrange(3)
    if kind == 1:
        words = [w.upper() if i % 7 == 0 else w for i, w in enumerate(words)]
        words[-1] += "!"
    elif kind == 2:
        words.append(rng.choice(VOCAB))
    return " ".join(words)


def reply_for(body: dict[str, Any], knobs: Knobs) -> dict[str, Any] | str:
    """The structured reply a well-behaved model would give to this chat body."""
    messages = body.get("messages") or []
    system = next((m.get("content", "") for m in messages if m.get("role") == "system"), "")
    user = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
    fmt = body.get("format")
    props = fmt.get("properties", {}) if isinstance(fmt, dict) else {}
    if "text" in props or not props:
        label = re.search(r"<label>(.*?)</label>", user)
        seed = re.search(r"Variation seed: (\S+)", user)
        key = seed.group(1) if seed else str(random.random())
        if knobs.pool:
            return {"text": pool_text(knobs.pool, key)}
        rng = random.Random(key)
        words = " ".join(rng.choice(VOCAB) for _ in range(24))
        return {"text": f"{label.group(1) if label else 'text'} {words}"}
    names = re.findall(r"^- ([\w-]+):", system, re.M)
    text = re.search(r"<text>\s*(.*?)\s*</text>", user, re.S)
    first = text.group(1).split()[0].rstrip(",") if text and text.group(1).split() else ""
    picked = [n for n in names if n in first.split(",")] or names[:1]
    if "labels" in props:
        return {"reasoning": "fits", "labels": picked}
    return {"reasoning": "fits", "label": picked[0] if picked else ""}


def make_app(knobs: Knobs, stats: Stats) -> Starlette:
    details = {"format": "gguf", "family": "llama", "parameter_size": "8B"}

    async def tags(_: Request) -> Response:
        model = {"name": "llama3.1:latest", "model": "llama3.1:latest", "size": 1}
        return JSONResponse({"models": [{**model, "digest": "0" * 64, "details": details}]})

    async def show(_: Request) -> Response:
        return JSONResponse({"modelfile": "", "details": details, "capabilities": ["completion"]})

    async def stats_view(_: Request) -> Response:
        return JSONResponse(stats.__dict__ | {"formats": stats.formats[-5:]})

    async def chat(request: Request) -> Response:
        body = await request.json()
        stats.requests += 1
        busy = knobs.capacity and stats.in_flight >= knobs.capacity
        if busy or (knobs.fail_every and stats.requests % knobs.fail_every == 0):
            stats.rejected += 1
            return JSONResponse({"error": "server busy"}, status_code=503)
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            started = time.perf_counter()
            await asyncio.sleep(knobs.delay)
        finally:
            stats.in_flight -= 1
        out = reply_for(body, knobs)
        content = out if isinstance(out, str) else json.dumps(out)
        prompt = sum(len(m.get("content") or "") for m in body.get("messages", [])) // 4
        stats.prompt_tokens += prompt
        stats.completion_tokens += len(content) // 4
        head = {"model": body.get("model", "llama3.1"), "created_at": "2024-01-01T00:00:00Z"}
        done = {
            **head,
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "stop",
            "total_duration": int((time.perf_counter() - started) * 1e9),
            "prompt_eval_count": prompt,
            "eval_count": len(content) // 4,
        }
        if not body.get("stream", True):
            done["message"]["content"] = content
            return JSONResponse(done)
        part = {**head, "message": {"role": "assistant", "content": content}, "done": False}
        lines = json.dumps(part) + "\n" + json.dumps(done) + "\n"
        return Response(lines, media_type="application/x-ndjson")

    return Starlette(
        routes=[
            Route("/api/tags", tags),
            Route("/api/show", show, methods=["POST"]),
            Route("/api/chat", chat, methods=["POST"]),
            Route("/stats", stats_view),
            Route("/", lambda _: Response("Ollama is running")),
        ]
    )


def _bound_socket(port: int = 0) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # accepted sockets inherit it
    sock.bind(("127.0.0.1", port))
    return sock


@contextlib.contextmanager
def fixed_delay_server(**knobs: Any) -> Iterator[tuple[str, Stats]]:
    """Serve in a thread of this process; yields (base URL, live stats)."""
    stats = Stats()
    sock = _bound_socket()
    config = uvicorn.Config(
        make_app(Knobs(**knobs), stats), log_level="warning", lifespan="off", backlog=2048
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the fixed-delay server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", stats
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--pool", type=int, default=0)
    parser.add_argument("--capacity", type=int, default=0)
    parser.add_argument("--fail-every", type=int, default=0)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    sock = _bound_socket(args.port)
    knobs = Knobs(args.delay, args.pool, args.capacity, args.fail_every)
    print(f"READY http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(
        make_app(knobs, Stats()), log_level="warning", lifespan="off", backlog=2048
    )
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
