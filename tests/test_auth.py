"""Sign-in pieces without a browser: password users, Hugging Face OAuth wiring, exposure, history."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from pydantic import SecretStr

from agent import auth
from agent.config import Settings
from agent.history import database_url, init_history


def _settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings(data_dir=tmp_path / "data", users_file=tmp_path / "users.json", **kw)  # type: ignore[arg-type]


def test_users_file_holds_argon2_hashes_readable_by_the_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    auth.add_user(path, "alice", "correct horse")
    auth.add_user(path, "bob", "battery staple")
    stored = json.loads(path.read_text())
    assert set(stored) == {"alice", "bob"}
    assert all(h.startswith("$argon2id$") and "correct" not in h for h in stored.values())
    assert path.stat().st_mode & 0o777 == 0o600
    users = auth.load_users(_settings(tmp_path))
    assert auth.verify(users, "alice", "correct horse")
    assert not auth.verify(users, "alice", "battery staple")  # bob's password
    assert not auth.verify(users, "carol", "correct horse")  # no such user
    assert not auth.verify(users, "alice", "")


@pytest.mark.parametrize(
    ("name", "password", "words"),
    [
        ("alice", "short", "8 characters"),
        ("../etc", "long enough pw", "User names"),
        ("", "long enough pw", "User names"),
        ("a b", "long enough pw", "User names"),
    ],
)
def test_bad_users_are_refused_with_a_sentence(
    tmp_path: Path, name: str, password: str, words: str
) -> None:
    with pytest.raises(auth.AuthError, match=words):
        auth.add_user(tmp_path / "users.json", name, password)
    assert not (tmp_path / "users.json").exists()


def test_users_from_the_environment_and_a_broken_file(tmp_path: Path) -> None:
    hashed = auth.hash_password("from the env")
    users = auth.load_users(_settings(tmp_path, app_users=f"dana:{hashed};  junk"))
    assert list(users) == ["dana"] and auth.verify(users, "dana", "from the env")
    (tmp_path / "users.json").write_text("{not json")
    with pytest.raises(auth.AuthError, match="not readable JSON"):
        auth.load_users(_settings(tmp_path))
    (tmp_path / "users.json").write_text('["alice"]')
    with pytest.raises(auth.AuthError, match="map user names"):
        auth.load_users(_settings(tmp_path))


@pytest.mark.parametrize(
    ("host", "auth_on", "allow", "refused"),
    [
        ("127.0.0.1", False, False, False),
        ("localhost", False, False, False),
        ("::1", False, False, False),
        ("0.0.0.0", False, False, True),
        ("192.168.1.20", False, False, True),
        ("example.org", False, False, True),
        ("0.0.0.0", True, False, False),
        ("0.0.0.0", False, True, False),
    ],
)
def test_no_network_listening_without_sign_in(
    host: str, auth_on: bool, allow: bool, refused: bool
) -> None:
    problem = auth.exposure_problem(host, auth_on, allow)
    assert (problem is not None) == refused
    if problem:
        assert host in problem and "ALLOW_UNAUTHENTICATED" in problem


def test_hugging_face_sign_in_uses_chainlit_generic_provider(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chainlit import oauth_providers

    for key in [*auth.HF_ENDPOINTS, "OAUTH_GENERIC_CLIENT_ID", "OAUTH_GENERIC_CLIENT_SECRET"]:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(oauth_providers, "providers", list(oauth_providers.providers))
    assert not auth.configure_hf_oauth(_settings(tmp_path))
    settings = _settings(
        tmp_path, hf_oauth_client_id="cid", hf_oauth_client_secret=SecretStr("csecret")
    )
    assert auth.configure_hf_oauth(settings)
    assert oauth_providers.get_configured_oauth_providers() == [auth.HF_PROVIDER]
    provider = oauth_providers.get_oauth_provider(auth.HF_PROVIDER)
    assert isinstance(provider, oauth_providers.GenericOAuthProvider)
    assert provider.authorize_url == "https://huggingface.co/oauth/authorize"
    assert provider.user_identifier == "preferred_username"
    assert provider.authorize_params["scope"] == "openid profile write-repos"
    no_write = _settings(
        tmp_path,
        hf_oauth_client_id="cid",
        hf_oauth_client_secret=SecretStr("csecret"),
        hf_oauth_publish=False,
    )
    assert auth.hf_scopes(no_write) == "openid profile"


async def test_history_tables_work_with_chainlits_data_layer(tmp_path: Path) -> None:
    from chainlit.data.sql_alchemy import SQLAlchemyDataLayer
    from chainlit.user import User

    settings = _settings(tmp_path)
    url = await init_history(settings)
    assert url == database_url(settings) and url.startswith("sqlite+aiosqlite:///")
    await init_history(settings)  # idempotent
    layer = SQLAlchemyDataLayer(conninfo=url)
    alice = await layer.create_user(User(identifier="alice", metadata={"provider": "password"}))
    bob = await layer.create_user(User(identifier="bob", metadata={}))
    assert alice and bob
    await layer.update_thread("t-alice", name="reviews", user_id=alice.id)
    assert await layer.get_thread_author("t-alice") == "alice"
    from chainlit.types import Pagination, ThreadFilter

    mine = await layer.list_threads(Pagination(first=10), ThreadFilter(userId=alice.id))
    theirs = await layer.list_threads(Pagination(first=10), ThreadFilter(userId=bob.id))
    assert [t["id"] for t in mine.data] == ["t-alice"] and theirs.data == []
    await layer.engine.dispose()
    tables = {
        r[0]
        for r in sqlite3.connect(settings.history_path).execute(
            "select name from sqlite_master where type='table'"
        )
    }
    assert tables == {"users", "threads", "steps", "elements", "feedbacks"}
    assert database_url(Settings(database_url="postgresql://u:p@db/x")).startswith(
        "postgresql+asyncpg://"
    )


def test_the_app_refuses_to_listen_on_the_network_without_sign_in(tmp_path: Path) -> None:
    """`chainlit run app.py --host 0.0.0.0` with no users: the process exits with the reason."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "DATA_DIR": str(tmp_path / "data"),
        "USERS_FILE": str(tmp_path / "none.json"),
        "LLM_PROVIDER": "local",
    }
    env.pop("APP_USERS", None)
    env.pop("ALLOW_UNAUTHENTICATED", None)
    chainlit = Path(sys.executable).with_name("chainlit")
    proc = subprocess.run(
        [str(chainlit), "run", "app.py", "--headless", "--host", "0.0.0.0", "--port", "1"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "Refusing to listen on 0.0.0.0 without sign-in" in proc.stdout + proc.stderr


def test_a_hugging_face_user_pushes_with_their_own_token() -> None:
    auth.hub_tokens["carol"] = "hf_carols_own_token_0123456789"
    try:
        assert auth.session_context("carol").hf_token == "hf_carols_own_token_0123456789"
        assert auth.session_context("dave").hf_token is None  # signed in with a password
        assert auth.session_context(None).hf_token is None  # sign-in off
    finally:
        auth.hub_tokens.pop("carol")


def test_signing_out_forgets_the_hugging_face_token(monkeypatch: pytest.MonkeyPatch) -> None:
    from chainlit.auth.jwt import create_jwt
    from chainlit.user import User

    monkeypatch.setenv("CHAINLIT_AUTH_SECRET", "x" * 48)
    auth.hub_tokens.update({"hf:carol": "hf_carol_0123456789abcdefghij", "hf:dan": "hf_dan_012"})
    try:
        cookie = {"access_token": create_jwt(User(identifier="hf:carol"))}
        assert auth.forget_token(cookie) == "hf:carol"
        assert auth.hub_tokens == {"hf:dan": "hf_dan_012"}  # only the one signing out
        assert (
            auth.forget_token({}) is None and auth.forget_token({"access_token": "forged"}) is None
        )
    finally:
        auth.hub_tokens.clear()
