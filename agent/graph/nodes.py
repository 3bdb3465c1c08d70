"""Graph nodes: short async functions. Approval points are `interrupt()` in tiny `review_*` nodes;
every LLM call happens in another node, so re-running a review node on resume costs nothing."""

from __future__ import annotations

import errno
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.config import get_config, get_stream_writer
from langgraph.graph import END
from langgraph.types import Command, interrupt

from agent import prompts, tasks
from agent.config import get_settings
from agent.context import session_settings
from agent.graph.publish import parse_target
from agent.graph.replies import (
    Reading,
    choice_schema,
    choice_to_reading,
    parse_rows,
    preview,
    read_reply,
    says_just_go,
    suggestions,
)
from agent.graph.state import State
from agent.i18n import _, ngettext
from agent.languages import find_language, fold, guess_language
from agent.llm import LLMBadOutput, as_messages, get_chat_model, structured_call
from agent.paths import thread_root
from agent.schemas import (
    ChatProposal,
    Clarification,
    CritiqueNotes,
    Proposal,
    archetype_choice_schema,
)
from agent.spec import (
    DatasetSpec,
    SpecEdit,
    SpecError,
    Style,
    apply_edits,
    check_size,
    make_spec,
    proposal_to_spec,
    render_spec,
    spec_diff,
)
from agent.tasks import archetypes
from agent.tasks.rag import contract as rag_contract
from agent.tasks.rag import talk as rag_talk
from agent.tools import quality
from agent.tools.documents import load_chunks
from agent.tools.export import export_dataset, zip_folder
from agent.tools.generate import read_rows, run_generation

CHAT_WORDS = re.compile(
    r"\b(conversations?|conversatii|conversatie|dialog(ue)?s?|dialoguri|chats?|multi-turn|turns|"
    r"assistant|asistent(ul)?|chatbot|fine-?tun\w*|sft|instruction)\b",
    re.I,
)
# retrieval data: strong words name it whatever else is said; weak ones ("questions and answers")
# only when nothing says conversations
RAG_STRONG_WORDS = re.compile(
    r"\b(rag|retriev\w*|rerank\w*|embedd?ers?|embeddings?|hard negatives?|semantic search|"
    r"search engine|regasire\w*|cautare semantica|motor de cautare)\b",
    re.I,
)
RAG_WORDS = re.compile(
    r"\b(question[- ]answer\w*|questions? and answers?|q ?& ?a|qa pairs|intrebari si raspunsuri|"
    r"intrebari-raspunsuri|perechi intrebare\w*)\b",
    re.I,
)
TEXTCAT_WORDS = re.compile(
    r"\b(classif\w*|clasific\w*|labels?|labell?ed|etichet\w*|categor\w*|sentiment)\b", re.I
)
SIZE_WORDS = re.compile(
    r"\b(\d[\d.,_]*)\s+(?:de\s+)?(?:rows|examples|texts|reviews|items|records|conversations|"
    r"dialogues|samples|randuri|exemple|texte|recenzii|conversatii|dialoguri|intrari)\b",
    re.I,
)
APPROVE = re.compile(
    r"^\s*(yes|y|ok|okay|sure|approve[d]?|looks good|lgtm|go|continue|da|oui|sí|si|ja|perfect)\W*$",
    re.I,
)
CANCEL = re.compile(r"^\s*(cancel|stop|quit|abort|no thanks)\W*$", re.I)


def _to(node: str) -> Any:
    """A node name computed at run time (the return annotations list every possible one)."""
    return node


def _say(text: str, **kwargs: Any) -> AIMessage:
    return AIMessage(content=text, additional_kwargs=kwargs)


def _conversation(messages: list[AnyMessage], limit: int = 6000) -> str:
    lines = []
    for m in messages:
        who = "user" if isinstance(m, HumanMessage) else "assistant"
        lines.append(f"{who}: {m.content}")
    return "\n".join(lines)[-limit:]


def _thread_id() -> str:
    return str(get_config()["configurable"].get("thread_id", "default"))


def _spec(state: State) -> DatasetSpec:
    return DatasetSpec.model_validate(state["spec"])


# --- clarify and propose -----------------------------------------------------------------------


def stated_choices(state: State) -> dict[str, Any]:
    """The user's explicit choices: what the CLI locked, then task, data language and size said in
    the conversation's own words. A model's reading never overrides these."""
    locked = dict(state.get("locked") or {})
    said = " ".join(str(m.content) for m in state["messages"] if isinstance(m, HumanMessage))
    folded = fold(said)
    if "task" not in locked:
        if RAG_STRONG_WORDS.search(folded) or (
            RAG_WORDS.search(folded) and not CHAT_WORDS.search(folded)
        ):
            locked["task"] = "rag"
        elif CHAT_WORDS.search(folded):
            locked["task"] = "chat"
        elif TEXTCAT_WORDS.search(folded):
            locked["task"] = "textcat"
    if "language" not in locked and (language := find_language(said)):
        locked["language"] = language
    if "size" not in locked and (m := SIZE_WORDS.search(folded)):
        size = parse_rows(m.group(1))
        if size:
            locked["size"] = size
    return locked


async def clarify(state: State) -> Command[Literal["ask_user", "propose", "review_contract"]]:
    """Ask at most two short questions, unless the request is clear or the user says "just go"."""
    if state.get("spec"):
        return Command(goto="review_contract", update={"stage": "contract"})
    rounds = state.get("clarify_rounds", 0)
    last = next((m for m in reversed(state["messages"]) if isinstance(m, HumanMessage)), None)
    said = " ".join(str(m.content) for m in state["messages"] if isinstance(m, HumanMessage))
    locked = stated_choices(state)
    known = archetypes.match(said)
    update: dict[str, Any] = {
        "locked": locked,
        "user_language": guess_language(said),
        "task": locked.get("task") or (known.task if known else state.get("task", "textcat")),
    }
    if (
        known
        or not tasks.kind(update["task"]).clarifies
        or rounds >= 2
        or (last is not None and says_just_go(str(last.content)))
    ):
        return Command(goto="propose", update=update)
    msgs = as_messages(
        prompts.CLARIFY_SYSTEM.format(rounds=rounds),
        prompts.CLARIFY_USER.format(conversation=_conversation(state["messages"])),
    )
    decision = await structured_call(get_chat_model("steer"), Clarification, msgs)
    if "task" not in locked:
        update["task"] = decision.task
    if decision.ready or not decision.question.strip():
        return Command(goto="propose", update=update)
    update |= {
        "clarify_rounds": rounds + 1,
        "stage": "clarify",
        "messages": [
            _say(
                decision.question.strip()
                + "\n\n"
                + _("(Or say “just go” and I will use sensible defaults.)")
            )
        ],
    }
    return Command(goto="ask_user", update=update)


