"""A lean `/api/chat` client for the engine's structured calls to Ollama.

Inside `session_scope()` (the engine opens one per run) a ChatOllama structured call goes straight
to Ollama over one aiohttp session instead of through langchain's and httpx's layers. What it
sends is exactly what ChatOllama would send: the body comes from ChatOllama's own `_chat_params`
(messages converted, options, keep-alive, `format` = the JSON schema) and the address, headers
(auth, user agent) and timeout from the ollama client ChatOllama built. Replies are streamed, so
the read timeout applies between tokens as before, and errors are raised as the ollama client
raises them (`ConnectionError`, `ResponseError` with its status, an httpx timeout), so
`friendly_error` and the scheduler's retry rules see no difference.

Why: at 64 requests in flight on 2 cores, httpx's connection pool scanned every connection on
each request and langchain wrapped every call in callback managers and message objects — about
3 ms of client CPU a call, which delayed the next request of every other row
(`python -m bench.orchestration`; numbers in bench/README.md). Through this path it is about 1 ms.

Models with callbacks, and runs with LangSmith tracing on, keep langchain's path so that what
they observe is complete (`bench.reference` counts tokens through a callback).

Reasoning: `ChatOllama` here is langchain's, asking the server not to think (`think: false`).
Ollama accepts `false` from every model (it refuses only `true` or a level for models that cannot
think, and versions before 0.9 ignore the field); should a server still refuse it — a 400 naming
`think` — the call is made once more without the field, and that model is asked without it from
then on. Whatever reasoning still arrives inside the content (`<think>…</think>`) is stripped
(`agent.reasoning`); a separate `thinking` field is never read.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator, Iterator, Sequence
from contextvars import ContextVar
from typing import Any

import aiohttp
import httpx
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_ollama import ChatOllama as _LangchainChatOllama
from ollama import ResponseError

from agent.reasoning import strip_reasoning

_SESSION: ContextVar[aiohttp.ClientSession | None] = ContextVar("ollama_session", default=None)
_CONNECTION_ERROR = "Failed to connect to Ollama."  # the ollama client's words, shortened


_THINK_REFUSED: set[tuple[str, str]] = set()  # (base URL, model) whose server refused `think`


def _think_key(model: Any) -> tuple[str, str]:
    return (str(getattr(model, "base_url", None) or ""), str(getattr(model, "model", "")))


def _think_refusal(model: Any, think: Any, status: Any, text: str) -> bool:
    """Whether this failure is a server refusing `think: false`; if so, remember the model."""
    key = _think_key(model)
    if think is not False or status != 400 or "think" not in text.lower() or key in _THINK_REFUSED:
        return False
    _THINK_REFUSED.add(key)
    return True


class ChatOllama(_LangchainChatOllama):
    """langchain's ChatOllama that asks not to think, and asks without `think` where it is refused.

    The class keeps langchain's name: the app tells Ollama models apart by it.
    """

    reasoning: bool | str | None = False

    def _chat_params(
        self, messages: list[BaseMessage], stop: list[str] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        params = super()._chat_params(messages, stop, **kwargs)
        if params.get("think") is False and _think_key(self) in _THINK_REFUSED:
            params["think"] = None  # the ollama client leaves None out of the body
        return params

    def _refused(self, exc: ResponseError, kwargs: dict[str, Any]) -> bool:
        think = kwargs.get("reasoning", self.reasoning)
        return _think_refusal(self, think, exc.status_code, str(exc.error))

    async def _acreate_chat_stream(
        self, messages: list[BaseMessage], stop: list[str] | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        for again in (False, True):
            started = False
            try:
                async for part in super()._acreate_chat_stream(messages, stop, **kwargs):
                    started = True
                    yield part
                return
            except ResponseError as exc:
                if started or again or not self._refused(exc, kwargs):
                    raise

    def _create_chat_stream(
        self, messages: list[BaseMessage], stop: list[str] | None = None, **kwargs: Any
    ) -> Iterator[Any]:
        for again in (False, True):
            started = False
            try:
                for part in super()._create_chat_stream(messages, stop, **kwargs):
                    started = True
                    yield part
                return
            except ResponseError as exc:
                if started or again or not self._refused(exc, kwargs):
                    raise


@contextlib.asynccontextmanager
async def session_scope() -> AsyncIterator[None]:
    """Lean calls for the tasks started inside (they inherit the context); closed at the end."""
    if _SESSION.get() is not None:  # nested: the outer scope's session serves
        yield
        return
    session = aiohttp.ClientSession(
        # the scheduler caps the requests in flight; keep a connection for each
        connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60),
        json_serialize=json.dumps,
    )
    token = _SESSION.set(session)
    try:
        yield
    finally:
        _SESSION.reset(token)
        await session.close()


def usable(model: BaseChatModel) -> bool:
    """Whether calls of this model may take the lean path now."""
    if _SESSION.get() is None or type(model).__name__ != "ChatOllama":
        return False
    if model.callbacks:
        return False
    tracing = os.environ.get("LANGSMITH_TRACING") or os.environ.get("LANGCHAIN_TRACING_V2") or ""
    return tracing.lower() != "true"


class LeanChat:
    """Structured chat calls of one ChatOllama model with one JSON schema."""

    def __init__(self, model: BaseChatModel, fmt: dict[str, Any]) -> None:
        self.model = model
        self.fmt = fmt
        client: httpx.AsyncClient = model._async_client._client  # type: ignore[attr-defined]
        self.url = str(client.base_url).rstrip("/") + "/api/chat"
        self.headers = {
            k: v
            for k, v in client.headers.items()
            if k.lower() not in ("accept-encoding", "connection", "content-length", "host")
        }
        t = client.timeout
        self.timeout = aiohttp.ClientTimeout(total=None, sock_connect=t.connect, sock_read=t.read)

    async def content(self, messages: Sequence[BaseMessage]) -> str:
        """The reply's text without reasoning (Ollama keeps it to `format`); raises as the ollama
        client does. A server refusing `think: false` is asked once more without it."""
        session = _SESSION.get()
        if session is None:
            raise RuntimeError("LeanChat needs session_scope()")
        for again in (False, True):
            params = self.model._chat_params(list(messages), format=self.fmt, stream=True)  # type: ignore[attr-defined]
            params["messages"] = [
                {k: v for k, v in dict(m).items() if v} for m in params["messages"]
            ]
            body = {k: v for k, v in params.items() if v is not None}
            try:
                return strip_reasoning(await self._post(session, body))
            except ResponseError as exc:
                status, think = exc.status_code, body.get("think")
                if again or not _think_refusal(self.model, think, status, str(exc.error)):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _post(self, session: aiohttp.ClientSession, body: dict[str, Any]) -> str:
        parts: list[str] = []
        try:
            async with session.post(
                self.url, data=json.dumps(body), headers=self.headers, timeout=self.timeout
            ) as reply:
                if reply.status >= 400:
                    raise ResponseError(await reply.text(), reply.status)
                async for line in reply.content:
                    if not line.strip():
                        continue
                    chunk = json.loads(line)
                    if err := chunk.get("error"):
                        raise ResponseError(err)  # as the ollama client raises it
                    # the content only: a separate `thinking` field is reasoning, never data
                    parts.append((chunk.get("message") or {}).get("content") or "")
                    if chunk.get("done"):
                        break
        except aiohttp.ClientConnectorError as exc:
            raise ConnectionError(_CONNECTION_ERROR) from exc
        except aiohttp.ConnectionTimeoutError as exc:
            raise httpx.ConnectTimeout(
                f"no connection within {self.timeout.sock_connect} s"
            ) from exc
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise httpx.ReadTimeout(f"no reply within {self.timeout.sock_read} s") from exc
        return "".join(parts)
