"""Which engine makes a run: `run_generation`, for samples and full runs alike.

A run is made in this process (`agent.tools.runs.run_task`), or cut into shards made by Ray actors
(`agent.tools.ray_engine`, which imports Ray only when a run uses it). The run folder's helpers
(`read_rows`, `init_run`, `RunResult`, …) live in `agent.tools.runs` and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel

from agent import ollama_http
from agent.config import get_settings
from agent.spec import DatasetSpec
from agent.tools.ray_engine import run_sharded
from agent.tools.runs import (
    META_FILE,
    ROWS_FILE,
    SHARDS_DIR,
    STATE_FILE,
    Progress,
    RowWriter,
    RunResult,
    RunStopped,
    TaskRecipe,
    cut_torn_tail,
    init_run,
    load_run,
    load_state,
    make_task,
    read_journal,
    read_rows,
    run_task,
)
from agent.tools.scheduler import Scheduler

__all__ = [  # the run folder's helpers, re-exported: `from agent.tools.generate import read_rows`
    "META_FILE",
    "ROWS_FILE",
    "SHARDS_DIR",
    "STATE_FILE",
    "Progress",
    "RowWriter",
    "RunResult",
    "RunStopped",
    "TaskRecipe",
    "cut_torn_tail",
    "init_run",
    "load_run",
    "load_state",
    "make_task",
    "read_journal",
    "read_rows",
    "run_generation",
    "run_task",
]


def _as_list(models: BaseChatModel | Sequence[BaseChatModel] | None) -> list[BaseChatModel]:
    if models is None:
        return []
    if isinstance(models, BaseChatModel):
        return [models]
    return list(models)


async def run_generation(
    spec: DatasetSpec,
    n: int,
    run_dir: Path,
    *,
    generator: BaseChatModel | Sequence[BaseChatModel],
    judge: BaseChatModel | Sequence[BaseChatModel] | None,
    concurrency: int | None = None,
    seed: int = 0,
    start: int | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    tick: float = 0.5,
    chunks: list[dict[str, str]] | None = None,
    should_stop: Callable[[dict[str, Any]], str | None] | None = None,
    engine: str | None = None,
    shard_rows: int | None = None,
) -> RunResult:
    """Generate n rows of the contract's task into run_dir (resuming if rows are there).

    Chat contracts make conversations (grounded in `chunks` when the contract says so).

    `generator`/`judge` are one model or one per endpoint; `concurrency` caps the requests in flight
    (default MAX_CONCURRENCY) and `start` is the first adaptive level (default CONCURRENCY).

    `engine` (default ENGINE): "local" runs in this process; "ray" cuts the run into shards of
    `shard_rows` row ids (default: several per endpoint) made by one Ray actor per endpoint
    (`agent.tools.ray_engine`). A sample-sized run stays in this process whatever the setting, and
    a folder holding a sharded run always resumes on Ray.
    """
    settings = get_settings()
    gens, judges = _as_list(generator), _as_list(judge)
    endpoints = [
        {"generate": g, **({"judge": judges[i % len(judges)]} if judges else {})}
        for i, g in enumerate(gens)
    ]
    cap = concurrency or settings.max_concurrency
    first = min(cap, start or settings.concurrency)
    task = make_task(spec, n, seed, judge=bool(judges), chunks=chunks)
    sharded = (Path(run_dir) / SHARDS_DIR).is_dir()
    if sharded or ((engine or settings.engine) == "ray" and n > settings.sample_size):
        return await run_sharded(
            task,
            Path(run_dir),
            endpoints,
            cap=cap,
            start=first,
            recipe=TaskRecipe(spec.model_dump(mode="json"), n, seed, bool(judges), chunks),
            shard_rows=shard_rows,
            on_progress=on_progress,
            tick=tick,
            should_stop=should_stop,
        )
    scheduler = Scheduler(endpoints, cap=cap, start=first, server_wait=settings.server_wait_s)
    async with ollama_http.session_scope():
        return await run_task(
            task,
            Path(run_dir),
            scheduler,
            failure_budget=settings.failure_budget,
            dedup_threshold=settings.dedup_threshold,
            on_progress=on_progress,
            tick=tick,
            should_stop=should_stop,
        )