async def ask_user(state: State) -> Command[Literal["clarify", "ask_user"]]:
    answer = interrupt({"kind": "question", "stage": "clarify"})
    text = _reply_text(answer)
    if text is None:  # a button or a malformed payload: raising would fail this step on every retry
        return Command(goto="ask_user", update={"messages": [_say(not_text())]})
    return Command(goto="clarify", update={"messages": [HumanMessage(content=text)]})


def _user_said(state: State) -> list[str]:
    """The user's messages, first to last (the first one is the description)."""
    return [str(m.content) for m in state["messages"] if isinstance(m, HumanMessage)]


def _questions(state: State) -> list[str]:
    """What the assistant said before each user message ("" before the first)."""
    out, last = [], ""
    for m in state["messages"]:
        if isinstance(m, HumanMessage):
            out.append(last)
        else:
            last = str(m.content)
    return out


def _user_language(state: State, said: list[str]) -> str:
    return state.get("user_language") or guess_language("\n".join(said))


async def _pick_archetype(
    state: State, said: list[str], task: archetypes.Task
) -> archetypes.Archetype | None:
    """The archetype the request is: by keywords, else the model's choice from the ids (an enum,
    with examples) — None when it says "other" or its answer cannot be read."""
    found = archetypes.match("\n".join(said), task)
    if found is not None:
        return found
    kinds = archetypes.load(task)
    examples = [
        prompts.PROPOSE_ARCHETYPE_EXAMPLE.format(request=ex, id=a.id)
        for a in kinds
        for ex in a.examples[:1]
    ]
    other = (
        "Legal contract clauses labelled by clause type."
        if task == "textcat"
        else "Conversations with a museum guide robot."
    )
    examples.append(prompts.PROPOSE_ARCHETYPE_EXAMPLE.format(request=other, id="other"))
    msgs = as_messages(
        prompts.PROPOSE_ARCHETYPE_SYSTEM.format(
            what="text-classification" if task == "textcat" else "chat (conversation)",
            kinds="\n".join(f"- {a.id}: {a.summary}" for a in kinds),
            examples="\n".join(examples),
        ),
        prompts.PROPOSE_USER.format(conversation=_conversation(state["messages"])),
    )
    schema = archetype_choice_schema(archetypes.ids(task), chat=task == "chat")
    try:
        choice = await structured_call(get_chat_model("steer"), schema, msgs)
    except LLMBadOutput:
        return None
    return None if choice.archetype == "other" else archetypes.get(choice.archetype)


async def propose(state: State) -> Command[Literal["review_contract"]]:
    """The first text-classification contract: from an archetype when the request is a known kind
    (the model adapts it; labels it gets wrong do not survive), else the model's free proposal."""
    locked = state.get("locked") or {}
    task = locked.get("task") or state.get("task") or "textcat"
    if task != "textcat":
        return await PROPOSERS[task](state)
    settings = get_settings()
    said = _user_said(state)
    description = said[0] if said else "A synthetic dataset."
    arch = await _pick_archetype(state, said, "textcat")
    system = prompts.PROPOSE_SYSTEM.format(user_language=_user_language(state, said))
    if arch is not None:
        system += "\n\n" + prompts.PROPOSE_FROM_ARCHETYPE.format(
            title=arch.title, standard=arch.standard_json()
        )
    msgs = as_messages(
        system, prompts.PROPOSE_USER.format(conversation=_conversation(state["messages"]))
    )
    problem = ""
    for _attempt in range(
        1 if arch else 3
    ):  # without an archetype, unusable labels are asked for again
        p = await structured_call(get_chat_model("steer"), Proposal, msgs)
        choice = archetypes.textcat_choice(arch, p, said, _questions(state))
        if arch is None and choice.problems:
            problem = "; ".join(choice.problems[:2])
            continue
        try:
            spec, notes = proposal_to_spec(
                description=description,
                name=archetypes.dataset_name(description, p.name, arch),
                labels=choice.labels,
                multi_label=choice.multi_label,
                language=archetypes.data_language(
                    said, locked=locked, archetype=arch, model=p.language
                ),
                size=locked.get("size") or archetypes.stated_size(said) or p.size,
                style=Style(
                    topics=choice.topics,
                    length=choice.length,  # type: ignore[arg-type]
                    tones=choice.tones or ["neutral"],
                ),
                max_rows=settings.max_rows,
            )
            break
        except SpecError as exc:
            problem = str(exc)
    else:
        raise LLMBadOutput(
            _(
                "The model did not propose a usable contract ({problem}) — try naming the labels "
                "you want, e.g. “labels: positive, negative”.",
                problem=problem,
            )
        )
    ask = _(
        "Approve it to see a sample, or tell me what to change (e.g. {examples}).",
        examples=change_examples(spec),
    )
    return _first_contract(state, spec, choice.notes + notes, ask=ask, intro=p.intro)


def change_examples(spec: DatasetSpec) -> str:
    """Two refinements that fit this contract, as a person would type them."""
    if spec.rag is not None:
        first = _("“harder questions”") if not spec.rag.hard_negatives else _("“shorter answers”")
        second = _("“add hard negatives”") if not spec.rag.hard_negatives else _("“add reranking”")
        return f"{first}, {second}"
    if spec.task == "chat":
        first = (
            _("“3 turns”") if spec.chat is None or spec.chat.turns < 3 else _("“shorter answers”")
        )
    else:
        names = spec.label_names
        label = next((n for n in names if n.startswith("neg")), names[-1])
        first = (
            _("“more {label}”", label=label)
            if len(names) < 3
            else _("“drop {label}”", label=names[-1])
        )
    other = _("“in English”") if spec.language != "English" else _("“in Romanian”")
    return f"{first}, {other}"


