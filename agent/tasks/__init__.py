"""The kinds of data, one package each (textcat, chat, rag), and their registry.

Each kind owns its row task, contract shape, export features, card, Argilla settings, critique
and how its rows show in the chat (`agent.tasks.base.TaskKind`). Everything else asks the
registry: `kind(spec).build_dataset(…)`, never `if spec.task == …`.
"""

from __future__ import annotations

from agent.spec import DatasetSpec
from agent.tasks.base import TaskKind
from agent.tasks.chat import KIND as CHAT
from agent.tasks.rag import KIND as RAG
from agent.tasks.textcat import KIND as TEXTCAT

TASKS: dict[str, TaskKind] = {k.name: k for k in (TEXTCAT, CHAT, RAG)}


def kind(spec_or_name: DatasetSpec | str) -> TaskKind:
    """The kind of data of a contract (or of a task name)."""
    name = spec_or_name if isinstance(spec_or_name, str) else spec_or_name.task
    return TASKS[name]


__all__ = ["TASKS", "TaskKind", "kind"]
