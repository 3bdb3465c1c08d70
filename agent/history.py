"""Chat history: Chainlit's SQLAlchemy data layer on SQLite by default, PostgreSQL by `DATABASE_URL`.

Chainlit stores users, threads, steps (messages) and feedback there and lists a signed-in user's
threads in its sidebar; the graph's own checkpoint (contract, sample, run) stays in
`checkpoints.sqlite`, keyed by the same thread id, so reopening a thread reopens the dataset too.
Chainlit checks a thread's author before it resumes, lists or deletes it.

A history thread usually shows the graph thread of the same id; after "Continue it" it shows an
older one, named in its metadata (`graph_thread`). A reopened thread says "Welcome back" (and
offers the export again) once: the notes of earlier reopenings are taken out of it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from agent import i18n
from agent.config import Settings
from agent.i18n import lazy
from agent.secrets import redact

# The schema Chainlit's SQLAlchemy layer expects (docs.chainlit.io/data-layers/sqlalchemy), in two
# dialects: SQLite keeps JSON and lists as text; PostgreSQL gets the documented UUID/JSONB/TEXT[].
_TABLES = [
    """CREATE TABLE IF NOT EXISTS users (
        "id" {uuid} PRIMARY KEY, "identifier" TEXT NOT NULL UNIQUE, "metadata" {json} NOT NULL,
        "createdAt" TEXT)""",
    """CREATE TABLE IF NOT EXISTS threads (
        "id" {uuid} PRIMARY KEY, "createdAt" TEXT, "name" TEXT, "userId" {uuid},
        "userIdentifier" TEXT, "tags" {list}, "metadata" {json},
        FOREIGN KEY ("userId") REFERENCES users("id") ON DELETE CASCADE)""",
    """CREATE TABLE IF NOT EXISTS steps (
        "id" {uuid} PRIMARY KEY, "name" TEXT NOT NULL, "type" TEXT NOT NULL,
        "threadId" {uuid} NOT NULL, "parentId" {uuid}, "streaming" BOOLEAN NOT NULL,
        "waitForAnswer" BOOLEAN, "isError" BOOLEAN, "metadata" {json}, "tags" {list},
        "input" TEXT, "output" TEXT, "createdAt" TEXT, "command" TEXT, "modes" {json},
        "start" TEXT, "end" TEXT, "generation" {json}, "showInput" TEXT, "language" TEXT,
        "indent" INT, "defaultOpen" BOOLEAN, "autoCollapse" BOOLEAN, "icon" TEXT,
        FOREIGN KEY ("threadId") REFERENCES threads("id") ON DELETE CASCADE)""",
    """CREATE TABLE IF NOT EXISTS elements (
        "id" {uuid} PRIMARY KEY, "threadId" {uuid}, "type" TEXT, "url" TEXT, "chainlitKey" TEXT,
        "name" TEXT NOT NULL, "display" TEXT, "objectKey" TEXT, "size" TEXT, "page" INT,
        "language" TEXT, "forId" {uuid}, "mime" TEXT, "props" {json}, "autoPlay" BOOLEAN,
        "playerConfig" {json},
        FOREIGN KEY ("threadId") REFERENCES threads("id") ON DELETE CASCADE)""",
    """CREATE TABLE IF NOT EXISTS feedbacks (
        "id" {uuid} PRIMARY KEY, "forId" {uuid} NOT NULL, "threadId" {uuid} NOT NULL,
        "value" INT NOT NULL, "comment" TEXT,
        FOREIGN KEY ("threadId") REFERENCES threads("id") ON DELETE CASCADE)""",
]
SQLITE_TYPES = {"uuid": "TEXT", "json": "TEXT", "list": "TEXT"}
POSTGRES_TYPES = {"uuid": "UUID", "json": "JSONB", "list": "TEXT[]"}


def schema(url: str) -> list[str]:
    types = POSTGRES_TYPES if url.startswith("postgresql") else SQLITE_TYPES
    return [table.format(**types) for table in _TABLES]


def database_url(settings: Settings) -> str:
    url = settings.database_url
    if not url:
        return f"sqlite+aiosqlite:///{settings.history_path.resolve()}"
    if url.startswith(("postgres://", "postgresql://")):  # the usual form → the async driver
        url = "postgresql+asyncpg://" + url.split("://", 1)[1]
    return url


async def _create_tables(conn: AsyncConnection, url: str) -> None:
    for statement in schema(url):
        await conn.execute(text(statement))


async def init_history(settings: Settings) -> str:
    """Create the history tables if missing; return the database URL."""
    url = database_url(settings)
    if url.startswith("sqlite"):
        settings.history_path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await _create_tables(conn, url)
    finally:
        await engine.dispose()
    return url


def data_layer(settings: Settings) -> Any:
    """Chainlit's SQLAlchemy layer with every write of text (names, messages, metadata) redacted.

    It makes its tables before its first query, whoever asks first (the app's start-up hook, a
    sign-in, a message)."""
    from chainlit.data.sql_alchemy import SQLAlchemyDataLayer

    url = database_url(settings)
    sqlite = url.startswith("sqlite")
    if sqlite:
        settings.history_path.parent.mkdir(parents=True, exist_ok=True)

    class RedactingDataLayer(SQLAlchemyDataLayer):
        _ready = False
        _making = asyncio.Lock()

        async def execute_sql(self, query: str, parameters: dict[str, Any]) -> Any:
            if not self._ready:
                async with self._making:
                    if not self._ready:
                        async with self.engine.begin() as conn:
                            await _create_tables(conn, self._conninfo)
                        type(self)._ready = True
            return await super().execute_sql(query, parameters)

        async def update_thread(
            self,
            thread_id: str,
            name: str | None = None,
            user_id: str | None = None,
            metadata: dict[str, Any] | None = None,
            tags: list[str] | None = None,
        ) -> None:
            kept: Any = redact(tags)
            if sqlite and kept is not None:  # a list is no SQLite value: kept as JSON text
                kept = json.dumps(kept)
            await super().update_thread(thread_id, redact(name), user_id, redact(metadata), kept)

        async def create_step(self, step_dict: Any) -> None:
            await super().create_step(redact(step_dict))

        async def get_all_user_threads(self, *args: Any, **kwargs: Any) -> Any:
            threads = await super().get_all_user_threads(*args, **kwargs)
            for thread in threads or []:  # JSON text on SQLite → the list Chainlit expects
                tags: Any = thread.get("tags")
                if isinstance(tags, str):
                    try:
                        thread["tags"] = json.loads(tags)
                    except json.JSONDecodeError:
                        thread["tags"] = []
            return threads

    return RedactingDataLayer(conninfo=url, user_thread_limit=200)


# --- a history thread ↔ the graph thread it shows ------------------------------------------


def _metadata(thread: Mapping[str, Any]) -> dict[str, Any]:
    raw = thread.get("metadata") or {}
    if isinstance(raw, str):  # SQLite keeps it as text
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            return {}
    return raw if isinstance(raw, dict) else {}


def graph_thread(thread: Mapping[str, Any]) -> str:
    """The graph thread a history thread shows: its own id, or the one it continued."""
    linked = _metadata(thread).get("graph_thread")
    return linked if isinstance(linked, str) and linked else str(thread["id"])


async def link_thread(thread_id: str, graph_thread_id: str, name: str, wait_s: float = 5.0) -> None:
    """Record that history thread `thread_id` now shows `graph_thread_id`, named after it.

    The click that led here was the thread's first interaction: Chainlit creates its row (named
    after the button) in a task of its own; this waits for the row, so its name is the last word."""
    from chainlit.data import get_data_layer

    layer = get_data_layer()
    if layer is None:
        return
    deadline = asyncio.get_running_loop().time() + wait_s
    while asyncio.get_running_loop().time() < deadline:
        try:
            if await layer.get_thread_author(thread_id):
                break
        except ValueError:  # no row yet (or no author yet)
            pass
        await asyncio.sleep(0.1)
    await layer.update_thread(thread_id, name=name, metadata={"graph_thread": graph_thread_id})


# --- what a reopened thread says, once -------------------------------------------------------

WELCOME_BACK = lazy("Welcome back — this conversation continues where it stopped.")
CARRYING_ON = lazy("Welcome back — carrying on with the step that was cut short.")
FINISHED = lazy("Welcome back — this conversation is finished.")
EXPORTED = lazy("Your exported dataset:")
REOPEN_NOTES = (WELCOME_BACK, CARRYING_ON, FINISHED, EXPORTED)
"""What the app says each time a thread is reopened: shown for the latest reopening only."""


def reopen_notes() -> set[str]:
    """Those notes in every language the app speaks (a thread may have been read in another)."""
    said = set()
    for code in i18n.NAMES:
        with i18n.using(code):
            said |= {str(note) for note in REOPEN_NOTES}
    return said


def drop_reopen_notes(thread: Mapping[str, Any]) -> list[str]:
    """Take the notes of earlier reopenings out of a thread about to be shown; their step ids."""
    notes = reopen_notes()
    steps = thread.get("steps") or []
    stale = [
        str(s["id"])
        for s in steps
        if s.get("type") == "assistant_message" and str(s.get("output") or "").strip() in notes
    ]
    steps[:] = [s for s in steps if str(s["id"]) not in stale]
    return stale


async def forget_steps(step_ids: list[str]) -> None:
    from chainlit.data import get_data_layer

    if (layer := get_data_layer()) is not None:
        for step_id in step_ids:
            await layer.delete_step(step_id)


# --- "Continue it": what the unfinished dataset is waiting on ------------------------------

SHOWN_AT = {
    "contract": ("contract",),
    "sample": ("sample",),
    "paused": ("paused",),
    "dataset": ("dataset",),
    "publish": ("export", "published"),
    "confirm_publish": ("confirm_publish",),
}
"""The kinds of message that show what a review point is about (the contract, the sample …)."""


def shown_for(values: Mapping[str, Any], stage: str | None) -> AIMessage | None:
    """The message that showed what the review point `stage` waits on: its latest contract,
    sample or run, else the last thing the assistant said (a clarifying question)."""
    said = [m for m in values.get("messages") or [] if isinstance(m, AIMessage)]
    kinds = SHOWN_AT.get(str(stage), ())
    for message in reversed(said):
        if message.additional_kwargs.get("kind") in kinds:
            return message
    return said[-1] if said else None


def shorten(text: str, limit: int = 160) -> str:
    """At most `limit` characters, cut between words with "…"."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut and not text[limit - 1].isspace():
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.-–—") + "…"


def first_request(values: Mapping[str, Any]) -> str:
    """What the user first asked for in a thread (its description)."""
    return next(
        (str(m.content) for m in values.get("messages") or [] if isinstance(m, HumanMessage)), ""
    )


def quoted(text: str, limit: int = 160) -> str:
    """A description to quote inside a sentence: shortened, and without a full stop of its own
    (“… website”. rather than “… website.”.)."""
    return shorten(text, limit).rstrip(". ")
