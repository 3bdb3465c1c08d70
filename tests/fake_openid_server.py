"""A stand-in for Hugging Face's OpenID endpoints, for the "Sign in with Hugging Face" browser test.

`/oauth/authorize` approves at once (redirects back with a code), `/oauth/token` trades the code for
an access token, `/oauth/userinfo` answers for that token. Every request is recorded so a test can
check the scopes asked for and that the client secret was sent — only to the token endpoint.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route


@dataclass
class Provider:
    username: str
    access_token: str
    client_id: str
    client_secret: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    codes: dict[str, str] = field(default_factory=dict)

    def app(self) -> Starlette:
        async def authorize(request: Request) -> Response:
            q = dict(request.query_params)
            self.requests.append({"path": "authorize", **q})
            if q.get("client_id") != self.client_id:
                return JSONResponse({"error": "invalid_client"}, status_code=400)
            code = f"code-{len(self.codes)}"
            self.codes[code] = q["redirect_uri"]
            back = {"code": code, "state": q.get("state", "")}
            return RedirectResponse(q["redirect_uri"] + "?" + urlencode(back), status_code=302)

        async def token(request: Request) -> Response:
            form = dict(await request.form())
            self.requests.append({"path": "token", **form})
            if (
                form.get("client_secret") != self.client_secret
                or form.get("code") not in self.codes
            ):
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            return JSONResponse({"access_token": self.access_token, "token_type": "bearer"})

        async def userinfo(request: Request) -> Response:
            auth = request.headers.get("authorization", "")
            self.requests.append(
                {"path": "userinfo", "authorized": auth == f"Bearer {self.access_token}"}
            )
            if auth != f"Bearer {self.access_token}":
                return JSONResponse({"error": "invalid_token"}, status_code=401)
            return JSONResponse(
                {"sub": "1234", "preferred_username": self.username, "name": self.username.title()}
            )

        return Starlette(
            routes=[
                Route("/oauth/authorize", authorize),
                Route("/oauth/token", token, methods=["POST"]),
                Route("/oauth/userinfo", userinfo),
            ]
        )


@contextlib.contextmanager
def serve(provider: Provider) -> Iterator[str]:
    """Run the provider on a free local port in a thread; yields its base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(provider.app(), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
