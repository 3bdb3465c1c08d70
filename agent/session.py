"""One conversation thread driven from outside the graph: the Chainlit app, the CLI and the tests.

`Conversation.send` takes the user's text or a button's action, checks it, feeds it to the graph
(as the first message, or as the resume value of the pending `interrupt()`), and yields events the
caller renders: messages, progress, the pending prompt, errors. Any failure leaves the thread at its
last checkpoint, so the next `send` (or Retry) carries on from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.types import Command

from agent import i18n
from agent.config import Settings, get_settings
from agent.context import Context
from agent.graph.graph import Graph, build_graph
from agent.graph.nodes import STREAM_TAG
from agent.graph.reply_check import REVIEW_NODE
from agent.i18n import _
from agent.llm import LLMError, friendly_error
from agent.paths import thread_root
from agent.reasoning import ReasoningFilter
from agent.secrets import SECRET
from agent.spec import DatasetSpec
from agent.tools.documents import add_documents
from agent.tools.realcheck import RealDataError, real_check, render_real_check
from agent.tools.runs import read_rows

log = logging.getLogger(__name__)

EventKind = Literal["message", "token", "progress", "status", "prompt", "error"]
"""`status`: the step is working — a line to show at once and replace in place (a sample's row
progress, "Reading your reply…"); `progress`: a full run's rows (`data` holds the engine's figures)."""


@dataclass
class Event:
    kind: EventKind
    text: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def full(self) -> str:
        """Everything the message shows: its text, then its table and details (which the chat
        shows as a table and a fold; the CLI prints them below)."""
        parts = [self.text, *(str(self.data[k]) for k in ("table", "details") if self.data.get(k))]
        return "\n\n".join(p for p in parts if p)


@contextlib.asynccontextmanager
async def open_graph(settings: Settings | None = None) -> AsyncIterator[Graph]:
    """The graph with its SQLite checkpoint in the data directory, open for the app's lifetime."""
    settings = settings or get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    async with AsyncSqliteSaver.from_conn_string(str(settings.checkpoint_path)) as saver:
        yield build_graph(saver)


RETRY = {"action": "retry"}
INVISIBLE = re.compile(r"[\u200b-\u200f\u2060-\u2064\ufeff\u202a-\u202e]")
"""Zero-width and direction marks: a message of only these is empty."""


BUSY = i18n.lazy("I am still working on the previous step — one moment, please.")
NOT_YOURS = i18n.lazy("That conversation does not exist or belongs to someone else.")

_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
_stopped: set[str] = set()
"""Threads whose running step the user stopped (this process): their next message is a reply."""

# What a step does, said the moment it starts: (stage of the pending prompt, button) → status.
OPENING = {
    ("contract", "approve"): i18n.lazy("Writing the sample…"),
    ("sample", "approve"): i18n.lazy("Starting the full run…"),
    ("paused", "approve"): i18n.lazy("Carrying on with the run…"),
    ("dataset", "approve"): i18n.lazy("Exporting the dataset…"),
    ("confirm_publish", "approve"): i18n.lazy("Publishing…"),
    ("confirm_publish", "replace"): i18n.lazy("Publishing…"),
    ("confirm_publish", "add_config"): i18n.lazy("Publishing…"),
}


def thread_lock(thread_id: str) -> asyncio.Lock:
    """One lock per thread in this process: two tabs (or a double click) never run one thread twice."""
    lock = _locks.get(thread_id)
    if lock is None:
        lock = _locks[thread_id] = asyncio.Lock()
    return lock


