"""The review points and the replies they take: a leaf of the graph package (nodes and publish
both use it, and the session that drives the graph from outside)."""

from __future__ import annotations

from typing import Any

REVIEW_NODE = {
    "contract": "review_contract",
    "sample": "review_sample",
    "dataset": "review_dataset",
    "paused": "review_paused",
    "publish": "review_publish",
}
"""The review node of each stage: where a reply to that stage is handed back in."""


def check_reply(value: Any) -> Any:
    """Resume values are the user's text or a button's {"action": …}; anything else becomes
    {"invalid": …} for `interpret` to answer. Raising instead would fail the step again on every
    Retry (the resume value is replayed), leaving the thread stuck."""
    if isinstance(value, str) or (
        isinstance(value, dict)
        and (isinstance(value.get("action"), str) or isinstance(value.get("text"), str))
    ):
        return value
    return {"invalid": type(value).__name__}
