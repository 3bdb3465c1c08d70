"""The dataset contract: the single source of truth for sampling, full runs, the card and the CLI.

A `DatasetSpec` is immutable in spirit: every edit goes through `apply_edits`, which returns a new
version, and `spec_diff` renders what changed in words a person can read.
"""

from __future__ import annotations

import re
from typing import Literal, get_args

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from slugify import slugify

from agent.i18n import _, language_name
from agent.languages import normalise_language

MAX_LABELS = 50
LENGTH_BANDS: dict[str, tuple[int, int]] = {
    "short": (10, 40),
    "medium": (40, 120),
    "long": (120, 300),
}
LengthBand = Literal["short", "medium", "long"]


class SpecError(ValueError):
    """A contract that cannot be: the message is written for the user."""


def clean_label(name: str) -> str:
    """Normalise a label name: lower-case, words joined by hyphens, no markup or path separators."""
    name = re.sub(r"<[^>]*>", " ", str(name))
    name = re.sub(r"[^\w\s-]", " ", name.lower(), flags=re.UNICODE)
    return re.sub(r"[\s_-]+", "-", name).strip("-")[:40]


class Label(BaseModel):
    name: str = Field(description="Short label name, lower-case, words joined by hyphens.")
    definition: str = Field(description="One sentence saying which texts get this label.")

    @field_validator("name")
    @classmethod
    def _clean(cls, v: str) -> str:
        return clean_label(v)


class Style(BaseModel):
    topics: list[str] = Field(default_factory=list, description="Topics or sub-topics to cover.")
    length: LengthBand = Field("medium", description="Length band of each text.")
    tones: list[str] = Field(default_factory=lambda: ["neutral"], description="Tones to vary over.")
    clarity: list[str] = Field(
        default_factory=lambda: ["clear", "understandable with some effort"],
        description="How clearly each text expresses its label.",
    )


MAX_TURNS = 8


class ChatShape(BaseModel):
    """The shape of chat/SFT conversations."""

    system_prompt: str = Field(description="The assistant's system prompt.")
    turns: int = Field(1, description="User turns per conversation (1 to 8); each gets an answer.")
    personas: list[str] = Field(
        default_factory=list, description="Kinds of users, sampled per row."
    )
    intents: list[str] = Field(
        default_factory=list, description="What users want, sampled per row."
    )
    answer_style: str = Field("helpful and concise", description="How the assistant answers.")
    answer_length: LengthBand = Field("medium", description="Length band of assistant answers.")
    grounded: bool = Field(False, description="Answers must be supported by attached documents.")
    include_system: bool = Field(True, description="Export the system prompt as a leading message.")

    @model_validator(mode="after")
    def _check(self) -> ChatShape:
        if not 1 <= self.turns <= MAX_TURNS:
            raise SpecError(
                _(
                    "Conversations can have 1 to {most} turns; {n} was asked for.",
                    most=MAX_TURNS,
                    n=self.turns,
                )
            )
        if not self.system_prompt.strip():
            raise SpecError(_("The chat contract needs a system prompt."))
        return self


Difficulty = Literal["easy", "medium", "hard"]
DIFFICULTIES: tuple[str, ...] = get_args(Difficulty)
RagSource = Literal["documents", "dataset", "description"]


class RagShape(BaseModel):
    """The shape of retrieval (RAG) rows: a passage (`context`), a question it answers and the
    grounded `response`; optionally retrieval and reranking pairs for embedders and rerankers."""

    source: RagSource = Field(
        "description",
        description="Where the passages come from: attached documents, a dataset column, or "
        "written by the model from the description.",
    )
    seed_dataset: str | None = Field(
        None, description="A Hub dataset id or a local Parquet/CSV/JSONL file or folder."
    )
    seed_column: str | None = Field(None, description="The seed dataset's text column.")
    retrieval: bool = Field(
        True, description="Add positive_retrieval: another query the passage answers."
    )
    hard_negatives: bool = Field(
        False,
        description="Add negative_retrieval: a close query the passage does not answer "
        "(implies retrieval).",
    )
    reranking: bool = Field(
        False,
        description="Add positive_reranking / negative_reranking: a relevant and a similar but "
        "irrelevant passage.",
    )
    difficulty: Difficulty = Field("medium", description="How hard the questions are.")
    answer_length: LengthBand = Field("short", description="Length band of the responses.")

    @model_validator(mode="after")
    def _check(self) -> RagShape:
        if self.hard_negatives:
            self.retrieval = True
        if self.source == "dataset" and not (self.seed_dataset and self.seed_column):
            raise SpecError(_("Passages from a dataset need its id or path and its text column."))
        return self