def _first_contract(
    state: State, spec: DatasetSpec, notes: list[str], *, ask: str, intro: str, extra: str = ""
) -> Command[Literal["review_contract"]]:
    """Show version 1 of the contract and wait for its review."""
    note = "\n\n_" + _("Note: I {notes}.", notes="; ".join(notes)) + "_" if notes else ""
    language = state.get("user_language") or guess_language("\n".join(_user_said(state)))
    # the person's own language, written by the model — when it is in that language at all
    if language.lower() not in ("english", "en") and intro.strip():
        if guess_language(intro, default=language) == language:
            ask = intro.strip()
    head = _("Here is the proposed contract:")
    text = f"{head}\n\n{render_spec(spec)}{note}{extra}\n\n{ask}"
    return Command(
        goto="review_contract",
        update={
            "spec": spec.model_dump(),
            "history": [{"version": 1, "diff": ["first proposal"]}],
            "stage": "contract",
            "messages": [_say(text, kind="contract")],
        },
    )


async def propose_chat(state: State) -> Command[Literal["review_contract"]]:
    """The first chat contract: an archetype's shape when the request is a known kind (the model's
    system prompt, personas … kept where they pass their checks; the archetype's rules always),
    else the model's own proposal."""
    settings = get_settings()
    locked = state.get("locked") or {}
    said = _user_said(state)
    description = said[0] if said else "Chat data."
    arch = await _pick_archetype(state, said, "chat")
    system = prompts.PROPOSE_CHAT_SYSTEM.format(user_language=_user_language(state, said))
    if arch is not None:
        system += "\n\n" + prompts.PROPOSE_CHAT_FROM_ARCHETYPE.format(
            title=arch.title, standard=arch.standard_json()
        )
    msgs = as_messages(
        system, prompts.PROPOSE_USER.format(conversation=_conversation(state["messages"]))
    )
    p = await structured_call(get_chat_model("steer"), ChatProposal, msgs)
    language = archetypes.data_language(said, locked=locked, archetype=arch, model=p.language)
    chat, topics, notes = archetypes.chat_choice(arch, p, said, language=language)
    wanted = locked.get("size") or archetypes.stated_size(said) or p.size
    size = min(max(wanted, 1), settings.max_rows)
    if size != wanted:
        notes.append(_("size {wanted:,} is out of range, using {size:,}", wanted=wanted, size=size))
    chunks = load_chunks(_run_root() / "documents")
    spec = make_spec(
        {
            "task": "chat",
            "name": archetypes.dataset_name(description, p.name, arch),
            "description": description[:2000],
            "language": language,
            "size": size,
            "style": {"topics": topics},
            "chat": chat | {"grounded": bool(chunks)},
        }
    )
    docs = (
        "\n\n"
        + ngettext(
            "Conversations will be grounded in {n} chunk of your documents.",
            "Conversations will be grounded in {n} chunks of your documents.",
            len(chunks),
        )
        if chunks
        else ""
    )
    ask = _(
        "Approve it to see sample conversations, or tell me what to change (e.g. {examples}).",
        examples=change_examples(spec),
    )
    return _first_contract(state, spec, notes, ask=ask, intro=p.intro, extra=docs)


async def propose_rag(state: State) -> Command[Literal["review_contract"]]:
    """The first RAG contract: passages from the dataset column named, else the attached
    documents, else written from the description; the switches the person's words set (hard
    negatives, reranking, difficulty) read by the reply tables; a name and topics from the model."""
    settings = get_settings()
    locked = state.get("locked") or {}
    said = _user_said(state)
    description = said[0] if said else "Questions and answers."
    chunks = load_chunks(_run_root() / "documents")
    source = rag_contract.source_of(locked, len(chunks))
    note = rag_contract.SOURCE_NOTES[source["source"]].format(
        chunks=ngettext("{n} chunk", "{n} chunks", len(chunks))
    )
    msgs = as_messages(
        rag_contract.PROPOSE_RAG_SYSTEM.format(
            user_language=_user_language(state, said), source_note=note
        ),
        prompts.PROPOSE_USER.format(conversation=_conversation(state["messages"])),
    )
    notes: list[str] = []
    try:
        p = await structured_call(get_chat_model("steer"), rag_contract.RagProposal, msgs)
    except LLMBadOutput:  # a name and topics are all it gives: the contract stands without them
        p = rag_contract.RagProposal()
        notes.append(_("could not read the model's proposal, so I used plain defaults"))
    language = archetypes.data_language(said, locked=locked, archetype=None, model=p.language)
    wanted = locked.get("size") or archetypes.stated_size(said) or p.size
    size = min(max(wanted, 1), settings.max_rows)
    if size != wanted:
        notes.append(_("size {wanted:,} is out of range, using {size:,}", wanted=wanted, size=size))
    spec = make_spec(
        {
            "task": "rag",
            "name": archetypes.dataset_name(description, p.name, None),
            "description": description[:2000],
            "language": language,
            "size": size,
            "style": {"topics": archetypes.merge_topics(p.topics, None)},
            "rag": source,
        }
    )
    stated = read_reply(" ".join(said), spec, "contract")
    spec = rag_contract.with_stated_shape(
        spec, stated.edits if stated else [], max_rows=settings.max_rows
    )
    docs = (
        "\n\n"
        + ngettext(
            "Every passage is the one chunk of your documents, used verbatim.",
            "Each passage is one of the {n} chunks of your documents, used verbatim; every chunk "
            "is used once before any is used twice.",
            len(chunks),
        )
        if chunks
        else ""
    )
    ask = _(
        "Approve it to see a sample, or tell me what to change (e.g. {examples}).",
        examples=change_examples(spec),
    )
    return _first_contract(state, spec, notes, ask=ask, intro=p.intro, extra=docs)


PROPOSERS = {"chat": propose_chat, "rag": propose_rag}


# --- review points: interrupt only ---------------------------------------------------------------


