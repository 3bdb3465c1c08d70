"""The app without its built-in model: a bare `pip install -e .` (no `local` extra — as on a machine
without a C compiler) still starts with `dataset-agent serve` and says plainly what is missing and
how to get Ollama, in the reader's language; and what `serve` sets up for Chainlit.

The end-to-end test copies the project into a temporary folder, makes a fresh venv there, installs
it bare (pip's cache and this machine's package index), starts `dataset-agent serve` from another
folder, loads the page, opens one chat session over Chainlit's socket.io and reads its first
message. About 90 s here, most of it pip.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import socketio

from agent import i18n, llm
from agent.backends import local
from agent.config import Settings
from agent.serve import (
    ServeError,
    chainlit_environment,
    check_port,
    project_root,
    terminal_language,
)

ROOT = Path(__file__).resolve().parents[1]
SKIP = {".venv", ".git", "data", ".files", "tests", "bench", ".argilla-venv", ".mypy_cache"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


DEAD_OLLAMA = f"http://127.0.0.1:{_free_port()}"  # nothing listens there


@pytest.fixture
def no_built_in(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As if llama-cpp-python had not installed: `import llama_cpp` fails."""
    local.missing.cache_clear()
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # None in sys.modules: ImportError
    monkeypatch.setattr(local, "_loaded", {})  # a model an earlier test loaded is not here
    yield
    local.missing.cache_clear()


# --- the notice, decided once and said in each reader's language ----------------------------------


def test_without_ollama_or_the_built_in_model_the_app_still_picks_ollama_and_says_how(
    no_built_in: None,
) -> None:
    provider, notice = llm.resolve_provider(
        Settings(llm_provider="auto", ollama_base_url=DEAD_OLLAMA)
    )
    assert provider == "ollama"  # works as soon as Ollama does, without a restart
    assert notice is not None
    with i18n.using("en"):
        text = str(notice)
    assert "https://ollama.com" in text and "`ollama pull llama3.1`" in text
    assert "built-in model is not installed" in text
    assert "Traceback" not in text and DEAD_OLLAMA not in text  # no technical detail
    assert len(text.split()) <= 40  # the first screen shows it: short
    with i18n.using("ro"):
        romanian = str(notice)
    assert romanian.startswith("Încă nu am un model cu care să scriu")
    assert "https://ollama.com" in romanian and "`ollama pull llama3.1`" in romanian


def test_with_the_built_in_model_the_notice_says_it_is_a_demo_and_how_to_get_ollama() -> None:
    local.missing.cache_clear()
    assert local.missing("smollm2") is None  # the dev venv has the `local` extra
    provider, notice = llm.resolve_provider(
        Settings(llm_provider="auto", ollama_base_url=DEAD_OLLAMA)
    )
    assert provider == "local"
    with i18n.using("en"):
        assert str(notice).startswith("Ollama is not running, so I am using the small built-in")
    with i18n.using("ro"):
        assert str(notice).startswith("Ollama nu rulează, așa că folosesc micul model încorporat")


def test_choosing_the_built_in_model_when_it_is_missing_says_so_instead_of_a_traceback(
    no_built_in: None,
) -> None:
    provider, notice = llm.resolve_provider(Settings(llm_provider="local"))
    assert provider == "local" and notice is not None
    assert "llama-cpp-python is missing" in str(notice)
    with pytest.raises(llm.LLMUnavailable, match=r"Install Ollama from https://ollama\.com"):
        local.load_llama("smollm2")


def test_a_built_in_model_that_fails_to_load_counts_as_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import builtins

    real_import = builtins.__import__

    def broken(name: str, *args: object, **kwargs: object) -> object:
        if name == "llama_cpp":
            raise OSError("libllama.so: cannot open shared object file")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    local.missing.cache_clear()
    monkeypatch.delitem(sys.modules, "llama_cpp", raising=False)
    monkeypatch.setattr(builtins, "__import__", broken)
    try:
        assert local.missing("smollm2") == "llama-cpp-python"
    finally:
        monkeypatch.undo()
        local.missing.cache_clear()


