"""Graph state. Everything here is JSON-friendly so the SQLite checkpoint can hold it."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages

Stage = Literal[
    "clarify", "contract", "sample", "dataset", "paused", "publish", "done", "cancelled"
]


class State(TypedDict, total=False):
    owner: str | None
    """The signed-in user who started the thread (None when sign-in is off). Set once."""
    messages: Annotated[list[AnyMessage], add_messages]
    """The chat transcript; `add_messages` appends (or replaces by id)."""
    user_language: str
    """The language the user writes in; replies the model writes use it. Overwritten."""
    clarify_rounds: int
    """Clarifying questions asked so far (at most two). Overwritten."""
    task: str
    """"textcat" or "chat", decided while clarifying. Overwritten."""
    locked: dict[str, Any]
    """The user's explicit choices (task, language, size), e.g. {"task": "textcat", "size": 200}
    from the CLI's --task/--rows: never overridden by a model's reading. Nodes that add to it
    return the whole dict."""
    spec: dict[str, Any] | None
    """The current contract (`DatasetSpec.model_dump()`). Overwritten on every edit."""
    history: list[dict[str, Any]]
    """Contract versions: [{version, diff}] — nodes return the whole list. Overwritten."""
    sample: list[dict[str, Any]]
    """The latest sample's rows. Overwritten."""
    samples_made: int
    refinements: int
    critique: dict[str, Any]
    """Figures of the latest sample or full run. Overwritten."""
    ignore_stop: bool
    """The user chose to finish a run that a quality stop rule paused. Overwritten."""
    run_dir: str | None
    """Folder of the latest full run (rows.jsonl). Overwritten."""
    export_dir: str | None
    out_dir: str | None
    """Where the CLI asked the dataset to go (else `<data dir>/datasets/<name>`)."""
    reply: Any
    """The resume value of the last review interrupt, for `interpret`. Overwritten."""
    stage: Stage
    """The review point the conversation is at. Overwritten."""
    publish_target: dict[str, Any] | None
    """The target being confirmed or pushed: {target: hub|argilla, repo_id, private, mode, …}."""
    published: list[dict[str, Any]]
    """Targets published to in this conversation: [{target, url}]. Nodes return the whole list."""