def not_text() -> str:
    return _(
        "I could not read that reply (it was neither text nor a known button); nothing was changed."
    )


def _reply_text(value: Any) -> str | None:
    """The user's text from a resume value, or None when it holds none."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("text"), str):
        return value["text"]
    return None


def _check_reply(value: Any) -> Any:
    """Resume values are the user's text or a button's {"action": …}; anything else becomes
    {"invalid": …} for `interpret` to answer. Raising instead would fail the step again on every
    Retry (the resume value is replayed), leaving the thread stuck."""
    if isinstance(value, str) or (
        isinstance(value, dict)
        and (isinstance(value.get("action"), str) or isinstance(value.get("text"), str))
    ):
        return value
    return {"invalid": type(value).__name__}


async def review_contract(state: State) -> Command[Literal["interpret"]]:
    value = interrupt({"kind": "review", "stage": "contract", "version": _spec(state).version})
    return Command(goto="interpret", update={"reply": _check_reply(value), "stage": "contract"})


async def review_sample(state: State) -> Command[Literal["interpret"]]:
    value = interrupt({"kind": "review", "stage": "sample", "version": _spec(state).version})
    return Command(goto="interpret", update={"reply": _check_reply(value), "stage": "sample"})


async def review_paused(state: State) -> Command[Literal["interpret"]]:
    value = interrupt({"kind": "review", "stage": "paused", "run_dir": state.get("run_dir")})
    return Command(goto="interpret", update={"reply": _check_reply(value), "stage": "paused"})


async def review_dataset(state: State) -> Command[Literal["interpret"]]:
    value = interrupt({"kind": "review", "stage": "dataset", "run_dir": state.get("run_dir")})
    return Command(goto="interpret", update={"reply": _check_reply(value), "stage": "dataset"})


# --- interpret the user's reply ------------------------------------------------------------------

REVIEW_NODE = {
    "contract": "review_contract",
    "sample": "review_sample",
    "dataset": "review_dataset",
    "paused": "review_paused",
    "publish": "review_publish",
}


def stage_words(stage: str | None) -> str:
    """A step as words in a sentence ("the contract")."""
    words = {
        "contract": _("the contract"),
        "sample": _("the sample"),
        "dataset": _("the finished dataset"),
        "paused": _("the paused run"),
        "publish": _("publishing"),
        "confirm_publish": _("the publishing confirmation"),
        "clarify": _("a question"),
    }
    return words.get(str(stage), _("an earlier step") if stage else "")


BUTTONS = ("approve", "cancel", "generate", "edit")
NEXT_ON_APPROVE = {"contract": "sample", "sample": "scale", "dataset": "export", "paused": "scale"}
CONTINUE = re.compile(
    r"\b(continue|carry on|resume|keep going|finish|continu[aă]|mai departe|termin[aă])\b", re.I
)


def _button_problem(reply: dict[str, Any], stage: str, spec: DatasetSpec) -> str | None:
    """Why a button's payload cannot be acted on now (None when it can).

    A button carries the step it was shown at (and the contract version): a double click, another
    tab or an old message must not approve a step the user has not seen.
    """
    clicked = reply.get("stage")
    if clicked is not None and clicked != stage:
        return _(
            "That button was for {then}; the conversation has moved on to {now}. Nothing was done.",
            then=stage_words(str(clicked)),
            now=stage_words(stage) or stage,
        )
    version = reply.get("version")
    if version is not None and stage in ("contract", "sample") and version != spec.version:
        return _(
            "That button was for contract v{then}, but the contract is now v{now}. Nothing was "
            "done — look at the latest version and click again.",
            then=version,
            now=spec.version,
        )
    action = reply.get("action")
    if stage == "publish":
        return None  # publishing reads its own actions (publish, done)
    if action == "retry":
        return _(
            "There is nothing to retry: the last step finished. I am waiting for your reply on "
            "{stage}.",
            stage=stage_words(stage) or stage,
        )
    if action not in BUTTONS:
        return _(
            "I do not know the action “{action}”; nothing was changed.", action=str(action)[:40]
        )
    rows = reply.get("rows")
    if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int)):
        return _(
            "The number of rows must be a whole number; “{rows}” is not. Nothing was changed.",
            rows=str(rows)[:40],
        )
    return None


async def interpret(
    state: State,
) -> Command[
    Literal[
        "review_contract",
        "review_sample",
        "review_dataset",
        "review_paused",
        "review_publish",
        "prepare_publish",
        "sample",
        "scale",
        "export",
        "__end__",
    ]
]:
    stage = state.get("stage", "contract")
    back = REVIEW_NODE.get(stage, "review_contract")
    reply = state.get("reply")
    spec = _spec(state)
    settings = get_settings()
    said: list[AnyMessage] = []
    reading: Reading
    by_model = False  # a model's reading of free text: it never starts a sample or a run by itself
    if isinstance(reply, dict) and "action" in reply:
        problem = _button_problem(reply, stage, spec)
        if problem:
            return Command(goto=_to(back), update={"messages": [_say(problem)]})
    if stage == "publish":
        return _interpret_publish(state, reply)
    if isinstance(reply, dict) and "action" in reply:
        if reply["action"] == "edit":  # a "did you mean" button: the edits it offered
            try:
                edits = [SpecEdit.model_validate(e) for e in reply.get("edits") or []]
            except ValueError:
                edits = []
            if not edits:
                return Command(goto=_to(back), update={"messages": [_say(not_text())]})
            reading = Reading("edit", edits=edits)
        else:
            reading = Reading(reply["action"], rows=reply.get("rows"))
    else:
        text = _reply_text(reply)
        if text is None:
            return Command(goto=_to(back), update={"messages": [_say(not_text())]})
        said.append(HumanMessage(content=text))
        found = read_reply(text, spec, stage)
        if found is None and stage == "paused" and CONTINUE.search(text):
            found = Reading("approve")
        if found is not None and found.bad_number is not None:
            msg = _say(
                _(
                    "The size must be a whole number of rows; “{number}” is not. The contract is "
                    "unchanged (v{version}).",
                    number=found.bad_number,
                    version=spec.version,
                )
            )
            return Command(goto=_to(back), update={"messages": [*said, msg]})
        if (
            found is not None
            and found.kind == "edit"
            and text.rstrip().endswith("?")
            and preview(spec, found.edits, settings.max_rows) is None
        ):
            found = Reading("question")  # "will the texts be in English?" when they already are
        if found is None:
            try:
                found = await _model_reading(spec, stage, text)
            except LLMBadOutput as exc:  # the model could not be read either
                return _not_understood(spec, stage, said, text, why=str(exc))
            by_model = True
        reading = found
    if reading.kind == "generate" and reading.rows is not None:
        try:  # an impossible size is said at once, not offered for confirmation
            check_size(reading.rows, settings.max_rows)
        except SpecError as exc:
            msg = _say(unchanged(exc, spec))
            return Command(goto=_to(back), update={"messages": [*said, msg]})
    if (
        by_model
        and stage in ("contract", "sample", "paused")
        and reading.kind in ("approve", "generate")
    ):
        # Work starts only on a clear yes: a model's reading of free text is not enough.
        if stage == "contract":
            ask = _("Shall I make a sample from this contract now?")
        elif reading.kind == "generate" and reading.rows:
            ask = _("Shall I generate {rows:,} rows now?", rows=reading.rows)
        else:
            ask = _("Shall I generate all {rows:,} rows now?", rows=spec.size)
        msg = _say(
            ask
            + " "
            + _(
                "Say “yes” (or “generate N”), or tell me what to change first. Nothing was started."
            )
        )
        return Command(goto=_to(back), update={"messages": [*said, msg]})

    if reading.kind == "approve":
        update_ok: dict[str, Any] = {"messages": said}
        if stage == "paused":  # the user chose to finish despite the stop rule
            update_ok["ignore_stop"] = True
        return Command(goto=_to(NEXT_ON_APPROVE[stage]), update=update_ok)
    if reading.kind == "cancel":
        msg = _say(
            _(
                "Stopped. Your contract, samples and rows are kept; write again to start a new "
                "dataset."
            )
        )
        return Command(goto=_to(END), update={"messages": [*said, msg], "stage": "cancelled"})
    if reading.kind == "question":
        answer = await _answer(state, spec, said, fallback="")
        return Command(goto=_to(back), update={"messages": [*said, _say(answer, kind="answer")]})

    edits = list(reading.edits)
    if reading.kind == "generate" and reading.rows is not None and reading.rows != spec.size:
        edits.append(SpecEdit(op="set_size", number=reading.rows))
    if reading.kind == "edit" and not edits:  # the model chose an edit but gave nothing usable
        return _not_understood(spec, stage, said, _reply_text(reply) or "")
    try:
        new = apply_edits(spec, edits, max_rows=settings.max_rows) if edits else spec
    except SpecError as exc:
        msg = _say(unchanged(exc, spec))
        return Command(goto=_to(back), update={"messages": [*said, msg]})

    update: dict[str, Any] = {"messages": said}
    if new is not spec:
        diff = spec_diff(spec, new)
        history = [*state.get("history", []), {"version": new.version, "diff": diff}]
        head = _("I read that as a change to the contract.") + " " if by_model else ""
        text = (
            head
            + _("Contract v{old} → v{new}:", old=spec.version, new=new.version)
            + "\n```diff\n"
            + "\n".join(diff)
            + "\n```"
        )
        if reading.leftover:
            text += "\n\n_" + _("I did not act on: “{words}”.", words=reading.leftover) + "_"
        update |= {
            "spec": new.model_dump(),
            "history": history,
            "messages": [*said, _say(text, kind="diff")],
            "refinements": state.get("refinements", 0) + (1 if reading.kind == "edit" else 0),
        }
    if reading.kind == "generate":
        return Command(goto="scale", update=update | {"ignore_stop": False})
    # An edit at the contract step, or one a model read: show the new contract to approve.
    # Words the tables read (or a button) after a sample: make a new sample from it.
    if stage == "contract" or by_model:
        ask = _("Approve it to see a sample, or tell me what else to change.")
        update["messages"] = [
            *update["messages"],
            _say(f"{render_spec(new)}\n\n{ask}", kind="contract"),
        ]
        return Command(goto="review_contract", update=update | {"stage": "contract"})
    return Command(goto="sample", update=update)


async def _model_reading(spec: DatasetSpec, stage: str, text: str) -> Reading:
    """The model's reading of a reply the tables did not understand: it chooses from what the
    contract allows (`choice_schema`). Raises LLMBadOutput when its answer could not be read."""
    msgs = as_messages(
        prompts.CHOICE_SYSTEM.format(stage=stage, stage_help=prompts.STAGE_HELP[stage]),
        prompts.INTENT_USER.format(contract=render_spec(spec), reply=text),
    )
    choice = await structured_call(get_chat_model("steer"), choice_schema(spec), msgs)
    return choice_to_reading(choice, spec, stage)


def _not_understood(
    spec: DatasetSpec, stage: str, said: list[AnyMessage], text: str, why: str = ""
) -> Command[Any]:
    """Never silent: say nothing changed, and offer what the words could mean as buttons."""
    offers = suggestions(text, spec, get_settings().max_rows) if stage != "dataset" else []
    msg = f"{why} " if why else ""
    if stage in ("contract", "sample", "paused"):
        msg += _(
            "I did not understand that, so I did not change the contract (v{version}).",
            version=spec.version,
        )
    else:
        msg += _("I did not understand that, so I did not change anything.")
    if offers:
        msg += " " + _(
            "Did you mean: {offers}?",
            offers=_(" — or ").join(f"**{o['title']}**" for o in offers),
        )
    else:
        msg += " " + _("You can approve, cancel, or say what to change.")
    choices = [
        {
            "title": o["title"],
            "value": {
                "action": "edit",
                "edits": o["edits"],
                "stage": stage,
                "version": spec.version,
            },
        }
        for o in offers
    ]
    return Command(
        goto=_to(REVIEW_NODE.get(stage, "review_contract")),
        update={"messages": [*said, _say(msg, kind="unclear", choices=choices)]},
    )


def _interpret_publish(state: State, reply: Any) -> Command[Any]:
    """After export: a target to publish to (confirmed in the next step), or done."""
    said: list[AnyMessage] = []
    if isinstance(reply, dict) and "action" in reply:
        action = reply["action"]
        target = {k: v for k, v in reply.items() if k != "action"} if action == "publish" else None
    else:
        text = _reply_text(reply) or ""
        if text:
            said.append(HumanMessage(content=text))
        target = parse_target(text)
        action = (
            "publish"
            if target
            else (
                "done"
                if APPROVE.match(text)
                or CANCEL.match(text)
                or re.search(
                    r"\b(done|finish(ed)?|that's all|nothing|gata|am terminat|asta e tot|nimic)\b",
                    fold(text),
                    re.I,
                )
                else "unclear"
            )
        )
    if action == "publish" and target and target.get("target") in ("hub", "argilla"):
        return Command(goto="prepare_publish", update={"messages": said, "publish_target": target})
    if action in ("done", "approve", "cancel"):
        msg = _say(_("All done. Your dataset is saved — download it with the link above."))
        return Command(goto=END, update={"messages": [*said, msg], "stage": "done"})
    msg = _say(
        _(
            "To publish, name the target — e.g. “push it to the hub as my-org/my-dataset, "
            "private” or “send it to Argilla” — or say “done”. Nothing was sent."
        )
    )
    return Command(goto="review_publish", update={"messages": [*said, msg]})


STREAM_TAG = "to_user"


async def _answer(state: State, spec: DatasetSpec, said: list[AnyMessage], fallback: str) -> str:
    """A prose answer, streamed token by token to the chat (the tag tells the UI which call to show)."""
    figures = {
        k: v
        for k, v in state.get("critique", {}).items()
        if k in ("rows", "agreement", "duplicates", "mix")
    }
    msgs = [
        *as_messages(
            prompts.ANSWER_SYSTEM.format(
                user_language=state.get("user_language", "English"),
                contract=spec.model_dump_json(),
                figures=figures,
            ),
            str(said[-1].content) if said else "",
        )
    ]
    try:
        from agent.reasoning import strip_reasoning

        reply = await get_chat_model("steer").ainvoke(msgs, config={"tags": [STREAM_TAG]})
        text = strip_reasoning(str(reply.content))  # a reasoning model's <think>… is not said
    except Exception:  # the structured reply already holds an answer; use it rather than fail
        text = ""
    return text or fallback.strip() or _("I could not find an answer to that; nothing was changed.")


# --- sample, critique, scale, export -------------------------------------------------------------


def _run_root() -> Path:
    return thread_root(_thread_id())


def _chunks(spec: DatasetSpec) -> list[dict[str, str]] | None:
    """The conversation's document chunks, for a contract whose rows use them."""
    return load_chunks(_run_root() / "documents") if tasks.kind(spec).uses_chunks(spec) else None


