"""Where a conversation's files live. A leaf module: settings only."""

from __future__ import annotations

import re
from pathlib import Path

from agent.config import get_settings


def thread_root(thread_id: str) -> Path:
    """The folder holding a conversation's runs and attached documents."""
    return get_settings().runs_dir / re.sub(r"[^\w-]", "_", thread_id)


def documents_dir(thread_id: str) -> Path:
    """The conversation's document store (chunks.jsonl): attached files and seed-dataset rows."""
    return thread_root(thread_id) / "documents"
