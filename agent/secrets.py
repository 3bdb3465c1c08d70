"""What a token or API key looks like, and how it is kept out of what is stored or shown (a leaf:
it imports nothing of the project's own).

`SECRET` finds keys pasted in a message (the chat blanks such a message, the CLI does not echo
it); `redact` takes them out of anything bound for the history database.
"""

from __future__ import annotations

import re
from typing import Any

SECRET = re.compile(
    r"\b(hf_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9_-]{16,}|argilla\.apikey\.[\w-]+)"
    # a key written in prose: "my argilla api key is Zq8x…", "token: …", "password = …"
    r"|(?i:\b(?:api[\s_-]?key|token|secret|password)\b\W{0,3}(?:is|=|:)?\s*[\w.-]{16,})"
)
REDACTED = "[removed: a token or API key]"


def redact(value: Any) -> Any:
    """Tokens and keys out of any text, list or mapping bound for the history database."""
    if isinstance(value, str):
        return SECRET.sub(REDACTED, value)
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value
