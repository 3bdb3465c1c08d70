"""`python -m agent user add`: a password from a pipe is read once, without echo warnings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from agent.auth import verify


def _run(args: list[str], stdin: str, users: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "USERS_FILE": str(users)}
    return subprocess.run(
        [sys.executable, "-m", "agent", "user", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_a_piped_password_is_read_once_and_nothing_warns(tmp_path: Path) -> None:
    users = tmp_path / "users.json"
    done = _run(["add", "alice"], "correct horse battery\n", users)
    assert done.returncode == 0, done.stderr
    assert "alice can sign in now" in done.stdout
    assert "echo" not in done.stderr.lower() and "warning" not in done.stderr.lower()
    hashes = json.loads(users.read_text())
    assert verify(hashes, "alice", "correct horse battery")
    assert not verify(hashes, "alice", "wrong password here")


def test_a_short_password_is_refused_with_a_reason(tmp_path: Path) -> None:
    done = _run(["add", "bob"], "short\n", tmp_path / "users.json")
    assert done.returncode == 1
    assert "Could not add bob" in done.stderr
    assert not (tmp_path / "users.json").exists()
