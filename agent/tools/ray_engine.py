"""The Ray engine: a full run cut into shards of row ids, made by one long-lived Ray actor per endpoint.

A shard is a contiguous range of row ids, and there are many more shards than workers. Every row's
plan depends on its id alone, so a shard carries its exact share of every quota and is a resumable
run of the one-process engine (`run_task`, unchanged) in a folder of its own. Each worker is an
actor holding one endpoint's scheduler, so its adaptive limiter sees that server's whole load; a
free worker pulls the next shard, so a faster server makes more of them (the shard queue is the
balancer). One index actor holds the run's MinHash index, called in batches; its entries carry
the row id, so a row re-made after a crash is not a duplicate of itself.

The run folder (on a filesystem every worker can reach)::

    run.json                 the run, as the one-process engine writes it, + engine, shard_rows
    state.json               the driver's summed counters (advisory, as in the one-process engine)
    shards/00003/            an unfinished shard: a one-process run folder (rows.jsonl journal with
                             shard-local ids, run.json, state.json) and the lock its worker holds
    shards/00003.parquet     a committed shard's rows (run-wide ids), its MinHash signatures
    shards/00003.sig.npz     (the index is rebuilt from these on resume) and its marker,
    shards/00003.done.json   written last: a shard is committed exactly when the marker exists

A worker that dies (`ray.kill`, a lost node) gives its shard back to the queue; the next worker
resumes it from the journal. After the driver dies, `--resume RUN_DIR` skips committed shards and
finishes the rest. Ray is imported only when a run uses it (the `ray` extra).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import shutil
import time
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.language_models import BaseChatModel
from pydantic import SecretStr

from agent import llm, ollama_http
from agent.config import get_settings
from agent.tasks.base import RowTask, quotas
from agent.tools.dedup import Deduper
from agent.tools.runs import (
    META_FILE,
    ROWS_FILE,
    SHARDS_DIR,
    Progress,
    RunResult,
    RunStopped,
    Shard,
    TaskRecipe,
    _budget,
    _short_reason,
    _write_json,
    committed,
    init_run,
    load_run,
    load_state,
    plan_shards,
    read_journal,
    run_task,
    shard_dir,
    shard_file,
)
from agent.tools.scheduler import Scheduler, ServerGone

WORKER_RESTARTS = 3
"""A worker slot whose actor dies this many times in a row without committing a shard is retired."""
READY_TIMEOUT = 300.0
"""Seconds a new worker may take to start (a cluster with no room for it leaves it pending)."""
LOCK_TIMEOUT = 120.0
"""Seconds a worker waits for a shard still locked by a dying worker of an earlier driver."""
LANES = 2
"""Shards a worker holds at once: one drains its last rows while the next fills the freed slots."""
_STATS = ("done", "duplicates", "retries", "discarded", "judged", "agreed")


# --- shards and their files ---------------------------------------------------------------------


def default_shard_rows(n: int, workers: int) -> int:
    """About eight shards a worker (a faster server takes more; a lost shard costs little),
    25 to 2,000 rows each."""
    return max(25, min(2000, math.ceil(n / (8 * max(1, workers)))))


def _fsync_replace(tmp: Path, path: Path) -> None:
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def commit_shard(
    run_dir: Path, shard: Shard, task: RowTask[Any], progress: dict[str, Any]
) -> dict[str, Any]:
    """Write a finished shard's Parquet, signatures and marker (each atomically, the marker last),
    then drop its journal. Returns the marker."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = shard_dir(run_dir, shard.index)
    rows = sorted(
        (dict(r, row_id=shard.start + r["row_id"]) for r in read_journal(folder)),
        key=lambda r: r["row_id"],
    )
    ids = [r["row_id"] for r in rows]
    if ids != list(range(shard.start, shard.stop)):
        raise RunStopped(f"shard {shard.index} is not complete in {folder}; resume the run")
    signer = _signer()
    sigs = np.stack([signer.signature(task.dedup_text(r)) for r in rows])
    tag = f".{os.getpid()}.tmp"
    sig_path = shard_file(run_dir, shard.index, ".sig.npz")
    tmp = sig_path.with_name(sig_path.name + tag)
    with tmp.open("wb") as fh:
        np.savez(fh, ids=np.asarray(ids, dtype=np.int64), sigs=sigs)
    _fsync_replace(tmp, sig_path)
    keys = list(dict.fromkeys(k for r in rows for k in r))  # every column, in first-seen order
    table = pa.Table.from_pydict({k: [r.get(k) for r in rows] for k in keys})
    parquet = shard_file(run_dir, shard.index, ".parquet")
    tmp = parquet.with_name(parquet.name + tag)
    pq.write_table(table, tmp)
    _fsync_replace(tmp, parquet)
    marker = {
        "shard": shard.index,
        "start": shard.start,
        "stop": shard.stop,
        "rows": len(rows),
        "progress": {k: progress.get(k, 0) for k in (*_STATS, "quotas", "attributes")},
    }
    path = shard_file(run_dir, shard.index, ".done.json")
    tmp = path.with_name(path.name + tag)
    tmp.write_text(json.dumps(marker), encoding="utf-8")
    _fsync_replace(tmp, path)
    fd = os.open(run_dir / SHARDS_DIR, os.O_RDONLY)
    try:
        os.fsync(fd)  # the renames themselves survive a power cut
    finally:
        os.close(fd)
    shutil.rmtree(folder, ignore_errors=True)
    return marker


