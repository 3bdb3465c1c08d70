"""Chainlit adapter: a chat session ↔ a graph thread; interrupts ↔ buttons beside free text.

No business logic lives here — `agent.session.Conversation` does the work; this file renders its
events (messages, the sample table, progress, prompts, errors, the download).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import chainlit as cl
import pandas as pd
from chainlit.config import FILES_DIRECTORY
from chainlit.types import ThreadDict
from markdown_it import MarkdownIt

from agent import auth, i18n
from agent.config import get_settings
from agent.graph.publish import fingerprint
from agent.history import (
    CARRYING_ON,
    EXPORTED,
    FINISHED,
    WELCOME_BACK,
    data_layer,
    drop_reopen_notes,
    first_request,
    forget_steps,
    graph_thread,
    init_history,
    link_thread,
    quoted,
    shorten,
    shown_for,
)
from agent.i18n import _, ngettext
from agent.llm import resolve_provider, set_provider
from agent.session import NOT_YOURS, SECRET, Conversation, Event, open_graph, unfinished_threads
from agent.tools.quality import charts

log = logging.getLogger(__name__)
MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")
"""Markdown → HTML for the details fold; raw HTML in the text is escaped, never passed through."""
_stack = contextlib.AsyncExitStack()
_graph: Any = None
_notice: str | None = None

# --- sign-in: off until users or Hugging Face OAuth exist; never open to the network without it ---
_settings = get_settings()
try:
    _users = auth.load_users(_settings)
except auth.AuthError as exc:
    raise SystemExit(str(exc)) from None
_hf_oauth = auth.configure_hf_oauth(_settings)
AUTH_ON = bool(_users) or _hf_oauth
_host = os.environ.get("CHAINLIT_HOST", "127.0.0.1")
if problem := auth.exposure_problem(_host, AUTH_ON, _settings.allow_unauthenticated):
    raise SystemExit(problem)
# Nobody signs in: one local user is signed in by itself, so the history sidebar and a reloaded
# page keep the conversation. Its threads have no owner (`_owner()` is None), as the CLI's.
LOCAL_USER = auth.local_user_on(_host, AUTH_ON, _settings.allow_unauthenticated)


def _auth_secret() -> str:
    """Chainlit signs sessions with CHAINLIT_AUTH_SECRET; make one (kept in DATA_DIR) if unset."""
    path = _settings.data_dir / ".auth_secret"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


if AUTH_ON or LOCAL_USER:
    os.environ.setdefault("CHAINLIT_AUTH_SECRET", _auth_secret())

    @cl.data_layer
    def history() -> Any:
        return data_layer(_settings)


if LOCAL_USER:

    @cl.header_auth_callback
    async def local_sign_in(headers: Any) -> cl.User | None:
        """No sign-in page: every visit is the local user (Chainlit's login page asks for it)."""
        return auth.local_user(headers.get("host"), _host, AUTH_ON, _settings.allow_unauthenticated)


if _users:

    @cl.password_auth_callback
    async def password_sign_in(username: str, password: str) -> cl.User | None:
        ok = await asyncio.to_thread(auth.verify, _users, username, password)
        return cl.User(identifier=username, metadata={"provider": "password"}) if ok else None


if _hf_oauth:

    @cl.oauth_callback
    async def hf_sign_in(
        provider_id: str,
        token: str,
        raw_user_data: dict[str, str],
        default_user: cl.User,
        id_token: str | None = None,
    ) -> cl.User | None:
        if provider_id != auth.HF_PROVIDER or not default_user.identifier:
            return None
        # "hf:" keeps a Hugging Face user apart from a password user who picked the same name.
        identifier = f"hf:{default_user.identifier}"
        # The token stays in this process's memory: user metadata is stored in the history database.
        auth.hub_tokens[identifier] = token
        return cl.User(identifier=identifier, metadata={"provider": "huggingface"})

    @cl.on_logout
    async def logout(request: Any, response: Any) -> None:
        """Signing out forgets the user's Hugging Face token."""
        auth.forget_token(dict(request.cookies))


def buttons(stage: str, *, exists: bool = False) -> list[tuple[str, str]]:
    """The buttons of a review point: (action, label in the session's language)."""
    cancel = ("cancel", _("Cancel"))
    if stage == "confirm_publish":
        if exists:
            return [
                ("replace", _("Replace its data")),
                ("add_config", _("Add as a new config")),
                cancel,
            ]
        return [("approve", _("Confirm upload")), cancel]
    return {
        "clarify": [("just_go", _("Just go"))],
        "contract": [("approve", _("Approve contract")), cancel],
        "sample": [("approve", _("Generate full size")), cancel],
        "dataset": [("approve", _("Export dataset")), cancel],
        "publish": [("done", _("Done"))],
        "paused": [("approve", _("Continue anyway")), cancel],
    }.get(stage, [])


@cl.on_app_startup
async def startup() -> None:
    global _graph, _notice
    settings = get_settings()
    provider, _notice = await asyncio.to_thread(resolve_provider, settings)
    set_provider(provider)
    _graph = await _stack.enter_async_context(open_graph(settings))
    if AUTH_ON:
        await init_history(settings)


@cl.on_app_shutdown
async def shutdown() -> None:
    await _stack.aclose()


def welcome() -> str:
    """The first screen's words, above the examples: what the app does, what to do first, and (when
    there is one) the model notice — short, in the reader's language."""
    text = _(
        "**Describe the dataset you need, in your own words.** I propose what it will contain, "
        "show you a sample to check, and make the whole dataset when you agree — no code needed. "
        "Start by writing below, or pick an example."
    )
    return f"{text}\n\n{_notice}" if _notice else text


@cl.set_chat_profiles
async def chat_profiles(user: Any = None, language: Any = None) -> list[cl.ChatProfile]:
    """One profile (Chainlit shows no picker for one): its description is the welcome text."""
    i18n.set_language(str(language or "en"))
    return [
        cl.ChatProfile(
            name="dataset-agent",
            display_name=_("Dataset agent"),
            markdown_description=welcome(),
            icon="/public/welcome.svg",
            default=True,
        )
    ]


@cl.set_starters
async def starters(user: Any = None, language: Any = None) -> list[cl.Starter]:
    """Examples to click on the first screen, in the browser's language."""
    i18n.set_language(str(language or "en"))
    return [
        cl.Starter(
            label=_("Product reviews: positive or negative"),
            message=_("A dataset of customer reviews for an online shop, labelled by sentiment."),
        ),
        cl.Starter(
            label=_("News by topic"),
            message=_("A dataset of short news articles labelled by topic."),
        ),
        cl.Starter(
            label=_("A customer-support assistant"),
            message=_("Chat conversations between a bank's support assistant and its customers."),
        ),
        cl.Starter(
            label=_("Questions and answers for a search system"),
            message=_(
                "Questions and answers for a retrieval system over an online shop's help pages, "
                "with hard negatives."
            ),
        ),
    ]


def _owner() -> str | None:
    user = cl.user_session.get("user")
    return getattr(user, "identifier", None) if AUTH_ON else None


def _conversation(thread_id: str | None = None) -> Conversation:
    conv = cl.user_session.get("conversation")
    if conv is None or (thread_id and conv.thread_id != thread_id):
        old = conv
        conv = Conversation(_graph, thread_id or cl.context.session.thread_id, _owner())
        # tokens typed in the settings stay with the session; else the signed-in user's own
        conv.context = old.context if old is not None else auth.session_context(conv.owner)
        conv.browser_language = getattr(cl.context.session, "language", None)
        if old is not None:
            conv.language_setting, conv.language = old.language_setting, old.language
        cl.user_session.set("conversation", conv)
    # this callback speaks the conversation's language (the browser's until the user writes)
    i18n.set_language(conv.language or i18n.pick(browser=conv.browser_language))
    return conv


def settings_widgets() -> list[Any]:
    """The chat settings panel (⚙), in the session's language."""
    return [
        cl.input_widget.Select(
            id="language",
            label=_("Language of the app"),
            items={
                _("Automatic (the language you write in)"): "auto",
                **{name: code for code, name in i18n.NAMES.items()},
            },
            initial_value="auto",
        ),
        cl.input_widget.Select(
            id="provider",
            label=_("Model provider (auto: Ollama if it answers, else the built-in model)"),
            values=["auto", "ollama", "openai", "local"],
            initial_value="auto",
        ),
        cl.input_widget.TextInput(
            id="hf_token",
            label=_("Hugging Face token (write access; kept in memory for this session only)"),
            placeholder="hf_…",
            initial="",
        ),
        cl.input_widget.TextInput(
            id="argilla_api_url",
            label=_("Argilla URL"),
            placeholder="http://localhost:6900",
            initial="",
        ),
        cl.input_widget.TextInput(
            id="argilla_api_key",
            label=_("Argilla API key (kept in memory for this session only)"),
            initial="",
        ),
        cl.input_widget.TextInput(
            id="argilla_workspace", label=_("Argilla workspace (optional)"), initial=""
        ),
    ]


SECRET_SETTINGS = ("hf_token", "argilla_api_key")
RESUME_DELAY_S = 0.5


@cl.on_settings_update
async def settings_update(values: dict[str, Any]) -> None:
    ctx = _conversation().context
    for key in ("hf_token", "argilla_api_url", "argilla_api_key", "argilla_workspace"):
        value = (values.get(key) or "").strip()
        if value or key not in SECRET_SETTINGS:
            setattr(ctx, key, value or None)
    # Chainlit saves the session's chat settings with the thread: keep tokens out of them.
    session = cl.context.session
    session.chat_settings = {
        k: ("" if k in SECRET_SETTINGS else v) for k, v in (session.chat_settings or {}).items()
    }
    language = values.get("language")
    conv = _conversation()
    if language in ("auto", *i18n.NAMES) and language != conv.language_setting:
        conv.language_setting = str(language)
        conv.speak()
        await cl.Message(
            content=_(
                "I will speak {language} from now on.", language=i18n.NAMES[conv.language or "en"]
            )
        ).send()
    provider = values.get("provider")
    if provider in ("auto", "ollama", "openai", "local") and provider != cl.user_session.get(
        "provider", "auto"
    ):
        cl.user_session.set("provider", provider)
        settings = get_settings().model_copy(update={"llm_provider": provider})
        chosen, notice = await asyncio.to_thread(resolve_provider, settings)
        conv.context.provider = chosen  # this chat only: other users keep theirs
        await cl.Message(
            content=str(notice)
            if notice
            else _(
                "Using the {provider} provider in this chat from now on; other users keep theirs.",
                provider=chosen,
            )
        ).send()


@cl.on_chat_start
async def chat_start() -> None:
    conv = _conversation()
    await cl.ChatSettings(settings_widgets()).send()
    # the model notice is on the first screen (`welcome`): a message here would hide that screen
    if await _reopen(conv):  # the same thread after an app restart
        return
    others = await unfinished_threads(_graph, owner=conv.owner, exclude=conv.thread_id)
    if others:
        tid, desc = others[0]
        # through _with_buttons: its button goes once the person answers or starts something else
        await _with_buttons(
            cl.Message(
                content=_(
                    "You have an unfinished dataset: “{description}”.", description=quoted(desc)
                ),
                actions=[
                    cl.Action(
                        name="continue_thread", payload={"thread_id": tid}, label=_("Continue it")
                    )
                ],
            )
        )


async def _forget(message: cl.Message) -> None:
    """A message carrying a token: blanked in the chat (the history layer redacts it too)."""
    message.content = _("(message removed: it contained a token or API key)")
    with contextlib.suppress(Exception):
        await message.update()


STILL_WORKING = i18n.lazy(
    "I am still working on the step above — wait for it, or press Stop (■) and then tell me what "
    "you want instead."
)


@cl.on_message
async def on_message(message: cl.Message) -> None:
    me = asyncio.current_task()
    running = _running()
    if running is not None and running is not me:  # a button's step or a resumed run is working
        # Chainlit made this message the session's task and ends its running state with it:
        # the step keeps Stop (and Stop still stops it), this message only gets an answer.
        cl.context.session.current_task = running
        _keep(asyncio.create_task(_still_running(running, me)))
        await cl.Message(content=str(STILL_WORKING)).send()
        return
    cl.user_session.set("running", me)
    try:
        await _on_message(message)
    finally:
        if cl.user_session.get("running") is me:
            cl.user_session.set("running", None)


async def _still_running(step: asyncio.Task[Any], message: asyncio.Task[Any] | None) -> None:
    if message is not None:
        await asyncio.wait({message})  # its end sent task_end
    if not step.done() and cl.context.session.current_task is step:
        await cl.context.emitter.task_start()


async def _on_message(message: cl.Message) -> None:
    await _drop_buttons()  # a typed answer answers the buttons shown
    if SECRET.search(message.content or ""):
        text = message.content
        await _forget(message)
        await _send(text)  # Conversation.send refuses it, keeps nothing and says why
        return
    files = [el for el in message.elements or [] if getattr(el, "path", None)]
    for csv in [el for el in files if str(el.name).lower().endswith(".csv")]:
        data = await asyncio.to_thread(Path(str(csv.path)).read_bytes)
        await _render(_conversation(), await _conversation().real_check(data))
    files = [el for el in files if not str(el.name).lower().endswith(".csv")]
    if files:
        conv = _conversation()
        payload = [(el.name, str(el.path)) for el in files]
        added, problems = await conv.attach(await asyncio.to_thread(_read_files, payload))
        used = len(files) - len(problems)
        note = ngettext(
            "Attached: {n} passage from {files} file; the data will be grounded in it.",
            "Attached: {n} passages from {files} file(s); the data will be grounded in them.",
            added,
            files=used,
        )
        await cl.Message(content="\n".join([note, *problems])).send()
        if not message.content.strip():
            return
    await _send(message.content)


def _read_files(payload: list[tuple[str, str]]) -> list[tuple[str, bytes]]:
    return [(name, Path(path).read_bytes()) for name, path in payload]


class Working:
    """One message showing that the step works, updated in place: what it does ("Reading your
    reply…", with the seconds it has taken), then its rows ("Writing sample row 3/10", a full run's
    progress). A status line makes way when the step says something (and comes back below it if
    the step goes on); at the end it goes, while a full run's last progress stays as its record."""

    TICK_S = 1.0
    EVERY_S = 0.5  # row progress: at most two updates a second

    def __init__(self) -> None:
        self.msg: cl.Message | None = None
        self.text = ""
        self.since = time.monotonic()  # when this status began (its seconds are counted)
        self.last = 0.0  # when the message was last written
        self.run = False  # the text is a full run's progress: it stays when the step ends
        self.quiet = False  # tokens are streaming: they show the work themselves
        self.progress: dict[str, Any] | None = None  # a full run's last figures
        self.lock = asyncio.Lock()

    async def status(self, text: str) -> None:
        if text != self.text or self.run:
            self.since = time.monotonic()
        await self._show(text, run=False, now=True)

    async def rows(self, text: str, *, run: bool, final: bool = False) -> None:
        await self._show(text, run=run, now=final)

    async def _show(self, text: str, *, run: bool, now: bool) -> None:
        async with self.lock:
            if self.msg is not None and self.run and not run:  # a run's progress stays, final
                if self.progress is not None:
                    self.text = _progress_text(self.progress, final=True)
                self.msg.content = self.text
                await self.msg.update()
                self.msg = None
            self.text, self.run = text, run
            t = time.monotonic()
            if self.msg is None:
                if self.quiet:
                    return
                self.msg = cl.Message(content=text)
                await self.msg.send()
            elif now or t - self.last >= self.EVERY_S:
                self.msg.content = text
                await self.msg.update()
            else:
                return
            self.last = t

    async def tick(self) -> None:
        """Every second while the step runs: a status line counts its seconds (and is shown again
        if it made way for a message)."""
        while True:
            await asyncio.sleep(self.TICK_S)
            async with self.lock:
                if self.run or not self.text or self.quiet:
                    continue
                seconds = int(time.monotonic() - self.since)
                content = f"{self.text} ({seconds} s)"
                if self.msg is None:
                    self.msg = cl.Message(content=content)
                    await self.msg.send()
                elif time.monotonic() - self.last >= self.TICK_S * 0.9:
                    self.msg.content = content
                    await self.msg.update()
                self.last = time.monotonic()

    async def make_way(self) -> None:
        """A message is about to be shown: a status line goes (a full run's progress stays)."""
        async with self.lock:
            if self.msg is not None and not self.run:
                with contextlib.suppress(Exception):
                    await self.msg.remove()
                self.msg = None

    async def finish(self) -> None:
        async with self.lock:
            self.quiet = True  # the ticker may still be scheduled: nothing new is shown
            if self.msg is None:
                return
            if self.run:  # the last progress, however soon it came, as what the run came to
                if self.progress is not None:
                    self.text = _progress_text(self.progress, final=True)
                self.msg.content = self.text
                await self.msg.update()
            else:
                with contextlib.suppress(Exception):
                    await self.msg.remove()
            self.msg = None


async def _send(value: str | dict[str, Any]) -> None:
    conv = _conversation()
    working = Working()
    streaming: cl.Message | None = None
    ticker = asyncio.create_task(working.tick())
    cl.user_session.set("last_said", None)  # the buttons of this step go on its last message
    try:
        async for event in conv.send(value):
            if event.kind == "status":
                await working.status(event.text)
                continue
            if event.kind == "progress":
                final = event.data["done"] == event.data["total"]
                working.progress = event.data
                await working.rows(_progress_text(event.data), run=True, final=final)
                continue
            if event.kind == "token":
                if streaming is None:
                    await working.make_way()
                    working.quiet = True
                    streaming = cl.Message(content="")
                await streaming.stream_token(event.text)
                continue
            if event.kind == "message" and event.data.get("kind") == "answer" and streaming:
                streaming.content = event.text
                await streaming.update()
                streaming, working.quiet = None, False
                continue
            await working.make_way()
            if event.kind in ("prompt", "error"):  # the step ends here: no status below it
                working.quiet = True
            await _render(conv, event)
    finally:
        ticker.cancel()
        with contextlib.suppress(BaseException):
            await ticker
        with contextlib.suppress(Exception):
            await working.finish()


async def _as_step(work: Awaitable[None]) -> None:
    """Run `work` as the session's step, as Chainlit runs a typed message: the UI shows it running
    (Stop instead of Send) and Stop cancels it. Chainlit does that for messages only — a button's
    callback or a reopened thread's run would otherwise work unseen and could not be stopped."""
    session = cl.context.session
    me = asyncio.current_task()
    other = _running()
    if other is not None and other is not me:  # e.g. an old button clicked while a step works:
        await work  # it gets its answer; the working step keeps its running state and Stop
        return
    cl.user_session.set("running", me)
    session.current_task = me
    await cl.context.emitter.task_start()
    try:
        await work
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a background task: nobody else would say it failed
        log.exception("step failed")
        await cl.ErrorMessage(
            content=_(
                "Something went wrong: {error}. Your conversation is saved.",
                error=str(exc) or type(exc).__name__,
            )
        ).send()
    finally:
        if cl.user_session.get("running") is me:
            cl.user_session.set("running", None)
        if session.current_task is me:  # not a newer step's running state
            session.current_task = None
            with contextlib.suppress(Exception):
                await cl.context.emitter.task_end()


def _running() -> asyncio.Task[Any] | None:
    """The task of the step working now in this chat session (None when idle)."""
    task = cl.user_session.get("running")
    return task if isinstance(task, asyncio.Task) and not task.done() else None


_tasks: set[asyncio.Task[Any]] = set()


def _keep(task: asyncio.Task[Any]) -> None:
    """Hold a reference to a background task until it is done (asyncio keeps only weak ones)."""
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


def _in_background(work: Awaitable[None]) -> None:
    """An action callback's step runs in its own task: the button's request returns at once."""
    _keep(asyncio.create_task(_as_step(work)))


def _progress_text(p: dict[str, Any], *, final: bool = False) -> str:
    """A full run's progress; `final`: what it came to when the step ended (no time left)."""
    chat = p.get("unit") == "conversations"
    done, total = p["done"], p["total"]
    if final or done >= total:
        head = (
            (
                _("Done: **{done:,} / {total:,}** conversations", done=done, total=total)
                if chat
                else _("Done: **{done:,} / {total:,}** rows", done=done, total=total)
            )
            if done >= total
            else (
                _("Stopped at **{done:,} / {total:,}** conversations", done=done, total=total)
                if chat
                else _("Stopped at **{done:,} / {total:,}** rows", done=done, total=total)
            )
        )
        return head + " · " + _("near copies replaced: {n}", n=p["duplicates"])
    if p.get("eta_s") is None:
        eta = "—"
    else:
        eta = _("{m:.0f} min {s:.0f} s", m=p["eta_s"] // 60, s=p["eta_s"] % 60)
    agreement = (
        ""
        if p.get("agreement") is None
        else " · " + _("same label from a second model: {pct:.0f} %", pct=p["agreement"] * 100)
    )
    waiting = f"⏸ {p['waiting']}\n\n" if p.get("waiting") else ""
    head = (
        _(
            "Writing conversations: **{done:,} / {total:,}** · {speed:.0f} a minute",
            done=done,
            total=total,
            speed=p["rows_per_min"],
        )
        if chat
        else _(
            "Writing rows: **{done:,} / {total:,}** · {speed:.0f} a minute",
            done=done,
            total=total,
            speed=p["rows_per_min"],
        )
    )
    return (
        f"{waiting}{head} · "
        + _("about {eta} left", eta=eta)
        + " · "
        + _("near copies replaced: {n}", n=p["duplicates"])
        + agreement
    )


async def _render(conv: Conversation, event: Event) -> None:
    if event.kind == "prompt":
        await _show_prompt(event.data)
        return
    if event.kind == "error":
        actions = (
            [cl.Action(name="retry", payload={}, label=_("Retry"))]
            if event.data.get("retry")
            else []
        )
        await _with_buttons(cl.Message(content=event.text, actions=actions))
        return
    elements: list[Any] = []
    kind = event.data.get("kind")
    content = event.text
    # what the message is about comes with it: the checkpoint may not hold it yet
    if kind == "sample" and (rows := event.data.get("rows")):
        frame = pd.DataFrame(rows)  # the columns come titled in the reader's language
        elements.append(cl.Dataframe(data=frame, name="sample", display="inline"))
    if kind == "dataset":
        fig = event.data.get("charts") or {}
        if fig.get("mix"):  # label data: the mix and agreement charts
            for name, chart in charts(fig).items():
                elements.append(cl.Plotly(name=name, figure=chart, display="inline"))
    if event.data.get("details"):  # the exact figures (or the folder and code): a closed fold
        html = MARKDOWN.render(str(event.data["details"]))
        elements.append(
            cl.CustomElement(
                name="Details", props={"title": _("Details"), "html": html}, display="inline"
            )
        )
    if kind == "published" and event.data.get("url"):
        elements.append(cl.Text(name="link", content=event.data["url"], display="inline"))
    if kind == "export" and event.data.get("archive"):
        archive = Path(event.data["archive"])
        elements.append(cl.File(name=archive.name, path=str(archive), display="inline"))
    # "Did you mean …?": each reading the graph offers is a button that sends exactly that edit
    actions = [
        cl.Action(name="choose", payload=c["value"], label=c["title"])
        for c in event.data.get("choices") or []
        if isinstance(c, dict) and isinstance(c.get("value"), dict)
    ]
    await _with_buttons(cl.Message(content=content, elements=elements, actions=actions))


async def _with_buttons(message: cl.Message) -> None:
    """Send a message; its buttons are the session's current ones (the older ones go)."""
    await _drop_buttons()
    if message.elements:
        # Chainlit deletes its files folder when an app stops — also under another instance
        # started from this folder (a second port, a test): make it again before writing to it.
        FILES_DIRECTORY.mkdir(exist_ok=True)
    await message.send()
    cl.user_session.set("last_said", message.id)
    if message.actions:
        cl.user_session.set("buttons", list(message.actions))


async def _drop_buttons() -> None:
    """Buttons are used once: a click, or a typed answer, removes all the buttons shown."""
    for action in cl.user_session.get("buttons") or []:
        with contextlib.suppress(Exception):
            await action.remove()
    cl.user_session.set("buttons", [])


async def _show_prompt(prompt: dict[str, Any], text: str | None = None) -> None:
    stage = str(prompt.get("stage"))
    payload: dict[str, Any] = {"stage": stage}
    if (
        prompt.get("version") is not None
    ):  # a button approves the contract version it was shown with
        payload["version"] = prompt["version"]
    exists = False
    if stage == "confirm_publish":  # the button confirms exactly the target it was shown with
        target = prompt.get("target") or {}
        payload["target"] = fingerprint(target)
        exists = bool(target.get("exists"))
    actions = [
        cl.Action(name=name, payload=payload, label=label)
        for name, label in buttons(stage, exists=exists)
    ]
    last = cl.user_session.get("last_said")
    if actions and not text and last is not None:  # on the contract, sample … they answer
        for action in actions:
            await action.send(for_id=str(last))
        cl.user_session.set("buttons", [*(cl.user_session.get("buttons") or []), *actions])
    elif actions:
        await _with_buttons(
            cl.Message(
                content=text or _("Click a button or just type your answer."), actions=actions
            )
        )
    elif text:
        await cl.Message(content=text).send()


async def _clicked(action: cl.Action, value: str | dict[str, Any]) -> None:
    _in_background(_click(action, value))


async def _click(action: cl.Action, value: str | dict[str, Any]) -> None:
    with contextlib.suppress(Exception):
        await action.remove()
    conv = _conversation()
    await _drop_buttons()
    prompt = await conv.pending_prompt()
    stage = action.payload.get("stage")
    if prompt is None and conv.stopped:  # a step was stopped: its review point answers again
        prompt = {"stage": (await conv.state()).values.get("stage")}
    if stage and (prompt is None or prompt.get("stage") != stage):
        await cl.Message(
            content=_("That button belongs to an earlier step; the conversation has moved on.")
        ).send()
        return
    await _send(value)


@cl.action_callback("approve")
async def on_approve(action: cl.Action) -> None:
    await _clicked(action, {"action": "approve", **_target(action)})


@cl.action_callback("cancel")
async def on_cancel(action: cl.Action) -> None:
    await _clicked(action, {"action": "cancel", **_target(action)})


@cl.action_callback("done")
async def on_done(action: cl.Action) -> None:
    await _clicked(action, {"action": "done", **_target(action)})


@cl.action_callback("replace")
async def on_replace(action: cl.Action) -> None:
    await _clicked(action, {"action": "replace", **_target(action)})


@cl.action_callback("add_config")
async def on_add_config(action: cl.Action) -> None:
    await _clicked(action, {"action": "add_config", **_target(action)})


def _target(action: cl.Action) -> dict[str, Any]:
    """What the button was shown for — the graph refuses it if the conversation has moved on."""
    return {k: action.payload[k] for k in ("target", "stage", "version") if k in action.payload}


@cl.action_callback("choose")
async def on_choose(action: cl.Action) -> None:
    await _clicked(action, dict(action.payload))


@cl.action_callback("just_go")
async def on_just_go(action: cl.Action) -> None:
    await _clicked(action, "just go")


@cl.action_callback("retry")
async def on_retry(action: cl.Action) -> None:
    await _clicked(action, {"action": "retry"})


@cl.action_callback("continue_thread")
async def on_continue(action: cl.Action) -> None:
    _in_background(_continue(action))


async def _continue(action: cl.Action) -> None:
    """The offered unfinished dataset, in this chat: what it waits on (its contract, sample …)
    shown again, then its buttons. The history keeps this chat as that dataset's."""
    with contextlib.suppress(Exception):
        await action.remove()
    tid = str(action.payload.get("thread_id", ""))
    if not tid or not await Conversation(_graph, tid, _owner()).allowed():
        await cl.Message(content=NOT_YOURS).send()
        return
    conv = _conversation(tid)
    values = (await conv.state()).values
    description = first_request(values)
    if (chat := cl.context.session.thread_id) != tid:
        with contextlib.suppress(Exception):  # the history is a convenience: never block on it
            await link_thread(chat, tid, name := shorten(description, 100))
            # Chainlit's own "first interaction" event: the sidebar reloads its list, so it shows
            # this chat under the dataset's name instead of the button's ("continue_thread")
            await cl.context.emitter.emit(
                "first_interaction", {"interaction": name, "thread_id": chat}
            )
    prompt = await conv.pending_prompt()
    if not prompt:  # a step was cut short: it carries on
        await _send({"action": "retry"})
        return
    cl.user_session.set("last_said", None)  # its buttons go on what it shows, or stand alone
    await cl.Message(
        content=_(
            "Continuing your unfinished dataset: “{description}”.",
            description=quoted(description),
        )
    ).send()
    if (shown := shown_for(values, prompt.get("stage"))) is not None:
        await _render(conv, Event("message", str(shown.content), dict(shown.additional_kwargs)))
    await _show_prompt(prompt)


@cl.on_chat_resume
async def chat_resume(thread: ThreadDict) -> None:
    """A conversation reopened from the history: the contract, sample and run come with it.

    Chainlit replaces the chat with the stored thread right after this returns, so anything sent
    now would vanish: the welcome, the pending buttons and a cut-short run follow in a task.
    The welcome of an earlier reopening (or reload) is taken out first: it is said once.
    """
    conv = _conversation(graph_thread(thread))  # after "Continue it": the dataset it continued
    stale = drop_reopen_notes(thread)  # in place: Chainlit shows `thread` after this returns
    await cl.ChatSettings(settings_widgets()).send()
    task = asyncio.create_task(_after_resume(conv, stale))
    cl.user_session.set("resume_task", task)  # keep a reference until it is done


async def _after_resume(conv: Conversation, stale: list[str] | None = None) -> None:
    with contextlib.suppress(Exception):  # the history is a convenience: never block on it
        await forget_steps(stale or [])
    await asyncio.sleep(RESUME_DELAY_S)
    if not await conv.allowed():  # Chainlit checks the author too; this guards the checkpoint
        await cl.Message(content=NOT_YOURS).send()
        return
    values = (await conv.state()).values
    if not values:  # nothing was started in this chat: nothing to welcome back to
        return
    archive = Path(values["export_dir"] + ".zip") if values.get("export_dir") else None
    if archive and archive.is_file():  # files are not kept in the history: offer it again
        await cl.Message(
            content=str(EXPORTED),
            elements=[cl.File(name=archive.name, path=str(archive), display="inline")],
        ).send()
    if not await _reopen(conv):
        await cl.Message(content=str(FINISHED)).send()


async def _reopen(conv: Conversation) -> bool:
    """Show where a reopened thread stands; a step cut short (the app was killed) carries on."""
    snap = await conv.state()
    prompt = await conv.pending_prompt()
    if prompt:
        await _show_prompt(prompt, str(WELCOME_BACK))
        return True
    if snap.next and snap.values.get("owner") == conv.owner:
        await cl.Message(content=str(CARRYING_ON)).send()
        await _as_step(_send({"action": "retry"}))  # running, with Stop, like any step
        return True
    return False


@cl.on_stop
async def on_stop() -> None:
    # First, before any await: the step's task is being cancelled and still holds the thread.
    if not _conversation().stop():
        return
    await _with_buttons(
        cl.Message(
            content=_(
                "Stopped. Everything made so far is saved. Press Resume to carry on, or type what "
                "to do instead (e.g. “generate 20”, “make the texts shorter”)."
            ),
            actions=[cl.Action(name="retry", payload={}, label=_("Resume"))],
        )
    )
