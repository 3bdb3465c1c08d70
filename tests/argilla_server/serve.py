"""Run the real argilla-server with the in-memory search engine registered (test use only).

Usage, inside the argilla-server virtualenv: ``python serve.py HOST PORT`` with
``ARGILLA_SEARCH_ENGINE=memory`` (and ``ARGILLA_HOME_PATH``/``ARGILLA_REDIS_URL``) set.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import memory_engine  # noqa: F401  (registers "memory")
import uvicorn
from argilla_server import app

if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="warning")