@contextlib.asynccontextmanager
async def _locked(path: Path) -> AsyncIterator[None]:
    """Hold an exclusive lock on `path` (a worker of a killed driver may still be writing)."""
    import fcntl  # POSIX only, like Ray: imported here so importing this module works everywhere

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RunStopped(
                        f"{path.parent} is still locked by another worker; resume later"
                    ) from None
                await asyncio.sleep(0.2)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _signer() -> Deduper:
    """A MinHash signer (the index's own scheme); its empty database is closed at once."""
    d = Deduper(get_settings().dedup_threshold)
    d.close()
    return d


class ShardTask:
    """The run's row task seen through one shard: local row j is the run's row start + j. Its
    quotas are the run's restricted to the shard's rows (exact, since plans depend on ids)."""

    def __init__(self, task: RowTask[Any], shard: Shard) -> None:
        self.inner, self.shard = task, shard
        self.kind, self.n = task.kind, shard.size
        counts: Counter[str] = Counter()
        attrs: dict[str, Counter[str]] = {}
        for i in range(shard.start, shard.stop):
            plan = task.plan(i)
            counts[task.quota_key(plan)] += 1
            for a, v in task.attributes(plan).items():
                attrs.setdefault(a, Counter())[v] += 1
        self._quotas = {k: counts.get(k, 0) for k in task.quota_targets()}
        self._attrs = {
            a: {k: attrs.get(a, Counter()).get(k, 0) for k in targets}
            for a, targets in task.attribute_targets().items()
        }

    def meta(self) -> dict[str, Any]:
        return {**self.inner.meta(), "shard": [self.shard.start, self.shard.stop]}

    def plan(self, row_id: int) -> Any:
        return self.inner.plan(self.shard.start + row_id)

    def quota_key(self, plan: Any) -> str:
        return self.inner.quota_key(plan)

    def quota_targets(self) -> dict[str, int]:
        return dict(self._quotas)

    def attributes(self, plan: Any) -> dict[str, str]:
        return self.inner.attributes(plan)

    def attribute_targets(self) -> dict[str, dict[str, int]]:
        return {a: dict(t) for a, t in self._attrs.items()}

    async def draft(self, plan: Any, attempt: int, llm: Any) -> dict[str, Any] | None:
        return await self.inner.draft(plan, attempt, llm)

    def dedup_text(self, row: dict[str, Any]) -> str:
        return self.inner.dedup_text(row)

    async def review(self, row: dict[str, Any], plan: Any, llm: Any) -> dict[str, Any]:
        return await self.inner.review(row, plan, llm)


# --- the actors -----------------------------------------------------------------------------------


class DedupIndex:
    """The run's one dedup index (the engine's MinHash/LSH `Deduper`), keyed by run-wide row id.

    `batch` takes ("check" | "put", row id, signature bytes) in order and answers each check with
    None (new, remembered), "exact" or "near"; a put remembers a row already kept."""

    def __init__(self, threshold: float) -> None:
        self._d = Deduper(threshold)

    def batch(self, ops: list[tuple[str, int, bytes]]) -> list[str | None]:
        out: list[str | None] = []
        for op, rid, raw in ops:
            sig = np.frombuffer(raw, dtype=np.uint32)
            if op == "check":
                out.append(self._d.check_sig(rid, sig))
            else:
                self._d.put_sig(rid, sig)
                out.append(None)
        return out

    def nbytes(self) -> int:
        return self._d.nbytes()

    def size(self) -> int:
        return self._d.size