def _status(text: str) -> None:
    """Tell the UI at once that this step is working ({"status": …} on the custom stream), before
    its first row or reply arrives."""
    get_stream_writer()({"status": text})


async def sample(state: State) -> Command[Literal["critique"]]:
    from agent.llm import get_chat_models  # one model per endpoint (LLM_ENDPOINTS)

    settings = session_settings()  # the CLI's --concurrency is this session's, not the process's
    spec = _spec(state)
    k = state.get("samples_made", 0) + 1
    n = min(settings.sample_size, spec.size)
    run_dir = _run_root() / f"sample-{k:03d}-v{spec.version}"
    writer = get_stream_writer()
    _status(_("Writing the sample…"))
    result = await run_generation(
        spec,
        n,
        run_dir,
        generator=get_chat_models("generate"),
        judge=get_chat_models("judge"),
        concurrency=settings.max_concurrency,
        start=settings.concurrency,
        seed=1000 * spec.version + k,
        # the phase tells the UI these rows are a sample's, not a full run's
        on_progress=lambda p: writer({"progress": p | {"phase": "sample", "task": spec.task}}),
        chunks=_chunks(spec),
    )
    rows = sorted(read_rows(result.run_dir), key=lambda r: r["row_id"])
    return Command(goto="critique", update={"sample": rows, "samples_made": k})


