"""Shared pieces of the benchmarks: the contract, servers in subprocesses, the engine run, metrics."""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from agent.config import Settings
from agent.llm import get_chat_model
from agent.spec import DatasetSpec, make_spec
from agent.tools.dedup import _norm
from agent.tools.generate import RunResult, read_rows, run_generation
from tests.fixed_delay_server import Knobs, reply_for

ROOT = Path(__file__).resolve().parent.parent

SPEC: DatasetSpec = make_spec(
    {
        "description": "Customer reviews for an e-commerce website.",
        "name": "bench-reviews",
        "labels": [
            {"name": "positive", "definition": "The customer is satisfied."},
            {"name": "negative", "definition": "The customer is unhappy."},
            {"name": "neutral", "definition": "Mixed or factual, no clear feeling."},
        ],
        "size": 1000,
        "style": {"topics": ["electronics", "clothing", "home"], "length": "short"},
    }
)


@contextmanager
def subprocess_server(*args: str) -> Iterator[str]:
    """Start `python -m <args>` that prints "READY <url>"; yield the URL; kill it after."""
    proc = subprocess.Popen(
        [sys.executable, "-m", *args], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith("READY "):
            raise RuntimeError(f"server did not start: {line!r}")
        yield line.split()[1]
    finally:
        proc.kill()
        proc.wait()


def fixed_delay(delay: float, **knobs: Any) -> Any:
    extra = [f"--{k.replace('_', '-')}={v}" for k, v in knobs.items()]
    return subprocess_server("tests.fixed_delay_server", f"--delay={delay}", *extra)


def server_stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/stats") as resp:
        return json.loads(resp.read())


def ollama_model(url: str, role: str = "generate") -> BaseChatModel:
    """The production factory's model for an Ollama server at `url`."""
    settings = Settings(llm_provider="ollama", ollama_base_url=url)
    return get_chat_model(role, settings)  # type: ignore[arg-type]


class _Structured:
    """What `with_structured_output` hands back, reduced to the `ainvoke` the engine calls (the
    production Ollama path skips langchain's runnable layer too: `agent/ollama_http.py`)."""

    def __init__(self, call: Any) -> None:
        self.ainvoke = call


class InProcessModel(BaseChatModel):
    """A model in this process that answers like the fixed-delay server after `delay` seconds
    (no HTTP): isolates the engine's own overhead from the HTTP client's."""

    delay: float = 0.0
    cache: dict[str, Any] = Field(default_factory=dict)

    @property
    def _llm_type(self) -> str:
        return "in-process-fixed-delay"

    def _generate(self, messages: list[BaseMessage], *a: Any, **kw: Any) -> ChatResult:
        raise NotImplementedError

    def with_structured_output(self, schema: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if schema.__name__ not in self.cache:  # built once, as a real client would reuse it
            self.cache[schema.__name__] = self._runnable(schema)
        return self.cache[schema.__name__]

    def _runnable(self, schema: Any) -> Any:
        body_format = schema.model_json_schema()

        async def call(messages: list[BaseMessage]) -> Any:
            if self.delay:
                await asyncio.sleep(self.delay)
            body = {
                "messages": [
                    {"role": "system" if m.type == "system" else "user", "content": m.content}
                    for m in messages
                ],
                "format": body_format,
            }
            return schema.model_validate(reply_for(body, Knobs(delay=self.delay)))

        return _Structured(call)

    async def _agenerate(self, messages: list[BaseMessage], *a: Any, **kw: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content="{}"))])


async def run_engine(
    model: BaseChatModel | list[BaseChatModel],
    n: int,
    concurrency: int,
    *,
    judge: BaseChatModel | list[BaseChatModel] | None = None,
    start: int | None = None,
    run_dir: Path | None = None,
    spec: DatasetSpec = SPEC,
) -> tuple[float, RunResult]:
    """One engine run into a fresh folder; returns (seconds, result)."""
    folder = run_dir or Path(tempfile.mkdtemp(prefix="bench-"))
    t0 = time.perf_counter()
    result = await run_generation(
        spec,
        n,
        folder,
        generator=model,
        judge=judge,
        concurrency=concurrency,
        start=start or concurrency,
    )
    return time.perf_counter() - t0, result


def shingles(text: str) -> set[str]:
    words = _norm(text).split()
    return {" ".join(words[i : i + 3]) for i in range(max(1, len(words) - 2))}


def near_dup_rate(texts: list[str], threshold: float = 0.9) -> float:
    """Share of texts whose exact Jaccard similarity (word 3-shingles) to an earlier one ≥ threshold."""
    seen: list[set[str]] = []
    dup = 0
    for t in texts:
        s = shingles(t)
        if any(len(s & o) / len(s | o) >= threshold for o in seen):
            dup += 1
        seen.append(s)
    return dup / len(texts) if texts else 0.0


def check_rows(run_dir: Path, spec: DatasetSpec, n: int) -> dict[str, Any]:
    """Validity of a finished run: ids unique and complete, labels from the set, quotas met."""
    rows = list(read_rows(run_dir))
    ids = [r["row_id"] for r in rows]
    names = set(spec.label_names)
    valid = [r for r in rows if isinstance(r.get("text"), str) and r.get("label") in names]
    return {
        "rows": len(rows),
        "unique_ids": len(set(ids)),
        "missing": n - len(set(ids)),
        "duplicated_ids": len(ids) - len(set(ids)),
        "valid": len(valid),
    }


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def line_count(path: Path) -> int:
    try:
        with path.open("rb") as fh:
            return sum(1 for _ in fh)
    except OSError:
        return 0
