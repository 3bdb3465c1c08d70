"""Every model-server failure becomes one sentence the user can act on (fast, no server)."""

from __future__ import annotations

import httpx
import pytest

from agent.config import Settings
from agent.llm import LLMUnavailable, friendly_error, set_provider


class Status(Exception):
    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


def test_openai_json_schema_rejection_names_the_fix() -> None:
    exc = Status("Input should be 'text' or 'json_object' (response_format)", 500)
    err = friendly_error(
        exc, Settings(llm_provider="openai", openai_base_url="http://127.0.0.1:1/v1")
    )
    assert isinstance(err, LLMUnavailable) and "OPENAI_STRUCTURED_METHOD=function_calling" in str(
        err
    )


@pytest.mark.parametrize(
    ("provider", "want"),
    [("ollama", "run `ollama pull llama3.1`"), ("openai", "check OPENAI_MODEL")],
)
def test_model_not_found_names_the_fix_of_its_provider(provider: str, want: str) -> None:
    set_provider(provider)
    try:
        err = friendly_error(
            Status("model not found", 404), Settings(openai_base_url="http://h/v1")
        )
    finally:
        set_provider(None)
    assert want in str(err)


def test_a_slow_server_is_not_called_down() -> None:
    err = friendly_error(httpx.ReadTimeout("slow"), Settings(request_timeout=900))
    assert "longer than 900 s" in str(err) and "LLM_TIMEOUT" in str(err)


def test_each_role_may_use_its_own_model() -> None:
    from agent.llm import get_chat_model

    settings = Settings(llm_provider="ollama", ollama_model="llama3.1", judge_model="qwen2.5:7b")
    assert get_chat_model("generate", settings).model == "llama3.1"  # type: ignore[attr-defined]
    assert get_chat_model("judge", settings).model == "qwen2.5:7b"  # type: ignore[attr-defined]
    assert get_chat_model("steer", settings).model == "llama3.1"  # type: ignore[attr-defined]
