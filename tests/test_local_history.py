"""Without sign-in, one local user keeps the history: who it is, where it may be used, its threads.

With no users and no Hugging Face sign-in the app signs in a single local user by itself (Chainlit's
header sign-in, no sign-in page) so that Chainlit keeps its history sidebar and a reloaded page
keeps the conversation. It is never used when the app listens beyond this machine without
`ALLOW_UNAUTHENTICATED=true`, and its conversations have no owner — like the CLI's and those made
before it existed — so all of them stay reachable. The last test starts the real app and signs in
over HTTP as the browser does.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage, HumanMessage

from agent import auth, i18n
from agent.config import Settings
from agent.history import (
    EXPORTED,
    FINISHED,
    WELCOME_BACK,
    data_layer,
    drop_reopen_notes,
    first_request,
    graph_thread,
    link_thread,
    quoted,
    shorten,
    shown_for,
)
from agent.session import Conversation, open_graph, unfinished_threads
from tests.chat_helpers import say, stage

ROOT = Path(__file__).resolve().parents[1]
DESCRIPTION = "A dataset covering customer reviews for an e-commerce website."


# --- who the local user is, and where it may stand in for sign-in ---------------------------


@pytest.mark.parametrize(
    ("host", "auth_on", "allow", "local"),
    [
        ("127.0.0.1", False, False, True),
        ("localhost", False, False, True),
        ("::1", False, False, True),
        ("0.0.0.0", False, True, True),  # opened on purpose: ALLOW_UNAUTHENTICATED=true
        ("0.0.0.0", False, False, False),  # the app refuses to start here anyway
        ("127.0.0.1", True, False, False),  # real sign-in: nobody is signed in by the app
        ("0.0.0.0", True, True, False),
    ],
)
def test_the_local_user_stands_in_only_where_nobody_need_sign_in(
    host: str, auth_on: bool, allow: bool, local: bool
) -> None:
    assert auth.local_user_on(host, auth_on, allow) is local
    user = auth.local_user(
        f"{host}:8000" if ":" not in host else f"[{host}]:8000", host, auth_on, allow
    )
    assert (user is not None) is local
    if user is not None:
        assert user.identifier == auth.LOCAL_USER == "local"
        assert user.metadata == {"provider": "local"}


@pytest.mark.parametrize(
    ("header", "signed_in"),
    [
        ("127.0.0.1:8000", True),
        ("localhost:8000", True),
        ("LOCALHOST", True),
        ("[::1]:8000", True),
        ("app.localhost:8000", True),  # *.localhost always resolves to this machine
        ("127.0.0.2", True),
        ("evil.example:8000", False),  # a site elsewhere pointing its name at 127.0.0.1
        ("192.168.1.20:8000", False),
    ],
)
def test_on_this_machine_only_a_page_opened_by_a_loopback_name_is_signed_in(
    header: str, signed_in: bool
) -> None:
    assert (auth.local_user(header, "127.0.0.1", False, False) is not None) is signed_in
    # opened to the network on purpose, every visitor is the local user
    assert auth.local_user(header, "0.0.0.0", False, True) is not None


def test_request_host_drops_the_port() -> None:
    assert auth.request_host("127.0.0.1:8000") == "127.0.0.1"
    assert auth.request_host("[::1]:8000") == "::1"
    assert auth.request_host("Example.org") == "example.org"
    assert auth.request_host(None) == ""


def test_no_password_user_can_take_the_local_users_name(tmp_path: Path) -> None:
    with pytest.raises(auth.AuthError, match="nobody signs in"):
        auth.add_user(tmp_path / "users.json", auth.LOCAL_USER, "long enough pw")
    assert not (tmp_path / "users.json").exists()
    with i18n.using("ro"), pytest.raises(auth.AuthError, match="nu se autentifică nimeni"):
        auth.add_user(tmp_path / "users.json", auth.LOCAL_USER, "long enough pw")


# --- the local user's threads: unowned, so old ones and the CLI's stay reachable ------------


async def test_old_unowned_work_is_offered_to_the_local_user_and_owned_work_is_not(
    fake_model, settings_env: Path
) -> None:
    async with open_graph() as graph:
        old = Conversation(graph, "t-old")  # before the local user existed, or from the CLI
        await say(old, DESCRIPTION)
        ev = await say(old, "positive, negative and neutral")
        assert stage(ev) == "contract"
        alice = Conversation(graph, "t-alice", owner="alice")
        await say(alice, DESCRIPTION)

        offered = await unfinished_threads(graph, owner=None, exclude="t-new")
        assert offered == [("t-old", DESCRIPTION)]
        again = Conversation(graph, "t-old", owner=None)  # the local user's owner is None
        assert await again.allowed()
        prompt = await again.pending_prompt()
        assert prompt is not None and prompt["stage"] == "contract"

        # "Continue it" shows the contract it continues: the latest one, not a later question
        values = (await again.state()).values
        shown = shown_for(values, prompt["stage"])
        assert shown is not None and shown.additional_kwargs.get("kind") == "contract"
        assert "positive" in str(shown.content) and "negative" in str(shown.content)
        assert first_request(values) == DESCRIPTION


def test_what_continue_it_shows_for_each_review_point() -> None:
    messages = [
        HumanMessage(content=DESCRIPTION),
        AIMessage(content="Which labels?", additional_kwargs={"kind": "question"}),
        AIMessage(content="contract v1", additional_kwargs={"kind": "contract"}),
        AIMessage(content="contract v2", additional_kwargs={"kind": "contract"}),
        AIMessage(content="sample 1", additional_kwargs={"kind": "sample"}),
        AIMessage(content="An answer to a question.", additional_kwargs={"kind": "answer"}),
    ]
    values = {"messages": messages}
    assert str(shown_for(values, "contract").content) == "contract v2"  # type: ignore[union-attr]
    assert str(shown_for(values, "sample").content) == "sample 1"  # type: ignore[union-attr]
    # a clarifying question (or any review point without its own kind): the last thing said
    assert str(shown_for(values, "clarify").content) == "An answer to a question."  # type: ignore[union-attr]
    assert shown_for({"messages": [HumanMessage(content="hi")]}, "contract") is None


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("Un set de date scurt.", 80, "Un set de date scurt."),
        (
            "Un set de date cu recenzii de clienți pentru un magazin online, în limba română",
            40,
            "Un set de date cu recenzii de clienți…",
        ),
        ("word " * 10, 12, "word word…"),
        ("abcdefghijklmnopqrstuvwxyz", 10, "abcdefghi…"),  # one long word: cut, still marked
        ("  many   spaces\nand lines  ", 80, "many spaces and lines"),
    ],
)
def test_a_description_is_cut_between_words_and_says_so(
    text: str, limit: int, expected: str
) -> None:
    got = shorten(text, limit)
    assert got == expected
    assert len(got) <= limit


def test_a_quoted_description_leaves_the_full_stop_to_the_sentence() -> None:
    assert quoted(DESCRIPTION) == DESCRIPTION[:-1]  # “… website”. not “… website.”.
    assert quoted("word " * 50, 20).endswith("word…")  # a cut one keeps its "…"


def test_the_offer_keeps_a_whole_description_and_never_cuts_a_word() -> None:
    desc = (
        "Un set de date cu recenzii de clienți pentru un magazin online, în limba română, cu "
        "etichetele pozitiv, negativ și neutru, pentru un clasificator de sentimente."
    )
    assert shorten(desc) == desc  # 160 characters: a usual description is shown whole
    long = desc + " " + desc
    cut = shorten(long)
    assert cut.endswith("…") and long.startswith(cut[:-1])
    assert long[len(cut) - 1] in " ,"  # the cut falls between words


# --- the history database: made on first use, threads linked, "Welcome back" once ---------


def _settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", users_file=tmp_path / "users.json")  # type: ignore[call-arg]


async def test_the_history_makes_its_tables_on_first_use_and_links_a_continued_thread(
    tmp_path: Path,
) -> None:
    """Sign-in off, the app's start-up hook does not make the history tables: the data layer's
    first query does. "Continue it" names the chat after the dataset and records which graph
    thread it shows, so reopening it (a reload) shows that dataset."""
    import chainlit.data as cl_data

    settings = _settings(tmp_path)
    layer = data_layer(settings)
    before = cl_data._data_layer
    cl_data._data_layer = layer  # what Chainlit's get_data_layer() returns in the app
    try:
        assert not settings.history_path.exists()
        from chainlit.user import User

        user = await layer.create_user(User(identifier=auth.LOCAL_USER))
        assert user is not None and user.identifier == "local"
        # Chainlit made the row at the click (named after the button), with its author and the
        # chat profile as a tag (a list, which SQLite cannot hold as such)
        await layer.update_thread(
            "chat-2", name="continue_thread", user_id=user.id, tags=["dataset-agent"]
        )
        await link_thread("chat-2", "t-old", shorten(DESCRIPTION, 100), wait_s=1)
        thread = await layer.get_thread("chat-2")
        assert thread is not None
        assert thread["name"] == DESCRIPTION and thread["userIdentifier"] == "local"
        assert graph_thread(thread) == "t-old"
        assert thread["tags"] == ["dataset-agent"]
        assert graph_thread({"id": "chat-3", "metadata": None}) == "chat-3"
        assert graph_thread({"id": "chat-4", "metadata": json.dumps({"x": 1})}) == "chat-4"
        listed = await layer.get_all_user_threads(user_id=user.id)
        assert [t["id"] for t in listed or []] == ["chat-2"]
    finally:
        cl_data._data_layer = before
        await layer.engine.dispose()
    tables = sqlite3.connect(settings.history_path).execute(
        "SELECT name FROM sqlite_master WHERE type='table'"
    )
    assert {"users", "threads", "steps", "elements", "feedbacks"} <= {r[0] for r in tables}


def _step(step_id: str, output: str, kind: str = "assistant_message") -> dict[str, str]:
    return {"id": step_id, "type": kind, "output": output}


def test_a_reopened_thread_keeps_one_welcome_in_any_language() -> None:
    with i18n.using("ro"):
        romanian = str(WELCOME_BACK)
    assert romanian != str(WELCOME_BACK)  # the catalogue has it
    thread: dict[str, Any] = {
        "id": "t",
        "steps": [
            _step("1", DESCRIPTION, "user_message"),
            _step("2", "Here is the proposed contract"),
            _step("3", str(WELCOME_BACK)),  # an earlier reload, in English
            _step("4", romanian),  # another, read in Romanian
            _step("5", str(EXPORTED)),
            _step("6", str(FINISHED)),
            _step("7", str(WELCOME_BACK), "user_message"),  # the user typed it: theirs
        ],
    }
    assert drop_reopen_notes(thread) == ["3", "4", "5", "6"]
    assert [s["id"] for s in thread["steps"]] == ["1", "2", "7"]
    assert drop_reopen_notes(thread) == []


# --- the real app without users: signed in with no sign-in page --------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def running_app(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ARGILLA_", "HF_", "OPENAI_"))},
        "DATA_DIR": str(tmp_path / "data"),
        "USERS_FILE": str(tmp_path / "users.json"),  # no such file: no users
        "LLM_PROVIDER": "ollama",
        "OLLAMA_BASE_URL": "http://127.0.0.1:9",
    }
    env.pop("CHAINLIT_AUTH_SECRET", None)
    env.pop("APP_USERS", None)
    # Chainlit keeps uploads in <app root>/.files and deletes that folder when it stops: a root of
    # this test's own (the project's config and pages linked in) leaves other running apps alone
    root = tmp_path / "root"
    root.mkdir()
    for name in (".chainlit", "public", "chainlit.md", "chainlit_ro-RO.md"):
        if (ROOT / name).exists():
            (root / name).symlink_to(ROOT / name)
    env["CHAINLIT_APP_ROOT"] = str(root)
    chainlit = Path(sys.executable).with_name("chainlit")
    log = tmp_path / "app.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(chainlit), "run", "app.py", "--headless", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(url + "/auth/config", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert "Traceback" not in log.read_text(), log.read_text()


def test_the_app_without_users_signs_in_its_local_user_and_lists_its_history(
    running_app: str,
) -> None:
    config = httpx.get(running_app + "/auth/config").json()
    # what Chainlit's page reads: log in by header (no form), and a history sidebar
    assert config["requireLogin"] and config["headerAuth"] and not config["passwordAuth"]
    assert config["oauthProviders"] == []

    with httpx.Client(base_url=running_app) as client:
        assert client.post("/project/threads", json={"pagination": {"first": 5}}).status_code == 401
        reply = client.post("/auth/header")
        assert reply.status_code == 200 and reply.json() == {"success": True}
        assert client.get("/user").json()["identifier"] == "local"
        assert client.get("/project/settings").json()["dataPersistence"] is True
        threads = client.post("/project/threads", json={"pagination": {"first": 5}, "filter": {}})
        assert threads.status_code == 200 and threads.json()["data"] == []

    # a page opened under another name (DNS rebinding) gets no session
    refused = httpx.post(running_app + "/auth/header", headers={"Host": "evil.example"})
    assert refused.status_code == 401 and "access_token" not in refused.cookies
