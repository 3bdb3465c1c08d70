"""Text classification rows: the label from the quota, attributes spread exactly, a blind relabel
by the judge."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from agent import prompts
from agent.llm import LLMBadOutput, as_messages
from agent.reasoning import strip_reasoning
from agent.spec import DatasetSpec
from agent.tasks.base import DEFAULT_TOPICS, Caller, Spread, even, length_bands, run_meta
from agent.tasks.textcat.schemas import GeneratedText, relabel_schema


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