# --- what `serve` sets up for Chainlit -----------------------------------------------------------


def test_serve_finds_the_project_folder_from_anywhere(tmp_path: Path) -> None:
    assert project_root(tmp_path) == ROOT  # the folder around the `agent` package wins
    env = chainlit_environment(ROOT, "0.0.0.0", 8123)
    # app.py's exposure check reads CHAINLIT_HOST; Chainlit reads its folder from CHAINLIT_APP_ROOT
    assert env == {
        "CHAINLIT_APP_ROOT": str(ROOT),
        "CHAINLIT_HOST": "0.0.0.0",
        "CHAINLIT_PORT": "8123",
    }


def test_serve_without_app_py_says_where_to_run_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import agent.serve

    monkeypatch.setattr(agent.serve, "__file__", str(tmp_path / "agent" / "serve.py"))
    with (
        i18n.using("ro"),
        pytest.raises(ServeError, match="rulați comanda din folderul proiectului"),
    ):
        project_root(tmp_path)


def test_serve_on_a_port_in_use_says_so_before_chainlit_starts() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with i18n.using("ro"), pytest.raises(ServeError, match=f"Portul {port} este deja folosit"):
            check_port("127.0.0.1", port)
    check_port("127.0.0.1", port)  # free again: nothing raised
    with pytest.raises(ServeError, match="not an address of this machine"):
        check_port("no-such-host.invalid", port)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("ro_RO", "ro"), ("Romanian_Romania", "ro"), ("en_US", "en"), ("fr_FR", "en"), (None, "en")],
)
def test_the_terminal_speaks_the_system_language(
    name: str | None, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import locale

    monkeypatch.setattr(locale, "getlocale", lambda: (name, "UTF-8"))
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LANG", raising=False)
    assert terminal_language() == expected


# --- end to end: a bare install in a fresh venv ----------------------------------------------------


def _copy_project(dest: Path) -> Path:
    """The project as a clean clone has it (no venv, no data)."""
    shutil.copytree(
        ROOT,
        dest,
        ignore=lambda folder, names: [
            n
            for n in names
            if (Path(folder) == ROOT and n in SKIP) or n.endswith(".egg-info") or n == "__pycache__"
        ],
    )
    return dest


def _base_python() -> str:
    """A Python that makes venvs (the running one, outside its own venv)."""
    return getattr(sys, "_base_executable", None) or sys.executable


def _sign_in_as_the_page_does(url: str) -> str:
    """The Cookie header of the page's session: without sign-in the app has one local user, whom
    the page gets from /auth/header (Chainlit's header sign-in); an app without it needs none."""
    config = httpx.get(url + "/auth/config", timeout=10).json()
    if not config.get("requireLogin"):
        return ""
    assert config.get("headerAuth"), config  # no sign-in configured: the local user
    signed = httpx.post(url + "/auth/header", timeout=10)
    assert signed.status_code == 200, signed.text
    return "; ".join(f"{k}={v}" for k, v in signed.cookies.items())


async def _open_session(url: str, language: str, cookie: str, wait: float = 60) -> list[str]:
    """Open one chat session as the page does (socket.io, then `connection_successful`, which runs
    the app's `on_chat_start`) and return what the app sends in the first seconds, as text."""
    events: list[str] = []
    first = asyncio.Event()
    client = socketio.AsyncClient()

    @client.on("*")
    async def _any(event: str, data: object = None) -> None:
        events.append(f"{event} {json.dumps(data, ensure_ascii=False, default=str)}")
        first.set()

    await client.connect(
        url,
        socketio_path="/ws/socket.io",
        transports=["websocket"],
        headers={"Accept-Language": language, "Cookie": cookie},
        auth={
            "clientType": "webapp",
            "sessionId": str(uuid.uuid4()),
            "threadId": str(uuid.uuid4()),
            "userEnv": "{}",
            "chatProfile": None,
        },
        wait_timeout=30,
    )
    try:
        await client.emit("connection_successful")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(first.wait(), wait)
        await asyncio.sleep(2)  # anything said right after the first event
    finally:
        await client.disconnect()
    return events


@pytest.mark.e2e
def test_a_bare_install_starts_and_says_what_is_missing(tmp_path: Path) -> None:
    started = time.monotonic()
    project = _copy_project(tmp_path / "dataset-agent")
    venv = tmp_path / "venv"
    subprocess.run([_base_python(), "-m", "venv", str(venv)], check=True, timeout=120)
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / "python"
    install_log = tmp_path / "install.log"
    with install_log.open("wb") as out:
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "--progress-bar", "off", "-e", str(project)],
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=1200,
        )
    assert done.returncode == 0, install_log.read_text()[-4000:]
    installed = time.monotonic() - started

    # bare: the built-in model's library is not there, and the notice says what the app does then
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("LLM_", "OLLAMA_", "CHAINLIT_"))
        },
        "OLLAMA_BASE_URL": DEAD_OLLAMA,
        "DATA_DIR": str(tmp_path / "data"),
        "HF_HUB_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    probe = (
        "import importlib.util, json; from agent import i18n; from agent.llm import resolve_provider\n"
        "provider, notice = resolve_provider()\n"
        "out = {'llama_cpp': importlib.util.find_spec('llama_cpp') is not None, 'provider': provider}\n"
        "for code in ('en', 'ro'):\n"
        "    with i18n.using(code): out[code] = str(notice)\n"
        "print(json.dumps(out))"
    )
    seen = json.loads(
        subprocess.run(
            [str(python), "-c", probe], env=env, cwd=tmp_path, capture_output=True, check=True
        ).stdout
    )
    assert seen["llama_cpp"] is False and seen["provider"] == "ollama"
    assert seen["ro"].startswith("Încă nu am un model") and "https://ollama.com" in seen["ro"]

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(bindir / "dataset-agent"), "serve", "--port", str(port)],
            cwd=tmp_path,  # not the project folder: serve finds it
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        page = None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                page = httpx.get(url + "/", timeout=5)
                break
            except httpx.HTTPError:
                time.sleep(0.5)
        assert page is not None and page.status_code == 200, log.read_text()
        up = time.monotonic() - started
        assert '<div id="root">' in page.text or 'id="root"' in page.text
        cookie = _sign_in_as_the_page_does(url)
        settings = httpx.get(
            url + "/project/settings",
            params={"language": "ro-RO"},
            headers={"Cookie": cookie},
            timeout=10,
        )
        assert settings.status_code == 200 and "ui" in settings.json()
        events = asyncio.run(_open_session(url, "ro-RO,ro;q=0.9", cookie))
        assert events, "the app sent nothing to a new chat session"
        # the first screen (the page's settings: welcome text and examples, and the session's
        # first messages) carries the notice
        first_screen = "\n".join([json.dumps(settings.json(), ensure_ascii=False), *events])
        shown = [
            code
            for code in ("ro", "en")
            if json.dumps(seen[code], ensure_ascii=False)[1:-1] in first_screen
        ]
        assert shown, first_screen[:3000]
        # Chainlit's folder is the project's: its own Romanian chrome is what the page gets
        chrome = httpx.get(url + "/project/translations", params={"language": "ro-RO"}, timeout=10)
        ours = json.loads((project / ".chainlit" / "translations" / "ro-RO.json").read_text())
        assert chrome.json()["translation"] == ours
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
    text = log.read_text()
    assert "Traceback" not in text, text
    assert "Starting the app: open http://127.0.0.1" in text
    print(f"bare install {installed:.0f} s, page up {up:.0f} s after the start, notice in {shown}")
