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

from agent import prompts
from agent.config import get_settings
from agent.graph.publish import parse_target
from agent.graph.state import State
from agent.llm import LLMBadOutput, as_messages, get_chat_model, structured_call
from agent.schemas import ChatProposal, Clarification, CritiqueNotes, Intent, Proposal
from agent.spec import (
    MAX_TURNS,
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
from agent.tools import quality
from agent.tools.documents import load_chunks
from agent.tools.export import export_dataset, zip_folder
from agent.tools.generate import read_rows, run_generation

CHAT_WORDS = re.compile(
    r"\b(conversations?|dialog(ue)?s?|chats?|multi-turn|turns|assistant|chatbot|fine-?tun\w*|sft|instruction)\b",
    re.I,
)
JUST_GO = re.compile(r"\b(just go|go ahead|just do it|defaults?|surprise me|whatever)\b", re.I)
APPROVE = re.compile(
    r"^\s*(yes|y|ok|okay|sure|approve[d]?|looks good|lgtm|go|continue|da|oui|sí|si|ja|perfect)\W*$",
    re.I,
)
CANCEL = re.compile(r"^\s*(cancel|stop|quit|abort|no thanks)\W*$", re.I)
GENERATE_N = re.compile(
    r"\b(?:generate|make|produce|create|scale to)\s+(-?[\d][\d_,.]*)\s*(rows?)?\b", re.I
)


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


async def clarify(state: State) -> Command[Literal["ask_user", "propose", "review_contract"]]:
    """Ask at most two short questions, unless the request is clear or the user says "just go"."""
    if state.get("spec"):
        return Command(goto="review_contract", update={"stage": "contract"})
    rounds = state.get("clarify_rounds", 0)
    last = next((m for m in reversed(state["messages"]) if isinstance(m, HumanMessage)), None)
    said = " ".join(str(m.content) for m in state["messages"] if isinstance(m, HumanMessage))
    task = "chat" if CHAT_WORDS.search(said) else state.get("task", "textcat")
    if rounds >= 2 or (last is not None and JUST_GO.search(str(last.content))):
        return Command(goto="propose", update={"task": task})
    msgs = as_messages(
        prompts.CLARIFY_SYSTEM.format(rounds=rounds),
        prompts.CLARIFY_USER.format(conversation=_conversation(state["messages"])),
    )
    decision = await structured_call(get_chat_model("steer"), Clarification, msgs)
    update: dict[str, Any] = {
        "user_language": decision.user_language or "English",
        "task": "chat" if task == "chat" else decision.task,
    }
    if decision.ready or not decision.question.strip():
        return Command(goto="propose", update=update)
    update |= {
        "clarify_rounds": rounds + 1,
        "stage": "clarify",
        "messages": [
            _say(
                decision.question.strip()
                + "\n\n(Or say “just go” and I will use sensible defaults.)"
            )
        ],
    }
    return Command(goto="ask_user", update=update)


async def ask_user(state: State) -> Command[Literal["clarify", "ask_user"]]:
    answer = interrupt({"kind": "question", "stage": "clarify"})
    text = _reply_text(answer)
    if text is None:  # a button or a malformed payload: raising would fail this step on every retry
        return Command(goto="ask_user", update={"messages": [_say(NOT_TEXT)]})
    return Command(goto="clarify", update={"messages": [HumanMessage(content=text)]})


async def propose(state: State) -> Command[Literal["review_contract"]]:
    if state.get("task") == "chat":
        return await propose_chat(state)
    settings = get_settings()
    msgs = as_messages(
        prompts.PROPOSE_SYSTEM.format(user_language=state.get("user_language", "English")),
        prompts.PROPOSE_USER.format(conversation=_conversation(state["messages"])),
    )
    description = next(
        (str(m.content) for m in state["messages"] if isinstance(m, HumanMessage)),
        "A synthetic dataset.",
    )
    problem = ""
    for _ in range(3):  # a proposal with unusable labels is asked for again, not shown
        p = await structured_call(get_chat_model("steer"), Proposal, msgs)
        try:
            spec, notes = proposal_to_spec(
                description=description,
                name=p.name,
                labels=[lb.to_label() for lb in p.labels],
                multi_label=p.multi_label,
                language=p.language,
                size=p.size,
                style=Style(topics=p.topics[:8], length=p.length, tones=p.tones[:4] or ["neutral"]),
                max_rows=settings.max_rows,
            )
            break
        except SpecError as exc:
            problem = str(exc)
    else:
        raise LLMBadOutput(
            f"The model did not propose a usable contract ({problem}) — "
            "try naming the labels you want, e.g. “labels: positive, negative”."
        )
    ask = "Approve it to see a sample, or tell me what to change (e.g. “drop neutral”, “in Romanian”)."
    return _first_contract(state, spec, notes, ask=ask, intro=p.intro)


def _first_contract(
    state: State, spec: DatasetSpec, notes: list[str], *, ask: str, intro: str, extra: str = ""
) -> Command[Literal["review_contract"]]:
    """Show version 1 of the contract and wait for its review."""
    note = f"\n\n_Note: I {'; '.join(notes)}._" if notes else ""
    if state.get("user_language", "English").lower() not in ("english", "en") and intro.strip():
        ask = intro.strip()  # the person's own language, written by the model
    text = f"Here is the proposed contract:\n\n{render_spec(spec)}{note}{extra}\n\n{ask}"
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
    settings = get_settings()
    msgs = as_messages(
        prompts.PROPOSE_CHAT_SYSTEM.format(user_language=state.get("user_language", "English")),
        prompts.PROPOSE_USER.format(conversation=_conversation(state["messages"])),
    )
    description = next(
        (str(m.content) for m in state["messages"] if isinstance(m, HumanMessage)), "Chat data."
    )
    p = await structured_call(get_chat_model("steer"), ChatProposal, msgs)
    notes: list[str] = []
    turns = min(max(p.turns, 1), MAX_TURNS)
    if turns != p.turns:
        notes.append(f"turns {p.turns} is out of range, using {turns}")
    size = min(max(p.size, 1), settings.max_rows)
    if size != p.size:
        notes.append(f"size {p.size:,} is out of range, using {size:,}")
    chunks = load_chunks(_run_root() / "documents")
    spec = make_spec(
        {
            "task": "chat",
            "name": p.name,
            "description": description[:2000],
            "language": p.language or "English",
            "size": size,
            "style": {"topics": p.topics[:8]},
            "chat": {
                "system_prompt": p.system_prompt.strip() or "You are a helpful assistant.",
                "turns": turns,
                "personas": p.personas[:6],
                "intents": p.intents[:6],
                "answer_style": p.answer_style or "helpful and concise",
                "answer_length": p.answer_length,
                "grounded": bool(chunks),
            },
        }
    )
    docs = (
        f"\n\nConversations will be grounded in {len(chunks)} chunks of your documents."
        if chunks
        else ""
    )
    ask = "Approve it to see sample conversations, or tell me what to change (e.g. “3 turns”, “shorter answers”)."
    return _first_contract(state, spec, notes, ask=ask, intro=p.intro, extra=docs)


# --- review points: interrupt only ---------------------------------------------------------------


NOT_TEXT = (
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
STAGE_WORDS = {
    "contract": "the contract",
    "sample": "the sample",
    "dataset": "the finished dataset",
    "paused": "the paused run",
    "publish": "publishing",
    "confirm_publish": "the publishing confirmation",
    "clarify": "a question",
}
BUTTONS = ("approve", "cancel", "generate")
NEXT_ON_APPROVE = {"contract": "sample", "sample": "scale", "dataset": "export", "paused": "scale"}
CONTINUE = re.compile(r"\b(continue|carry on|resume|keep going|finish)\b", re.I)


def quick_intent(text: str) -> Intent | None:
    """Unambiguous replies need no model (and tiny models get them wrong)."""
    if APPROVE.match(text):
        return Intent(kind="approve")
    if CANCEL.match(text):
        return Intent(kind="cancel")
    m = GENERATE_N.search(text)
    if m:
        rows = parse_rows(m.group(1))
        return None if rows is None else Intent(kind="generate", rows=rows)
    return None


def parse_rows(raw: str) -> int | None:
    """A row count as typed: "1000", "1,000", "10.000" or "1_000"; None when not a whole number
    (a "10.000" read as ten would quietly make a dataset a thousand times too small)."""
    raw = raw.strip().rstrip(".,_")
    if re.fullmatch(r"-?\d+", raw):
        return int(raw)
    if re.fullmatch(r"-?\d{1,3}([.,_])\d{3}(\1\d{3})*", raw):
        return int(re.sub(r"[.,_]", "", raw))
    return None


def _button_problem(reply: dict[str, Any], stage: str, spec: DatasetSpec) -> str | None:
    """Why a button's payload cannot be acted on now (None when it can).

    A button carries the step it was shown at (and the contract version): a double click, another
    tab or an old message must not approve a step the user has not seen.
    """
    clicked = reply.get("stage")
    if clicked is not None and clicked != stage:
        return (
            f"That button was for {STAGE_WORDS.get(str(clicked), 'an earlier step')}; the "
            f"conversation has moved on to {STAGE_WORDS.get(stage, stage)}. Nothing was done."
        )
    version = reply.get("version")
    if version is not None and stage in ("contract", "sample") and version != spec.version:
        return (
            f"That button was for contract v{version}, but the contract is now v{spec.version}. "
            "Nothing was done — look at the latest version and click again."
        )
    action = reply.get("action")
    if stage == "publish":
        return None  # publishing reads its own actions (publish, done)
    if action == "retry":
        return (
            "There is nothing to retry: the last step finished. I am waiting for your reply on "
            f"{STAGE_WORDS.get(stage, stage)}."
        )
    if action not in BUTTONS:
        return f"I do not know the action “{str(action)[:40]}”; nothing was changed."
    rows = reply.get("rows")
    if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int)):
        return f"The number of rows must be a whole number; “{str(rows)[:40]}” is not. Nothing was changed."
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
    intent: Intent | None
    explicit = True  # a button, or words that need no model
    if isinstance(reply, dict) and "action" in reply:
        problem = _button_problem(reply, stage, spec)
        if problem:
            return Command(goto=_to(back), update={"messages": [_say(problem)]})
    if stage == "publish":
        return _interpret_publish(state, reply)
    if isinstance(reply, dict) and "action" in reply:
        intent = Intent(kind=reply["action"], rows=reply.get("rows"))
    else:
        text = _reply_text(reply)
        if text is None:
            return Command(goto=_to(back), update={"messages": [_say(NOT_TEXT)]})
        said.append(HumanMessage(content=text))
        asked = GENERATE_N.search(text)
        if asked and parse_rows(asked.group(1)) is None:
            msg = _say(
                f"The size must be a whole number of rows; “{asked.group(1)}” is not. "
                f"The contract is unchanged (v{spec.version})."
            )
            return Command(goto=_to(back), update={"messages": [*said, msg]})
        intent = quick_intent(text)
        if intent is None and stage == "paused" and CONTINUE.search(text):
            intent = Intent(kind="approve")
        explicit = intent is not None
        if intent is None:
            msgs = as_messages(
                prompts.INTENT_SYSTEM.format(stage=stage, stage_help=prompts.STAGE_HELP[stage]),
                prompts.INTENT_USER.format(contract=spec.model_dump_json(), reply=text),
            )
            try:
                intent = await structured_call(get_chat_model("steer"), Intent, msgs)
            except LLMBadOutput as exc:
                return Command(goto=_to(back), update={"messages": [*said, _say(str(exc))]})
    assert intent is not None
    if intent.kind == "generate" and intent.rows is not None:
        try:  # an impossible size is said at once, not offered for confirmation
            check_size(intent.rows, settings.max_rows)
        except SpecError as exc:
            msg = _say(f"{exc} The contract is unchanged (v{spec.version}).")
            return Command(goto=_to(back), update={"messages": [*said, msg]})
    if not explicit and stage in ("sample", "paused") and intent.kind in ("approve", "generate"):
        # A long run starts only on a clear yes: a model's reading of free text is not enough.
        rows = (
            f"{intent.rows:,}"
            if intent.kind == "generate" and intent.rows
            else f"all {spec.size:,}"
        )
        msg = _say(
            f"Shall I generate {rows} rows now? Say “yes” (or “generate N”), or tell me what to "
            "change first. Nothing was started."
        )
        return Command(goto=_to(back), update={"messages": [*said, msg]})

    if intent.kind == "approve":
        update_ok: dict[str, Any] = {"messages": said}
        if stage == "paused":  # the user chose to finish despite the stop rule
            update_ok["ignore_stop"] = True
        return Command(goto=_to(NEXT_ON_APPROVE[stage]), update=update_ok)
    if intent.kind == "cancel":
        msg = _say(
            "Stopped. Your contract, samples and rows are kept; write again to start a new dataset."
        )
        return Command(goto=_to(END), update={"messages": [*said, msg], "stage": "cancelled"})
    if intent.kind == "question":
        answer = await _answer(state, spec, said, fallback=intent.answer)
        return Command(goto=_to(back), update={"messages": [*said, _say(answer, kind="answer")]})

    edits = list(intent.edits)
    if intent.kind == "generate" and intent.rows is not None and intent.rows != spec.size:
        edits.append(SpecEdit(op="set_size", number=intent.rows))
    if intent.kind == "edit" and intent.rows is not None and not edits:
        edits.append(SpecEdit(op="set_size", number=intent.rows))
    try:
        new = apply_edits(spec, edits, max_rows=settings.max_rows) if edits else spec
    except SpecError as exc:
        msg = _say(f"{exc} The contract is unchanged (v{spec.version}).")
        return Command(goto=_to(back), update={"messages": [*said, msg]})

    update: dict[str, Any] = {"messages": said}
    if new is not spec:
        diff = spec_diff(spec, new)
        history = [*state.get("history", []), {"version": new.version, "diff": diff}]
        text = f"Contract v{spec.version} → v{new.version}:\n```diff\n" + "\n".join(diff) + "\n```"
        update |= {
            "spec": new.model_dump(),
            "history": history,
            "messages": [*said, _say(text, kind="diff")],
            "refinements": state.get("refinements", 0) + (1 if intent.kind == "edit" else 0),
        }
    if intent.kind == "generate":
        return Command(goto="scale", update=update | {"ignore_stop": False})
    # An edit: at the contract step show the new contract; later, make a new sample from it.
    if stage == "contract":
        update["messages"] = [*update["messages"], _say(render_spec(new), kind="contract")]
        return Command(goto="review_contract", update=update)
    return Command(goto="sample", update=update)


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
                or re.search(r"\b(done|finish(ed)?|that's all|nothing)\b", text, re.I)
                else "unclear"
            )
        )
    if action == "publish" and target and target.get("target") in ("hub", "argilla"):
        return Command(goto="prepare_publish", update={"messages": said, "publish_target": target})
    if action in ("done", "approve", "cancel"):
        msg = _say(f"All done. Your dataset is in `{state.get('export_dir')}`.")
        return Command(goto=END, update={"messages": [*said, msg], "stage": "done"})
    msg = _say(
        "To publish, name the target — e.g. “push it to the hub as my-org/my-dataset, private” or "
        "“send it to Argilla” — or say “done”. Nothing was sent."
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
    return text or fallback.strip() or "I could not find an answer to that; nothing was changed."


# --- sample, critique, scale, export -------------------------------------------------------------


def thread_root(thread_id: str) -> Path:
    """The folder holding a conversation's runs and attached documents."""
    return get_settings().runs_dir / re.sub(r"[^\w-]", "_", thread_id)


def _run_root() -> Path:
    return thread_root(_thread_id())


async def sample(state: State) -> Command[Literal["critique"]]:
    from agent.llm import get_chat_models  # one model per endpoint (LLM_ENDPOINTS)

    settings = get_settings()
    spec = _spec(state)
    k = state.get("samples_made", 0) + 1
    n = min(settings.sample_size, spec.size)
    run_dir = _run_root() / f"sample-{k:03d}-v{spec.version}"
    result = await run_generation(
        spec,
        n,
        run_dir,
        generator=get_chat_models("generate"),
        judge=get_chat_models("judge"),
        concurrency=settings.max_concurrency,
        seed=1000 * spec.version + k,
        chunks=load_chunks(_run_root() / "documents") if spec.task == "chat" else None,
    )
    rows = sorted(read_rows(result.run_dir), key=lambda r: r["row_id"])
    return Command(goto="critique", update={"sample": rows, "samples_made": k})


def _table(rows: list[dict[str, Any]], limit: int = 20) -> str:
    out = ["| # | text | label | judge |", "|---|---|---|---|"]
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
        who = "**User:**" if m["role"] == "user" else "**Assistant:**"
        content = m["content"][:limit] + ("…" if len(m["content"]) > limit else "")
        lines.append(f"{who} {content}")
    rating = f" · judge rating {row['rating']}/5" if row.get("rating") else ""
    head = f"_#{row['row_id']} · {row.get('persona', '')} · {row.get('intent', '')}{rating}_"
    reasons = f"\n> judge: {row['judge_reasons']}" if row.get("judge_reasons") else ""
    return head + "\n\n" + "\n\n".join(lines) + reasons


def weakest(rows: Iterable[dict[str, Any]], n: int = 3) -> str:
    """The n lowest-rated conversations as dialogues (unrated ones last)."""
    worst = sorted(rows, key=lambda r: (r.get("rating") or 6, r["row_id"]))[:n]
    return "\n\n---\n\n".join(dialogue(r) for r in worst)


async def critique_chat(
    state: State, spec: DatasetSpec, rows: list[dict[str, Any]]
) -> Command[Any]:
    fig = quality.figures(spec, rows)
    ratings = fig.get("ratings") or {}
    mean = f"{ratings['mean']:.1f}/5" if ratings.get("mean") is not None else "n/a"
    dist = ratings.get("distribution") or {}
    text = (
        f"Sample {state.get('samples_made', 1)} (contract v{spec.version}): {len(rows)} conversations · "
        f"mean judge rating {mean} · ratings {', '.join(f'{k}★ {v}' for k, v in dist.items() if v)} · "
        f"duplicates: {fig['duplicates']}\n\n"
        "The weakest conversations:\n\n"
        + weakest(rows)
        + "\n\n"
        + (
            "Suggestions:\n" + "\n".join(f"- {x}" for x in quality.suggestions(fig)) + "\n\n"
            if quality.suggestions(fig)
            else ""
        )
        + f"Approve to generate all {spec.size:,} conversations, say “generate N” for another size, "
        "or ask for changes (e.g. “harder questions”, “shorter answers”, “3 turns”)."
    )
    return Command(
        goto="review_sample",
        update={"critique": fig, "messages": [_say(text, kind="sample")], "stage": "sample"},
    )


async def critique(state: State) -> Command[Literal["review_sample"]]:
    spec = _spec(state)
    rows = state.get("sample", [])
    if spec.task == "chat":
        return await critique_chat(state, spec, rows)
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
        notes = {"problems": ["(the judge's written notes could not be read this time)"]}
    text = (
        f"Sample {state.get('samples_made', 1)} (contract v{spec.version}):\n\n{_table(rows)}\n\n"
        f"{quality.render_figures(fig, notes)}\n\n"
        f"Approve to generate all {spec.size:,} rows, say “generate N” for another size, "
        "or ask for changes (e.g. “make it more negative reviews”)."
    )
    return Command(
        goto="review_sample",
        update={
            "critique": fig | {"notes": notes},
            "messages": [_say(text, kind="sample")],
            "stage": "sample",
        },
    )


async def scale(state: State) -> Command[Literal["review_dataset", "review_paused"]]:
    """The full run. A stop rule (near-duplicates or judge agreement) pauses it with a proposal
    rather than finishing a bad dataset; every row made so far stays in the run folder."""
    from agent.llm import get_chat_models  # one model per endpoint (LLM_ENDPOINTS)

    settings = get_settings()
    spec = _spec(state)
    run_dir = _run_root() / f"full-v{spec.version}-n{spec.size}"
    writer = get_stream_writer()
    watch = not state.get("ignore_stop")
    result = await run_generation(
        spec,
        spec.size,
        run_dir,
        generator=get_chat_models("generate"),
        judge=get_chat_models("judge") if settings.judge_full_run else None,
        concurrency=settings.max_concurrency,
        seed=spec.version,
        on_progress=lambda p: writer({"progress": p}),
        chunks=load_chunks(_run_root() / "documents") if spec.task == "chat" else None,
        should_stop=quality.stop_rule if watch else None,
    )
    if result.paused:
        p = result.progress
        fig = quality.figures(spec, read_rows(run_dir))
        tips = quality.suggestions(fig) or ["add sub-topics, or sharpen the label definitions"]
        text = (
            f"**Paused at {p['done']:,} of {p['total']:,} rows:** {result.paused}\n\n"
            "Rather than finish a weak dataset, I suggest a fix first:\n"
            + "\n".join(f"- {t}" for t in tips[:3])
            + "\n\nTell me the change (e.g. “add topics about shipping and returns”, “sharpen the "
            "definition of neutral”) and I will make a new sample — or say “continue anyway” to finish "
            "this run (the rows made so far are kept), or cancel."
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
    fig = quality.figures(spec, read_rows(run_dir))
    fig["failed"] = result.failed
    fig["duplicates_replaced"] = result.progress["duplicates"]
    fig["retries"] = result.progress["retries"]
    short = f"\n\n**The run stopped short:** {result.reason}" if result.reason else ""
    if spec.task == "chat":
        ratings = fig.get("ratings") or {}
        mean = f"{ratings['mean']:.1f}/5" if ratings.get("mean") is not None else "n/a"
        report = f"Mean judge rating {mean}. The weakest conversations:\n\n" + weakest(
            read_rows(run_dir)
        )
    else:
        report = quality.render_figures(fig)
    text = (
        f"Generated {result.rows:,} of {spec.size:,} rows; "
        f"{result.progress['duplicates']} duplicates were replaced.{short}\n\n"
        f"{report}\n\nApprove to export the dataset folder, or cancel."
    )
    return Command(
        goto="review_dataset",
        update={
            "run_dir": str(run_dir),
            "critique": fig,
            "messages": [_say(text, kind="dataset")],
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
            "the disk is full"
            if exc.errno in (errno.ENOSPC, errno.EDQUOT)
            else f"the disk refused the write ({exc.strerror or type(exc).__name__})"
        )
        msg = _say(
            f"I could not write the dataset folder `{out}`: {why}. The generated rows are kept "
            f"in `{state.get('run_dir')}`; free some space and approve again."
        )
        return Command(goto=_to("review_dataset"), update={"messages": [msg], "stage": "dataset"})
    text = (
        f"Exported **{spec.name}** to `{folder}`.\n\n"
        f"```python\nfrom datasets import load_dataset\nds = load_dataset({str(folder)!r})\n```\n\n"
        "Publish it? Say e.g. “push it to the hub as my-org/my-dataset, private” or “send it to Argilla” "
        "— I will ask you to confirm the exact target first. Or say “done”."
    )
    return Command(
        goto="review_publish",
        update={
            "export_dir": str(folder),
            "stage": "publish",
            "messages": [_say(text, kind="export", path=str(folder), archive=str(archive))],
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
