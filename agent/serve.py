"""`dataset-agent serve`: start the chat app (Chainlit on app.py) on any OS, without a shell script.

    dataset-agent serve                      # http://127.0.0.1:8000
    dataset-agent serve --port 8080 --open   # and open it in the browser
    python -m agent serve

Chainlit reads its folder (`.chainlit/` config and translations, `.files/` uploads) from
CHAINLIT_APP_ROOT or the working directory when it is first imported, and app.py checks
CHAINLIT_HOST before opening to the network without sign-in — so both are set here, before
Chainlit is imported, and the server runs in this process (Ctrl+C stops it on every OS).
"""

from __future__ import annotations

import locale
import logging
import os
import socket
import sys
from pathlib import Path

from agent import i18n
from agent.i18n import _

log = logging.getLogger(__name__)
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


class ServeError(RuntimeError):
    """The app cannot start; the message says why in one sentence."""


def project_root(start: Path | None = None) -> Path:
    """The folder holding app.py: the one around the `agent` package (an editable install or a
    source checkout), else the working directory."""
    here = Path(__file__).resolve().parent.parent
    for folder in (here, (start or Path.cwd()).resolve()):
        if (folder / "app.py").is_file():
            return folder
    raise ServeError(
        _(
            "app.py was not found next to the agent package or in {folder}: run this from the "
            "project folder (the one with app.py).",
            folder=str((start or Path.cwd()).resolve()),
        )
    )


def terminal_language() -> str:
    """The language of this terminal's messages, from the system locale ("ro_RO", or on Windows
    "Romanian_Romania")."""
    name = locale.getlocale()[0] or os.environ.get("LC_ALL") or os.environ.get("LANG") or ""
    if name.lower().startswith("romanian"):
        return "ro"
    return i18n.supported(name)


def check_port(host: str, port: int) -> None:
    """Raise ServeError when the address is taken (uvicorn would log an error and exit 0, after
    Chainlit has said the app is available)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except OSError:
        raise ServeError(
            _("“{host}” is not an address of this machine (try 127.0.0.1).", host=host)
        ) from None
    try:
        with socket.create_server((host, port), family=family):  # SO_REUSEADDR as uvicorn
            pass
    except OSError as exc:
        log.debug("cannot listen on %s:%s: %s", host, port, exc)
        raise ServeError(
            _(
                "Port {port} is already in use — is the app already running? Open "
                "http://{host}:{port}, or start it on another port (--port {other}).",
                port=port,
                host=_shown(host),
                other=port + 1,
            )
        ) from None


def _shown(host: str) -> str:
    """The host as a browser address."""
    if host in ("0.0.0.0", "::"):
        return "localhost"
    return f"[{host}]" if ":" in host else host


def chainlit_environment(root: Path, host: str, port: int) -> dict[str, str]:
    """The variables Chainlit and app.py read at start-up."""
    return {
        "CHAINLIT_APP_ROOT": str(root),
        "CHAINLIT_HOST": host,
        "CHAINLIT_PORT": str(port),
    }


def serve(
    host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, open_browser: bool = False
) -> None:
    """Run the app until Ctrl+C (blocks)."""
    i18n.set_language(terminal_language())
    root = project_root()
    loaded = sys.modules.get("chainlit.config")
    if loaded is not None and Path(loaded.APP_ROOT).resolve() != root:
        # Chainlit fixed its folder when it was imported; it cannot be moved now.
        raise ServeError(f"Chainlit was imported with another app folder ({loaded.APP_ROOT}).")
    check_port(host, port)
    os.environ.update(chainlit_environment(root, host, port))
    os.chdir(root)  # app.py and Chainlit read relative paths (chainlit.md, .env, data/)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))

    from chainlit.cli import run_chainlit
    from chainlit.config import config

    config.run.headless = not open_browser
    print(
        _(
            "Starting the app: open http://{host}:{port} in your browser (Ctrl+C stops it).",
            host=_shown(host),
            port=port,
        ),
        file=sys.stderr,
        flush=True,
    )
    run_chainlit(str(root / "app.py"))
