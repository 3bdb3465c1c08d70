"""Sign-in: password users (argon2 hashes) and "Sign in with Hugging Face" (Chainlit's generic OAuth).

Sign-in is off until users exist (`USERS_FILE`, default `users.json`, or `APP_USERS`) or Hugging Face
OAuth is configured (`HF_OAUTH_CLIENT_ID` + `HF_OAUTH_CLIENT_SECRET`). Without sign-in the app only
listens on a loopback address unless `ALLOW_UNAUTHENTICATED=true` says otherwise, and signs in one
local user (`LOCAL_USER`) by itself, with no sign-in page: Chainlit keeps a history sidebar (and a
conversation across a reload) for signed-in users only.

A Hugging Face user's access token is held in this process's memory (`hub_tokens`) for Hub pushes:
never in the user's metadata (the history database stores that), never in a log or the checkpoint.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from agent.config import Settings
from agent.context import Context
from agent.i18n import _

HF_PROVIDER = "huggingface"
HF_ENDPOINTS = {
    "OAUTH_GENERIC_AUTH_URL": "{base}/oauth/authorize",
    "OAUTH_GENERIC_TOKEN_URL": "{base}/oauth/token",
    "OAUTH_GENERIC_USER_INFO_URL": "{base}/oauth/userinfo",
    "OAUTH_GENERIC_USER_IDENTIFIER": "preferred_username",
    "OAUTH_GENERIC_NAME": HF_PROVIDER,
}
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
LOCAL_USER = "local"
"""The one user of an app without sign-in. Its conversations have no owner (`owner=None`, as the
CLI's and those made before this user existed), so all of them stay reachable; its name is kept
from password users, who would otherwise be shown its history."""

_hasher = PasswordHasher()
_DUMMY = _hasher.hash("not a real password")  # unknown users cost the same as wrong passwords

hub_tokens: dict[str, str] = {}
"""Signed-in Hugging Face users' access tokens, by user identifier: memory only."""


class AuthError(ValueError):
    """A bad username, password or users file; the message is one sentence for the user."""


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise AuthError("Passwords need at least 8 characters.")
    return _hasher.hash(password)


def load_users(settings: Settings) -> dict[str, str]:
    """{username: argon2 hash} from the users file and `APP_USERS` ("name:hash name:hash").

    Entries in `APP_USERS` are separated by whitespace or ';' (argon2 hashes contain commas)."""
    users: dict[str, str] = {}
    path = settings.users_file
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise AuthError(f"The users file {path} is not readable JSON ({exc}).") from exc
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise AuthError(f"The users file {path} must map user names to password hashes.")
        users.update(data)
    for item in re.split(r"[\s;]+", settings.app_users or ""):
        name, sep, hashed = item.strip().partition(":")
        if sep and name and hashed:
            users[name] = hashed
    return users


def verify(users: dict[str, str], username: str, password: str) -> bool:
    hashed = users.get(username)
    try:
        return _hasher.verify(hashed or _DUMMY, password) and hashed is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def add_user(path: Path, username: str, password: str) -> None:
    """Add or replace a user in the users file (written atomically, readable by the owner only)."""
    if not USERNAME.match(username):
        raise AuthError(
            "User names are 1–64 letters, digits, '.', '_', '-' or '@', starting with a letter or digit."
        )
    if username == LOCAL_USER:
        raise AuthError(
            _(
                "“{name}” is the name the app uses when nobody signs in; choose another user name.",
                name=LOCAL_USER,
            )
        )
    users: dict[str, str] = {}
    if path.is_file():
        users = json.loads(path.read_text(encoding="utf-8"))
    users[username] = hash_password(password)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".users-")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(users, fh, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def hf_oauth_configured(settings: Settings) -> bool:
    return bool(settings.hf_oauth_client_id and settings.hf_oauth_client_secret)


def hf_scopes(settings: Settings) -> str:
    return "openid profile" + (" write-repos" if settings.hf_oauth_publish else "")


def configure_hf_oauth(settings: Settings) -> bool:
    """Point Chainlit's generic OAuth provider at Hugging Face's OpenID endpoints."""
    if not hf_oauth_configured(settings):
        return False
    assert settings.hf_oauth_client_secret is not None
    base = settings.hf_oauth_url.rstrip("/")
    os.environ.update({k: v.format(base=base) for k, v in HF_ENDPOINTS.items()})
    os.environ["OAUTH_GENERIC_CLIENT_ID"] = str(settings.hf_oauth_client_id)
    os.environ["OAUTH_GENERIC_CLIENT_SECRET"] = settings.hf_oauth_client_secret.get_secret_value()
    os.environ["OAUTH_GENERIC_SCOPES"] = hf_scopes(settings)
    from chainlit import oauth_providers

    # Chainlit built its provider list when it was imported; rebuild the generic one from the env.
    provider = oauth_providers.GenericOAuthProvider()
    provider.id = HF_PROVIDER
    oauth_providers.providers[:] = [
        p
        for p in oauth_providers.providers
        if not isinstance(p, oauth_providers.GenericOAuthProvider)
    ] + [provider]
    return True


def session_context(owner: str | None) -> Context:
    """Secrets for a new chat session: a Hugging Face user's own token pushes with their rights."""
    ctx = Context()
    if owner and owner in hub_tokens:
        ctx.hf_token = hub_tokens[owner]
    return ctx


def forget_token(cookies: dict[str, str]) -> str | None:
    """On sign-out: drop the Hugging Face token of the user the session cookie names."""
    from chainlit.auth.cookie import get_token_from_cookies
    from chainlit.auth.jwt import decode_jwt

    try:
        identifier = decode_jwt(get_token_from_cookies(cookies) or "").identifier
    except Exception:  # no, expired or forged cookie: nothing to forget
        return None
    hub_tokens.pop(identifier, None)
    return identifier


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_problem(host: str, auth_on: bool, allow_open: bool) -> str | None:
    """Why the app must not start: listening beyond this machine with nobody signing in."""
    if auth_on or allow_open or is_loopback(host):
        return None
    return (
        f"Refusing to listen on {host} without sign-in: anyone on the network could use your "
        "models and tokens. Add a user (python -m agent user add NAME), configure Hugging Face "
        "sign-in (HF_OAUTH_CLIENT_ID / HF_OAUTH_CLIENT_SECRET), or set ALLOW_UNAUTHENTICATED=true."
    )


def local_user_on(host: str, auth_on: bool, allow_open: bool) -> bool:
    """Nobody signs in, and that is allowed: the app listens on this machine only, or
    `ALLOW_UNAUTHENTICATED=true` opens it on purpose."""
    return not auth_on and (allow_open or is_loopback(host))


def request_host(header: str | None) -> str:
    """The host name of an HTTP `Host` header: "127.0.0.1:8000" → "127.0.0.1", "[::1]:8000" → "::1"."""
    value = (header or "").strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def local_user(host_header: str | None, host: str, auth_on: bool, allow_open: bool) -> Any:
    """The local user for a request to an app without sign-in (Chainlit's header sign-in), or None.

    Listening on this machine only, the page must have been opened by a loopback name too: a web
    site elsewhere whose name points at 127.0.0.1 (DNS rebinding) gets no session."""
    import chainlit as cl

    if not local_user_on(host, auth_on, allow_open):
        return None
    name = request_host(host_header)
    if not (allow_open or is_loopback(name) or name.endswith(".localhost")):
        return None
    return cl.User(identifier=LOCAL_USER, metadata={"provider": "local"})
