"""Dataset archetypes, kept as data (`agent/tasks/<kind>/archetypes.toml`): the contracts a proposal starts from.

A small model cannot be trusted to invent a sensible contract ("the-world" / "the-future" for news,
"customers" / "products" each defined as itself for reviews), so the product's own logic carries
it: `match` finds the archetype of a description by keywords (English and Romanian, accent-free),
`Archetype.contract` turns one into contract data, and `textcat_choice` / `chat_choice` keep what a
model proposed only where it passes simple, deterministic sanity checks — otherwise the
archetype's defaults stand, and a note says so.

The user's explicit words win over both: labels they listed, the data language they stated
(`find_language`), the language they write in (`guess_language`), a size or a number of turns.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Literal

from agent.languages import (
    LANGUAGES,
    find_language,
    fold,
    guess_language,
    language_code,
    normalise_language,
)
from agent.spec import LENGTH_BANDS, MAX_TURNS, Label, clean_label

Task = Literal["textcat", "chat"]
MATCH_AT = 2
"""The lowest keyword score that counts as a match (one strong keyword, or two plain ones)."""
STRONG, PLAIN, TASK_HINT = 3, 1, 2
_ENGLISH_HINTS = frozenset(
    "by from versus between where into onto which who whose classified labelled labeled sorted "
    "tagged routed covering containing questions messages reviews articles texts conversations "
    "chats dialogues sentences comments posts headlines tickets".split()
)
"""English words a description may have when it has none of `guess_language`'s stop words."""
_LANGUAGE_WORDS = {w for _, words in LANGUAGES.values() for w in words} | {
    fold(n) for n in LANGUAGES
}


@dataclass(frozen=True)
class ArchetypeLabel:
    name: str
    definition: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Archetype:
    id: str
    task: Task
    title: str
    summary: str
    name: str
    strong: tuple[str, ...]
    keywords: tuple[str, ...]
    generic: bool = False
    language: str | None = None
    topics: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()
    # text classification
    labels: tuple[ArchetypeLabel, ...] = ()
    multi_label: bool = False
    length: str = "medium"
    tones: tuple[str, ...] = ("neutral",)
    # chat
    system_prompt: str = ""
    rules: tuple[str, ...] = ()
    turns: int = 1
    personas: tuple[str, ...] = ()
    intents: tuple[str, ...] = ()
    answer_style: str = "helpful and concise"
    answer_length: str = "medium"
    i18n: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def label_names(self) -> list[str]:
        return [lb.name for lb in self.labels]

    def vocabulary(self) -> set[str]:
        """Label names and aliases, as stems: what a sensible label for this archetype is called."""
        words = {_stem(clean_label(lb.name)) for lb in self.labels}
        words |= {_stem(clean_label(a)) for lb in self.labels for a in lb.aliases}
        return words

    def label_for(self, name: str) -> ArchetypeLabel | None:
        """The archetype's label a name stands for (itself or an alias)."""
        stem = _stem(clean_label(name))
        for lb in self.labels:
            if stem == _stem(lb.name) or stem in {_stem(clean_label(a)) for a in lb.aliases}:
                return lb
        return None

    def system(self, language: str) -> tuple[str, list[str]]:
        """The system prompt and rules in the data language when the archetype has them."""
        local = self.i18n.get(language_code(language) or "", {})
        return (
            str(local.get("system_prompt") or self.system_prompt),
            [str(r) for r in local.get("rules") or self.rules],
        )

    def standard(self) -> dict[str, Any]:
        """The archetype's defaults as the JSON a model is shown to start from."""
        if self.task == "chat":
            return {
                "system_prompt": self.system_prompt,
                "turns": self.turns,
                "personas": list(self.personas),
                "intents": list(self.intents),
                "topics": list(self.topics),
                "answer_style": self.answer_style,
                "answer_length": self.answer_length,
            }
        return {
            "labels": [{"name": lb.name, "definition": lb.definition} for lb in self.labels],
            "multi_label": self.multi_label,
            "topics": list(self.topics),
            "length": self.length,
            "tones": list(self.tones),
        }

    def standard_json(self) -> str:
        return json.dumps(self.standard(), ensure_ascii=False)

    def contract(
        self,
        description: str,
        *,
        language: str = "English",
        size: int = 100,
        name: str | None = None,
    ) -> dict[str, Any]:
        """Contract data (for `make_spec`) made of this archetype's defaults alone."""
        data: dict[str, Any] = {
            "task": self.task,
            "name": name or self.name,
            "description": description[:2000],
            "language": self.language or language,
            "size": size,
            "style": {"topics": list(self.topics[:8])},
        }
        if self.task == "chat":
            prompt, rules = self.system(data["language"])
            data["chat"] = {
                "system_prompt": with_rules(prompt, rules),
                "turns": self.turns,
                "personas": list(self.personas[:6]),
                "intents": list(self.intents[:6]),
                "answer_style": self.answer_style,
                "answer_length": self.answer_length,
            }
        else:
            data["labels"] = [{"name": lb.name, "definition": lb.definition} for lb in self.labels]
            data["multi_label"] = self.multi_label
            data["style"] |= {"length": self.length, "tones": list(self.tones[:4])}
        return data


