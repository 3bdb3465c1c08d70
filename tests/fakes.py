"""A scripted chat model: replies come from a responder function; every call is recorded.

The responder gets (schema name or "text", messages) and returns a pydantic object, a dict, a raw
string (parsed as JSON for structured calls — so malformed output can be scripted) or an exception.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from langchain_core.exceptions import OutputParserException
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnableLambda
from pydantic import BaseModel, Field

Responder = Callable[[str, list[BaseMessage]], Any]


class ScriptedModel(BaseChatModel):
    responder: Any
    calls: list[tuple[str, list[BaseMessage]]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _reply(self, kind: str, messages: list[BaseMessage]) -> Any:
        self.calls.append((kind, list(messages)))
        out = self.responder(kind, list(messages))
        if isinstance(out, BaseException):
            raise out
        return out

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        out = self._reply("text", messages)
        if isinstance(out, BaseModel):
            out = out.model_dump_json()
        elif isinstance(out, dict):
            out = json.dumps(out)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=str(out)))])

    def with_structured_output(self, schema: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        def call(messages: Any) -> Any:
            out = self._reply(schema.__name__, list(messages))
            if isinstance(out, str):
                try:
                    out = json.loads(out)
                except json.JSONDecodeError as exc:
                    raise OutputParserException(f"not JSON: {out[:40]}") from exc
            if isinstance(out, dict):
                return schema.model_validate(out)
            return out

        async def acall(messages: Any) -> Any:
            return call(messages)

        return RunnableLambda(call, afunc=acall)

    def kinds(self) -> list[str]:
        return [k for k, _ in self.calls]
