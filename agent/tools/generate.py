"""The generation engine, shared by samples and full runs.

Labels are assigned by quota before generation (exact target mix); each row is written for its
label with sampled attributes (topic, tone, clarity, length band), checked for exact and near
duplicates, optionally blind-relabelled by the judge, and appended to `rows.jsonl` in the run folder
the moment it is done. Re-running on the same folder resumes: finished row ids are skipped.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from datasketch import MinHash, MinHashLSH
from langchain_core.language_models import BaseChatModel

from agent import prompts
from agent.llm import LLMBadOutput, LLMError, LLMUnavailable, as_messages, structured_call
from agent.schemas import GeneratedText, MultiRelabel, Relabel
from agent.spec import LENGTH_BANDS, DatasetSpec

ROWS_FILE = "rows.jsonl"
DEFAULT_TOPICS = ["general"]


def quotas(mix: dict[str, float], n: int) -> dict[str, int]:
    """Exact per-label counts for n rows (largest remainder), in contract order."""
    raw = {k: v * n for k, v in mix.items()}
    out = {k: int(v) for k, v in raw.items()}
    rest = n - sum(out.values())
    for k in sorted(raw, key=lambda k: (-(raw[k] - out[k]), list(mix).index(k)))[:rest]:
        out[k] += 1
    return out


@dataclass(frozen=True)
class RowPlan:
    row_id: int
    labels: tuple[str, ...]
    topic: str
    tone: str
    clarity: str
    length: str


def plan_rows(spec: DatasetSpec, n: int, seed: int) -> list[RowPlan]:
    """The deterministic plan of a run: same spec, n and seed → same plan (that is what resume relies on)."""
    rng = random.Random(seed)
    labels = [lab for lab, c in quotas(spec.mix, n).items() for _ in range(c)]
    rng.shuffle(labels)
    names = spec.label_names
    style = spec.style
    plans = []
    for i, primary in enumerate(labels):
        row_labels: tuple[str, ...] = (primary,)
        if spec.multi_label and len(names) > 2 and rng.random() < 0.3:
            extra = rng.choice([x for x in names if x != primary])
            row_labels = tuple(x for x in names if x in (primary, extra))
        plans.append(
            RowPlan(
                row_id=i,
                labels=row_labels,
                topic=rng.choice(style.topics or DEFAULT_TOPICS),
                tone=rng.choice(style.tones or ["neutral"]),
                clarity=rng.choice(style.clarity or ["clear"]),
                length=style.length,
            )
        )
    return plans


# --- dedup -------------------------------------------------------------------------------------


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", "", text.lower())).strip()


class Deduper:
    """Exact (normalised hash) and near (MinHash LSH over word 3-shingles) duplicate detection."""

    def __init__(self, threshold: float = 0.9, num_perm: int = 64) -> None:
        self.threshold = threshold
        self.num_perm = num_perm
        self.exact: set[str] = set()
        self.lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)

    def _minhash(self, norm: str) -> MinHash:
        words = norm.split()
        shingles = {" ".join(words[i : i + 3]) for i in range(max(1, len(words) - 2))}
        m = MinHash(num_perm=self.num_perm, seed=1)
        for s in shingles:
            m.update(s.encode())
        return m

    def check_and_add(self, text: str, key: str) -> str | None:
        """None when new (and remembered); else "exact" or "near"."""
        norm = _norm(text)
        digest = hashlib.sha1(norm.encode()).hexdigest()
        if digest in self.exact:
            return "exact"
        m = self._minhash(norm)
        if self.lsh.query(m):
            return "near"
        self.exact.add(digest)
        self.lsh.insert(key, m)
        return None


# --- the run -----------------------------------------------------------------------------------


@dataclass
class Progress:
    done: int = 0
    total: int = 0
    duplicates: int = 0
    retries: int = 0
    failed: int = 0
    agreed: int = 0
    judged: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def rows_per_min(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done / elapsed * 60 if elapsed > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        rate = self.rows_per_min / 60
        return (self.total - self.done) / rate if rate > 0 else None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("started")
        d["rows_per_min"] = round(self.rows_per_min, 1)
        d["eta_s"] = None if self.eta_s is None else round(self.eta_s)
        d["agreement"] = round(self.agreed / self.judged, 3) if self.judged else None
        return d


@dataclass
class RunResult:
    run_dir: Path
    rows: int
    failed: int
    progress: dict[str, Any]


def read_rows(run_dir: Path) -> Iterator[dict[str, Any]]:
    """Stream the finished rows of a run (a torn last line from a crash is ignored)."""
    path = Path(run_dir) / ROWS_FILE
    if not path.exists():
        return
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def _definitions(spec: DatasetSpec) -> str:
    return "\n".join(f"- {lb.name}: {lb.definition}" for lb in spec.labels)


def _valid_text(text: str) -> bool:
    words = text.split()
    return len(words) >= 3 and len(text) <= 8_000


async def _judge(model: BaseChatModel, spec: DatasetSpec, text: str) -> list[str] | None:
    msgs = as_messages(
        prompts.RELABEL_SYSTEM.format(definitions=_definitions(spec)),
        prompts.RELABEL_USER.format(text=text),
    )
    names = spec.label_names
    try:
        if spec.multi_label:
            multi = await structured_call(model, MultiRelabel, msgs)
            got = [x.strip().lower() for x in multi.labels]
        else:
            single = await structured_call(model, Relabel, msgs)
            got = [single.label.strip().lower()]
    except LLMBadOutput:
        return None
    valid = [x for x in names if x in got]
    return valid or None


async def run_generation(
    spec: DatasetSpec,
    n: int,
    run_dir: Path,
    *,
    generator: BaseChatModel,
    judge: BaseChatModel | None,
    concurrency: int = 4,
    seed: int = 0,
    attempts: int = 4,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> RunResult:
    """Generate n rows into run_dir, resuming if rows are already there."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    meta = {"spec_version": spec.version, "n": n, "seed": seed}
    meta_path = run_dir / "run.json"
    if meta_path.exists():
        old = json.loads(meta_path.read_text())
        if (old.get("n"), old.get("seed"), old.get("spec_version")) != (n, seed, spec.version):
            raise ValueError(f"{run_dir} holds a different run; use a new folder.")
    else:
        meta_path.write_text(json.dumps(meta))

    dedup = Deduper()
    done: set[int] = set()
    for row in read_rows(run_dir):
        done.add(row["row_id"])
        dedup.check_and_add(row["text"], str(row["row_id"]))
    plans = [p for p in plan_rows(spec, n, seed) if p.row_id not in done]
    prog = Progress(done=len(done), total=n)
    pending = iter(plans)
    lock = asyncio.Lock()
    fh = (run_dir / ROWS_FILE).open("a", encoding="utf-8")
    last_sync = time.monotonic()
    band = LENGTH_BANDS[spec.style.length]
    fatal: list[BaseException] = []

    async def make_row(plan: RowPlan) -> dict[str, Any] | None:
        for attempt in range(attempts):
            msgs = as_messages(
                prompts.GENERATE_SYSTEM.format(
                    description=spec.description, language=spec.language
                ),
                prompts.GENERATE_USER.format(
                    length=plan.length,
                    min_words=band[0],
                    max_words=band[1],
                    labels=", ".join(plan.labels),
                    definitions="\n".join(f"- {x}: {spec.definition(x)}" for x in plan.labels),
                    topic=plan.topic,
                    tone=plan.tone,
                    clarity=plan.clarity,
                    seed=f"{seed}-{plan.row_id}-{attempt}",
                ),
            )
            try:
                out = await structured_call(generator, GeneratedText, msgs)
            except LLMBadOutput:
                prog.retries += 1
                continue
            text = out.text.strip()
            if not _valid_text(text):
                prog.retries += 1
                continue
            if dedup.check_and_add(text, str(plan.row_id)) is not None:
                prog.duplicates += 1
                continue
            row: dict[str, Any] = {"row_id": plan.row_id, "text": text}
            if spec.multi_label:
                row["labels"] = list(plan.labels)
            else:
                row["label"] = plan.labels[0]
            row.update(topic=plan.topic, tone=plan.tone, clarity=plan.clarity, length=plan.length)
            if judge is not None:
                verdict = await _judge(judge, spec, text)
                key = "judge_labels" if spec.multi_label else "judge_label"
                row[key] = verdict if spec.multi_label else (verdict[0] if verdict else None)
                row["agreement"] = (
                    None if verdict is None else sorted(verdict) == sorted(plan.labels)
                )
            return row
        return None

    async def worker() -> None:
        nonlocal last_sync
        while not fatal:
            try:
                plan = next(pending)
            except StopIteration:
                return
            try:
                row = await make_row(plan)
            except LLMError as exc:
                fatal.append(exc)
                return
            async with lock:
                if row is None:
                    prog.failed += 1
                else:
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                    fh.flush()
                    if time.monotonic() - last_sync > 1.0:
                        os.fsync(fh.fileno())
                        last_sync = time.monotonic()
                    prog.done += 1
                    if row.get("agreement") is not None:
                        prog.judged += 1
                        prog.agreed += int(row["agreement"])
                if on_progress:
                    on_progress(prog.as_dict())

    try:
        await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    finally:
        fh.flush()
        os.fsync(fh.fileno())
        fh.close()
    if fatal:
        exc = fatal[0]
        raise exc if isinstance(exc, LLMUnavailable) else LLMError(str(exc))
    return RunResult(run_dir=run_dir, rows=prog.done, failed=prog.failed, progress=prog.as_dict())