class Conversation:
    def __init__(self, graph: Graph, thread_id: str, owner: str | None = None) -> None:
        self.graph = graph
        self.thread_id = thread_id
        self.owner = owner
        """Who may use this thread (the signed-in user); None when sign-in is off."""
        self.lock = thread_lock(thread_id)
        self.context = Context()
        """Secrets for this session (tokens, keys): memory only, never checkpointed."""
        self.config: RunnableConfig = {
            "configurable": {"thread_id": thread_id},
            "recursion_limit": 200,
        }
        self.language_setting = "auto"
        """The language chosen in the settings ("auto": the user's writing, else the browser's)."""
        self.browser_language: str | None = None
        self.language: str | None = None
        """The language the app speaks in this conversation (a code of `i18n.NAMES`)."""

    def speak(self, text: str | None = None) -> str:
        """Choose the language for what follows (the setting, else the language `text` is written
        in, else the one spoken so far or the browser's) and use it in this task."""
        self.language = i18n.pick(
            setting=self.language_setting,
            text=text,
            browser=self.language or self.browser_language,
        )
        i18n.set_language(self.language)
        return self.language

    def stop(self) -> bool:
        """The user pressed Stop while a step runs (the caller cancels it): the step is not carried
        on by the next message, which is read as a reply at the review point before it. Retry still
        carries it on. False when no step was running."""
        if not self.lock.locked():
            return False
        _stopped.add(self.thread_id)
        return True

    @property
    def stopped(self) -> bool:
        return self.thread_id in _stopped

    async def state(self) -> Any:
        return await self.graph.aget_state(self.config)

    async def allowed(self) -> bool:
        """The thread is new, or it was started by this conversation's owner."""
        values = (await self.state()).values
        return not values or values.get("owner") == self.owner

    async def attach(self, files: list[tuple[str, bytes]]) -> tuple[int, list[str]]:
        """Chunk attached documents (.txt, .md, .pdf) for grounded conversations."""
        if not await self.allowed():
            return 0, [str(NOT_YOURS)]

        folder = thread_root(self.thread_id) / "documents"
        return await asyncio.to_thread(add_documents, folder, files)

    async def real_check(self, data: bytes) -> Event:
        """Score a classifier trained on this conversation's synthetic rows on the user's real CSV."""
        if not await self.allowed():
            return Event("error", str(NOT_YOURS))
        values = (await self.state()).values
        if not values.get("spec") or not values["spec"].get("labels"):  # labelled texts only
            return Event(
                "error", _("A real-data check needs a text-classification contract first.")
            )
        spec = DatasetSpec.model_validate(values["spec"])
        run_dir = values.get("run_dir")
        rows = list(read_rows(Path(run_dir))) if run_dir else list(values.get("sample") or [])
        if not rows:
            return Event(
                "error", _("Make a sample first; then I can compare it with your real examples.")
            )
        try:
            result = await asyncio.to_thread(real_check, spec, rows, data)
        except RealDataError as exc:
            return Event("error", f"{exc} " + _("Nothing was changed."))
        return Event("message", render_real_check(result), {"kind": "realcheck"})

    async def pending_prompt(self) -> dict[str, Any] | None:
        snap = await self.state()
        if snap.values and snap.values.get("owner") != self.owner:
            return None
        return snap.interrupts[0].value if snap.interrupts else None

    async def send(
        self, value: str | dict[str, Any], *, extra: dict[str, Any] | None = None
    ) -> AsyncIterator[Event]:
        """Feed the user's text (or an action dict) to the thread and yield what to show.

        One step at a time per thread: a second send while one runs (another tab, a double click)
        is told to wait and changes nothing.
        """
        if self.lock.locked():
            yield Event("error", str(BUSY))
            return
        async with self.lock:
            async for event in self._send(value, extra=extra):
                yield event

    async def _send(
        self, value: str | dict[str, Any], *, extra: dict[str, Any] | None = None
    ) -> AsyncIterator[Event]:
        settings = get_settings()
        if isinstance(value, str):
            text = INVISIBLE.sub("", value).strip()
            self.speak(text if not SECRET.search(text) else None)
            if not text:
                yield Event(
                    "error",
                    _(
                        "Your message is empty — tell me what dataset you need, or reply to my "
                        "last question."
                    ),
                )
                return
            if len(text) > settings.max_message_chars:
                yield Event(
                    "error",
                    _(
                        "That message is {n:,} characters; the limit is {most:,}. Please shorten "
                        "it — nothing was changed.",
                        n=len(text),
                        most=settings.max_message_chars,
                    ),
                )
                return
            if SECRET.search(text):
                # Never let a token into the transcript, the checkpoint or a prompt.
                yield Event(
                    "error",
                    _(
                        "That message looks like it contains a token or API key, so I did not "
                        "keep it. Paste tokens in the chat settings (⚙) instead; they stay in "
                        "memory for this session only."
                    ),
                )
                return
            value = text
        snap = await self.state()
        if self.language is None or not isinstance(value, str):
            first = (
                next(
                    (
                        str(m.content)
                        for m in snap.values.get("messages", [])
                        if isinstance(m, HumanMessage)
                    ),
                    None,
                )
                if self.language is None
                else None
            )
            self.speak(first)
        if snap.values and snap.values.get("owner") != self.owner:
            yield Event("error", str(NOT_YOURS))
            return
        graph_input: Any
        stopped = self.thread_id in _stopped
        _stopped.discard(self.thread_id)
        prompt = dict(snap.interrupts[0].value) if snap.interrupts else {}
        action = value.get("action") if isinstance(value, dict) else None
        if snap.interrupts:
            graph_input = Command(resume=value)
            opening = OPENING.get((str(prompt.get("stage")), str(action)))
            status = str(opening) if opening else _("Reading your reply…")
        elif snap.next and stopped and value != RETRY:
            # The user stopped that step: this is what they want instead, read at the review point
            # the stopped step started from (a Retry would carry the step on).
            graph_input = None
            status = _("Reading your reply…")
            try:
                await self._reply_instead(snap, value)
            except Exception:  # the checkpoint refused it: nothing changed, say so
                log.exception("could not hand the reply to the review point")
                text = _("I could not read that reply after the stop; press Retry.")
                yield Event("error", text, {"retry": True})
                return
        elif snap.next:
            # A step failed earlier; carry on from it. Text typed meanwhile is not an answer to anything.
            graph_input = None
            status = _("Carrying on with the step that did not finish…")
            if value != RETRY:
                yield Event("message", _("Picking up the step that did not finish before…"))
        elif isinstance(value, dict):
            yield Event(
                "error", _("There is nothing to approve right now — describe the dataset you need.")
            )
            return
        else:
            graph_input = {
                "messages": [HumanMessage(content=value)],
                "spec": None,
                "clarify_rounds": 0,
                "sample": [],
                "run_dir": None,
                "export_dir": None,
                "stage": "clarify",
                "owner": self.owner,
                **(extra or {}),
            }
            status = _("Reading your description…")
        yield Event("status", status)  # at once: the step may take minutes before it says more
        async for event in self._run(graph_input):
            yield event

    async def _reply_instead(self, snap: Any, value: str | dict[str, Any]) -> None:
        """Drop the stopped step and hand `value` to the review point before it, as if the user had
        answered there: `interpret` reads it (a clarifying answer goes back to `clarify`). The rows a
        stopped run made stay in its folder; asking for that run again resumes it."""
        stage = str(snap.values.get("stage") or "clarify")
        update: Command[Any]
        if stage in REVIEW_NODE:
            update = Command(goto="interpret", update={"reply": value, "stage": stage})
            node = REVIEW_NODE[stage]
        else:  # no review point yet: the first description was being read
            text = value if isinstance(value, str) else str(value.get("text") or "")
            update = Command(goto="clarify", update={"messages": [HumanMessage(content=text)]})
            node = "ask_user"
        await self.graph.aupdate_state(self.config, update, as_node=node)

    async def _run(self, graph_input: Any) -> AsyncIterator[Event]:
        hide: dict[Any, ReasoningFilter] = {}  # per streamed reply: its <think> block is not shown
        try:
            async for mode, chunk in self.graph.astream(
                graph_input,
                self.config,
                context=self.context,
                stream_mode=["updates", "custom", "messages"],
            ):
                if mode == "messages":
                    chunk_msg, meta = cast(tuple[Any, dict[str, Any]], chunk)
                    if STREAM_TAG in (meta.get("tags") or []) and chunk_msg.content:
                        reply = hide.setdefault(chunk_msg.id, ReasoningFilter())
                        if token := reply.feed(str(chunk_msg.content)):
                            yield Event("token", token)
                    continue
                if mode == "custom" and isinstance(chunk, dict) and "status" in chunk:
                    yield Event("status", str(chunk["status"]))
                    continue
                if mode == "custom" and isinstance(chunk, dict) and "progress" in chunk:
                    p = chunk["progress"]
                    if p.get("phase") == "sample":  # a sample's rows: a status line, not a run
                        yield Event("status", sample_status(p), {"phase": "sample", **p})
                    else:
                        yield Event("progress", data=p)
                    continue
                if mode != "updates" or not isinstance(chunk, dict):
                    continue
                for node, update in chunk.items():
                    if node == "__interrupt__":
                        for intr in update:
                            yield Event("prompt", data=dict(intr.value))
                        continue
                    if not isinstance(update, dict):
                        continue
                    for msg in update.get("messages", []) or []:
                        if isinstance(msg, AIMessage):
                            yield Event(
                                "message", str(msg.content), data=dict(msg.additional_kwargs)
                            )
        except LLMError as exc:
            yield Event(
                "error",
                f"{exc} " + _("Your conversation is saved — press Retry when ready."),
                {"retry": True},
            )
        except Exception as exc:  # any other failure: keep the thread, say what happened
            log.exception("graph step failed")
            err = friendly_error(exc, context=self.context)
            yield Event(
                "error",
                f"{err} " + _("Your conversation is saved — press Retry to try that step again."),
                {"retry": True},
            )


