"""What every kind of data shares: the row-task interface the engine runs, and the deterministic
building blocks row tasks plan with (exact quotas, seeded permutations, spreads of attributes).

A leaf module: it imports no task and no engine, so tasks, the engine and the Ray driver can all
import it without a cycle.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Generic, Protocol, TypeVar

from langchain_core.messages import BaseMessage
from pydantic import BaseModel

from agent.spec import LENGTH_BANDS, DatasetSpec
from agent.tools.scheduler import CallRole

P = TypeVar("P")
S = TypeVar("S", bound=BaseModel)
DEFAULT_TOPICS = ["general"]


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


def run_meta(spec: DatasetSpec, seed: int) -> dict[str, Any]:
    """What identifies a run in its folder: the contract (and its fingerprint) and the seed."""
    data = spec.model_dump(mode="json")
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
    return {"seed": seed, "spec": data, "spec_version": spec.version, "fingerprint": digest}


# --- the task interface ---------------------------------------------------------------------


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
class TaskKind:
    """One kind of data, as the rest of the app sees it: its row task and two modules of its
    package — `talk` (the conversation: first contract, critique, report) and `publish` (dataset
    features, card, Argilla). The registry (`agent.tasks.kind`) maps a contract's `task` to its
    kind; nothing outside `agent/tasks/` branches on the task's name."""

    name: str
    clarifies: bool
    """Whether a vague request gets a clarifying question before the first contract."""
    unit: str
    """What its rows are called in progress lines: "rows" or "conversations"."""
    rows: Callable[..., RowTask[Any]]
    """(spec, n, seed, *, judge, chunks) → the engine's row task."""
    chunked: Callable[[DatasetSpec], bool]
    """Whether runs of this contract read the conversation's document chunks."""
    talk: ModuleType
    publish: ModuleType

    def row_task(
        self,
        spec: DatasetSpec,
        n: int,
        seed: int,
        *,
        judge: bool,
        chunks: list[dict[str, str]] | None = None,
    ) -> RowTask[Any]:
        return self.rows(spec, n, seed, judge=judge, chunks=chunks)

    def uses_chunks(self, spec: DatasetSpec) -> bool:
        return self.chunked(spec)

    # --- in the conversation (talk.py) ---

    async def propose(self, state: Any) -> Any:
        """The first contract, as the graph's Command to its review."""
        return await self.talk.propose(state)

    async def critique(self, state: Any, spec: DatasetSpec, rows: list[dict[str, Any]]) -> Any:
        """The sample's review message, as the graph's Command to the sample review."""
        return await self.talk.critique(state, spec, rows)

    def change_examples(self, spec: DatasetSpec) -> str:
        """Two refinements that fit this contract, as a person would type them."""
        return str(self.talk.change_examples(spec))

    def render(self, spec: DatasetSpec) -> str:
        """The contract as Markdown."""
        return str(self.talk.render(spec))

    def run_figures(self, spec: DatasetSpec, rows: Any) -> dict[str, Any]:
        """A run's figures (for its report, the pause message and the card)."""
        return dict(self.talk.run_figures(spec, rows))

    def paused_tips(self, fig: dict[str, Any]) -> list[str]:
        """What to change when the stop rule paused a run."""
        return list(self.talk.paused_tips(fig))

    def run_report(
        self, spec: DatasetSpec, fig: dict[str, Any], made: int, replaced: int, rows: Any
    ) -> tuple[str, str, str]:
        """A finished run in words: (what was made, the figures in words, the exact figures)."""
        return tuple(self.talk.run_report(spec, fig, made, replaced, rows))  # type: ignore[return-value]

    def starting(self, n: int) -> str:
        """The status line a full run of n rows starts with."""
        return str(self.talk.starting(n))

    # --- publishing (publish.py) ---

    def build_dataset(self, spec: DatasetSpec, rows: Any) -> Any:
        """The rows as a `datasets.Dataset` with this kind's features, in a stable column order."""
        return self.publish.build_dataset(spec, rows)

    def render_card(
        self,
        spec: DatasetSpec,
        ds: Any,
        *,
        model_info: dict[str, str],
        history: list[dict],
        metrics: dict[str, Any],
        license: str = "other",
    ) -> str:
        """The dataset card (YAML header and body) for an exported dataset of this kind."""
        return str(
            self.publish.render_card(
                spec, ds, model_info=model_info, history=history, metrics=metrics, license=license
            )
        )

    def argilla_settings(self, spec: DatasetSpec) -> Any:
        """The Argilla dataset settings (fields, questions, metadata) for this kind."""
        return self.publish.argilla_settings(spec)

    def argilla_record(
        self, spec: DatasetSpec, row: dict[str, Any], dataset_name: str, position: int
    ) -> Any:
        """One row as an Argilla record, the judge's answers as suggestions; None to skip it."""
        return self.publish.argilla_record(spec, row, dataset_name, position)