def unchanged(exc: Exception, spec: DatasetSpec) -> str:
    """A refused change, and that the contract stayed as it was."""
    return f"{exc} " + _("The contract is unchanged (v{version}).", version=spec.version)


def _table(rows: list[dict[str, Any]], limit: int = 20) -> str:
    out = [_("| # | text | label | judge |"), "|---|---|---|---|"]
    for r in rows[:limit]:
        text = r["text"].replace("|", "\\|").replace("\n", " ")
        text = text[:220] + ("…" if len(text) > 220 else "")
        label = ", ".join(quality.row_labels(r))
        judge = r.get("judge_label") or ", ".join(r.get("judge_labels") or []) or "—"
        out.append(f"| {r['row_id']} | {text} | {label} | {judge} |")
    return "\n".join(out)


def dialogue(row: dict[str, Any], limit: int = 600) -> str:
    """A conversation as a readable chat transcript (Markdown), not JSON."""
    lines = []
    for m in row["messages"]:
        if m["role"] == "system":
            continue
        who = _("**User:**") if m["role"] == "user" else _("**Assistant:**")
        content = m["content"][:limit] + ("…" if len(m["content"]) > limit else "")
        lines.append(f"{who} {content}")
    rating = " · " + _("rated {rating}/5", rating=row["rating"]) if row.get("rating") else ""
    head = f"_#{row['row_id']} · {row.get('persona', '')} · {row.get('intent', '')}{rating}_"
    reasons = (
        "\n> " + _("why: {reasons}", reasons=row["judge_reasons"])
        if row.get("judge_reasons")
        else ""
    )
    return head + "\n\n" + "\n\n".join(lines) + reasons


def weakest(rows: Iterable[dict[str, Any]], n: int = 3) -> str:
    """The n lowest-rated conversations as dialogues (unrated ones last)."""
    worst = sorted(rows, key=lambda r: (r.get("rating") or 6, r["row_id"]))[:n]
    return "\n\n---\n\n".join(dialogue(r) for r in worst)