class RemoteDedup:
    """A worker's view of the index actor: signatures are made here (the CPU is the worker's),
    and the checks of rows that finish together go in one call."""

    def __init__(self, index: Any, offset: int) -> None:
        self._index, self._offset, self._signer = index, offset, _signer()
        self._pending: list[tuple[str, int, bytes, asyncio.Future[str | None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def seen(self, row_id: int, text: str) -> None:
        await self._submit("put", row_id, text)

    async def check(self, row_id: int, text: str) -> str | None:
        return await self._submit("check", row_id, text)

    async def _submit(self, op: str, row_id: int, text: str) -> str | None:
        sig = self._signer.signature(text)
        fut: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._pending.append((op, self._offset + row_id, sig.tobytes(), fut))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        return await fut

    async def _flush(self) -> None:
        try:
            while self._pending:
                await asyncio.sleep(0)  # the rows finishing at this moment join the batch
                batch, self._pending = self._pending, []
                try:
                    verdicts = await self._index.batch.remote([b[:3] for b in batch])
                except Exception as exc:
                    for *_, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                for (*_, fut), verdict in zip(batch, verdicts, strict=True):
                    if not fut.done():
                        fut.set_result(verdict)
        finally:
            self._flusher = None

    def nbytes(self) -> int:
        return 0  # the driver asks the index itself

    def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()


@dataclass
class ModelRecipe:
    """A model that cannot be pickled (its HTTP clients hold locks), rebuilt from its fields."""

    cls: type
    fields: dict[str, Any]

    def build(self) -> BaseChatModel:
        model: BaseChatModel = self.cls(**self.fields)
        return model


def portable(model: BaseChatModel) -> Any:
    """The model itself when it pickles, else a recipe that builds the same model in a worker."""
    import ray.cloudpickle as cloudpickle

    try:
        cloudpickle.dumps(model)
        return model
    except Exception:
        fields = {k: getattr(model, k) for k in model.model_fields_set}
        return ModelRecipe(type(model), fields)


def _restore(model: Any) -> BaseChatModel:
    return model.build() if isinstance(model, ModelRecipe) else model  # type: ignore[no-any-return]


def _settings_payload() -> dict[str, Any]:
    """The driver's settings for the workers, without secrets (the models carry their keys)."""
    return {k: v for k, v in vars(get_settings()).items() if not isinstance(v, SecretStr)}


class ShardWorker:
    """One endpoint's worker: its scheduler lives as long as the actor; shards run one at a time."""

    def __init__(
        self,
        models: dict[str, Any],
        cap: int,
        start: int,
        settings: dict[str, Any],
        provider: str | None,
        recipe: TaskRecipe,
        index: Any,
        run_dir: str,
        tick: float,
    ) -> None:
        current = get_settings()
        for k, v in settings.items():
            setattr(current, k, v)
        llm.set_provider(provider)
        self.settings = current
        self.scheduler = Scheduler(
            [{role: _restore(m) for role, m in models.items()}],
            cap=cap,
            start=start,
            server_wait=current.server_wait_s,
        )
        self.task = recipe.build()
        self.index, self.run_dir, self.tick = index, Path(run_dir), tick
        self._jobs: dict[int, asyncio.Task[dict[str, Any]]] = {}
        self._snaps: dict[int, dict[str, Any]] = {}
        self._stopping = False

    def ready(self) -> bool:
        return True

    def progress(self) -> dict[str, Any]:
        s = self.scheduler
        return {
            "shards": dict(self._snaps),
            "level": s.level,
            "in_flight": s.in_flight,
            "waiting": s.waiting,
            "server_retries": s.retries,
        }

    async def run(self, shard: Shard, budget: int) -> dict[str, Any]:
        """Make one shard. The driver keeps two in hand per worker: while one drains its last
        rows, the other's requests fill the freed slots of the one scheduler."""
        job = self._jobs[shard.index] = asyncio.ensure_future(self._run(shard, budget))
        try:
            return await job
        except asyncio.CancelledError:
            if self._stopping:  # the shard's last counters, as the engine saved them on its way out
                final = _own(load_state(shard_dir(self.run_dir, shard.index)))
                return {"status": "stopped", "shard": shard.index, "progress": final}
            raise
        finally:
            self._jobs.pop(shard.index, None)
            self._snaps.pop(shard.index, None)

    async def stop(self) -> None:
        """End the shards in hand: rows in flight are dropped, the journals flushed and closed."""
        self._stopping = True
        jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel()
        if jobs:
            await asyncio.wait(jobs)

    async def _run(self, shard: Shard, budget: int) -> dict[str, Any]:
        folder = shard_dir(self.run_dir, shard.index)
        folder.mkdir(parents=True, exist_ok=True)
        async with _locked(folder / "lock"):
            if (marker := committed(self.run_dir, shard.index)) is not None:
                return {"status": "committed", "marker": marker, "made": 0}
            task = ShardTask(self.task, shard)
            dedup = RemoteDedup(self.index, shard.start)
            async with ollama_http.session_scope():
                result = await run_task(
                    task,
                    folder,
                    self.scheduler,
                    failure_budget=self.settings.failure_budget,
                    dedup_threshold=self.settings.dedup_threshold,
                    on_progress=lambda snap: self._snaps.__setitem__(shard.index, _own(snap)),
                    tick=self.tick,
                    dedup=dedup,
                    budget=budget,
                )
            final = _own(result.progress)
            if not result.complete:
                return {"status": "short", "progress": final, "reason": result.reason}
            marker = await asyncio.to_thread(commit_shard, self.run_dir, shard, task, final)
            return {"status": "committed", "marker": marker, "made": final["made"]}


def _own(snap: dict[str, Any]) -> dict[str, Any]:
    """A shard's counters without the scheduler's server retries (the worker's, shared by its
    shards: the driver adds them once per worker)."""
    retries = int(snap.get("retries", 0)) - int(snap.get("server_retries", 0))
    return {**snap, "retries": max(0, retries), "server_retries": 0}


# --- the driver -----------------------------------------------------------------------------------


def ensure_ray(workers: int) -> None:
    """Join RAY_ADDRESS when set, else start a local Ray (with logical CPUs to spare: a Ray with
    as many CPUs as cores starves its own tasks)."""
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # Ray reads it from the environment
    address = get_settings().ray_address
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        cpus = max(4, os.cpu_count() or 1, workers + 1)
        ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False)


def _cause(exc: BaseException) -> BaseException:
    from ray.exceptions import RayTaskError

    if isinstance(exc, RayTaskError) and exc.cause is not None:
        return exc.cause  # type: ignore[no-any-return]
    return exc


def _worker_lost(exc: BaseException) -> bool:
    """The actor (or its node) died: not an error of the shard, which goes to another worker."""
    from ray.exceptions import RayError, RayTaskError

    return isinstance(exc, RayError) and not isinstance(exc, RayTaskError)


class _Tally:
    """The run's progress: committed shards (their markers) plus the shards in hand."""

    def __init__(self, task: RowTask[Any], run_dir: Path, budget: int) -> None:
        self.task, self.run_dir, self.budget = task, run_dir, budget
        self.markers: dict[int, dict[str, Any]] = {}
        self.session: set[int] = set()  # shards committed in this session
        self.made = 0
        self.polls: dict[str, dict[str, Any]] = {}  # worker name → its latest poll
        self.alive: set[str] = set()  # the workers now in the run
        self.active: set[int] = set()  # shards in hand
        self.partial: list[dict[str, Any]] = []  # shards that ended unfinished in this session
        self.short = False  # one of them spent its failure budget
        self.dedup_bytes = 0
        self.started = time.monotonic()

    def progress(self) -> Progress:
        task = self.task
        p = Progress(total=task.n, budget=self.budget, run_dir=str(self.run_dir))
        p.started = self.started
        p.quotas = {k: [0, v] for k, v in task.quota_targets().items()}
        p.attributes = {
            a: {k: [0, v] for k, v in t.items()} for a, t in task.attribute_targets().items()
        }

        def add(stats: dict[str, Any], this_session: bool) -> None:
            p.done += int(stats.get("done", 0))
            p.duplicates += int(stats.get("duplicates", 0))
            p.retries += int(stats.get("retries", 0))
            p.judged += int(stats.get("judged", 0))
            p.agreed += int(stats.get("agreed", 0))
            if this_session:  # the failure budget is per session, as in the one-process engine
                p.discarded += int(stats.get("discarded", 0))
            for k, (d, _) in (stats.get("quotas") or {}).items():
                p.quotas.setdefault(k, [0, 0])[0] += d
            for a, vals in (stats.get("attributes") or {}).items():
                for k, (d, _) in vals.items():
                    p.attributes.setdefault(a, {}).setdefault(k, [0, 0])[0] += d

        for i, m in self.markers.items():
            add(m.get("progress") or {}, i in self.session)
        p.made = self.made
        waiting = []
        for name, poll in self.polls.items():
            p.retries += int(poll.get("server_retries", 0))  # a worker's own, once
            if name not in self.alive:
                continue
            p.concurrency += float(poll.get("level", 0))
            p.in_flight += int(poll.get("in_flight", 0))
            waiting.append(poll.get("waiting"))
            for i, snap in (poll.get("shards") or {}).items():
                if int(i) in self.active and int(i) not in self.markers:
                    add(snap, True)
                    p.made += int(snap.get("made", 0))
        for s in self.partial:
            add(s, True)
            p.made += int(s.get("made", 0))
        # every worker waits for its server: the run waits (one server down is not the run's)
        p.waiting = waiting[0] if waiting and all(waiting) else None
        p.dedup_bytes = self.dedup_bytes
        p.failed = task.n - p.done
        return p


async def _rebuild_index(
    index: Any,
    run_dir: Path,
    shards: Sequence[Shard],
    markers: dict[int, dict[str, Any]],
    task: RowTask[Any],
) -> None:
    """Fill a new index from the run's files: committed shards' signatures, then the journals of
    shards in progress (so a row kept there is a duplicate for every other shard at once)."""

    def ops_of(shard: Shard) -> list[tuple[str, int, bytes]]:
        if shard.index in markers:
            with np.load(shard_file(run_dir, shard.index, ".sig.npz")) as data:
                ids, sigs = data["ids"], data["sigs"]
            return [("put", int(i), s.tobytes()) for i, s in zip(ids, sigs, strict=True)]
        signer = _signer()
        return [
            ("put", shard.start + r["row_id"], signer.signature(task.dedup_text(r)).tobytes())
            for r in read_journal(shard_dir(run_dir, shard.index))
            if isinstance(r.get("row_id"), int) and 0 <= r["row_id"] < shard.size
        ]

    for shard in shards:
        ops = await asyncio.to_thread(ops_of, shard)
        for k in range(0, len(ops), 4096):
            await index.batch.remote(ops[k : k + 4096])


async def run_sharded(
    task: RowTask[Any],
    run_dir: Path,
    endpoints: Sequence[dict[str, BaseChatModel]],
    *,
    cap: int,
    start: int,
    recipe: TaskRecipe,
    shard_rows: int | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    tick: float = 0.5,
    should_stop: Callable[[dict[str, Any]], str | None] | None = None,
) -> RunResult:
    """Make `task.n` rows into run_dir on Ray: one worker per endpoint, shards pulled from a queue.

    `cap` and `start` are the run's (as in the one-process engine), shared evenly by the workers.
    Progress events have the one-process engine's keys, summed over the workers."""
    settings = get_settings()
    n = task.n
    old = load_run(run_dir)
    if (run_dir / ROWS_FILE).exists() and not (run_dir / SHARDS_DIR).is_dir():
        raise ValueError(
            f"{run_dir} holds a run of the one-process engine; resume it with ENGINE=local."
        )
    rows = int(old.get("shard_rows") or shard_rows or default_shard_rows(n, len(endpoints)))
    init_run(
        run_dir, {"task": task.kind, "n": n, **task.meta(), "engine": "ray", "shard_rows": rows}
    )
    if load_run(run_dir).get("shard_rows") != rows:  # a folder made beforehand (`--resume` of it)
        _write_json(run_dir / META_FILE, {**load_run(run_dir), "engine": "ray", "shard_rows": rows})
    (run_dir / SHARDS_DIR).mkdir(exist_ok=True)
    shards = plan_shards(n, rows)
    # per-shard failure budgets add up to the run's
    split = quotas(
        {str(s.index): float(s.size) for s in shards}, _budget(settings.failure_budget, n)
    )
    budgets = {s.index: split[str(s.index)] for s in shards}
    tally = _Tally(task, run_dir, sum(budgets.values()))
    for s in shards:
        if (m := committed(run_dir, s.index)) is not None:
            tally.markers[s.index] = m
            shutil.rmtree(shard_dir(run_dir, s.index), ignore_errors=True)  # a commit cut short
    queue = deque(s for s in shards if s.index not in tally.markers)

    def emit() -> dict[str, Any]:
        snap = tally.progress().as_dict()
        if on_progress is not None:
            on_progress(snap)
        return snap

    if queue:
        halt = await _drive(
            task,
            run_dir,
            endpoints,
            shards,
            queue,
            budgets,
            tally,
            cap,
            start,
            recipe,
            tick,
            emit,
            should_stop,
        )
    else:
        halt = []
    prog = tally.progress()
    if tally.short and not halt:
        prog.stopped = _short_reason(prog)
    with contextlib.suppress(OSError):
        _write_json(run_dir / "state.json", prog.as_dict())
    snap = prog.as_dict()
    if on_progress is not None:
        on_progress(snap)
    return RunResult(
        run_dir=run_dir,
        rows=prog.done,
        failed=prog.failed,
        progress=snap,
        complete=prog.failed == 0,
        reason=prog.stopped,
        paused=halt[0] if halt else None,
    )


async def _drive(
    task: RowTask[Any],
    run_dir: Path,
    endpoints: Sequence[dict[str, BaseChatModel]],
    shards: list[Shard],
    queue: deque[Shard],
    budgets: dict[int, int],
    tally: _Tally,
    cap: int,
    start: int,
    recipe: TaskRecipe,
    tick: float,
    emit: Callable[[], dict[str, Any]],
    should_stop: Callable[[dict[str, Any]], str | None] | None,
) -> list[str]:
    """Run the queue on the workers; returns the `should_stop` reason, if one paused the run."""
    await asyncio.to_thread(ensure_ray, len(endpoints))
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    settings = get_settings()
    here = ray.get_runtime_context().get_node_id()
    # the index lives on the driver's node: it shares the driver's failure domain, and a resume
    # rebuilds it from the shard files
    index: Any = (
        ray.remote(DedupIndex)
        .options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False))
        .remote(settings.dedup_threshold)
    )
    e = len(endpoints)
    worker_cap = max(1, math.ceil(cap / e))
    worker_start = max(1, min(worker_cap, math.ceil(start / e)))
    payload = _settings_payload()
    recipes = [{role: portable(m) for role, m in ep.items()} for ep in endpoints]
    remote_worker = ray.remote(ShardWorker)
    workers: list[Any] = [None] * e
    names: list[str] = [""] * e
    generation = [0] * e
    deaths = [0] * e
    creating = [asyncio.Lock() for _ in range(e)]
    tag = uuid.uuid4().hex[:8]
    retired: set[int] = set()
    halt: list[str] = []
    fatal: list[BaseException] = []

    async def worker_for(slot: int) -> Any:
        async with creating[slot]:  # the slot's two lanes share one worker
            if workers[slot] is None:
                await _start(slot)
        return workers[slot]

    async def _start(slot: int) -> None:
        generation[slot] += 1
        name = f"dataset-agent:{tag}:worker:{slot}:{generation[slot]}"
        w: Any = remote_worker.options(name=name, num_cpus=1, scheduling_strategy="SPREAD").remote(
            recipes[slot],
            worker_cap,
            worker_start,
            payload,
            llm._resolved_provider,
            recipe,
            index,
            str(run_dir),
            tick,
        )
        await asyncio.wait_for(w.ready.remote(), READY_TIMEOUT)
        workers[slot], names[slot] = w, name
        tally.alive.add(name)

    async def drive(slot: int) -> None:
        while queue and not halt and not fatal and slot not in retired:
            shard = queue.popleft()
            tally.active.add(shard.index)
            w = None
            try:
                w = await worker_for(slot)
                out = await w.run.remote(shard, budgets[shard.index])
            except Exception as exc:
                queue.appendleft(shard)  # the next free worker resumes it from its journal
                cause = _cause(exc)
                if _worker_lost(exc) or isinstance(exc, TimeoutError):
                    if w is None or workers[slot] is w:  # the other lane may have seen it first
                        tally.alive.discard(names[slot])
                        workers[slot] = None
                        deaths[slot] += 1
                    if deaths[slot] < WORKER_RESTARTS:
                        continue
                    retired.add(slot)
                    if len(retired) == e:
                        fatal.append(RunStopped(f"the Ray workers kept dying ({cause})"))
                    return
                if isinstance(cause, ServerGone) and len(retired | {slot}) < e:
                    retired.add(slot)  # this server is gone; the others take its shards
                    tally.alive.discard(names[slot])
                    return
                if _worker_lost(cause):  # the worker lived, but lost the index (the driver's node)
                    cause = RunStopped(f"the run's dedup index was lost ({cause})")
                fatal.append(cause)
                await stop_all()
                return
            finally:
                tally.active.discard(shard.index)
            deaths[slot] = 0
            if out["status"] == "committed":
                tally.markers[shard.index] = out["marker"]
                tally.session.add(shard.index)
                tally.made += int(out.get("made", 0))
            elif out["status"] == "short":
                tally.partial.append(out["progress"])
                tally.short = True
                halt.append("")  # a shard spent its failure budget: the run stops short
                await stop_all()
            else:  # stopped: the shard stays in its journal for a resume
                tally.partial.append(out.get("progress") or {})
                queue.appendleft(shard)

    async def poll() -> None:
        async def one(slot: int) -> None:
            w, name = workers[slot], names[slot]
            if w is None:
                return
            with contextlib.suppress(Exception):
                tally.polls[name] = await asyncio.wait_for(w.progress.remote(), max(1.0, 4 * tick))

        await asyncio.gather(*(one(s) for s in range(e)))
        with contextlib.suppress(Exception):
            tally.dedup_bytes = await asyncio.wait_for(index.nbytes.remote(), max(1.0, 4 * tick))

    async def stop_all() -> None:
        # asyncio.wait, not wait_for: a Stop arriving meanwhile must not leave futures unread
        stops = [asyncio.ensure_future(w.stop.remote()) for w in workers if w is not None]
        if stops:
            await asyncio.wait(stops, timeout=30)
        for f in stops:
            if f.done() and not f.cancelled():
                f.exception()  # read: a worker that died meanwhile is no news

    async def ticker() -> None:
        last_state = time.monotonic()
        while True:
            await asyncio.sleep(tick)
            await poll()
            snap = emit()
            if time.monotonic() - last_state >= 1.0:
                last_state = time.monotonic()
                with contextlib.suppress(OSError):
                    await asyncio.to_thread(_write_json, run_dir / "state.json", snap)
            if should_stop is not None and not halt and (why := should_stop(snap)):
                halt.append(why)
                await stop_all()

    slots: list[asyncio.Task[None]] = []
    ticking: asyncio.Task[None] | None = None
    try:
        await _rebuild_index(index, run_dir, shards, tally.markers, task)
        tally.started = time.monotonic()
        emit()
        ticking = asyncio.create_task(ticker())
        slots = [asyncio.create_task(drive(i)) for i in range(e) for _ in range(LANES)]
        await asyncio.gather(*slots)
    except BaseException:
        # Stop (the task is cancelled) or Ctrl-C: every worker ends its shard cleanly, journals
        # flushed, before the actors go
        halt.append("stopped")
        for t in slots:
            t.cancel()
        await stop_all()
        raise
    finally:
        if ticking is not None:
            ticking.cancel()
            with contextlib.suppress(BaseException):
                await ticking
        for w in [*workers, index]:
            if w is not None:
                with contextlib.suppress(Exception):
                    ray.kill(w)
    if fatal:
        exc = fatal[0]
        p = tally.progress()
        kept = f"{p.done:,} of {task.n:,} rows are saved in {run_dir}"
        if isinstance(exc, ServerGone):
            raise ServerGone(
                f"{str(exc).split(' — ')[0]} — the run stopped; {kept}. Start it, then resume."
            ) from exc
        if isinstance(exc, RunStopped):
            why = str(exc).split(": the run stopped")[0]
            raise RunStopped(f"{why}: the run stopped; {kept}. Fix it, then resume.") from exc
        raise exc  # an error a resume cannot fix (a refused key, a missing model): as it is
    return [h for h in halt if h and h != "stopped"]
