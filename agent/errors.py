"""User-facing exception base classes shared by several layers (a leaf: it imports nothing of
the project's own).

Their messages are one sentence a user can act on; the chat shows them with a Retry button.
`agent.llm` re-exports the model errors (`from agent.llm import LLMError` keeps working).
"""

from __future__ import annotations


class LLMError(RuntimeError):
    """A model problem, phrased for the user (one sentence, with the fix when there is one)."""


class LLMUnavailable(LLMError):
    """The server is down, unreachable, refuses us, or lacks the model."""


class LLMBadOutput(LLMError):
    """The model kept answering with something that does not fit the schema."""


__all__ = ["LLMBadOutput", "LLMError", "LLMUnavailable"]