def _chart_figures(fig: dict[str, Any]) -> dict[str, Any]:
    """What the run review's charts draw, sent with its message (the charts must show this run)."""
    return {k: fig.get(k) for k in ("mix", "agreement_per_label", "agreement")}


def _ratings_words(fig: dict[str, Any]) -> str:
    """How a second model rated the conversations, in words."""
    ratings = fig.get("ratings") or {}
    dup = fig.get("duplicates") or 0
    parts = []
    if ratings.get("mean") is not None:
        parts.append(
            _(
                "A second model rated each conversation from 1 to 5: {mean:.1f} on average.",
                mean=ratings["mean"],
            )
        )
    parts.append(
        _("None repeats another.")
        if not dup
        else ngettext(
            "{n} is (almost) the same as another.", "{n} are (almost) the same as others.", dup
        )
    )
    return " ".join(parts)


async def critique_chat(
    state: State, spec: DatasetSpec, rows: list[dict[str, Any]]
) -> Command[Any]:
    fig = quality.figures(spec, rows)
    tips = quality.suggestions(fig)
    text = (
        _(
            "Sample {k} (contract v{version}): {n} conversations.",
            k=state.get("samples_made", 1),
            version=spec.version,
            n=len(rows),
        )
        + "\n\n"
        + _ratings_words(fig)
        + "\n\n"
        + _("The weakest conversations:")
        + "\n\n"
        + weakest(rows)
        + "\n\n"
        + ((_("Suggestions:") + "\n" + "\n".join(f"- {x}" for x in tips) + "\n\n") if tips else "")
        + _(
            "Approve to generate all {n:,} conversations, say “generate N” for another size, or "
            "ask for changes (e.g. “harder questions”, “shorter answers”, “3 turns”).",
            n=spec.size,
        )
    )
    return Command(
        goto="review_sample",
        update={"critique": fig, "messages": [_say(text, kind="sample")], "stage": "sample"},
    )


async def critique_rag(state: State, spec: DatasetSpec, rows: list[dict[str, Any]]) -> Command[Any]:
    """The RAG sample: the rows as a table, what the judge found (answerable, supported,
    negatives not answered) in words, the exact figures in the fold."""
    fig = rag_talk.figures(rows)
    text = (
        _(
            "Sample {k} (contract v{version}): {n} rows.",
            k=state.get("samples_made", 1),
            version=spec.version,
            n=len(rows),
        )
        + "\n\n"
        + rag_talk.summary(fig)
        + "\n\n"
        + _(
            "Approve to generate all {n:,} rows, say “generate N” for another size, or ask for "
            "changes (e.g. {examples}).",
            n=spec.size,
            examples=change_examples(spec),
        )
    )
    return Command(
        goto="review_sample",
        update={
            "critique": fig,
            "messages": [
                _say(
                    text,
                    kind="sample",
                    table=rag_talk.table(rows),
                    details=rag_talk.details(fig),
                    rows=rag_talk.shown(rows),
                )
            ],
            "stage": "sample",
        },
    )


CRITICS = {"chat": critique_chat, "rag": critique_rag}


async def critique(state: State) -> Command[Literal["review_sample"]]:
    spec = _spec(state)
    rows = state.get("sample", [])
    _status(_("Reviewing the sample: writing the critique…"))
    if spec.task in CRITICS:
        return await CRITICS[spec.task](state, spec, rows)
    fig = quality.figures(spec, rows)
    notes: dict[str, list[str]] = {}
    summary = {k: fig[k] for k in ("rows", "agreement", "duplicates", "mix")}
    msgs = as_messages(
        prompts.CRITIQUE_SYSTEM.format(
            description=spec.description, user_language=state.get("user_language", "English")
        ),
        prompts.CRITIQUE_USER.format(
            figures=summary,
            rows="\n".join(
                f"- [{', '.join(quality.row_labels(r))}] {r['text'][:300]}" for r in rows[:10]
            ),
        ),
    )
    try:
        c = await structured_call(get_chat_model("judge"), CritiqueNotes, msgs)
        notes = {"problems": c.problems, "suggestions": c.suggestions}
    except LLMBadOutput:
        notes = {"problems": [_("(the judge's written notes could not be read this time)")]}
    text = (
        _(
            "Sample {k} (contract v{version}): {n} rows.",
            k=state.get("samples_made", 1),
            version=spec.version,
            n=len(rows),
        )
        + "\n\n"
        + quality.plain_summary(fig, notes)
        + "\n\n"
        + _(
            "Approve to generate all {n:,} rows, say “generate N” for another size, or ask for "
            "changes (e.g. “make it more negative reviews”).",
            n=spec.size,
        )
    )
    # the rows as a table and the exact figures: the chat shows them as a table and a fold
    table, details = _table(rows), quality.render_figures(fig, notes)
    shown = [
        {
            _("text"): r["text"],
            _("label"): ", ".join(quality.row_labels(r)),
            _("second model"): r.get("judge_label") or ", ".join(r.get("judge_labels") or []),
        }
        for r in rows
    ]
    return Command(
        goto="review_sample",
        update={
            "critique": fig | {"notes": notes},
            "messages": [_say(text, kind="sample", table=table, details=details, rows=shown)],
            "stage": "sample",
        },
    )


def _run_figures(spec: DatasetSpec, run_dir: Path) -> dict[str, Any]:
    """The figures of a run's rows, as this kind of data measures them."""
    if spec.rag is not None:
        return rag_talk.figures(read_rows(run_dir))
    return quality.figures(spec, read_rows(run_dir))