def sample_status(p: dict[str, Any]) -> str:
    """A sample's row progress in words: each row is written, then judged blind, then counted."""
    done, total, judged = int(p.get("done", 0)), int(p.get("total", 0)), int(p.get("judged") or 0)
    chat = p.get("unit") == "conversations"
    if done >= total:
        return (
            _("Sample: {n}/{n} conversations written and judged.", n=total)
            if chat
            else _("Sample: {n}/{n} rows written and judged.", n=total)
        )
    agree = (
        " · " + _("judge agrees on {pct:.0f} %", pct=p["agreement"] * 100)
        if p.get("agreement") is not None
        else ""
    )
    judging = " · " + _("judged {done}/{n}", done=judged, n=total) + agree if judged else ""
    row = (
        _("Writing sample conversation {i}/{n}", i=done + 1, n=total)
        if chat
        else _("Writing sample row {i}/{n}", i=done + 1, n=total)
    )
    return row + judging


async def unfinished_threads(
    graph: Graph, *, owner: str | None = None, exclude: str | None = None, limit: int = 5
) -> list[tuple[str, str]]:
    """The owner's threads waiting at a review point, newest first: [(thread_id, first message)]."""
    if graph.checkpointer is None:
        return []
    seen: list[str] = []
    async for tup in graph.checkpointer.alist(None, limit=500):  # type: ignore[union-attr]
        tid = tup.config["configurable"]["thread_id"]
        if tid not in seen and tid != exclude:
            seen.append(tid)
    found: list[tuple[str, str]] = []
    for tid in seen:
        conv = Conversation(graph, tid, owner)
        snap = await conv.state()
        if snap.values.get("owner") != owner:
            continue
        stage = snap.values.get("stage")
        if stage == "publish":  # exported: the dataset is made (publishing it is optional)
            continue
        if snap.interrupts or (snap.next and stage not in ("done", "cancelled")):
            first = next(
                (
                    str(m.content)
                    for m in snap.values.get("messages", [])
                    if isinstance(m, HumanMessage)
                ),
                "",
            )
            found.append((tid, first))
        if len(found) >= limit:
            break
    return found
