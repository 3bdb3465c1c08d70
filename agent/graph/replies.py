"""The deterministic reader: common replies at a review step → typed edits or intents, no model.

Small models misread "make it more negative reviews"; a table of how people say the common things
does not. Each language is a data file (`readers/<code>.toml`: word lists and patterns with slots
such as {label} and {n}); this module compiles a table against the current contract (its labels
become the {label} alternatives) and reads a reply with every table, keeping the reading that
understood the most. A reply it cannot read returns None and goes to the model, which then chooses
from a schema built from the same contract (`choice_schema`).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from agent.i18n import _, language_name
from agent.languages import LANGUAGES, fold, normalise_language
from agent.spec import (
    LENGTH_BANDS,
    DatasetSpec,
    SpecEdit,
    SpecError,
    apply_edits,
    clean_label,
    spec_diff,
)

Kind = Literal["approve", "cancel", "generate", "edit", "question"]
READER_LANGUAGES = ("en", "ro")

_WORD_OF_LANGUAGE: dict[str, str] = {
    w: name for name, (_code, words) in LANGUAGES.items() for w in words
}


@dataclass
class Reading:
    """What a reply means: the intent, its typed edits, and the words left unread."""

    kind: Kind
    edits: list[SpecEdit] = field(default_factory=list)
    rows: int | None = None
    language: str = "English"
    """The language of the table that read it (the user's language, for the replies)."""
    leftover: str = ""
    """Content words the reader did not use: said back to the user, never silently dropped."""
    bad_number: str | None = None
    """A size that is not a whole number ("1.5", "10.5k"): refused with its reason."""


@cache
def table(code: str) -> dict[str, Any]:
    text = resources.files("agent.graph").joinpath(f"readers/{code}.toml").read_text("utf-8")
    return tomllib.loads(text)


def normalise(text: str) -> str:
    """Lower case, no accents, apostrophes as spaces, one space between words."""
    t = fold(text).replace("’", " ").replace("'", " ").replace("`", " ")
    t = re.sub(r"[“”„\"«»()\[\]]", " ", t)
    return re.sub(r"\s+", " ", t).strip()


def parse_rows(raw: str) -> int | None:
    """A row count as typed: "1000", "1,000", "10.000" or "1_000"; None when not a whole number
    (a "10.000" read as ten would quietly make a dataset a thousand times too small)."""
    raw = raw.strip().rstrip(".,_")
    if re.fullmatch(r"-?\d+", raw):
        return int(raw)
    if re.fullmatch(r"-?\d{1,3}([.,_])\d{3}(\1\d{3})*", raw):
        return int(re.sub(r"[.,_]", "", raw))
    return None


def _alt(words: list[str]) -> str:
    """A regex alternation of phrases, longest first, spaces matching any run of spaces."""
    ordered = sorted({normalise(w) for w in words if w.strip()}, key=len, reverse=True)
    return "|".join(re.escape(w).replace(r"\ ", r"[\s-]+") for w in ordered)


_END = r"(?=\s*(?:$|[,.;:=!?]| - | — |\b(?:but|dar|and|si|with|cu|please|te rog|then|apoi|too|also|as well|la fel)\b))"
_SLOTS = {
    "n": r"(?P<n>-?\d[\d.,_]*\d|-?\d)",
    "x": r"(?P<x>[^,.;!?]+?)" + _END,
    "def": r"(?P<def>[^;!?]+?)(?=\s*(?:$|[;!?]))",
    "list": r"(?P<list>[\w-]+(?:(?:\s*,\s*|\s+(?:and|or|si|sau)\s+|\s*/\s*|\s+)[\w-]+){1,9})"
    r"(?=\s*(?:$|[.;!?]|,?\s*\b(?:with|cu|but|dar|and make|si fa)\b))",
    "language": r"(?P<language>[a-z]+)",
    # a name followed by more words of the pattern ("add a {name} label", "call X {name} instead")
    "name": r"(?P<x>(?!(?:a|an|the|one|o|un|eticheta|label)\b)[\w-]+(?: [\w-]+){0,3}?)",
}


@dataclass
class _Compiled:
    code: str
    language: str
    words: dict[str, re.Pattern[str]]
    patterns: dict[str, list[re.Pattern[str]]]
    aliases: dict[str, str]
    """normalised alias → label name of the contract"""
    tones: dict[str, str]
    question_starts: re.Pattern[str]


def _label_aliases(spec: DatasetSpec, tab: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    extra = {normalise(k): v for k, v in tab.get("label_aliases", {}).items()}
    for name in spec.label_names:
        forms = {name, name.replace("-", " "), normalise(name).replace("-", " ")}
        forms |= set(extra.get(normalise(name), []))
        # plural / singular: "complaints" ~ "complaint", "questions" ~ "question"
        forms |= {f + "s" for f in list(forms) if not f.endswith("s")}
        forms |= {f[:-1] for f in list(forms) if f.endswith("s") and len(f) > 4}
        for f in forms:
            out.setdefault(normalise(f), name)
    return out


def _compile(code: str, spec: DatasetSpec) -> _Compiled:
    tab = table(code)
    words = tab["words"]
    aliases = _label_aliases(spec, tab)
    tones = {normalise(k): v for k, v in tab.get("tones", {}).items()}
    slots = dict(_SLOTS)
    slots["label"] = (
        r"(?P<label>" + (_alt(list(aliases)) or r"(?!x)x") + r")(?![\w-])" if aliases else r"(?!x)x"
    )
    slots["tone"] = r"(?P<tone>" + _alt(list(tones)) + r")\b"
    for key, name in (("more", "more"), ("less", "less"), ("unit", "units")):
        slots[key] = r"(?:" + _alt(words[name]) + r")"
    slots["turn_unit"] = r"(?:" + _alt(words["turn_units"]) + r")\b"

    def build(p: str) -> re.Pattern[str]:
        out = re.sub(r"\{(\w+)\}", lambda m: slots[m.group(1)], p)
        return re.compile(r"(?<![\w-])" + out)

    # the whole reply is one or more of these phrases ("perfect, generate all")
    whole = {
        k: re.compile(r"^(?:" + _alt(v) + r")(?:\s+(?:" + _alt(v) + r"))*$")
        for k, v in words.items()
        if k in ("approve", "just_go", "cancel")
    }
    phrases = {
        k: re.compile(r"(?<![\w-])(?:" + _alt(v) + r")(?![\w-])")
        for k, v in words.items()
        if k in ("shorter", "longer", "multi_on", "multi_off", "polite") or k in RAG_WORDS
    }
    return _Compiled(
        code=code,
        language=tab["language"],
        words=whole | {f"in:{k}": v for k, v in phrases.items()},
        patterns={k: [build(p) for p in v] for k, v in tab["patterns"].items()},
        aliases=aliases,
        tones=tones,
        question_starts=re.compile(r"^(?:" + _alt(words["question_starts"]) + r")\b"),
    )


class _Text:
    """The reply being read; a matched span is blanked so nothing is read twice."""

    def __init__(self, text: str) -> None:
        self.t = text

    def take(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        m = pattern.search(self.t)
        if m:
            self.t = self.t[: m.start()] + " ; " + self.t[m.end() :]
        return m

    def take_all(self, pattern: re.Pattern[str]) -> list[re.Match[str]]:
        found = []
        while (m := self.take(pattern)) is not None:
            found.append(m)
        return found


_FILLER = set(
    (
        "a an the it them they this that these those make please pls also just bit more some "
        "texts text reviews review rows row examples ones data dataset i want would like need "
        "could you can and or to of for with be should is are so then now ok okay yes but "
        "fa sa fie mai te rog va rog si sau de la cu pe un o niste vreau as vrea poti textele "
        "texte recenzii recenziile randuri exemple datele setul date un pic putin acum apoi da "
        "imi in din ca ce care ton tone style stil answers answer questions raspunsuri raspunsurile "
        "intrebari intrebarile"
    ).split()
)


def _first(s: _Text, patterns: list[re.Pattern[str]]) -> re.Match[str] | None:
    """The first of these patterns that matches, taken out of the text."""
    for pat in patterns:
        if m := s.take(pat):
            return m
    return None


def _leftover(t: str) -> str:
    words = [w for w in re.findall(r"[\w%-]+", t) if w not in _FILLER]
    return " ".join(words)


def _split_list(raw: str) -> list[str]:
    parts = re.split(r"\s*,\s*|\s+(?:and|or|si|sau)\s+|\s*/\s*", raw.strip())
    if len(parts) == 1:
        parts = raw.split()
    return [p.strip() for p in parts if p.strip()]


def _share(raw: str) -> float | None:
    try:
        v = float(raw.replace(",", "."))
    except ValueError:
        return None
    return v / 100 if v > 1 else v


# a RAG contract's switches, as phrase lists in the tables: the "off" list of a switch is read
# before its "on" list ("no hard negatives" contains "hard negatives")
RAG_WORDS: dict[str, tuple[str, str]] = {
    "hard_negatives_off": ("set_hard_negatives", "no"),
    "hard_negatives_on": ("set_hard_negatives", "yes"),
    "reranking_off": ("set_reranking", "no"),
    "reranking_on": ("set_reranking", "yes"),
    "retrieval_off": ("set_retrieval", "no"),
    "retrieval_on": ("set_retrieval", "yes"),
    "harder": ("set_difficulty", "harder"),
    "easier": ("set_difficulty", "easier"),
}


def _step_length(spec: DatasetSpec, direction: int) -> str:
    bands = list(LENGTH_BANDS)
    now = (
        spec.chat.answer_length
        if spec.chat is not None
        else spec.rag.answer_length
        if spec.rag is not None
        else spec.style.length
    )
    i = min(max(bands.index(now) + direction, 0), len(bands) - 1)
    return bands[i]


def _read_with(c: _Compiled, text: str, spec: DatasetSpec, stage: str) -> Reading | None:
    base = normalise(text)
    bare = c.words["in:polite"].sub(" ", base)
    bare = re.sub(r"[^\w\s%-]", " ", bare)
    bare = re.sub(r"\s+", " ", bare).strip()
    plain = re.sub(r"\s+", " ", re.sub(r"[^\w\s%-]", " ", base)).strip()
    if any(c.words[k].match(t) for k in ("approve", "just_go") for t in (bare, plain) if t):
        return Reading("approve", language=c.language)
    if any(c.words["cancel"].match(t) for t in (bare, plain) if t):
        return Reading("cancel", language=c.language)

    s = _Text(base)
    edits: list[SpecEdit] = []
    kind: Kind = "edit"
    rows: int | None = None
    p = c.patterns
    textcat = bool(spec.labels)  # labels: a text-classification contract

    def label_of(m: re.Match[str]) -> str:
        return c.aliases[normalise(m.group("label"))]

    if textcat:
        for pat in p.get("set_labels", []):
            m = s.take(pat)
            if m:
                wanted = [n for n in (_clean(x) for x in _split_list(m.group("list"))) if n]
                wanted = [c.aliases.get(n.replace("-", " "), n) for n in wanted]
                if len(set(wanted)) >= 2:
                    edits += [
                        SpecEdit(op="add_label", label=n)
                        for n in wanted
                        if n not in spec.label_names
                    ]
                    edits += [
                        SpecEdit(op="remove_label", label=n)
                        for n in spec.label_names
                        if n not in wanted
                    ]
                    # new labels join the {label} alternatives for a share said in the same reply
                    c = _recompile_labels(c, spec, wanted)
                    p = c.patterns
                break
        for key in ("share",):
            for pat in p.get(key, []):
                for m in s.take_all(pat):
                    share = _share(m.groupdict().get("n") or "50")
                    if share is not None and 0 <= share <= 1:
                        edits.append(SpecEdit(op="set_label_share", label=label_of(m), share=share))
        for pat in p.get("rename", []):
            for m in s.take_all(pat):
                new = _clean(m.group("x"))
                if new:
                    edits.append(SpecEdit(op="rename_label", label=label_of(m), new_name=new))
        for pat in p.get("redefine", []):
            for m in s.take_all(pat):
                edits.append(
                    SpecEdit(
                        op="redefine_label", label=label_of(m), definition=_sentence(m.group("def"))
                    )
                )
        for pat in p.get("add_label", []):
            for m in s.take_all(pat):
                name = _clean(m.group("x"))
                if name and name not in ("label", "eticheta", "new", "noua"):
                    d = m.groupdict().get("def")
                    edits.append(
                        SpecEdit(op="add_label", label=name, definition=_sentence(d) if d else None)
                    )
        for pat in p.get("remove_label", []):
            for m in s.take_all(pat):
                edits.append(SpecEdit(op="remove_label", label=label_of(m)))
    else:
        if m := _first(s, p.get("system_prompt", [])):
            edits.append(SpecEdit(op="set_system_prompt", value=m.group("def").strip()))
        if (m := _first(s, p.get("turns", []))) and (n := parse_rows(m.group("n"))) is not None:
            edits.append(SpecEdit(op="set_turns", number=n))
    for key in ("generate", "rows"):
        if m := _first(s, p.get(key, [])):
            n = parse_rows(m.group("n"))
            if n is None:  # "generate 1.5": said back, never rounded into a size
                return Reading("edit", language=c.language, bad_number=m.group("n"))
            if key == "generate" and stage in ("sample", "paused", "dataset"):
                kind, rows = "generate", n
            else:
                edits.append(SpecEdit(op="set_size", number=n))
            break
    for pat in p.get("language", []):
        for m in s.take_all(pat):
            lang = _WORD_OF_LANGUAGE.get(m.group("language"))
            if lang:
                edits.append(SpecEdit(op="set_language", value=lang))
            else:  # "in detail", "on time": not a language — give the words back
                s.t += " " + m.group(0)
                break
    if textcat and s.take(c.words["in:multi_off"]):
        edits.append(SpecEdit(op="set_multi_label", value="no"))
    elif textcat and s.take(c.words["in:multi_on"]):
        edits.append(SpecEdit(op="set_multi_label", value="yes"))
    if textcat:
        for key, op in (("more_label", "more_of_label"), ("less_label", "less_of_label")):
            for pat in p.get(key, []):
                for m in s.take_all(pat):
                    edits.append(SpecEdit(op=op, label=label_of(m)))  # type: ignore[arg-type]
    if spec.rag is not None:
        done: set[str] = set()
        for key, (op, value) in RAG_WORDS.items():
            if op not in done and f"in:{key}" in c.words and s.take(c.words[f"in:{key}"]):
                edits.append(SpecEdit(op=op, value=value))  # type: ignore[arg-type]
                done.add(op)
    if s.take(c.words["in:shorter"]):
        edits.append(SpecEdit(op="set_length", value=_step_length(spec, -1)))
    elif s.take(c.words["in:longer"]):
        edits.append(SpecEdit(op="set_length", value=_step_length(spec, +1)))
    for pat in p.get("topic", []):
        for m in s.take_all(pat):
            topic = m.group("x").strip(" -")
            if topic:
                edits.append(SpecEdit(op="add_topic", value=topic[:80]))
    tones: list[str] = []
    for pat in p.get("tone", []):
        for m in s.take_all(pat):
            tones.append(c.tones[normalise(m.group("tone"))])
    if tones:
        if spec.chat is not None:
            edits.append(SpecEdit(op="set_answer_style", value=", ".join(dict.fromkeys(tones))))
        else:
            edits.append(SpecEdit(op="set_tone", value=", ".join(dict.fromkeys(tones))))
    if spec.chat is not None:
        for pat in p.get("rule", []):
            m = s.take(pat)
            if m:
                rule = re.sub(_RULE_HEAD, "", text.strip(), flags=re.I)  # the user's own letters
                edits.append(SpecEdit(op="add_rule", value=_sentence(rule)))
                break
    leftover = _leftover(s.t)
    if kind == "generate":
        return Reading("generate", edits=edits, rows=rows, language=c.language, leftover=leftover)
    if edits:
        return Reading("edit", edits=edits, language=c.language, leftover=leftover)
    if base.rstrip().endswith("?") or c.question_starts.match(base):
        return Reading("question", language=c.language)
    return None


_RULE_HEAD = r"^(?:the\s+)?(?:assistant|bot|asistentul|botul)\s+(?:should\s+|must\s+|trebuie\s+s[aă]\s+|s[aă]\s+)?"


def _clean(name: str) -> str:
    return clean_label(name)


def _sentence(text: str | None) -> str | None:
    if not text or not text.strip():
        return None
    t = text.strip().rstrip(".")
    return t[:1].upper() + t[1:] + "."


def _recompile_labels(c: _Compiled, spec: DatasetSpec, names: list[str]) -> _Compiled:
    """The table compiled for a contract whose labels are `names` (after "change the labels to")."""
    labels = [{"name": n, "definition": "-"} for n in dict.fromkeys(names)]
    data = spec.model_dump() | {"labels": labels, "mix": {}}
    try:
        other = DatasetSpec.model_validate(data)
    except (SpecError, ValueError):
        return c
    return _compile(c.code, other)


def read_reply(text: str, spec: DatasetSpec, stage: str) -> Reading | None:
    """Read a reply with every language table; the reading that left the fewest words unread
    wins, then the one that understood more. None when no table understood it."""
    best: Reading | None = None
    for code in READER_LANGUAGES:
        r = _read_with(_compile(code, spec), text, spec, stage)
        if r is not None and (best is None or _score(r) > _score(best)):
            best = r
    return best


def _score(r: Reading) -> tuple[int, int]:
    if r.kind == "question":
        return (-99, 0)  # a question is the reading of last resort
    understood = len(r.edits) + (1 if r.kind != "edit" else 0)
    return (-len(r.leftover.split()), understood)


# --- the model's turn: a grammar of choices built from the contract -------------------------------

TEXTCAT_CHOICES = {
    "approve": "accept what is shown and go on",
    "cancel": "stop",
    "generate_all": "produce the full dataset now",
    "set_size": "change the number of rows to `number`",
    "more_of_label": "more rows of `label`",
    "less_of_label": "fewer rows of `label`",
    "set_label_share": "`label` gets `number` percent of the rows",
    "add_label": "add a new label named `text`",
    "remove_label": "remove `label`",
    "rename_label": "rename `label` to `text`",
    "shorter": "shorter texts",
    "longer": "longer texts",
    "set_language": "write the data in the language `text`",
    "add_topic": "more texts about the topic `text`",
    "set_tone": "write in the tone `text`",
    "multi_label_on": "allow several labels per text",
    "multi_label_off": "exactly one label per text",
    "question": "the person asks a question",
    "unclear": "none of these",
}
CHAT_CHOICES = {
    k: v
    for k, v in TEXTCAT_CHOICES.items()
    if k
    not in (
        "more_of_label",
        "less_of_label",
        "set_label_share",
        "add_label",
        "remove_label",
        "rename_label",
        "multi_label_on",
        "multi_label_off",
    )
} | {
    "set_turns": "`number` user turns per conversation",
    "add_rule": "a rule the assistant must follow, in `text`",
    "set_answer_style": "answers in the style `text`",
    "add_persona": "a new kind of user, `text`",
    "add_intent": "a new thing users want, `text`",
}
RAG_CHOICES = {
    k: v
    for k, v in CHAT_CHOICES.items()
    if k
    not in ("set_turns", "add_rule", "set_answer_style", "add_persona", "add_intent", "set_tone")
} | {
    "shorter": "shorter answers",
    "longer": "longer answers",
    "harder": "harder questions",
    "easier": "easier questions",
    "hard_negatives_on": "add hard negatives (a close query the passage does not answer)",
    "hard_negatives_off": "no hard negatives",
    "reranking_on": "add reranking pairs",
    "reranking_off": "no reranking pairs",
    "retrieval_on": "add retrieval pairs",
    "retrieval_off": "no retrieval pairs",
}


def choice_schema(spec: DatasetSpec) -> type[BaseModel]:
    """The reply's meaning as choices: the operation from a short list first, then the label from
    the contract's own label names, then a number and a few words. Small models follow such a
    grammar far better than free JSON."""
    choices = (
        CHAT_CHOICES
        if spec.chat is not None
        else RAG_CHOICES
        if spec.rag is not None
        else TEXTCAT_CHOICES
    )
    ops: Any = Literal[tuple(choices)]  # type: ignore[valid-type]
    menu = "; ".join(f"{k}: {v}" for k, v in choices.items())
    fields: dict[str, Any] = {
        "op": (ops, Field(description=f"What the reply asks for. {menu}")),
    }
    if spec.labels:
        names: Any = Literal[(*spec.label_names, "none")]  # type: ignore[valid-type]
        fields["label"] = (
            names,
            Field("none", description="The label the reply is about, or none."),
        )
    fields["number"] = (
        int,
        Field(0, description="A number the reply gives (rows, percent, turns), else 0."),
    )
    fields["text"] = (
        str,
        Field(
            "",
            description="A few words the operation needs (a name, topic, tone, language), else empty.",
            json_schema_extra={"maxLength": 80},
        ),
    )
    return create_model("ReplyChoice", **fields)


def choice_to_reading(choice: BaseModel, spec: DatasetSpec, stage: str) -> Reading:
    """Turn the model's choice into the same typed reading the tables give."""
    op = str(getattr(choice, "op", "unclear"))
    label = getattr(choice, "label", "none")
    label = None if label == "none" else label
    number = int(getattr(choice, "number", 0) or 0)
    text = str(getattr(choice, "text", "") or "").strip()[:80]
    simple: dict[str, Kind] = {"approve": "approve", "cancel": "cancel", "question": "question"}
    if op in simple:
        return Reading(simple[op])
    if op == "generate_all":
        return (
            Reading("generate", rows=number or None) if stage != "contract" else Reading("approve")
        )
    edit: SpecEdit | None = None
    if op == "set_size":  # no number: apply_edits says what is missing
        edit = SpecEdit(op="set_size", number=number or None)
    elif op in ("more_of_label", "less_of_label", "remove_label") and label:
        edit = SpecEdit(op=op, label=label)
    elif op == "set_label_share" and label:
        edit = SpecEdit(op="set_label_share", label=label, share=number / 100 if number else None)
    elif op == "add_label":  # an empty name is refused by apply_edits with its own reason
        edit = SpecEdit(op="add_label", label=text)
    elif op == "rename_label" and label and text:
        edit = SpecEdit(op="rename_label", label=label, new_name=text)
    elif op in ("shorter", "longer"):
        edit = SpecEdit(op="set_length", value=_step_length(spec, -1 if op == "shorter" else 1))
    elif op == "set_language" and text:
        edit = SpecEdit(op="set_language", value=normalise_language(text))
    elif (
        op in ("add_topic", "set_tone", "add_rule", "set_answer_style", "add_persona", "add_intent")
        and text
    ):
        edit = SpecEdit(op=op, value=text)  # type: ignore[arg-type]
    elif op in ("multi_label_on", "multi_label_off"):
        edit = SpecEdit(op="set_multi_label", value="yes" if op.endswith("on") else "no")
    elif op == "set_turns":
        edit = SpecEdit(op="set_turns", number=number or None)
    elif op in RAG_WORDS:
        rag_op, value = RAG_WORDS[op]
        edit = SpecEdit(op=rag_op, value=value)  # type: ignore[arg-type]
    if edit is None:
        return Reading("question" if op == "question" else "edit")  # an empty edit: not understood
    return Reading("edit", edits=[edit])


# --- saying what was understood ------------------------------------------------------------------


def preview(spec: DatasetSpec, edits: list[SpecEdit], max_rows: int) -> list[str] | None:
    """The diff these edits would make, or None when they cannot apply or change nothing."""
    try:
        return spec_diff(spec, apply_edits(spec, edits, max_rows=max_rows))
    except SpecError:
        return None


def suggestions(
    text: str, spec: DatasetSpec, max_rows: int, limit: int = 3
) -> list[dict[str, Any]]:
    """Readings to offer as buttons when a reply changed nothing: what its words could mean.

    Each is {"title": "more negative rows (negative 33 % → 50 %)", "edits": [...]} and applies."""
    t = normalise(text)
    words = set(re.findall(r"[\w-]+", t))
    cands: list[tuple[str, list[SpecEdit]]] = []
    for code in READER_LANGUAGES:
        c = _compile(code, spec)
        for alias, name in c.aliases.items():
            if re.search(r"(?<![\w-])" + re.escape(alias) + r"(?![\w-])", t):
                more, fewer = (
                    _("more {label} rows", label=name),
                    _("fewer {label} rows", label=name),
                )
                cands.append((more, [SpecEdit(op="more_of_label", label=name)]))
                cands.append((fewer, [SpecEdit(op="less_of_label", label=name)]))
    for n in re.findall(r"\b\d[\d.,_]*\b", t):
        rows = parse_rows(n)
        if rows:
            cands.append((_("{n:,} rows in all", n=rows), [SpecEdit(op="set_size", number=rows)]))
    for w in words:
        if w in _WORD_OF_LANGUAGE:
            lang = _WORD_OF_LANGUAGE[w]
            cands.append(
                (
                    _("data in {language}", language=language_name(lang)),
                    [SpecEdit(op="set_language", value=lang)],
                )
            )
    if not cands and spec.labels:
        # nothing recognisable: offer the commonest refinements of this contract
        neg = next((n for n in spec.label_names if n.startswith("neg")), spec.label_names[-1])
        cands.append((_("more {label} rows", label=neg), [SpecEdit(op="more_of_label", label=neg)]))
        cands.append(
            (_("shorter texts"), [SpecEdit(op="set_length", value=_step_length(spec, -1))])
        )
    elif not cands:
        cands.append(
            (_("shorter answers"), [SpecEdit(op="set_length", value=_step_length(spec, -1))])
        )
        if spec.rag is not None:
            cands.append((_("harder questions"), [SpecEdit(op="set_difficulty", value="harder")]))
            cands.append(
                (_("add hard negatives"), [SpecEdit(op="set_hard_negatives", value="yes")])
            )
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for title, edits in cands:
        diff = preview(spec, edits, max_rows)
        if not diff or title in seen:
            continue
        seen.add(title)
        key = edits[0].label or ""
        diff = sorted(diff, key=lambda d: key not in d)  # the line about the label it names first
        shown = diff[0].lstrip("~+- ").replace(_("mix") + " ", "").replace(": ", " ", 1).strip()
        out.append(
            {
                "title": f"{title} ({shown})",
                "edits": [e.model_dump(exclude_none=True) for e in edits],
            }
        )
        if len(out) >= limit:
            break
    return out


def says_just_go(text: str) -> bool:
    """The person wants sensible defaults rather than questions ("just go", "dă-i drumul"), said
    alone or at the end of a description."""
    t = normalise(text)
    for code in READER_LANGUAGES:
        phrases = [normalise(w) for w in table(code)["words"]["just_go"]]
        if t.strip(" .!") in phrases:
            return True
        if any(
            " " in p and re.search(r"(?<![\w-])" + re.escape(p) + r"(?![\w-])", t) for p in phrases
        ):
            return True
    return False
