"""Chat history: Chainlit's SQLAlchemy data layer on SQLite by default, PostgreSQL by `DATABASE_URL`.

Chainlit stores users, threads, steps (messages) and feedback there and lists a signed-in user's
threads in its sidebar; the graph's own checkpoint (contract, sample, run) stays in
`checkpoints.sqlite`, keyed by the same thread id, so reopening a thread reopens the dataset too.
Chainlit checks a thread's author before it resumes, lists or deletes it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from agent.config import Settings

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


async def init_history(settings: Settings) -> str:
    """Create the history tables if missing; return the database URL."""
    url = database_url(settings)
    if url.startswith("sqlite"):
        settings.history_path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            for statement in schema(url):
                await conn.execute(text(statement))
    finally:
        await engine.dispose()
    return url


REDACTED = "[removed: a token or API key]"


def redact(value: Any) -> Any:
    """Tokens and keys out of any text, list or mapping bound for the history database."""
    from agent.session import SECRET

    if isinstance(value, str):
        return SECRET.sub(REDACTED, value)
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def data_layer(settings: Settings) -> Any:
    """Chainlit's SQLAlchemy layer with every write of text (names, messages, metadata) redacted."""
    from chainlit.data.sql_alchemy import SQLAlchemyDataLayer

    class RedactingDataLayer(SQLAlchemyDataLayer):
        async def update_thread(
            self,
            thread_id: str,
            name: str | None = None,
            user_id: str | None = None,
            metadata: dict[str, Any] | None = None,
            tags: list[str] | None = None,
        ) -> None:
            await super().update_thread(
                thread_id, redact(name), user_id, redact(metadata), redact(tags)
            )

        async def create_step(self, step_dict: Any) -> None:
            await super().create_step(redact(step_dict))

    return RedactingDataLayer(conninfo=database_url(settings), user_thread_limit=200)