async def scale(state: State) -> Command[Literal["review_dataset", "review_paused"]]:
    """The full run. A stop rule (near-duplicates or judge agreement) pauses it with a proposal
    rather than finishing a bad dataset; every row made so far stays in the run folder."""
    from agent.llm import get_chat_models  # one model per endpoint (LLM_ENDPOINTS)

    settings = session_settings()  # the CLI's --concurrency / --engine: this session's
    spec = _spec(state)
    run_dir = _run_root() / f"full-v{spec.version}-n{spec.size}"
    writer = get_stream_writer()
    _status(
        _("Starting the full run of {n:,} conversations…", n=spec.size)
        if spec.task == "chat"
        else _("Starting the full run of {n:,} rows…", n=spec.size)
    )
    watch = not state.get("ignore_stop")
    result = await run_generation(
        spec,
        spec.size,
        run_dir,
        generator=get_chat_models("generate"),
        judge=get_chat_models("judge") if settings.judge_full_run else None,
        concurrency=settings.max_concurrency,
        start=settings.concurrency,
        engine=settings.engine,
        seed=spec.version,
        on_progress=lambda p: writer({"progress": p | {"task": spec.task}}),
        chunks=_chunks(spec),
        should_stop=quality.stop_rule if watch else None,
    )
    if result.paused:
        p = result.progress
        fig = _run_figures(spec, run_dir)
        tips = quality.suggestions(fig) or [_("add sub-topics, or sharpen the label definitions")]
        text = (
            "**"
            + _("Paused at {done:,} of {total:,} rows:", done=p["done"], total=p["total"])
            + f"** {result.paused}\n\n"
            + _("Rather than finish a weak dataset, I suggest a fix first:")
            + "\n"
            + "\n".join(f"- {t}" for t in tips[:3])
            + "\n\n"
            + _(
                "Tell me the change (e.g. “add topics about shipping and returns”, “sharpen the "
                "definition of neutral”) and I will make a new sample — or say “continue anyway” "
                "to finish this run (the rows made so far are kept), or cancel."
            )
        )
        return Command(
            goto="review_paused",
            update={
                "run_dir": str(run_dir),
                "critique": fig,
                "messages": [_say(text, kind="paused")],
                "stage": "paused",
            },
        )
    fig = _run_figures(spec, run_dir)
    fig["failed"] = result.failed
    fig["duplicates_replaced"] = result.progress["duplicates"]
    fig["retries"] = result.progress["retries"]
    short = "\n\n**" + _("The run stopped short:") + f"** {result.reason}" if result.reason else ""
    details = ""
    if spec.rag is not None:
        report, details = rag_talk.summary(fig), rag_talk.details(fig)
        made = _(
            "Generated {made:,} of {n:,} rows; {dup} near copies were replaced.",
            made=result.rows,
            n=spec.size,
            dup=result.progress["duplicates"],
        )
    elif spec.task == "chat":
        report = (
            _ratings_words(fig)
            + "\n\n"
            + _("The weakest conversations:")
            + "\n\n"
            + weakest(read_rows(run_dir))
        )
        made = _(
            "Generated {made:,} of {n:,} conversations; {dup} near copies were replaced.",
            made=result.rows,
            n=spec.size,
            dup=result.progress["duplicates"],
        )
    else:
        report, details = quality.plain_summary(fig), quality.render_figures(fig)
        made = _(
            "Generated {made:,} of {n:,} rows; {dup} near copies were replaced.",
            made=result.rows,
            n=spec.size,
            dup=result.progress["duplicates"],
        )
    text = f"{made}{short}\n\n{report}\n\n" + _(
        "Approve to export the dataset (a download), or cancel."
    )
    return Command(
        goto="review_dataset",
        update={
            "run_dir": str(run_dir),
            "critique": fig,
            "messages": [_say(text, kind="dataset", details=details, charts=_chart_figures(fig))],
            "stage": "dataset",
        },
    )


async def export(state: State) -> Command[Literal["review_publish", "review_dataset"]]:
    settings = get_settings()
    spec = _spec(state)
    owner = state.get("owner")
    # Signed-in users each get their own folder: two people naming a dataset alike never collide.
    base = settings.datasets_dir / re.sub(r"[^\w-]", "_", owner) if owner else settings.datasets_dir
    out = Path(state.get("out_dir") or base / spec.name)
    fig = state.get("critique", {})
    metrics = {
        k: fig[k]
        for k in ("rows", "agreement", "duplicates", "duplicates_replaced", "failed", "retries")
        if fig.get(k) is not None
    }
    metrics["samples"] = state.get("samples_made", 0)
    metrics["refinements"] = state.get("refinements", 0)
    try:
        folder = export_dataset(
            spec,
            read_rows(Path(state["run_dir"] or "")),
            out,
            model_info=_model_info(),
            history=state.get("history", []),
            metrics=metrics,
        )
        archive = zip_folder(folder)
    except (
        OSError
    ) as exc:  # a full disk, a read-only or missing folder: the rows stay where they are
        why = (
            _("the disk is full")
            if exc.errno in (errno.ENOSPC, errno.EDQUOT)
            else _(
                "the disk refused the write ({reason})",
                reason=exc.strerror or type(exc).__name__,
            )
        )
        msg = _say(
            _(
                "I could not write the dataset folder `{folder}`: {why}. The generated rows are "
                "kept in `{run}`; free some space and approve again.",
                folder=out,
                why=why,
                run=state.get("run_dir"),
            )
        )
        return Command(goto=_to("review_dataset"), update={"messages": [msg], "stage": "dataset"})
    text = (
        _(
            "Your dataset **{name}** is ready: download it below (a zip with the data as a "
            "spreadsheet and in the Hugging Face format).",
            name=spec.name,
        )
        + "\n\n"
        + _(
            "Publish it? Say e.g. “push it to the hub as my-org/my-dataset, private” or “send it "
            "to Argilla” — I will ask you to confirm the exact target first. Or say “done”."
        )
    )
    # for people who write code: where the folder is and how to load it (the chat folds it away)
    code = (
        _("Saved in `{folder}`.", folder=folder)
        + f"\n\n```python\nfrom datasets import load_dataset\nds = load_dataset({str(folder)!r})\n```"
    )
    return Command(
        goto="review_publish",
        update={
            "export_dir": str(folder),
            "stage": "publish",
            "messages": [
                _say(text, kind="export", path=str(folder), archive=str(archive), details=code)
            ],
        },
    )


def _model_info() -> dict[str, str]:
    settings = get_settings()
    model = get_chat_model("generate")
    name = (
        getattr(model, "model", None) or getattr(model, "model_name", None) or type(model).__name__
    )
    return {
        "model": str(name),
        "backend": type(model).__name__,
        "temperature": str(settings.temperature),
    }
