"""Chat history on a real PostgreSQL (`DATABASE_URL=postgresql://…`): a throwaway cluster from
Debian's PostgreSQL binaries, started for this module and removed after it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.config import Settings
from agent.history import data_layer, database_url, init_history
from agent.secrets import REDACTED

pytestmark = pytest.mark.e2e

# Debian's layout: /usr/lib/postgresql/<major>/bin; the newest installed
BIN = max(
    Path("/usr/lib/postgresql").glob("*/bin"),
    default=Path("/nonexistent"),
    key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
)


def _as_postgres(cmd: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    if not (BIN / "initdb").exists():
        if os.environ.get("CI"):
            raise RuntimeError("PostgreSQL is missing in CI: apt-get install postgresql")
        pytest.skip("PostgreSQL binaries are missing: apt-get install postgresql")
    home = Path(tempfile.mkdtemp(prefix="pg-"))
    if os.geteuid() == 0:
        shutil.chown(home, "postgres", "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = home / "data"
    subprocess.run(
        _as_postgres([str(BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]),
        check=True,
        capture_output=True,
    )
    opts = f"-p {port} -k {home} -c listen_addresses=127.0.0.1"
    subprocess.run(
        # -l: the server must not inherit our pipes, or this call waits for it to exit
        _as_postgres(
            [
                str(BIN / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                opts,
                "-l",
                str(home / "log"),
                "-w",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
        timeout=60,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres([str(BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(home, ignore_errors=True)


async def test_history_on_postgres(postgres: str, tmp_path: Path) -> None:
    from chainlit.context import init_http_context
    from chainlit.types import Pagination, ThreadFilter
    from chainlit.user import User

    init_http_context()  # steps are written from a request's context in the app
    settings = Settings(data_dir=tmp_path, database_url=postgres)
    assert database_url(settings).startswith("postgresql+asyncpg://")
    await init_history(settings)
    await init_history(settings)  # idempotent
    layer = data_layer(settings)
    try:
        alice = await layer.create_user(User(identifier="alice", metadata={"provider": "password"}))
        bob = await layer.create_user(User(identifier="bob", metadata={}))
        assert alice and bob
        thread = str(uuid.uuid4())
        await layer.update_thread(
            thread, name="my key is hf_abcdefghijklmnopqrstuvwxyz", user_id=alice.id, tags=["x"]
        )
        step = {
            "id": str(uuid.uuid4()),
            "threadId": thread,
            "name": "alice",
            "type": "user_message",
            "streaming": False,
            "output": "token: sk-abcdefghijklmnopqrstuv please",
            "metadata": {},
            "createdAt": "2026-11-26T00:00:00Z",
        }
        await layer.create_step(step)
        assert await layer.get_thread_author(thread) == "alice"
        got = await layer.get_thread(thread)
        assert got is not None
        assert got["name"] == f"my key is {REDACTED}"
        assert [s["output"] for s in got["steps"]] == [f"{REDACTED} please"]
        mine = await layer.list_threads(Pagination(first=10), ThreadFilter(userId=alice.id))
        theirs = await layer.list_threads(Pagination(first=10), ThreadFilter(userId=bob.id))
        assert [t["id"] for t in mine.data] == [thread] and theirs.data == []
    finally:
        await layer.engine.dispose()
