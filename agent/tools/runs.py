"""A run: its folder, and the one-process engine that makes it (`run_task`).

A `RowTask` plans row `i` deterministically from its id alone (so nothing O(n) is kept in memory and
a resumed run plans exactly the same rows), drafts a row for a plan and an attempt number, names the
text to deduplicate on and the quota a row counts toward, and may review a kept row (the blind
relabel). Each kind of data (agent/tasks/) has its own.

The engine asks the `Scheduler` (adaptive concurrency over one or more endpoints) for model calls,
drops exact and near duplicates online, and appends each finished row to `rows.jsonl` at once
(flushed per row, fsync'd every second). A failed or duplicate attempt costs one more attempt of the
same row, so quotas are met exactly — until the failure budget is spent, and then the result says
so. Re-running on the same folder resumes: a torn last line is cut off, finished ids are skipped.

The Ray engine (`agent.tools.ray_engine`) runs shards of a run with this same engine; the layout
of a sharded folder is here too, so reading a run never needs the Ray engine. Which engine makes a
run is `agent.tools.generate.run_generation`'s choice.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import json
import math
import os
import sqlite3
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent import tasks
from agent.errors import LLMError
from agent.spec import DatasetSpec, make_spec
from agent.tasks.base import RowTask
from agent.tools.dedup import LocalDedup, RowDedup
from agent.tools.scheduler import Scheduler, ServerGone

ROWS_FILE = "rows.jsonl"
META_FILE = "run.json"
STATE_FILE = "state.json"
SHARDS_DIR = "shards"


# --- the run folder ------------------------------------------------------------------------------


def read_rows(run_dir: Path) -> Iterator[dict[str, Any]]:
    """Stream the finished rows of a run (a torn or unterminated last line from a crash is skipped).

    A run made by the Ray engine keeps its rows in shards (`shards/`): committed ones as Parquet,
    the others in their journals; they are read in row-id order of the shards."""
    if (Path(run_dir) / SHARDS_DIR).is_dir():
        yield from read_sharded_rows(Path(run_dir))
        return
    yield from read_journal(run_dir)


def read_journal(run_dir: Path) -> Iterator[dict[str, Any]]:
    """The rows of one journal (`rows.jsonl`), as written."""
    path = Path(run_dir) / ROWS_FILE
    if not path.exists():
        return
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.endswith("\n"):
                return
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def load_run(run_dir: Path) -> dict[str, Any]:
    """The run's identity (task, n, seed, spec) from run.json; {} when missing or unreadable."""
    try:
        meta = json.loads((Path(run_dir) / META_FILE).read_text(encoding="utf-8"))
        return meta if isinstance(meta, dict) else {}
    except (OSError, json.JSONDecodeError):
        return {}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)  # a full disk leaves no stray temporary file
        raise