class DatasetSpec(BaseModel):
    """The contract the user approves; versioned."""

    version: int = 1
    task: Literal["textcat", "chat", "rag"] = "textcat"
    name: str = Field("synthetic-dataset", description="Folder and repo-friendly dataset name.")
    description: str
    labels: list[Label] = Field(default_factory=list)
    multi_label: bool = False
    mix: dict[str, float] = Field(
        default_factory=dict, description="Target share per label; sums to 1. Empty means uniform."
    )
    language: str = "English"
    size: int = 100
    style: Style = Field(default_factory=Style)
    chat: ChatShape | None = None
    rag: RagShape | None = None

    @field_validator("name")
    @classmethod
    def _slug(cls, v: str) -> str:
        # transliterated, not dropped: "recenzii-clienților" → "recenzii-clientilor"
        return slugify(str(v), max_length=60) or "synthetic-dataset"

    @field_validator("language")
    @classmethod
    def _language(cls, v: str) -> str:
        # one canonical name however it was written: "Roman", "română", "ro" → "Romanian"
        return normalise_language(v)

    @model_validator(mode="after")
    def _check(self) -> DatasetSpec:
        if self.size < 1:
            raise SpecError(too_small(self.size))
        if self.task == "chat":
            if self.chat is None:
                raise SpecError(
                    _("A chat dataset needs its conversation shape (system prompt, turns).")
                )
            self.labels, self.mix, self.multi_label, self.rag = [], {}, False, None
            return self
        if self.task == "rag":
            if self.rag is None:
                self.rag = RagShape()
            self.labels, self.mix, self.multi_label, self.chat = [], {}, False, None
            return self
        names = [label.name for label in self.labels]
        if any(not n for n in names):
            raise SpecError(_("Every label needs a name; one of them is empty."))
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SpecError(
                _("Label names must be unique; repeated: {names}.", names=", ".join(dupes))
            )
        if len(names) < 2:
            raise SpecError(_("A classification dataset needs at least two labels."))
        if len(names) > MAX_LABELS:
            raise SpecError(
                _(
                    "At most {most} labels are supported; this contract has {n}.",
                    most=MAX_LABELS,
                    n=len(names),
                )
            )
        if self.size < 1:
            raise SpecError(too_small(self.size))
        unknown = set(self.mix) - set(names)
        if unknown:
            raise SpecError(
                _(
                    "The label mix names labels that do not exist: {names}.",
                    names=", ".join(sorted(unknown)),
                )
            )
        self.mix = normalise_mix(self.mix, names)
        return self

    @property
    def label_names(self) -> list[str]:
        return [label.name for label in self.labels]

    def definition(self, name: str) -> str:
        return next(label.definition for label in self.labels if label.name == name)


def make_spec(data: dict) -> DatasetSpec:
    """Validate a contract, turning pydantic's report into one readable SpecError."""
    try:
        return DatasetSpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = str(err.get("ctx", {}).get("error") or err["msg"])
        where = ".".join(str(p) for p in err.get("loc", ()))
        raise SpecError(msg if "ctx" in err else f"{where}: {msg}") from None


def normalise_mix(mix: dict[str, float], names: list[str]) -> dict[str, float]:
    """Shares for every label in contract order, summing to 1 (uniform where none are given)."""
    raw = {n: max(0.0, float(mix.get(n, 0.0))) for n in names}
    if not any(raw.values()):
        raw = dict.fromkeys(names, 1.0)
    elif any(n not in mix for n in names):
        # Labels with no share get the mean of the given ones, so a new label is not starved.
        given = [v for n, v in raw.items() if n in mix]
        mean = sum(given) / len(given) if given else 1.0
        raw = {n: (raw[n] if n in mix else mean) for n in names}
    total = sum(raw.values())
    return {n: round(v / total, 4) for n, v in raw.items()}


def check_size(size: int, max_rows: int) -> int:
    if size < 1:
        raise SpecError(too_small(size))
    if size > max_rows:
        raise SpecError(
            _(
                "The size can be at most {most:,} rows; {n:,} was asked for.",
                most=max_rows,
                n=size,
            )
        )
    return size


def too_small(size: int) -> str:
    return _("The size must be at least 1 row; {n:,} was asked for.", n=size)


# --- edits -------------------------------------------------------------------------------------

