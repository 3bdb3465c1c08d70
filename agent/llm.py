"""The one chat-model factory, health checks, and structured calls with retries and a tolerant fallback.

Everything that talks to a model gets it from `get_chat_model`; tests swap the model here
(`use_model`) and nowhere else. Every error a model server can raise is turned into an `LLMError`
whose message is one sentence a user can act on.

The provider is the session's (`Context.provider`, read from the graph's runtime context or passed
in), else the app's default, resolved once at start-up (`set_provider`); one user switching the
provider changes nothing for another.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any, Literal, TypeVar

import httpx
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, ValidationError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from agent import ollama_http
from agent.backends import local
from agent.backends.local import OLLAMA_SITE, built_in_missing
from agent.config import Settings, get_settings
from agent.context import Context, current_context, session_settings
from agent.errors import LLMBadOutput, LLMError, LLMUnavailable
from agent.i18n import Lazy, _, lazy
from agent.reasoning import strip_reasoning

log = logging.getLogger(__name__)

Role = Literal["steer", "generate", "judge"]
T = TypeVar("T", bound=BaseModel)


_overrides: dict[str | None, BaseChatModel] = {}
"""Test models: by provider, or for every provider under None."""
_resolved_provider: str | None = None
"""The app's default provider, resolved once at start-up; a session's own choice wins over it."""


@contextlib.contextmanager
def use_model(model: BaseChatModel, provider: str | None = None) -> Iterator[BaseChatModel]:
    """Make every role use `model` (tests, and the CLI's scripted runs) — for one provider only
    when `provider` is given (tests of per-session providers)."""
    old = _overrides.get(provider)
    _overrides[provider] = model
    try:
        yield model
    finally:
        if old is None:
            _overrides.pop(provider, None)
        else:
            _overrides[provider] = old


def set_provider(provider: str | None) -> None:
    """Pin the app's default provider (chosen at start-up by `resolve_provider`); sessions that
    chose their own (`Context.provider`) keep it."""
    global _resolved_provider
    _resolved_provider = provider


def current_provider(settings: Settings | None = None, context: Context | None = None) -> str:
    """The provider in force here: the session's, else the app's default, else the setting (which
    may still be `auto`)."""
    context = context or current_context()
    settings = settings or session_settings(context)
    return (context.provider if context else None) or _resolved_provider or settings.llm_provider


def _test_model(provider: str | None) -> BaseChatModel | None:
    """The test model for `provider` (None: the one for every provider)."""
    return (_overrides.get(provider) if provider else None) or _overrides.get(None)


def check_ollama(settings: Settings) -> str | None:
    """None when Ollama answers and has the model; else one sentence saying what to do."""
    url = settings.ollama_base_url
    try:
        resp = httpx.get(f"{url}/api/tags", timeout=5)
        resp.raise_for_status()
        names = [m.get("name", "") for m in resp.json().get("models", [])]
    except (httpx.HTTPError, ValueError):
        return f"Ollama is not answering at {url} — start it with `ollama serve` (or set OLLAMA_BASE_URL)."
    want = settings.ollama_model
    if not any(n == want or n.split(":")[0] == want or n == f"{want}:latest" for n in names):
        return f"Ollama has no model “{want}” — run `ollama pull {want}`."
    return None


def _startup_notice(ollama_problem: str, local_ready: bool, settings: Settings) -> Lazy:
    """The first screen's notice when Ollama cannot be used: short, kind, the one fix. Decided at
    start-up, said in each reader's language (see agent.i18n.lazy)."""
    model = settings.ollama_model
    running = not ollama_problem.startswith("Ollama is not answering")
    if local_ready and running:
        return lazy(
            "Ollama does not have {model} yet, so I am using the small built-in model: fine for "
            "trying things out, but its data will be poor. For real data, run `ollama pull {model}` "
            "and restart the app.",
            model=model,
        )
    if local_ready:
        return lazy(
            "Ollama is not running, so I am using the small built-in model: fine for trying things "
            "out, but its data will be poor. For real data, install Ollama from {site}, run "
            "`ollama pull {model}` and restart the app.",
            site=OLLAMA_SITE,
            model=model,
        )
    if running:
        return lazy(
            "I have no model to write with yet: Ollama does not have {model} and the built-in model "
            "is not installed. Run `ollama pull {model}`, then send your message again.",
            model=model,
        )
    return lazy(
        "I have no model to write with yet: Ollama is not running and the built-in model is not "
        "installed. Install Ollama from {site}, run `ollama pull {model}` and start it, then send "
        "your message again.",
        site=OLLAMA_SITE,
        model=model,
    )


def resolve_provider(settings: Settings | None = None) -> tuple[str, str | None]:
    """Pick the provider for `auto`; returns (provider, notice for the user or None).

    Ollama when it answers with the model; else the built-in model when it is installed; else
    Ollama all the same (the app starts, and works as soon as Ollama does). The notice is a
    `Lazy` sentence: `str()` it where it is shown, in the reader's language.
    """
    settings = settings or get_settings()
    if settings.llm_provider == "local":
        lacking = local.missing(settings.local_model)
        return "local", built_in_missing(lacking, settings) if lacking else None
    if settings.llm_provider != "auto":
        return settings.llm_provider, None
    problem = check_ollama(settings)
    if problem is None:
        return "ollama", None
    log.info("%s", problem)  # the technical reason, for whoever reads the terminal
    lacking = local.missing(settings.local_model)
    if lacking:
        log.warning(
            "the built-in model is not installed (%s does not load): only Ollama can write data",
            lacking,
        )
    notice = _startup_notice(problem, not lacking, settings)
    return ("ollama" if lacking else "local"), notice


def get_chat_model(
    role: Role = "steer", settings: Settings | None = None, *, context: Context | None = None
) -> BaseChatModel:
    """The chat model for a role (steering, generation, judging), for the session of `context`
    (default: the graph run's runtime context; outside one, the app's default)."""
    if (test := _test_model(None)) is not None:
        return test
    context = context or current_context()
    settings = settings or session_settings(context)
    provider = current_provider(settings, context)
    if provider == "auto":  # resolved once: for the session that chose it, else for the app
        provider, _notice = resolve_provider(settings)
        if context and context.provider == "auto":
            context.provider = provider
        else:
            set_provider(provider)
    if (test := _test_model(provider)) is not None:
        return test
    temperature = 0.2 if role in ("steer", "judge") else settings.temperature
    # Each role may use its own model (STEER_MODEL, GENERATE_MODEL, JUDGE_MODEL) on the same
    # server; a session may choose its own per role.
    role_model: str | None = (context.models.get(role) if context else None) or getattr(
        settings, f"{role}_model", None
    )
    if provider == "ollama":
        # langchain's ChatOllama with `think: false` (reasoning models answer without reasoning),
        # sent without `think` to a server that refuses the field (see agent.ollama_http)
        return ollama_http.ChatOllama(
            base_url=settings.ollama_base_url,
            model=role_model or settings.ollama_model,
            temperature=temperature,
            client_kwargs={"timeout": settings.request_timeout},
            # one pooled client per model; keep a connection per request in flight (httpx keeps 20)
            async_client_kwargs={"limits": httpx.Limits(max_keepalive_connections=256)},
            reasoning=False,
        )
    if provider == "openai":
        from langchain_openai import ChatOpenAI

        if not settings.openai_base_url:
            raise LLMUnavailable(
                "LLM_PROVIDER=openai needs OPENAI_BASE_URL (for example http://localhost:8000/v1)."
            )
        return ChatOpenAI(
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key or "not-needed",  # type: ignore[arg-type]
            model=role_model or settings.openai_model,
            temperature=temperature,
            timeout=settings.request_timeout,
            max_retries=1,
        )
    if provider == "local":
        name = role_model if role_model in ("smollm2", "gemma3") else settings.local_model
        return local.get_local_model(name, temperature=temperature)  # type: ignore[arg-type]
    raise LLMUnavailable(f"Unknown LLM provider “{provider}”: use auto, ollama, openai or local.")


def get_chat_models(
    role: Role = "generate", settings: Settings | None = None, *, context: Context | None = None
) -> list[BaseChatModel]:
    """One chat model per endpoint (`settings.endpoints`, base URLs of the chosen provider).

    Without endpoints, or for the built-in model, this is `[get_chat_model(role)]`; a test's
    `use_model` override gives that one model.
    """
    context = context or current_context()
    settings = settings or session_settings(context)
    first = get_chat_model(role, settings, context=context)
    provider = current_provider(settings, context)
    if not settings.endpoints or _test_model(provider) is not None:
        return [first]
    if provider not in ("ollama", "openai"):
        return [first]
    key = "ollama_base_url" if provider == "ollama" else "openai_base_url"
    return [
        get_chat_model(role, settings.model_copy(update={key: url}), context=context)
        for url in settings.endpoints
    ]


def friendly_error(
    exc: BaseException, settings: Settings | None = None, *, context: Context | None = None
) -> LLMError:
    """Map any exception from a model call to an LLMError with an actionable sentence (about the
    provider of `context`'s session, default: the graph run's)."""
    if isinstance(exc, LLMError):
        return exc
    context = context or current_context()
    settings = settings or session_settings(context)
    name = type(exc).__name__
    text = str(exc)
    status = getattr(exc, "status_code", None) or getattr(
        getattr(exc, "response", None), "status_code", None
    )
    # langchain-openai raises subclasses of openai's errors (OpenAIConnectionError…): match the MRO.
    names = {c.__name__ for c in type(exc).__mro__}
    timeout = isinstance(exc, httpx.TimeoutException) or bool(
        names & {"APITimeoutError", "ReadTimeout"}
    )
    if not timeout and (
        isinstance(exc, httpx.ConnectError | ConnectionError)
        or bool(names & {"APIConnectionError", "ConnectError"})
    ):
        return LLMUnavailable(
            _(
                "The model server is not answering ({where}) — start it (`ollama serve`) and press "
                "Retry.",
                where=_where(settings, context),
            )
        )
    if timeout:
        return LLMUnavailable(
            _(
                "The model server took longer than {s:.0f} s to answer — raise LLM_TIMEOUT or try "
                "again.",
                s=settings.request_timeout,
            )
        )
    if status == 401 or "AuthenticationError" in names:
        return LLMUnavailable(
            _("The model server refused the API key (401) — check OPENAI_API_KEY.")
        )
    openai = current_provider(settings, context) == "openai"
    if "json_object" in text or ("response_format" in text and "json_schema" in text):
        return LLMUnavailable(
            _(
                "The server does not accept JSON-schema replies — set "
                "OPENAI_STRUCTURED_METHOD=function_calling (llama.cpp's server needs it) and press "
                "Retry."
            )
        )
    if status == 404 or "not found" in text.lower():
        if openai:
            return LLMUnavailable(
                _(
                    "The model “{model}” was not found at {where} — check OPENAI_MODEL.",
                    model=settings.openai_model,
                    where=_where(settings, context),
                )
            )
        model = settings.ollama_model
        return LLMUnavailable(
            _(
                "The model “{model}” was not found on the server — run `ollama pull {model}`.",
                model=model,
            )
        )
    return LLMError(_("That step failed ({error}).", error=f"{name}: {text[:200]}"))


def _where(settings: Settings, context: Context | None) -> str:
    if current_provider(settings, context) == "openai":
        return settings.openai_base_url or "OPENAI_BASE_URL"
    return settings.ollama_base_url


_runnables: OrderedDict[tuple[int, type[BaseModel]], Any] = OrderedDict()


def _structured_runnable(model: BaseChatModel, schema: type[BaseModel]) -> Any:
    """`with_structured_output`, built once per (model, schema) — it converts the schema on every
    build, which costs more client CPU than a fast server spends answering. A small LRU: an entry
    holds its model alive, so an id cannot be reused while it is cached."""
    key = (id(model), schema)
    if key in _runnables:
        _runnables.move_to_end(key)
        return _runnables[key]
    runnable: Any
    if type(model).__name__ == "ChatOllama":
        runnable = _OllamaJSON(model, schema)
    else:
        kwargs: dict[str, Any] = {}
        if type(model).__name__ == "ChatOpenAI":
            method = session_settings().openai_structured_method
            kwargs["method"] = "function_calling" if method == "auto" else method
        runnable = model.with_structured_output(schema, **kwargs)
    _runnables[key] = runnable
    while len(_runnables) > 64:
        _runnables.popitem(last=False)
    return runnable


class _OllamaJSON:
    """ChatOllama's JSON-schema structured output, lean: the schema goes as Ollama's `format`
    (as `with_structured_output` does, but converted once, not for tracing on every call) and the
    reply is parsed here. Inside the engine's `ollama_http.session_scope()` the call skips
    langchain and httpx altogether (`ollama_http.LeanChat`).
    """

    def __init__(self, model: BaseChatModel, schema: type[BaseModel]) -> None:
        fmt = schema.model_json_schema()
        self._bound = model.bind(format=fmt)
        self._lean = ollama_http.LeanChat(model, fmt)
        self.model = model
        self.schema = schema

    async def ainvoke(self, messages: list[BaseMessage]) -> BaseModel:
        if ollama_http.usable(self.model):
            text = await self._lean.content(messages)
        else:
            text = strip_reasoning(str((await self._bound.ainvoke(messages)).content))
        try:
            return self.schema.model_validate_json(text)
        except ValidationError:
            return parse_tolerant(text, self.schema)  # a code fence or chatter around the JSON


_JSON_BLOCK = re.compile(r"\{.*\}", re.DOTALL)


def parse_tolerant(text: str, schema: type[T]) -> T:
    """Parse the first JSON object in free text into `schema` (code fences, chatter and reasoning
    blocks allowed — braces inside `<think>…</think>` are not the object)."""
    match = _JSON_BLOCK.search(strip_reasoning(text or ""))
    if not match:
        raise ValueError("no JSON object in the reply")
    return schema.model_validate(json.loads(match.group(0)))


_RETRYABLE = (ValidationError, ValueError, KeyError, TypeError)


async def structured_call(
    model: BaseChatModel,
    schema: type[T],
    messages: Sequence[BaseMessage],
    *,
    retries: int | None = None,
) -> T:
    """Ask for a `schema` object: schema-constrained first, retried, then a tolerant plain-text parse.

    Raises LLMBadOutput when nothing usable came back, LLMUnavailable when the server is the problem.
    """
    retries = retries or session_settings().llm_retries
    runnable = _structured_runnable(model, schema)
    last: BaseException | None = None
    try:
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(retries),
            wait=wait_exponential(multiplier=0.2, max=2),
            retry=retry_if_exception_type((*_RETRYABLE, _OutputParserError)),
            reraise=True,
        ):
            with attempt:
                result = await runnable.ainvoke(list(messages))
                if isinstance(result, dict):
                    result = schema.model_validate(result)
                if not isinstance(result, schema):
                    raise ValueError(f"expected {schema.__name__}, got {type(result).__name__}")
                return result
    except (*_RETRYABLE, _OutputParserError) as exc:
        last = exc
    except Exception as exc:
        raise friendly_error(exc) from exc
    # Tolerant fallback: ask in plain text with the schema spelled out, and dig the JSON out.
    hint = SystemMessage(
        content="Reply with one JSON object only, matching this JSON schema:\n"
        + json.dumps(schema.model_json_schema())
    )
    try:
        reply = await model.ainvoke([hint, *messages])
        return parse_tolerant(str(reply.content), schema)
    except _RETRYABLE as exc:
        last = exc
    except Exception as exc:
        raise friendly_error(exc) from exc
    log.warning("structured call for %s failed: %s", schema.__name__, last)
    raise LLMBadOutput(
        _(
            "The model's reply could not be understood after {n} tries — nothing was changed; "
            "please try again or rephrase.",
            n=retries + 1,
        )
    )


try:  # langchain's parser error lives in langchain_core; keep the import local to this module
    from langchain_core.exceptions import OutputParserException as _OutputParserError
except ImportError:  # pragma: no cover
    _OutputParserError = ValueError  # type: ignore[misc,assignment]


def as_messages(system: str, user: str) -> list[BaseMessage]:
    return [SystemMessage(content=system), HumanMessage(content=user)]
