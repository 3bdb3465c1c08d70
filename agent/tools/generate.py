"""The generation engine, shared by samples and full runs, generic over a small row-task interface.

A `RowTask` plans row `i` deterministically from its id alone (so nothing O(n) is kept in memory and
a resumed run plans exactly the same rows), drafts a row for a plan and an attempt number, names the
text to deduplicate on and the quota a row counts toward, and may review a kept row (the blind
relabel). Text classification is the first task; chat/SFT conversations will be the second.

The engine asks the `Scheduler` (adaptive concurrency over one or more endpoints) for model calls,
drops exact and near duplicates online, and appends each finished row to `rows.jsonl` at once
(flushed per row, fsync'd every second). A failed or duplicate attempt costs one more attempt of the
same row, so quotas are met exactly — until the failure budget is spent, and then the result says
so. Re-running on the same folder resumes: a torn last line is cut off, finished ids are skipped.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import errno
import gc
import hashlib
import itertools
import json
import math
import os
import random
import re
import sqlite3
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import numpy as np
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from pydantic import BaseModel

from agent import ollama_http, prompts
from agent.config import get_settings
from agent.llm import LLMBadOutput, LLMError, as_messages
from agent.reasoning import strip_reasoning
from agent.schemas import GeneratedText, relabel_schema
from agent.spec import LENGTH_BANDS, DatasetSpec
from agent.tools.scheduler import CallRole, Scheduler, ServerGone

ROWS_FILE = "rows.jsonl"
META_FILE = "run.json"
STATE_FILE = "state.json"
SHARDS_DIR = "shards"
DEFAULT_TOPICS = ["general"]

P = TypeVar("P")
S = TypeVar("S", bound=BaseModel)


def quotas(mix: dict[str, float], n: int) -> dict[str, int]:
    """Exact per-label counts for n rows (largest remainder), in contract order."""
    total = sum(mix.values()) or 1.0  # shares rounded for display may not sum to exactly 1
    raw = {k: v / total * n for k, v in mix.items()}
    out = {k: int(v) for k, v in raw.items()}
    rest = n - sum(out.values())
    for k in sorted(raw, key=lambda k: (-(raw[k] - out[k]), list(mix).index(k)))[:rest]:
        out[k] += 1
    return out


class Permutation:
    """A seeded bijection of range(n) in O(1) memory: a 4-round Feistel network with cycle walking."""

    def __init__(self, n: int, seed: int | str) -> None:
        self.n = n
        self.half = max(1, math.ceil(math.log2(max(n, 2)) / 2))
        self.mask = (1 << self.half) - 1
        self.keys = [
            int.from_bytes(hashlib.blake2b(f"{seed}:{r}".encode(), digest_size=8).digest())
            for r in range(4)
        ]

    def _round(self, x: int, key: int) -> int:
        x = ((x ^ key) * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        return (x ^ (x >> 29)) & self.mask

    def __call__(self, i: int) -> int:
        x = i
        while True:
            left, right = x >> self.half, x & self.mask
            for key in self.keys:
                left, right = right, left ^ self._round(right, key)
            x = (left << self.half) | right
            if x < self.n:
                return x


class Spread:
    """Exact shares of one attribute over n rows, from the row id alone (as for the labels): a
    seeded permutation of the ids, cut into one run per value as long as the value's quota."""

    def __init__(self, mix: dict[str, float], n: int, seed: int | str) -> None:
        self.targets = quotas(mix, n)
        self._names = list(self.targets)
        self._bounds = list(itertools.accumulate(self.targets.values()))
        self._perm = Permutation(n, seed)

    def __call__(self, row_id: int) -> str:
        return self._names[bisect.bisect_right(self._bounds, self._perm(row_id))]


def even(values: Sequence[str]) -> dict[str, float]:
    """Equal shares for each distinct value (the contract lists topics, tones… without shares)."""
    return dict.fromkeys(values, 1.0)


def length_bands(band: str, parts: int = 3) -> dict[str, tuple[int, int]]:
    """The contract's length band cut into `parts` sub-bands of words, each sampled per row, so
    texts spread over the band instead of all landing on one length."""
    lo, hi = LENGTH_BANDS[band]
    edges = [lo + round(k * (hi - lo) / parts) for k in range(parts + 1)]
    return {f"{band} {a}-{b} words": (a, b) for a, b in itertools.pairwise(edges)}


# --- dedup -------------------------------------------------------------------------------------


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", "", text.lower())).strip()