EditOp = Literal[
    "more_of_label",
    "less_of_label",
    "set_label_share",
    "add_label",
    "remove_label",
    "rename_label",
    "redefine_label",
    "set_size",
    "set_language",
    "set_length",
    "add_topic",
    "remove_topic",
    "set_tone",
    "set_multi_label",
    "set_turns",
    "set_system_prompt",
    "add_rule",
    "set_answer_style",
    "add_persona",
    "add_intent",
    "set_difficulty",
    "set_retrieval",
    "set_hard_negatives",
    "set_reranking",
]

CHAT_OPS: tuple[str, ...] = (
    "set_turns",
    "set_system_prompt",
    "add_rule",
    "set_answer_style",
    "add_persona",
    "add_intent",
)
RAG_OPS: tuple[str, ...] = (
    "set_difficulty",
    "set_retrieval",
    "set_hard_negatives",
    "set_reranking",
)
assert set(CHAT_OPS) | set(RAG_OPS) <= set(get_args(EditOp))


def _yes(value: str | None) -> bool:
    return (value or "").lower().strip() in ("yes", "true", "1", "on", "add", "da")


class SpecEdit(BaseModel):
    """One typed change to the contract. Only the fields the operation needs are set."""

    op: EditOp = Field(
        description=(
            "more_of_label/less_of_label: shift the mix toward/away from `label`; "
            "set_label_share: `label` gets `share` (0-1); add_label: new `label` with `definition`; "
            "remove_label; rename_label: `label` becomes `new_name`; redefine_label: new `definition`; "
            "set_size: `number`; set_language: `value`; set_length: `value` short|medium|long; "
            "add_topic/remove_topic: `value`; set_tone: `value`; set_multi_label: `value` yes|no. "
            "Chat data: set_turns: `number`; set_system_prompt: `value`; add_rule: `value` (a rule the "
            "assistant must follow, e.g. always ask for the account type); set_answer_style: `value`; "
            "set_length: answer length short|medium|long; add_persona / add_intent: `value`. "
            "RAG data: set_difficulty: `value` easy|medium|hard|harder|easier; set_retrieval, "
            "set_hard_negatives, set_reranking: `value` yes|no; set_length: answer length."
        )
    )
    label: str | None = Field(None, description="The label the edit is about, if any.")
    new_name: str | None = Field(None, description="New label name, for rename_label.")
    definition: str | None = Field(None, description="Label definition, for add/redefine_label.")
    share: float | None = Field(
        None, description="Target share between 0 and 1, for set_label_share."
    )
    number: int | None = Field(None, description="Number of rows, for set_size.")
    value: str | None = Field(None, description="Text value for language, length, topic, tone.")


def _find_label(spec: DatasetSpec, name: str | None) -> str:
    wanted = clean_label(name or "")
    names = spec.label_names
    if wanted in names:
        return wanted
    # "negative reviews" → "negative"; "neg" → "negative"
    for n in names:
        if n and (n in wanted or wanted.startswith(n) or n.startswith(wanted)) and wanted:
            return n
    raise SpecError(
        _("There is no label “{name}”. The labels are: {names}.", name=name, names=", ".join(names))
    )


def _shift(mix: dict[str, float], label: str, share: float) -> dict[str, float]:
    share = min(max(share, 0.0), 1.0)
    others = {n: v for n, v in mix.items() if n != label}
    rest = sum(others.values())
    out = {}
    for n in mix:
        if n == label:
            out[n] = share
        elif rest > 0:
            out[n] = mix[n] / rest * (1 - share)
        else:
            out[n] = (1 - share) / max(len(others), 1)
    return out