def init_run(run_dir: Path, meta: dict[str, Any]) -> None:
    """Create the run folder, or check that it holds this same run (then it is resumed)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    old = load_run(run_dir)
    keys = ("task", "n", "seed", "fingerprint")
    if old and tuple(old.get(k) for k in keys) != tuple(meta.get(k) for k in keys):
        raise ValueError(f"{run_dir} holds a different run; use a new folder.")
    if not old:
        _write_json(run_dir / META_FILE, meta)


class RunStopped(LLMError):
    """The run stopped for a cause outside the model and the rows, such as a full disk.

    The message is one sentence for the user; every row made so far is saved and a resume finishes
    the run. An `LLMError`, so the chat shows it with its Retry button (which resumes the run).
    """


class RowWriter:
    """Appends rows to rows.jsonl a whole line at a time: a write that fails part-way (a full disk)
    is cut back off, so the file never holds half a row and a row is counted only once written."""

    def __init__(self, path: Path) -> None:
        self._fh = Path(path).open("ab", buffering=0)
        self.size = self._fh.seek(0, os.SEEK_END)

    def append(self, row: dict[str, Any]) -> None:
        data = (json.dumps(row, ensure_ascii=False) + "\n").encode()
        try:
            self._write(data)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fh.fileno(), self.size)
            raise
        self.size += len(data)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = self._fh.write(view)
            if not written:
                raise OSError(errno.EIO, "the row could not be written")
            view = view[written:]

    def sync(self) -> None:
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()


def cut_torn_tail(path: Path) -> int:
    """Truncate a last line with no newline (a crash mid-write); returns the bytes cut."""
    if not path.exists():
        return 0
    with path.open("rb+") as fh:
        size = fh.seek(0, os.SEEK_END)
        end = size
        while end > 0:
            start = max(0, end - 65536)
            fh.seek(start)
            chunk = fh.read(end - start)
            if end == size and chunk.endswith(b"\n"):
                return 0
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                end = start + cut + 1
                break
            end = start
        fh.truncate(end)
        fh.flush()
        os.fsync(fh.fileno())
        return size - end


# --- the run -----------------------------------------------------------------------------------


@dataclass
class Progress:
    total: int
    done: int = 0
    made: int = 0  # rows made in this session (the rate is measured on these)
    duplicates: int = 0
    retries: int = 0  # attempts re-made after an unusable reply
    server_retries: int = 0  # calls re-sent after a transient server error
    discarded: int = 0
    failed: int = 0
    budget: int = 0
    agreed: int = 0
    judged: int = 0
    concurrency: float = 0.0
    in_flight: int = 0
    dedup_bytes: int = 0
    quotas: dict[str, list[int]] = field(default_factory=dict)
    attributes: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    run_dir: str = ""
    stopped: str | None = None
    waiting: str | None = None  # the model server is not answering: the run waits for it
    started: float = field(default_factory=time.monotonic)

    def as_dict(self) -> dict[str, Any]:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.made / elapsed
        left = self.total - self.done
        return {
            "done": self.done,
            "total": self.total,
            "rows_per_min": round(rate * 60, 1),
            "eta_s": None if rate <= 0 else round(left / rate),
            "elapsed_s": round(elapsed, 1),
            "duplicates": self.duplicates,
            "retries": self.retries + self.server_retries,
            "server_retries": self.server_retries,
            "made": self.made,
            "agreed": self.agreed,
            "failed": self.failed,
            "discarded": self.discarded,
            "budget": self.budget,
            "agreement": round(self.agreed / self.judged, 3) if self.judged else None,
            "judged": self.judged,
            "concurrency": round(self.concurrency, 1),
            "in_flight": self.in_flight,
            "dedup_bytes": self.dedup_bytes,
            "quotas": {k: list(v) for k, v in self.quotas.items()},
            "attributes": {
                a: {k: list(v) for k, v in vals.items()} for a, vals in self.attributes.items()
            },
            "run_dir": self.run_dir,
            "stopped": self.stopped,
            "waiting": self.waiting,
        }


@dataclass
class RunResult:
    run_dir: Path
    rows: int
    failed: int
    progress: dict[str, Any]
    complete: bool = True
    reason: str | None = None
    paused: str | None = None
    """Why `should_stop` ended the run early (the rows made are kept; a resume continues)."""


def _budget(share: float, n: int) -> int:
    return max(20, math.ceil(share * n))


async def run_task(
    task: RowTask[Any],
    run_dir: Path,
    scheduler: Scheduler,
    *,
    failure_budget: float = 1.0,
    dedup_threshold: float = 0.9,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    tick: float = 0.5,
    sync_every: float = 1.0,
    should_stop: Callable[[dict[str, Any]], str | None] | None = None,
    dedup: RowDedup | None = None,
    budget: int | None = None,
) -> RunResult:
    """Make `task.n` rows into run_dir with `scheduler`'s endpoints, resuming what is there.

    `dedup` is the duplicate check (default: a private index of this run's rows); `budget` the
    discarded attempts allowed (default: `failure_budget` × n, at least 20) — a shard of a Ray run
    gets its share of the run's."""
    run_dir = Path(run_dir)
    n = task.n
    init_run(run_dir, {"task": task.kind, "n": n, **task.meta()})
    rows_path = run_dir / ROWS_FILE
    cut_torn_tail(rows_path)

    prog = Progress(
        total=n,
        budget=_budget(failure_budget, n) if budget is None else budget,
        run_dir=str(run_dir),
    )
    prog.quotas = {k: [0, v] for k, v in task.quota_targets().items()}
    prog.attributes = {
        a: {k: [0, v] for k, v in targets.items()}
        for a, targets in task.attribute_targets().items()
    }

    def count(plan: Any) -> None:
        prog.done += 1
        prog.quotas.setdefault(task.quota_key(plan), [0, 0])[0] += 1
        for a, value in task.attributes(plan).items():
            prog.attributes.setdefault(a, {}).setdefault(value, [0, 0])[0] += 1

    dedup = dedup or LocalDedup(dedup_threshold)
    done = bytearray(n)  # one byte a row: the only per-row state besides the dedup index
    for row in read_journal(run_dir):
        rid = row.get("row_id")
        if not isinstance(rid, int) or not 0 <= rid < n or done[rid]:
            continue
        done[rid] = 1
        count(task.plan(rid))
        await dedup.seen(rid, task.dedup_text(row))
        if row.get("agreement") is not None:
            prog.judged += 1
            prog.agreed += int(bool(row["agreement"]))
    # Counters carry over for reporting (advisory: rows.jsonl is the truth); the failure budget
    # is per session, so resuming a run that stopped short tries again.
    saved = load_state(run_dir)
    for key in ("duplicates", "retries"):
        setattr(prog, key, int(saved.get(key, 0)))

    writer = RowWriter(rows_path)
    pending = (i for i in range(n) if not done[i])
    last_sync = time.monotonic()

    def snapshot() -> dict[str, Any]:
        prog.concurrency, prog.in_flight = scheduler.level, scheduler.in_flight
        prog.dedup_bytes = dedup.nbytes()
        prog.server_retries = scheduler.retries
        prog.waiting = scheduler.waiting
        return prog.as_dict()

    def durable(snap: dict[str, Any]) -> None:
        # rows.jsonl is the truth; the state file only carries counters, so a full disk that
        # refuses it costs nothing
        with contextlib.suppress(OSError):
            writer.sync()
            _write_json(run_dir / STATE_FILE, snap)

    def emit() -> None:
        if on_progress is not None:
            on_progress(snapshot())

    async def ticker() -> None:
        nonlocal last_sync
        while True:
            await asyncio.sleep(tick)
            emit()
            if time.monotonic() - last_sync >= sync_every:
                last_sync = time.monotonic()
                await asyncio.to_thread(durable, snapshot())  # fsync off the event loop

    retry: deque[tuple[int, int]] = deque()  # (row id, next attempt): a bad row waits its turn
    active = 0

    def next_row() -> tuple[int, int] | None:
        rid = next(pending, None)
        if rid is not None:
            return rid, 0
        return retry.popleft() if retry else None

    halt: list[str] = []  # a reason from `should_stop`: the workers finish their rows and end

    async def worker() -> None:
        nonlocal active
        while prog.discarded < prog.budget and not halt:
            item = next_row()
            if item is None:
                if not active:
                    return
                await asyncio.sleep(0.02)  # a row in flight may still come back for a retry
                continue
            rid, attempt = item
            plan = task.plan(rid)
            active += 1
            try:
                row = await task.draft(plan, attempt, scheduler)
                if row is None:
                    prog.retries += 1
                elif await dedup.check(rid, task.dedup_text(row)) is not None:
                    prog.duplicates += 1
                    row = None
                if row is None:
                    prog.discarded += 1
                    retry.append((rid, attempt + 1))
                    continue
                row = await task.review(row, plan, scheduler)
            finally:
                active -= 1
            writer.append({"row_id": rid, **row})
            done[rid] = 1
            count(plan)
            prog.made += 1
            if row.get("agreement") is not None:
                prog.judged += 1
                prog.agreed += int(bool(row["agreement"]))
            if should_stop is not None and not halt and (why := should_stop(prog.as_dict())):
                halt.append(why)
            # A model that answers without waiting on I/O (an in-process one) never suspends a
            # worker: yield once a row, so progress, Stop and the other workers get their turn.
            await asyncio.sleep(0)

    emit()
    # Everything alive now (modules, models, the app) outlives the run: a full collection that
    # walks it all stalls every row in flight (150 ms measured at 64 in flight), so the run's
    # collections skip it until the end.
    gc.freeze()
    tick_task = asyncio.create_task(ticker())
    # A few more workers than slots: while one finishes its row (dedup, write, next prompt) another
    # row's request is ready to take the slot at once.
    spare = max(1, scheduler.cap // 4)
    workers = [asyncio.create_task(worker()) for _ in range(max(1, scheduler.cap) + spare)]
    try:
        finished, _ = await asyncio.wait(workers, return_when=asyncio.FIRST_EXCEPTION)
        for t in finished:
            if (exc := t.exception()) is None:
                continue
            kept = f"{prog.done:,} of {n:,} rows are saved in {run_dir}"
            if isinstance(exc, sqlite3.OperationalError) and "full" in str(exc):
                # the dedup index's temporary file (in TMPDIR) has no room either
                exc = OSError(errno.ENOSPC, str(exc))
            if isinstance(exc, OSError):
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    why, fix = "The disk is full", "Free some space"
                else:
                    why, fix = f"Writing the run folder failed ({exc.strerror or exc})", "Fix it"
                raise RunStopped(f"{why}: the run stopped; {kept}. {fix}, then resume.") from exc
            if isinstance(exc, ServerGone):
                raise ServerGone(
                    f"{exc} — the run stopped; {kept}. Start it (`ollama serve`), then resume."
                ) from exc
            raise exc
    finally:
        for t in (*workers, tick_task):
            t.cancel()
        for t in (*workers, tick_task):
            with contextlib.suppress(BaseException):
                await t
        prog.failed = n - prog.done
        if prog.failed and prog.discarded >= prog.budget and not halt:
            prog.stopped = _short_reason(prog)
        gc.unfreeze()
        durable(snapshot())
        writer.close()
        dedup.close()
    emit()
    return RunResult(
        run_dir=run_dir,
        rows=prog.done,
        failed=prog.failed,
        progress=prog.as_dict(),
        complete=prog.failed == 0,
        reason=prog.stopped,
        paused=halt[0] if halt else None,
    )


def load_state(run_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((Path(run_dir) / STATE_FILE).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, json.JSONDecodeError):
        return {}


def _short_reason(p: Progress) -> str:
    why = (
        "the model kept repeating itself"
        if p.duplicates >= p.discarded / 2
        else "the model's replies kept being unusable"
    )
    short = ", ".join(f"{k} {d}/{t}" for k, (d, t) in p.quotas.items() if d < t)
    return (
        f"stopped at {p.done:,} of {p.total:,} rows: {why} — {p.discarded:,} attempts were discarded "
        f"({p.duplicates:,} duplicates, {p.discarded - p.duplicates:,} unusable replies), which spends "
        f"the failure budget of {p.budget:,}. Quotas not met: {short}. Resume to try again, or raise "
        "FAILURE_BUDGET, add topics or raise the temperature for more variety."
    )


@dataclass(frozen=True)
class TaskRecipe:
    """What rebuilds a run's row task in another process (a Ray worker): plain, picklable data."""

    spec: dict[str, Any]
    n: int
    seed: int
    judge: bool
    chunks: list[dict[str, str]] | None = None

    def build(self) -> RowTask[Any]:
        return make_task(make_spec(self.spec), self.n, self.seed, self.judge, self.chunks)


def make_task(
    spec: DatasetSpec,
    n: int,
    seed: int,
    judge: bool,
    chunks: list[dict[str, str]] | None = None,
) -> RowTask[Any]:
    """The row task of the contract's kind of data."""
    return tasks.kind(spec).row_task(spec, n, seed, judge=judge, chunks=chunks)


# --- a sharded run's files (made by agent.tools.ray_engine) --------------------------------------


@dataclass(frozen=True)
class Shard:
    index: int
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start


def plan_shards(n: int, rows: int) -> list[Shard]:
    rows = max(1, rows)
    return [Shard(i, a, min(n, a + rows)) for i, a in enumerate(range(0, n, rows))]


def shard_dir(run_dir: Path, index: int) -> Path:
    return run_dir / SHARDS_DIR / f"{index:05d}"


def shard_file(run_dir: Path, index: int, suffix: str) -> Path:
    return run_dir / SHARDS_DIR / f"{index:05d}{suffix}"


def committed(run_dir: Path, index: int) -> dict[str, Any] | None:
    """The shard's marker when it is committed, else None."""
    try:
        marker = json.loads(shard_file(run_dir, index, ".done.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    ok = isinstance(marker, dict) and shard_file(run_dir, index, ".parquet").exists()
    return marker if ok else None


def read_sharded_rows(run_dir: Path) -> Iterator[dict[str, Any]]:
    """The rows of a sharded run in shard order: committed shards from Parquet, the others from
    their journals (run-wide row ids either way)."""
    import pyarrow.parquet as pq

    meta = load_run(run_dir)
    n, rows = int(meta.get("n", 0)), int(meta.get("shard_rows", 0) or 1)
    for shard in plan_shards(n, rows):
        if committed(run_dir, shard.index) is not None:
            parquet = pq.ParquetFile(shard_file(run_dir, shard.index, ".parquet"))
            for batch in parquet.iter_batches(batch_size=1024):
                yield from batch.to_pylist()
            continue
        for row in read_journal(shard_dir(run_dir, shard.index)):
            rid = row.get("row_id")
            if isinstance(rid, int) and 0 <= rid < shard.size:
                yield dict(row, row_id=shard.start + rid)
