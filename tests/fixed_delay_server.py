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
    seen: list[dict[str, Any]] = field(default_factory=list)
    """The last few chat requests: {"headers": {lower-case name: value}, "body": parsed JSON}."""


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


class _Connection(asyncio.Protocol):
    """One client connection: HTTP/1.1 keep-alive, requests answered one at a time, in order."""

    def __init__(self, server: FixedDelayServer) -> None:
        self.server = server
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        if self.task is not None:
            self.task.cancel()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self._next()

    def _next(self) -> None:
        if self.task is not None:
            return
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        lines = self.buf[:end].decode("latin-1").split("\r\n")
        method, path = lines[0].split(" ")[:2]
        headers = {}
        for line in lines[1:]:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        length = int(headers.get("content-length", 0))
        if len(self.buf) < end + 4 + length:
            return
        body, self.buf = self.buf[end + 4 : end + 4 + length], self.buf[end + 4 + length :]
        self.task = asyncio.get_running_loop().create_task(self._serve(method, path, body, headers))

    async def _serve(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> None:
        try:
            status, kind, payload = await self.server.handle(method, path, body, headers)
        except Exception as exc:  # a test server: say what broke instead of hanging the client
            status, kind, payload = 500, "text/plain", repr(exc).encode()
        head = f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}\r\nContent-Type: {kind}\r\n"
        head += f"Content-Length: {len(payload)}\r\n\r\n"
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(head.encode() + payload)
        self.task = None
        self._next()


_REASONS = {200: "OK", 404: "Not Found", 500: "Internal Server Error", 503: "Service Unavailable"}
_DETAILS = {"format": "gguf", "family": "llama", "parameter_size": "8B"}


class FixedDelayServer:
    """The server on its own event loop: `serve()` in this thread, or `start()` in a background one.

    `stop()` closes the port and every open connection (the server went away: clients are refused)
    and `start()` opens the same port again — a restarted model server, for fault tests. Plain
    asyncio, no web framework: in the benchmarks it shares two cores with the client it measures.
    """

    def __init__(self, knobs: Knobs, port: int = 0) -> None:
        self.knobs, self.stats = knobs, Stats()
        self.sock = _bound_socket(port)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.connections: set[_Connection] = set()
        self._server: asyncio.AbstractServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    async def handle(
        self, method: str, path: str, body: bytes, headers: dict[str, str] | None = None
    ) -> tuple[int, str, bytes]:
        if path == "/api/chat":
            parsed = json.loads(body)
            self.stats.seen = [*self.stats.seen[-4:], {"headers": headers or {}, "body": parsed}]
            return await self._chat(parsed)
        if path == "/api/tags":
            model = {"name": "llama3.1:latest", "model": "llama3.1:latest", "size": 1}
            return _json({"models": [{**model, "digest": "0" * 64, "details": _DETAILS}]})
        if path == "/api/show":
            return _json({"modelfile": "", "details": _DETAILS, "capabilities": ["completion"]})
        if path == "/stats":
            return _json(self.stats.__dict__ | {"formats": self.stats.formats[-5:], "seen": []})
        if path == "/":
            return 200, "text/plain", b"Ollama is running"
        return 404, "application/json", b'{"error": "not found"}'

    async def _chat(self, body: dict[str, Any]) -> tuple[int, str, bytes]:
        knobs, stats = self.knobs, self.stats
        stats.requests += 1
        busy = knobs.capacity and stats.in_flight >= knobs.capacity
        if busy or (knobs.fail_every and stats.requests % knobs.fail_every == 0):
            stats.rejected += 1
            return 503, "application/json", b'{"error": "server busy"}'
        if isinstance(body.get("format"), dict):
            stats.formats.append(json.dumps(body["format"])[:200])
            del stats.formats[:-5]
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        started = time.perf_counter()
        try:
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
            return _json(done)
        part = {**head, "message": {"role": "assistant", "content": content}, "done": False}
        lines = json.dumps(part) + "\n" + json.dumps(done) + "\n"
        return 200, "application/x-ndjson", lines.encode()

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), sock=self.sock)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.abort()
        self.connections.clear()

    def serve(self) -> None:
        """Serve in this thread until killed (the benchmarks' subprocess)."""

        async def forever() -> None:
            await self._open()
            await asyncio.Event().wait()

        asyncio.run(forever())

    def start(self) -> None:
        """Serve from a background thread (again, on the same port, after `stop`)."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
            self._thread.start()
        if self.sock.fileno() < 0:  # closed by `stop`: bind the same port again
            self.sock = _bound_socket(self.port)
        asyncio.run_coroutine_threadsafe(self._open(), self._loop).result(timeout=10)

    def stop(self) -> None:
        """Close the port and drop every connection; `start` brings it back."""
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
        self.sock.close()

    def shutdown(self) -> None:
        self.stop()
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()
            self._loop = None


def _json(data: Any) -> tuple[int, str, bytes]:
    return 200, "application/json", json.dumps(data).encode()


def _bound_socket(port: int = 0) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # accepted sockets inherit it
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)  # connections wait in the backlog until the server runs
    return sock


@contextlib.contextmanager
def running_server(**knobs: Any) -> Iterator[FixedDelayServer]:
    """A server in a background thread of this process, which a test may stop and start again."""
    server = FixedDelayServer(Knobs(**knobs))
    server.start()
    try:
        yield server
    finally:
        server.shutdown()


@contextlib.contextmanager
def fixed_delay_server(**knobs: Any) -> Iterator[tuple[str, Stats]]:
    """Serve in a thread of this process; yields (base URL, live stats)."""
    with running_server(**knobs) as server:
        yield server.url, server.stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--pool", type=int, default=0)
    parser.add_argument("--capacity", type=int, default=0)
    parser.add_argument("--fail-every", type=int, default=0)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = FixedDelayServer(
        Knobs(args.delay, args.pool, args.capacity, args.fail_every), args.port
    )
    print(f"READY {server.url}", flush=True)
    server.serve()


if __name__ == "__main__":
    main()