# --- loading ---------------------------------------------------------------------------------------


class ArchetypeError(ValueError):
    """An archetype file that cannot be read: the message names the file and the archetype."""


def _tuple(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value or ())


def _archetype(task: Task, raw: dict[str, Any], where: str) -> Archetype:
    try:
        labels = tuple(
            ArchetypeLabel(str(lb["name"]), str(lb["definition"]), _tuple(lb.get("aliases")))
            for lb in raw.get("labels", ())
        )
        i18n = {k: v for k, v in raw.items() if isinstance(v, dict) and len(k) == 2}
        arch = Archetype(
            id=str(raw["id"]),
            task=task,
            title=str(raw["title"]),
            summary=str(raw["summary"]),
            name=str(raw["name"]),
            strong=_tuple(raw.get("strong")),
            keywords=_tuple(raw.get("keywords")),
            generic=bool(raw.get("generic", False)),
            language=raw.get("language"),
            topics=_tuple(raw.get("topics")),
            examples=_tuple(raw.get("examples")),
            labels=labels,
            multi_label=bool(raw.get("multi_label", False)),
            length=str(raw.get("length", "medium")),
            tones=_tuple(raw.get("tones")) or ("neutral",),
            system_prompt=str(raw.get("system_prompt", "")),
            rules=_tuple(raw.get("rules")),
            turns=int(raw.get("turns", 1)),
            personas=_tuple(raw.get("personas")),
            intents=_tuple(raw.get("intents")),
            answer_style=str(raw.get("answer_style", "helpful and concise")),
            answer_length=str(raw.get("answer_length", "medium")),
            i18n=i18n,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ArchetypeError(f"{where}: archetype {raw.get('id', '?')}: {exc!r}") from exc
    if task == "textcat" and len({lb.name for lb in labels}) < 2:
        raise ArchetypeError(f"{where}: archetype {arch.id} needs at least two labels")
    if task == "chat" and not arch.system_prompt.strip():
        raise ArchetypeError(f"{where}: archetype {arch.id} needs a system prompt")
    if arch.length not in LENGTH_BANDS or arch.answer_length not in LENGTH_BANDS:
        raise ArchetypeError(f"{where}: archetype {arch.id}: length must be short, medium or long")
    if not arch.strong and not arch.keywords:
        raise ArchetypeError(f"{where}: archetype {arch.id} has no keywords")
    return arch


@cache
def _library() -> tuple[tuple[Archetype, ...], dict[Task, tuple[str, ...]]]:
    found: list[Archetype] = []
    hints: dict[Task, tuple[str, ...]] = {}
    for task in ("textcat", "chat"):
        where = f"agent/tasks/{task}/archetypes.toml"
        data = tomllib.loads(
            (resources.files("agent.tasks") / task / "archetypes.toml").read_text(encoding="utf-8")
        )
        hints[task] = _tuple(data.get("task_keywords"))  # type: ignore[index]
        found += [_archetype(task, raw, where) for raw in data.get("archetype", ())]  # type: ignore[arg-type]
    ids = [a.id for a in found]
    if len(set(ids)) != len(ids):
        raise ArchetypeError(
            f"archetype ids repeat: {sorted({i for i in ids if ids.count(i) > 1})}"
        )
    return tuple(found), hints


def load(task: Task | None = None) -> tuple[Archetype, ...]:
    """Every archetype (of one task), in file order; read once per process."""
    return tuple(a for a in _library()[0] if task is None or a.task == task)


def get(archetype_id: str) -> Archetype:
    return next(a for a in load() if a.id == archetype_id)


def ids(task: Task) -> tuple[str, ...]:
    return tuple(a.id for a in load(task))


# --- matching --------------------------------------------------------------------------------------


def _flat(text: str) -> str:
    """Accent-free lower case, every run of non-alphanumerics one space ("e-commerce" → "e commerce")."""
    return " " + re.sub(r"[^a-z0-9]+", " ", fold(text)).strip() + " "


@cache
def _pattern(keyword: str) -> re.Pattern[str]:
    star = keyword.rstrip().endswith("*")
    words = _flat(keyword.rstrip("* ")).split()
    body = r"\s".join(re.escape(w) for w in words)
    return re.compile(rf"(?<=\s){body}{'[a-z0-9]*' if star else ''}(?=\s)")


def _hits(text: str, keywords: tuple[str, ...]) -> int:
    """How many keywords a text has; a keyword of several words counts one more for each extra
    word ("fake news" beats "news")."""
    return sum(len(k.split()) for k in keywords if _pattern(k).search(text))


def _scores(text: str, task: Task | None) -> dict[str, tuple[int, int]]:
    """(score, keyword score without the task bonus) of each archetype."""
    flat = _flat(text)
    archetypes, hints = _library()
    bonus = {t: TASK_HINT * _hits(flat, words) for t, words in hints.items()}
    out = {}
    for a in archetypes:
        if task is None or a.task == task:
            own = STRONG * _hits(flat, a.strong) + PLAIN * _hits(flat, a.keywords)
            out[a.id] = (own + bonus[a.task] if own else 0, own)
    return out


def scores(text: str, task: Task | None = None) -> dict[str, int]:
    """Each archetype's keyword score for a text: 3 a strong keyword, 1 a plain one (one more for
    each extra word of a phrase), and 2 for each word of the archetype's kind ("classify",
    "conversations" …) when it has any keyword at all."""
    return {k: v[0] for k, v in _scores(text, task).items()}


def match(text: str, task: Task | None = None) -> Archetype | None:
    """The archetype a description asks for, by keywords; None when none scores `MATCH_AT`.

    The highest score wins, ties to the earlier one in the files — except that a generic archetype
    (customer support, a general assistant, customer-service intents) gives way to a specific one
    with a strong keyword: "a customer-support assistant of a bank" is the bank's assistant.
    """
    found = _scores(text, task)
    candidates = [a for a in load(task) if found[a.id][0] >= MATCH_AT]
    if not candidates:
        return None
    best = max(candidates, key=lambda a: found[a.id][0])  # max keeps the first of equal scores
    if best.generic:
        specific = [a for a in candidates if not a.generic and found[a.id][1] >= STRONG]
        if specific:
            return max(specific, key=lambda a: found[a.id][0])
    return best


# --- what the user said, in their own words -----------------------------------------------------

_LIST_HEAD = re.compile(
    r"\b(?:labels?|categories|classes|tags|etichet\w*|categori\w*|clase\w*)\b[^.:\n]{0,30}?"
    r"(?::|=|\bare\b|\bsunt\b|\bsuch as\b|\blike\b|\bprecum\b)\s*(?P<list>[^.\n]+)",
    re.I,
)
_SPLIT = re.compile(r"\s*(?:,|;|/|\|)\s*|\s+(?:and|or|si|sau|ori)\s+", re.I)
_SIZE = re.compile(
    r"\b(\d{1,3}(?:[.,_ ]\d{3})+|\d+)\s*(?:de\s+)?(?:rows?|examples?|samples?|texts?|items?|records?|"
    r"entries|sentences|reviews?|articles?|messages?|conversations?|dialog(?:ue)?s?|chats?|tickets?|"
    r"questions?|comments?|randuri|exemple|texte|inregistrari|recenzii|articole|mesaje|conversatii|"
    r"dialoguri|propozitii|intrebari|comentarii|tichete)\b"
    r"|\b(?:size|dimensiune|marime)\s*[:=]?\s*(\d{1,3}(?:[.,_]\d{3})+|\d+)\b"
)
_TURNS = re.compile(r"\b(\d{1,2})\s*(?:user\s+)?(?:turns?|ture|replici|schimburi|exchanges)\b")
_ONE_TURN = re.compile(r"\b(?:single|one)[ -]turn\b|\bo singura tura\b|\bo tura\b")


_ASKED_LABELS = re.compile(r"\b(?:label|categor|class|etichet|tip(?:uri)?\b|kinds?\b|types?\b)")
_NOT_LABELS = frozenset("yes no ok okay sure go just-go go-ahead da nu bine sigur defaults".split())


def stated_labels(said: list[str], questions: list[str] | None = None) -> list[str]:
    """Labels the user listed: "labels: a, b and c", "etichete: x, y" — or a reply that is just a
    short list ("positive, negative and neutral") to a question about labels (`questions[i]` is
    what the assistant said before `said[i]`)."""
    for i, text in enumerate(said):
        folded = fold(text)
        head = _LIST_HEAD.search(folded)
        asked = questions[i] if questions and i < len(questions) else ""
        if head:
            chunk = head.group("list")
        elif len(text) <= 120 and _SPLIT.search(folded) and _ASKED_LABELS.search(fold(asked)):
            chunk = folded.strip(" .!?")
        else:
            continue
        items = [clean_label(x) for x in _SPLIT.split(chunk) if x.strip()]
        items = list(
            dict.fromkeys(
                x
                for x in items
                if x and len(x.split("-")) <= 3 and not re.search(r"\d", x) and x not in _NOT_LABELS
            )
        )
        if len(items) >= 2 and not all(x in _LANGUAGE_WORDS for x in items):
            return items
    return []


def parse_count(raw: str) -> int | None:
    digits = re.sub(r"[.,_ ]", "", raw)
    return int(digits) if digits.isdigit() else None


def stated_size(said: list[str]) -> int | None:
    """A number of rows the user asked for ("500 rows", "200 de recenzii", "size: 1,000")."""
    for text in reversed(said):
        m = _SIZE.search(fold(text))
        if m:
            return parse_count(m.group(1) or m.group(2))
    return None


def stated_turns(said: list[str]) -> int | None:
    for text in reversed(said):
        folded = fold(text)
        if _ONE_TURN.search(folded):
            return 1
        m = _TURNS.search(folded)
        if m:
            return int(m.group(1))
    return None


def data_language(
    said: list[str],
    *,
    locked: dict[str, Any] | None = None,
    archetype: Archetype | None = None,
    model: str | None = None,
) -> str:
    """The data language: a locked choice, else one the user stated ("în limba română"), else the
    archetype's own (language identification is multilingual), else the language the user writes
    in; the model's reading only when none of these says."""
    if locked and locked.get("language"):
        return normalise_language(str(locked["language"]))
    text = "\n".join(said)
    stated = find_language(text) or _language_answer(said[1:])
    if stated:
        return stated
    if archetype is not None and archetype.language:
        return archetype.language
    written = guess_language(text, default="")
    if not written and text.isascii() and _ENGLISH_HINTS & set(re.findall(r"[a-z]+", text.lower())):
        written = "English"  # "Trivia questions classified by question type."
    return written or normalise_language(model)


_NOT_IN_NAMES = frozenset(
    "conversation conversations conversatii conversatie dialog dialogs dialogue dialogues "
    "dialoguri chat chats turn turns ture fiecare each multi".split()
)


def _language_answer(replies: list[str]) -> str | None:
    """A language named alone in a short reply ("Romanian, 500 rows"), the answer to a question."""
    for text in reversed(replies):
        if len(text) <= 80:
            for item in _SPLIT.split(fold(text).strip(" .!?")):
                if item.strip() in _LANGUAGE_WORDS:
                    return normalise_language(item.strip())
    return None


def dataset_name(description: str, proposed: str | None, archetype: Archetype | None) -> str:
    """A model's name when it is about the request (a word shared with the description or the
    archetype's name), else one made of the description's own words ("recenzii-clientilor-…")."""
    own = _content_words(description) - {_stem(w) for w in _LANGUAGE_WORDS | _NOT_IN_NAMES}
    related = own | ({_stem(w) for w in _flat(archetype.name).split()} if archetype else set())
    words = [w for w in re.split(r"[^a-z0-9]+", fold(proposed or "")) if w]
    if (
        0 < len(words) <= 5
        and words[0] not in ("the", "a", "an", "my")  # "the-hotel-reviewer-s-guide"
        and any(len(w) > 2 and _stem(w) in related for w in words)
    ):
        return "-".join(words)[:60]
    tokens = re.findall(r"[a-z0-9]+(?:-[a-z0-9]+)*", fold(description))
    picked = [t for t in tokens if any(_stem(p) in own for p in t.split("-"))]
    if picked:
        return "-".join(list(dict.fromkeys(picked))[:5])[:60]
    return archetype.name if archetype else "synthetic-dataset"


# --- sanity of what a model proposed ---------------------------------------------------------------

_STOP = frozenset(
    (
        "a an the of for with to in on at by from and or is are be that which this these those it its "
        "about covering containing some any various many more less very each every all my our your "
        "i we you want need would like please make create generate build give me dataset datasets "
        "just go ahead "
        "data set sets synthetic text texts example examples sample samples row rows label labels "
        "labeled labelled classification classify one two three words word sentence "
        "vreau doresc am nevoie un o unei unui de date cu ale al ai pentru in din la pe si sau care "
        "este sunt mai niste set seturi limba text texte despre fie"
    ).split()
)
GENERIC_LABELS = frozenset(
    (
        "future past present thing things stuff item items product products customer customers "
        "user users review reviews article articles news text texts data dataset topic "
        "topics category categories label labels class classes various example examples sample "
        "samples type types kind kinds content "
        "message messages document documents sentence sentences post posts comment comments "
        "conversation conversations question questions answer answers good-or-bad positive-negative"
    ).split()
)
CATCH_ALL = frozenset("other others misc miscellaneous none unknown general".split())
"""A catch-all label is fine beside real ones; it neither helps nor hurts a label set."""
_NUMBERED = re.compile(r"^(?:label|class|category|cat|type|topic|group|option)-?[a-z0-9]$")


def _stem(word: str) -> str:
    w = word.strip("-")
    for suffix in ("ies", "es", "s"):
        if len(w) > 4 and w.endswith(suffix) and not w.endswith("ss"):
            return w[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return w


def _content_words(text: str) -> set[str]:
    return {_stem(w) for w in re.findall(r"[a-z0-9]+", fold(text)) if w not in _STOP and len(w) > 1}


def label_problems(
    labels: list[Label],
    *,
    archetype: Archetype | None = None,
    stated: list[str] | None = None,
) -> list[str]:
    """Why a model's labels make no sense (empty when they do): fewer than two, generic words
    ("the-world", "customers"), defined as themselves — and, for an archetype, mostly foreign to it
    (neither its labels nor their aliases nor labels the user listed) or too few of them."""
    names: list[str] = []
    problems: list[str] = []
    for lb in labels:
        if not lb.name or lb.name in names:
            continue  # empty and repeated names are repaired (and said) by proposal_to_spec
        names.append(lb.name)
        parts = lb.name.split("-")
        if lb.name in CATCH_ALL:
            continue
        if (
            lb.name in GENERIC_LABELS
            or _stem(lb.name) in GENERIC_LABELS
            or parts[0] in ("the", "a", "an", "my", "some", "all")
            or _NUMBERED.match(lb.name)
        ):
            problems.append(f"“{lb.name}” is not a label")
            continue
        meaning = _content_words(lb.definition) - {"about", "text", "which", "get"}
        if not meaning or meaning <= {_stem(p) for p in parts}:
            problems.append(f"“{lb.name}” is defined as itself")
    if len(names) < 2:
        problems.append("fewer than two labels")
    real = [n for n in names if n not in CATCH_ALL]
    if archetype is not None and real:
        vocab = archetype.vocabulary() | {_stem(s) for s in stated or ()}
        known = sum(_stem(n) in vocab for n in real)
        meant = [archetype.label_for(n) for n in real]
        same = [m for m in meant if m is not None]
        if known * 2 <= len(real):  # most of them must be the archetype's kind
            problems.append(f"not {archetype.title} labels")
        elif len({m.name for m in same}) < len(same):  # "non-toxic" and "not-toxic"
            problems.append("two labels mean the same")
        elif len(real) < (3 if len(archetype.labels) >= 5 else 2):  # a many-class set, cut short
            problems.append(f"too few {archetype.title} labels")
        styles = {clean_label(x) for x in (*archetype.tones, *archetype.topics)}
        for name in real:
            if name in styles and archetype.label_for(name) is None:  # a tone as a 7th label
                problems.append(f"“{name}” is a tone or topic, not a label")
    return problems


def _sane_items(items: list[str], *, limit: int, longest: int = 80) -> list[str]:
    """Distinct, non-empty, not-too-long, not generic strings (topics, personas, intents)."""
    out: list[str] = []
    seen: set[str] = set()
    for raw in items:
        item = " ".join(str(raw).split()).strip(" .,-")
        key = fold(item)
        words = re.findall(r"[a-z0-9]+", key)
        if (
            not item
            or len(item) > longest
            or key in seen
            or not words
            or (words[0] in ("the", "a", "an") and len(words) <= 2)
            or all(w in GENERIC_LABELS or w in _STOP for w in words)
        ):
            continue
        seen.add(key)
        out.append(item)
    return out[:limit]


def merge_topics(
    model: list[str], archetype: Archetype | None, *, labels: Iterable[str] = ()
) -> list[str]:
    """Up to four sane topics from the model (not label names), then the archetype's, eight at most."""
    taken = {fold(n.replace("-", " ")) for n in labels}
    mine = [t for t in _sane_items(model, limit=8, longest=60) if fold(t) not in taken]
    if archetype is None:
        return mine[:8]
    out = mine[:4]
    for t in archetype.topics:  # not one that repeats a word of a topic already there
        if not _content_words(t) & set().union(*(_content_words(x) for x in out)):
            out.append(t)
    return out[:8]


@dataclass
class TextcatChoice:
    """The labels and style a first text-classification contract gets, and why."""

    labels: list[Label]
    multi_label: bool
    topics: list[str]
    length: str
    tones: list[str]
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """What was wrong with the model's labels (with an archetype, they were replaced)."""


def _definition(name: str, model: dict[str, str], archetype: Archetype | None) -> str:
    own = model.get(name, "")
    if own and _content_words(own) - {_stem(p) for p in name.split("-")}:
        return own
    known = archetype.label_for(name) if archetype else None
    return known.definition if known else f"Texts that are about {name.replace('-', ' ')}."


def textcat_choice(
    archetype: Archetype | None,
    proposal: Any,
    said: list[str],
    questions: list[str] | None = None,
) -> TextcatChoice:
    """Labels and style from a model's `Proposal`, checked; an archetype's defaults where they fail.

    Labels the user listed win. Otherwise the model's labels are kept when `label_problems` finds
    nothing; with an archetype, failing ones are replaced by the archetype's (and a note says so);
    without one, `problems` tells the caller to ask again.
    """
    proposed = [Label(name=lb.name, definition=lb.definition) for lb in proposal.labels]
    by_name = {lb.name: lb.definition for lb in proposed if lb.name}
    stated = stated_labels(said, questions)
    if stated:
        labels = [Label(name=n, definition=_definition(n, by_name, archetype)) for n in stated]
        return TextcatChoice(
            labels=labels,
            multi_label=bool(proposal.multi_label),
            topics=merge_topics(list(proposal.topics), archetype, labels=stated),
            length=proposal.length,
            tones=_sane_items(list(proposal.tones), limit=4, longest=30)
            or list(archetype.tones if archetype else ["neutral"]),
        )
    problems = label_problems(proposed, archetype=archetype)
    if not problems or archetype is None:
        names = [lb.name for lb in proposed]
        return TextcatChoice(
            labels=proposed,
            multi_label=bool(proposal.multi_label),
            topics=merge_topics(list(proposal.topics), archetype, labels=names),
            length=proposal.length,
            tones=_sane_items(list(proposal.tones), limit=4, longest=30)
            or list(archetype.tones if archetype else ["neutral"]),
            problems=problems,
        )
    shown = ", ".join(dict.fromkeys(lb.name for lb in proposed if lb.name)) or "none"
    return TextcatChoice(
        labels=[Label(name=lb.name, definition=lb.definition) for lb in archetype.labels],
        multi_label=archetype.multi_label,
        topics=merge_topics(list(proposal.topics), archetype, labels=archetype.label_names),
        length=archetype.length,
        tones=list(archetype.tones[:4]),
        notes=[
            f"used the standard {archetype.title} labels instead of the model's ({shown}: "
            f"{'; '.join(problems[:2])})"
        ],
        problems=problems,
    )


def with_rules(prompt: str, rules: list[str]) -> str:
    """The system prompt with each rule as a line of its own (rules already in it are not repeated)."""
    out = prompt.strip()
    for rule in rules:
        if fold(rule.rstrip(".")) not in fold(out):
            out += f"\n- {rule}"
    return out


def _sane_prompt(prompt: str, description: str, archetype: Archetype | None) -> bool:
    """A system prompt of a few words at least, not the request copied, and (for an archetype)
    about it: one of its keywords, or two words of the request."""
    words = re.findall(r"\w+", prompt)
    request = _flat(description).strip()
    if len(words) < 5 or _flat(prompt).strip() in request or request[:40] in _flat(prompt):
        return False
    if archetype is None:
        return True
    return (
        scores(prompt).get(archetype.id, 0) > 0
        or len(_content_words(prompt) & _content_words(description)) >= 2
    )


def chat_choice(
    archetype: Archetype | None,
    proposal: Any,
    said: list[str],
    *,
    language: str,
) -> tuple[dict[str, Any], list[str], list[str]]:
    """The `chat` shape and the topics of a first chat contract, and notes: the model's fields where
    they pass their checks, the archetype's otherwise; its rules are always in the system prompt."""
    notes: list[str] = []
    description = said[0] if said else ""
    base_prompt, rules = archetype.system(language) if archetype else ("", [])
    own_prompt = str(proposal.system_prompt or "").strip()
    kept_prompt = _sane_prompt(own_prompt, description, archetype)
    if kept_prompt and archetype is not None and base_prompt != archetype.system_prompt:
        # the archetype speaks the data language: a copy of its English prompt, or a prompt in
        # another language than the data's, gives way to it
        copied = fold(archetype.system_prompt[:60]) in fold(own_prompt)
        kept_prompt = not copied and guess_language(own_prompt, default=language) == language
    if kept_prompt or archetype is None:
        prompt = own_prompt or "You are a helpful assistant."
    else:
        prompt = base_prompt
        notes.append(f"used the standard {archetype.title} system prompt")
    asked = stated_turns(said)
    if asked is not None:
        turns = asked
    else:
        turns = proposal.turns if kept_prompt or archetype is None else archetype.turns
    clamped = min(max(turns, 1), MAX_TURNS)
    if clamped != turns:
        notes.append(f"turns {turns} is out of range, using {clamped}")

    def pick(own: list[str], default: tuple[str, ...]) -> list[str]:
        mine = _sane_items(own, limit=6)
        return mine if len(mine) >= 2 or not default else list(default[:6])

    style = str(proposal.answer_style or "").strip()
    sane_style = 2 <= len(style.split()) <= 20 and style != "helpful and concise"
    chat = {
        "system_prompt": with_rules(prompt, rules),
        "turns": clamped,
        "personas": pick(list(proposal.personas), archetype.personas if archetype else ()),
        "intents": pick(list(proposal.intents), archetype.intents if archetype else ()),
        "answer_style": style if sane_style or archetype is None else archetype.answer_style,
        "answer_length": proposal.answer_length
        if kept_prompt or archetype is None
        else archetype.answer_length,
    }
    chat["answer_style"] = chat["answer_style"] or "helpful and concise"
    topics = merge_topics(list(proposal.topics), archetype)
    return chat, topics, notes