def apply_edits(spec: DatasetSpec, edits: list[SpecEdit], *, max_rows: int) -> DatasetSpec:
    """Apply edits in order and return the next version. Raises SpecError with a readable reason."""
    if not edits:
        raise SpecError(_("No change was understood."))
    data = spec.model_dump()
    cur = spec
    for e in edits:
        data = cur.model_dump()
        mix = dict(cur.mix)
        if e.op in ("more_of_label", "less_of_label"):
            name = _find_label(cur, e.label)
            old = mix[name]
            new = min(0.9, max(old * 1.5, old + 0.15)) if e.op == "more_of_label" else old / 2
            data["mix"] = _shift(mix, name, new)
        elif e.op == "set_label_share":
            name = _find_label(cur, e.label)
            if e.share is None:
                raise SpecError(_("Say what share the label should have, for example 50 %."))
            share = e.share / 100 if e.share > 1 else e.share
            data["mix"] = _shift(mix, name, share)
        elif e.op == "add_label":
            name = clean_label(e.label or e.new_name or "")
            if not name:
                raise SpecError(_("The new label needs a name."))
            if name in cur.label_names:
                raise SpecError(_("There is already a label “{name}”.", name=name))
            data["labels"].append(
                {
                    "name": name,
                    "definition": e.definition or f"Texts about {name.replace('-', ' ')}.",
                }
            )
            data["mix"] = _shift({**mix, name: 0.0}, name, 1 / (len(mix) + 1))
        elif e.op == "remove_label":
            name = _find_label(cur, e.label)
            data["labels"] = [lb for lb in data["labels"] if lb["name"] != name]
            data["mix"] = {n: v for n, v in mix.items() if n != name}
        elif e.op == "rename_label":
            name = _find_label(cur, e.label)
            renamed = clean_label(e.new_name or "")
            if not renamed:
                raise SpecError(_("The new label name is empty."))
            if renamed in cur.label_names and renamed != name:
                raise SpecError(_("There is already a label “{name}”.", name=renamed))
            for lb in data["labels"]:
                if lb["name"] == name:
                    lb["name"] = renamed
            data["mix"] = {(renamed if n == name else n): v for n, v in mix.items()}
        elif e.op == "redefine_label":
            name = _find_label(cur, e.label)
            if not e.definition:
                raise SpecError(_("Say what the new definition should be."))
            for lb in data["labels"]:
                if lb["name"] == name:
                    lb["definition"] = e.definition
        elif e.op == "set_size":
            if e.number is None:
                raise SpecError(_("Say how many rows you want."))
            data["size"] = check_size(int(e.number), max_rows)
        elif e.op == "set_language":
            if not (e.value or "").strip():
                raise SpecError(_("Say which language the data should be in."))
            data["language"] = normalise_language(e.value)
        elif e.op == "set_length":
            v = (e.value or "").lower().strip()
            v = {"shorter": "short", "longer": "long"}.get(v, v)
            if v not in LENGTH_BANDS:
                raise SpecError(_("Length can be short, medium or long."))
            # chat and RAG contracts set their answers' length; labelled texts their own
            shape = data.get("chat") or data.get("rag")
            (shape if shape is not None else data["style"])[
                "answer_length" if shape is not None else "length"
            ] = v
        elif e.op in RAG_OPS:
            if data.get("rag") is None:
                raise SpecError(_("That change is for retrieval (RAG) datasets."))
            rag = data["rag"]
            if e.op == "set_difficulty":
                v = (e.value or "").lower().strip()
                steps = list(DIFFICULTIES)
                at = steps.index(rag["difficulty"])
                v = {
                    "harder": steps[min(at + 1, len(steps) - 1)],
                    "easier": steps[max(at - 1, 0)],
                }.get(v, v)
                if v not in DIFFICULTIES:
                    raise SpecError(_("Questions can be easy, medium or hard."))
                rag["difficulty"] = v
            elif e.op == "set_retrieval":
                rag["retrieval"] = _yes(e.value)
                if not rag["retrieval"]:
                    rag["hard_negatives"] = False
            elif e.op == "set_hard_negatives":
                rag["hard_negatives"] = _yes(e.value)
            elif e.op == "set_reranking":
                rag["reranking"] = _yes(e.value)
        elif e.op in CHAT_OPS:
            if data.get("chat") is None:
                raise SpecError(
                    _("That change is for chat datasets; this one is text classification.")
                )
            chat = data["chat"]
            value = (e.value or "").strip()
            if e.op == "set_turns":
                if e.number is None:
                    raise SpecError(_("Say how many turns each conversation should have."))
                chat["turns"] = int(e.number)
            elif not value:
                raise SpecError(_("That change needs a value."))
            elif e.op == "set_system_prompt":
                chat["system_prompt"] = value[:4000]
            elif e.op == "add_rule":
                chat["system_prompt"] = f"{chat['system_prompt'].rstrip()}\n- {value[:300]}"
            elif e.op == "set_answer_style":
                chat["answer_style"] = value[:200]
            elif e.op == "add_persona" and value not in chat["personas"]:
                chat["personas"].append(value[:120])
            elif e.op == "add_intent" and value not in chat["intents"]:
                chat["intents"].append(value[:120])
        elif e.op == "add_topic":
            if not (e.value or "").strip():
                raise SpecError(_("Say which topic to add."))
            if e.value not in data["style"]["topics"]:
                data["style"]["topics"].append(e.value.strip()[:80])  # type: ignore[union-attr]
        elif e.op == "remove_topic":
            data["style"]["topics"] = [t for t in data["style"]["topics"] if t != e.value]
        elif e.op == "set_tone":
            if not (e.value or "").strip():
                raise SpecError(_("Say which tone you want."))
            data["style"]["tones"] = [t.strip() for t in e.value.split(",") if t.strip()][:6]  # type: ignore[union-attr]
        elif e.op == "set_multi_label":
            data["multi_label"] = (e.value or "").lower() in ("yes", "true", "1", "multi", "on")
        cur = make_spec(data)
    data = cur.model_dump()
    data["version"] = spec.version + 1
    new_spec = make_spec(data)
    if spec_diff(spec, new_spec) == []:
        raise SpecError(_("That request would not change the contract."))
    return new_spec


