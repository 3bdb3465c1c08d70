"""Graph nodes: short async functions. Approval points are `interrupt()` in tiny `review_*` nodes;
every LLM call happens in another node, so re-running a review node on resume costs nothing."""

from __future__ import annotations

import errno
import re
from pathlib import Path
from typing import Any, Literal

from langchain_core.messages import AnyMessage, HumanMessage
from langgraph.config import get_stream_writer
from langgraph.graph import END
from langgraph.types import Command, interrupt

from agent import prompts, tasks
from agent.config import get_settings
from agent.context import session_settings
from agent.conversation import run_root as _run_root_of
from agent.conversation import say as _say
from agent.conversation import status as _status
from agent.conversation import transcript as _conversation
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
from agent.graph.reply_check import REVIEW_NODE
from agent.graph.reply_check import check_reply as _check_reply
from agent.graph.state import State
from agent.i18n import _
from agent.languages import find_language, fold, guess_language
from agent.llm import LLMBadOutput, as_messages, get_chat_model, get_chat_models, structured_call
from agent.reasoning import strip_reasoning
from agent.schemas import Clarification
from agent.spec import (
    DatasetSpec,
    SpecEdit,
    SpecError,
    apply_edits,
    check_size,
    spec_diff,
)
from agent.tasks import archetypes
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
            _say(f"{tasks.kind(new).render(new)}\n\n{ask}", kind="contract"),
        ]
        return Command(goto="review_contract", update=update | {"stage": "contract"})
    return Command(goto="sample", update=update)


async def _model_reading(spec: DatasetSpec, stage: str, text: str) -> Reading:
    """The model's reading of a reply the tables did not understand: it chooses from what the
    contract allows (`choice_schema`). Raises LLMBadOutput when its answer could not be read."""
    msgs = as_messages(
        prompts.CHOICE_SYSTEM.format(stage=stage, stage_help=prompts.STAGE_HELP[stage]),
        prompts.INTENT_USER.format(contract=tasks.kind(spec).render(spec), reply=text),
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
        reply = await get_chat_model("steer").ainvoke(msgs, config={"tags": [STREAM_TAG]})
        text = strip_reasoning(str(reply.content))  # a reasoning model's <think>… is not said
    except Exception:  # the structured reply already holds an answer; use it rather than fail
        text = ""
    return text or fallback.strip() or _("I could not find an answer to that; nothing was changed.")


# --- sample, critique, scale, export -------------------------------------------------------------


def _run_root() -> Path:
    return _run_root_of()


def _chunks(spec: DatasetSpec) -> list[dict[str, str]] | None:
    """The conversation's document chunks, for a contract whose rows use them."""
    return load_chunks(_run_root() / "documents") if tasks.kind(spec).uses_chunks(spec) else None


async def propose(state: State) -> Command[Literal["review_contract"]]:
    """The first contract of the kind of data asked for (its own module writes it)."""
    locked = state.get("locked") or {}
    return await tasks.kind(locked.get("task") or state.get("task") or "textcat").propose(state)


async def sample(state: State) -> Command[Literal["critique", "review_contract"]]:
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
        on_progress=lambda p: writer(
            {"progress": p | {"phase": "sample", "unit": tasks.kind(spec).unit}}
        ),
        chunks=_chunks(spec),
    )
    rows = sorted(read_rows(result.run_dir), key=lambda r: r["row_id"])
    if not rows:  # nothing to critique or to scale: say why, and stay at the contract
        why = result.reason or _("every reply of the model was unusable")
        text = (
            _("The sample came out empty: {why}", why=why)
            + "\n\n"
            + _(
                "The contract is unchanged (v{version}). Approve to try again, or change it "
                "(e.g. {examples}).",
                version=spec.version,
                examples=tasks.kind(spec).change_examples(spec),
            )
        )
        return Command(
            goto=_to("review_contract"),
            update={"samples_made": k, "stage": "contract", "messages": [_say(text)]},
        )
    return Command(goto="critique", update={"sample": rows, "samples_made": k})


def unchanged(exc: Exception, spec: DatasetSpec) -> str:
    """A refused change, and that the contract stayed as it was."""
    return f"{exc} " + _("The contract is unchanged (v{version}).", version=spec.version)


async def critique(state: State) -> Command[Literal["review_sample"]]:
    spec = _spec(state)
    _status(_("Reviewing the sample: writing the critique…"))
    return await tasks.kind(spec).critique(state, spec, state.get("sample", []))


async def scale(state: State) -> Command[Literal["review_dataset", "review_paused"]]:
    """The full run. A stop rule (near-duplicates or judge agreement) pauses it with a proposal
    rather than finishing a bad dataset; every row made so far stays in the run folder."""
    settings = session_settings()  # the CLI's --concurrency / --engine: this session's
    spec = _spec(state)
    run_dir = _run_root() / f"full-v{spec.version}-n{spec.size}"
    writer = get_stream_writer()
    kind = tasks.kind(spec)
    _status(kind.starting(spec.size))
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
        on_progress=lambda p: writer({"progress": p | {"unit": kind.unit}}),
        chunks=_chunks(spec),
        should_stop=quality.stop_rule if watch else None,
    )
    if result.paused:
        p = result.progress
        fig = kind.run_figures(spec, read_rows(run_dir))
        tips = kind.paused_tips(fig)
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
    fig = kind.run_figures(spec, read_rows(run_dir))
    fig["failed"] = result.failed
    fig["duplicates_replaced"] = result.progress["duplicates"]
    fig["retries"] = result.progress["retries"]
    short = "\n\n**" + _("The run stopped short:") + f"** {result.reason}" if result.reason else ""
    made, report, details = kind.run_report(
        spec, fig, result.rows, result.progress["duplicates"], read_rows(run_dir)
    )
    text = f"{made}{short}\n\n{report}\n\n" + _(
        "Approve to export the dataset (a download), or cancel."
    )
    return Command(
        goto="review_dataset",
        update={
            "run_dir": str(run_dir),
            "critique": fig,
            "messages": [
                _say(
                    text,
                    kind="dataset",
                    details=details,
                    charts={k: fig.get(k) for k in ("mix", "agreement_per_label", "agreement")},
                )
            ],
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
