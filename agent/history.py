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

# The schema Chainlit's SQLAlchemy layer expects (docs.chainlit.io/data-layers/sqlalchemy), with
# portable types: SQLite and PostgreSQL both accept these statements.
SCHEMA = [
    """CREATE TABLE IF NOT EXISTS users (
        "id" TEXT PRIMARY KEY, "identifier" TEXT NOT NULL UNIQUE, "metadata" TEXT NOT NULL,
        "createdAt" TEXT)""",
    """CREATE TABLE IF NOT EXISTS threads (
        "id" TEXT PRIMARY KEY, "createdAt" TEXT, "name" TEXT, "userId" TEXT,
        "userIdentifier" TEXT, "tags" TEXT, "metadata" TEXT,
        FOREIGN KEY ("userId") REFERENCES users("id") ON DELETE CASCADE)""",
    """CREATE TABLE IF NOT EXISTS steps (
        "id" TEXT PRIMARY KEY, "name" TEXT NOT NULL, "type" TEXT NOT NULL,
        "threadId" TEXT NOT NULL, "parentId" TEXT, "streaming" BOOLEAN NOT NULL,
        "waitForAnswer" BOOLEAN, "isError" BOOLEAN, "metadata" TEXT, "tags" TEXT,
        "input" TEXT, "output" TEXT, "createdAt" TEXT, "command" TEXT, "modes" TEXT,
        "start" TEXT, "end" TEXT, "generation" TEXT, "showInput" TEXT, "language" TEXT,
        "indent" INT, "defaultOpen" BOOLEAN, "autoCollapse" BOOLEAN, "icon" TEXT,
        FOREIGN KEY ("threadId") REFERENCES threads("id") ON DELETE CASCADE)""",
    """CREATE TABLE IF NOT EXISTS elements (
        "id" TEXT PRIMARY KEY, "threadId" TEXT, "type" TEXT, "url" TEXT, "chainlitKey" TEXT,
        "name" TEXT NOT NULL, "display" TEXT, "objectKey" TEXT, "size" TEXT, "page" INT,
        "language" TEXT, "forId" TEXT, "mime" TEXT, "props" TEXT, "autoPlay" BOOLEAN,
        "playerConfig" TEXT,
        FOREIGN KEY ("threadId") REFERENCES threads("id") ON DELETE CASCADE)""",
    """CREATE TABLE IF NOT EXISTS feedbacks (
        "id" TEXT PRIMARY KEY, "forId" TEXT NOT NULL, "threadId" TEXT NOT NULL,
        "value" INT NOT NULL, "comment" TEXT,
        FOREIGN KEY ("threadId") REFERENCES threads("id") ON DELETE CASCADE)""",
]


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
            for statement in SCHEMA:
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