# --- diff --------------------------------------------------------------------------------------


def show(v: object) -> str:
    return ", ".join(map(str, v)) if isinstance(v, list) else str(v)


def pct(x: float) -> str:
    return f"{x * 100:.0f} %"


def _field(name: str) -> str:
    """A contract field's name in the diff."""
    names = {
        "size": _("size"),
        "language": _("language"),
        "multi_label": _("multi-label"),
        "turns": _("turns"),
        "answer_style": _("answer style"),
        "answer_length": _("answer length"),
        "personas": _("personas"),
        "intents": _("intents"),
        "grounded": _("grounded"),
        "length": _("length"),
        "topics": _("topics"),
        "tones": _("tones"),
        "clarity": _("clarity"),
        "system_prompt": _("system prompt"),
        "difficulty": _("question difficulty"),
        "retrieval": _("retrieval pairs"),
        "hard_negatives": _("hard negatives"),
        "reranking": _("reranking pairs"),
        "source": _("passages from"),
    }
    return names.get(name, name)


def value_word(v: object) -> str:
    if isinstance(v, bool):
        return _("yes") if v else _("no")
    if v in LENGTH_BANDS:
        return length_word(str(v))
    return show(v) or "—"


def length_word(band: str) -> str:
    return {"short": _("short"), "medium": _("medium"), "long": _("long")}.get(band, band)


def difficulty_word(level: str) -> str:
    return {"easy": _("easy"), "medium": _("medium"), "hard": _("hard")}.get(level, level)


def spec_diff(old: DatasetSpec, new: DatasetSpec) -> list[str]:
    """Readable lines of what changed between two versions."""
    lines: list[str] = []
    old_l = {lb.name: lb.definition for lb in old.labels}
    new_l = {lb.name: lb.definition for lb in new.labels}
    label = _("label")
    for n in new_l:
        if n not in old_l:
            lines.append(f"+ {label} {n}: {new_l[n]}")
        elif old_l[n] != new_l[n]:
            lines.append(f"~ {label} {n}: “{old_l[n]}” → “{new_l[n]}”")
    for n in old_l:
        if n not in new_l:
            lines.append(f"- {label} {n}")
    for n in new.label_names:
        a, b = old.mix.get(n), new.mix.get(n)
        if a is not None and b is not None and abs(a - b) >= 0.005:
            mix = _("mix")
            lines.append(f"~ {mix} {n}: {pct(a)} → {pct(b)}")
    for field in ("size", "language", "multi_label"):
        was, now = getattr(old, field), getattr(new, field)
        if field == "language":
            was, now = language_name(was), language_name(now)
        if was != now:
            lines.append(f"~ {_field(field)}: {value_word(was)} → {value_word(now)}")
    if old.chat is not None and new.chat is not None:
        for field in ("turns", "answer_style", "answer_length", "personas", "intents", "grounded"):
            a, b = getattr(old.chat, field), getattr(new.chat, field)
            if a != b:
                lines.append(f"~ {_field(field)}: {value_word(a)} → {value_word(b)}")
        if old.chat.system_prompt != new.chat.system_prompt:
            lines.append(
                f"~ {_field('system_prompt')}: “{old.chat.system_prompt}” → “{new.chat.system_prompt}”"
            )
    if old.rag is not None and new.rag is not None:
        for field in ("difficulty", "answer_length", "retrieval", "hard_negatives", "reranking"):
            was, now = getattr(old.rag, field), getattr(new.rag, field)
            if was != now:
                words = difficulty_word if field == "difficulty" else value_word
                lines.append(f"~ {_field(field)}: {words(was)} → {words(now)}")
    for field in ("length", "topics", "tones", "clarity"):
        a, b = getattr(old.style, field), getattr(new.style, field)
        if a != b:
            lines.append(f"~ {_field(field)}: {value_word(a)} → {value_word(b)}")
    return lines