# MurmurHash3's 32-bit finalizer: (shift, multiplier, shift, multiplier, shift)
_FMIX32 = (
    np.uint32(16),
    np.uint32(0x85EBCA6B),
    np.uint32(13),
    np.uint32(0xC2B2AE35),
    np.uint32(16),
)


def minhash_permutations(num_perm: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The (a, b) of `num_perm` affine permutations h → a·h + b mod 2³², a odd — drawn exactly as
    datasketch 2's MinHash(num_perm, seed) draws them for its default "affine32" scheme."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def minhash(shingles: set[str], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The MinHash signature (uint32) of a set of shingles: datasketch 2's `MinHash.update_batch`
    with its default sha1_hash32 and "affine32" scheme, value for value (a test holds it to that).

    In numpy here because importing datasketch imports all of it, scipy included: a third of a
    second of every CLI start, for the ~15 lines below."""
    hv = np.fromiter(
        (int.from_bytes(hashlib.sha1(s.encode()).digest()[:4], "little") for s in shingles),
        dtype=np.uint32,
        count=len(shingles),
    ).reshape(-1, 1)
    s1, m1, s2, m2, s3 = _FMIX32
    hv = hv ^ (hv >> s1)
    hv = hv * m1
    hv = hv ^ (hv >> s2)
    hv = hv * m2
    hv = hv ^ (hv >> s3)
    out: np.ndarray = (hv * a + b).min(axis=0)  # uint32 arithmetic: wrapping is the mod 2³²
    return out


class Deduper:
    """Exact and near-duplicate detection: MinHash over word 3-shingles (datasketch's affine32
    scheme), LSH banding.

    The one structure that grows with the run, so it lives in SQLite rather than in Python objects:
    a private temporary database (deleted when closed) whose page cache is bounded, so memory stays
    flat however many rows a run makes (about 450 B a row go to a temporary file instead). A
    signature is 64 uint32 values; 10 bands of 6 values are hashed to one 64-bit key each. Band
    matches are candidates only; a duplicate is a candidate whose estimated Jaccard similarity
    reaches the threshold (exact copies, after case and punctuation are dropped, estimate 1.0).
    """

    BANDS, ROWS, CACHE_KB, COMMIT_EVERY = 10, 6, 8192, 4096

    def __init__(self, threshold: float = 0.9, num_perm: int = 64) -> None:
        self.threshold = threshold
        self._a, self._b = minhash_permutations(num_perm, seed=1)
        self.num_perm = num_perm
        self.size = self._nbytes = 0
        self._salt = np.arange(1, self.BANDS + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        # "" = a private on-disk temporary database: pages beyond the cache spill to a file
        self._db = sqlite3.connect("", check_same_thread=False)
        self._db.executescript(
            f"""
            PRAGMA cache_size = -{self.CACHE_KB};
            PRAGMA journal_mode = OFF;
            PRAGMA synchronous = OFF;
            CREATE TABLE sig (id INTEGER PRIMARY KEY, h BLOB NOT NULL);
            CREATE TABLE band (k INTEGER NOT NULL, id INTEGER NOT NULL, PRIMARY KEY (k, id))
                WITHOUT ROWID;
            """
        )
        ask = ",".join("?" * self.BANDS)
        self._select = f"SELECT h FROM sig WHERE id IN (SELECT id FROM band WHERE k IN ({ask}))"

    def signature(self, text: str) -> np.ndarray:
        words = _norm(text).split()
        shingles = {" ".join(words[i : i + 3]) for i in range(max(1, len(words) - 2))}
        return minhash(shingles, self._a, self._b)

    def _bands(self, sig: np.ndarray) -> list[int]:
        bands = sig[: self.BANDS * self.ROWS].reshape(self.BANDS, self.ROWS).astype(np.uint64)
        h = self._salt.copy()
        for j in range(self.ROWS):
            h = (h ^ bands[:, j]) * np.uint64(0x100000001B3)
            h ^= h >> np.uint64(31)
        return h.view(np.int64).tolist()  # SQLite integers are signed 64-bit

    def _best(self, sig: np.ndarray, keys: list[int]) -> float:
        blobs = self._db.execute(self._select, keys).fetchall()
        if not blobs:
            return 0.0
        kept = np.frombuffer(b"".join(b for (b,) in blobs), dtype=np.uint32).reshape(
            -1, self.num_perm
        )
        return float((kept == sig).mean(axis=1).max())

    def similarity(self, text: str) -> float:
        """The highest estimated Jaccard similarity to a kept text among the LSH candidates."""
        sig = self.signature(text)
        return self._best(sig, self._bands(sig))

    def add(self, text: str) -> None:
        sig = self.signature(text)
        self._add(sig, self._bands(sig))

    def _add(self, sig: np.ndarray, keys: list[int]) -> None:
        db, i = self._db, self.size
        db.execute("INSERT INTO sig VALUES (?, ?)", (i, sig.tobytes()))
        db.executemany("INSERT OR IGNORE INTO band VALUES (?, ?)", [(k, i) for k in keys])
        self.size += 1
        if self.size % self.COMMIT_EVERY == 0:
            db.commit()  # no sync (journal and sync off): only ends the open transaction

    # --- entries that carry their row id (the Ray engine's global index) ---
    #
    # A row re-made after a crash (its first text was checked in, then the worker died before
    # writing it) must not be a duplicate of itself: its own entry is left out of the comparison,
    # then replaced by the new text. The local engine numbers entries itself and never mixes the two.

    def _best_other(self, sig: np.ndarray, keys: list[int], row_id: int) -> float:
        blobs = self._db.execute(self._select + " AND id != ?", [*keys, row_id]).fetchall()
        if not blobs:
            return 0.0
        kept = np.frombuffer(b"".join(b for (b,) in blobs), dtype=np.uint32).reshape(
            -1, self.num_perm
        )
        return float((kept == sig).mean(axis=1).max())

    def put_sig(self, row_id: int, sig: np.ndarray) -> None:
        """Remember row `row_id`'s signature, replacing the row's earlier one."""
        db = self._db
        old = db.execute("SELECT h FROM sig WHERE id = ?", (row_id,)).fetchone()
        if old is not None:
            stale = self._bands(np.frombuffer(old[0], dtype=np.uint32))
            db.executemany("DELETE FROM band WHERE k = ? AND id = ?", [(k, row_id) for k in stale])
        else:
            self.size += 1
        db.execute("INSERT OR REPLACE INTO sig VALUES (?, ?)", (row_id, sig.tobytes()))
        keys = self._bands(sig)
        db.executemany("INSERT OR IGNORE INTO band VALUES (?, ?)", [(k, row_id) for k in keys])
        if self.size % self.COMMIT_EVERY == 0:
            db.commit()

    def check_sig(self, row_id: int, sig: np.ndarray) -> str | None:
        """As `check_and_add`, for row `row_id`'s signature: other rows' entries only."""
        best = self._best_other(sig, self._bands(sig), row_id)
        if best >= 1.0:
            return "exact"
        if best >= self.threshold:
            return "near"
        self.put_sig(row_id, sig)
        return None

    def check_and_add(self, text: str, key: str = "") -> str | None:
        """None when new (and remembered); else "exact" or "near". (`key` is kept for callers.)"""
        sig = self.signature(text)
        keys = self._bands(sig)
        best = self._best(sig, keys)
        if best >= 1.0:
            return "exact"
        if best >= self.threshold:
            return "near"
        self._add(sig, keys)
        return None

    def nbytes(self) -> int:
        """Bytes of the index (in its temporary file and page cache; memory is the cache at most)."""
        with contextlib.suppress(sqlite3.ProgrammingError):  # closed: the last size known
            pages = self._db.execute("PRAGMA page_count").fetchone()[0]
            self._nbytes = int(pages * self._db.execute("PRAGMA page_size").fetchone()[0])
        return self._nbytes

    def close(self) -> None:
        self.nbytes()
        self._db.close()


class RowDedup(Protocol):
    """The run's duplicate check, by row id: in this process, or an index shared by many
    (`agent.tools.ray_engine`). `seen` remembers a row already kept (on resume)."""

    async def seen(self, row_id: int, text: str) -> None: ...

    async def check(self, row_id: int, text: str) -> str | None: ...

    def nbytes(self) -> int: ...

    def close(self) -> None: ...


class LocalDedup:
    """The one-process engine's check: a private `Deduper`."""

    def __init__(self, threshold: float) -> None:
        self._d = Deduper(threshold)

    async def seen(self, row_id: int, text: str) -> None:
        self._d.add(text)

    async def check(self, row_id: int, text: str) -> str | None:
        return self._d.check_and_add(text)

    def nbytes(self) -> int:
        return self._d.nbytes()

    def close(self) -> None:
        self._d.close()


# --- the task interface --------------------------------------------------------------------------


class Caller(Protocol):
    """What a task may use to talk to models (the scheduler implements it)."""

    async def structured(
        self, role: CallRole, schema: type[S], messages: Sequence[BaseMessage]
    ) -> S: ...

    async def text(self, role: CallRole, messages: Sequence[BaseMessage]) -> str: ...


class RowTask(Protocol, Generic[P]):
    """One kind of dataset row. Every method but `draft` and `review` must be fast and pure."""

    kind: str
    n: int

    def meta(self) -> dict[str, Any]:
        """What identifies the run: seed, fingerprint, … (saved in run.json; a resume must match)."""
        ...

    def plan(self, row_id: int) -> P:
        """The plan of row `row_id`, from the id alone (deterministic; resume relies on it)."""
        ...

    def quota_key(self, plan: P) -> str: ...

    def quota_targets(self) -> dict[str, int]: ...

    def attributes(self, plan: P) -> dict[str, str]:
        """The plan's sampled attributes (topic, tone, length…), counted like the label quotas."""
        ...

    def attribute_targets(self) -> dict[str, dict[str, int]]:
        """Exact rows per value of each attribute: {"topic": {"shoes": 20, …}, …}."""
        ...

    async def draft(self, plan: P, attempt: int, llm: Caller) -> dict[str, Any] | None:
        """A row for the plan, or None when the reply was unusable (the engine tries again)."""
        ...

    def dedup_text(self, row: dict[str, Any]) -> str: ...

    async def review(self, row: dict[str, Any], plan: P, llm: Caller) -> dict[str, Any]:
        """A kept (non-duplicate) row, checked; may add columns such as `agreement`."""
        ...


@dataclass(frozen=True)
class TextcatPlan:
    row_id: int
    labels: tuple[str, ...]
    topic: str
    tone: str
    clarity: str
    length: str
    words: tuple[int, int]


def _definitions(spec: DatasetSpec) -> str:
    return "\n".join(f"- {lb.name}: {lb.definition}" for lb in spec.labels)


def _valid_text(text: str) -> bool:
    return len(text.split()) >= 3 and len(text) <= 8_000


def run_meta(spec: DatasetSpec, seed: int) -> dict[str, Any]:
    """What identifies a run in its folder: the contract (and its fingerprint) and the seed."""
    data = spec.model_dump(mode="json")
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
    return {"seed": seed, "spec": data, "spec_version": spec.version, "fingerprint": digest}


class TextClassification:
    """Text classification: the label comes from the quota (a seeded permutation of row ids); the
    topic, tone, clarity and a length sub-band are spread the same way, each with exact equal
    shares; the judge relabels blind when enabled."""

    kind = "textcat"

    def __init__(self, spec: DatasetSpec, n: int, seed: int, *, judge: bool) -> None:
        self.spec, self.n, self.seed, self.judge = spec, n, seed, judge
        self._labels = Spread(spec.mix, n, seed)
        style = spec.style
        self._words = length_bands(style.length)
        self._spreads = {
            "topic": Spread(even(style.topics or DEFAULT_TOPICS), n, f"{seed}/topic"),
            "tone": Spread(even(style.tones or ["neutral"]), n, f"{seed}/tone"),
            "clarity": Spread(even(style.clarity or ["clear"]), n, f"{seed}/clarity"),
            "length": Spread(even(list(self._words)), n, f"{seed}/length"),
        }
        # built once: a new class per row would miss the structured-call cache every time
        self._relabel = relabel_schema(spec.label_names, multi=spec.multi_label)

    def meta(self) -> dict[str, Any]:
        return run_meta(self.spec, self.seed)

    def plan(self, row_id: int) -> TextcatPlan:
        primary = self._labels(row_id)
        names = self.spec.label_names
        labels: tuple[str, ...] = (primary,)
        if self.spec.multi_label and len(names) > 2:
            rng = random.Random(self.seed * 1_000_003 + row_id)
            if rng.random() < 0.3:
                extra = rng.choice([x for x in names if x != primary])
                labels = tuple(x for x in names if x in (primary, extra))
        a = {k: spread(row_id) for k, spread in self._spreads.items()}
        return TextcatPlan(
            row_id=row_id,
            labels=labels,
            topic=a["topic"],
            tone=a["tone"],
            clarity=a["clarity"],
            length=a["length"],
            words=self._words[a["length"]],
        )

    def quota_key(self, plan: TextcatPlan) -> str:
        return plan.labels[0]

    def quota_targets(self) -> dict[str, int]:
        return dict(self._labels.targets)

    def attributes(self, plan: TextcatPlan) -> dict[str, str]:
        return {
            "topic": plan.topic,
            "tone": plan.tone,
            "clarity": plan.clarity,
            "length": plan.length,
        }

    def attribute_targets(self) -> dict[str, dict[str, int]]:
        return {k: dict(spread.targets) for k, spread in self._spreads.items()}

    async def draft(self, plan: TextcatPlan, attempt: int, llm: Caller) -> dict[str, Any] | None:
        spec = self.spec
        msgs = as_messages(
            prompts.GENERATE_SYSTEM.format(description=spec.description, language=spec.language),
            prompts.GENERATE_USER.format(
                length=self.spec.style.length,
                min_words=plan.words[0],
                max_words=plan.words[1],
                labels=", ".join(plan.labels),
                definitions="\n".join(f"- {x}: {spec.definition(x)}" for x in plan.labels),
                topic=plan.topic,
                tone=plan.tone,
                clarity=plan.clarity,
                seed=f"{self.seed}-{plan.row_id}-{attempt}",
            ),
        )
        try:
            out = await llm.structured("generate", GeneratedText, msgs)
        except LLMBadOutput:
            return None
        text = strip_reasoning(out.text)  # reasoning written inside the JSON string, too
        if not _valid_text(text):
            return None
        row: dict[str, Any] = {"text": text}
        if spec.multi_label:
            row["labels"] = list(plan.labels)
        else:
            row["label"] = plan.labels[0]
        row.update(topic=plan.topic, tone=plan.tone, clarity=plan.clarity, length=plan.length)
        return row

    def dedup_text(self, row: dict[str, Any]) -> str:
        return str(row["text"])

    async def review(self, row: dict[str, Any], plan: TextcatPlan, llm: Caller) -> dict[str, Any]:
        if not self.judge:
            return row
        spec = self.spec
        msgs = as_messages(
            prompts.RELABEL_SYSTEM.format(definitions=_definitions(spec)),
            prompts.RELABEL_USER.format(text=row["text"]),
        )
        verdict: list[str] | None
        try:
            # the label set as an enum: constrained decoding can only name a listed label
            verdict_obj: Any = await llm.structured("judge", self._relabel, msgs)
            if spec.multi_label:
                got = [str(x).strip().lower() for x in verdict_obj.labels]
            else:
                got = [str(verdict_obj.label).strip().lower()]
            verdict = [x for x in spec.label_names if x in got] or None
        except LLMBadOutput:
            verdict = None
        if spec.multi_label:
            row["judge_labels"] = verdict
        else:
            row["judge_label"] = verdict[0] if verdict else None
        row["agreement"] = None if verdict is None else sorted(verdict) == sorted(plan.labels)
        return row


# --- the run folder ------------------------------------------------------------------------------


def read_rows(run_dir: Path) -> Iterator[dict[str, Any]]:
    """Stream the finished rows of a run (a torn or unterminated last line from a crash is skipped).

    A run made by the Ray engine keeps its rows in shards (`shards/`): committed ones as Parquet,
    the others in their journals; they are read in row-id order of the shards."""
    if (Path(run_dir) / SHARDS_DIR).is_dir():
        from agent.tools.ray_engine import read_sharded_rows

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


def _as_list(models: BaseChatModel | Sequence[BaseChatModel] | None) -> list[BaseChatModel]:
    if models is None:
        return []
    if isinstance(models, BaseChatModel):
        return [models]
    return list(models)


@dataclass(frozen=True)
class TaskRecipe:
    """What rebuilds a run's row task in another process (a Ray worker): plain, picklable data."""

    spec: dict[str, Any]
    n: int
    seed: int
    judge: bool
    chunks: list[dict[str, str]] | None = None

    def build(self) -> RowTask[Any]:
        from agent.spec import make_spec

        return make_task(make_spec(self.spec), self.n, self.seed, self.judge, self.chunks)


def make_task(
    spec: DatasetSpec,
    n: int,
    seed: int,
    judge: bool,
    chunks: list[dict[str, str]] | None = None,
) -> RowTask[Any]:
    """The row task of the contract's kind of data."""
    if spec.task == "chat":
        from agent.tools.chat_task import Conversations

        return Conversations(spec, n, seed, judge=judge, chunks=chunks)
    return TextClassification(spec, n, seed, judge=judge)


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
        from agent.tools.ray_engine import run_sharded

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
