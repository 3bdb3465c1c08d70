"""Chat / SFT conversations: `messages` as TRL's SFTTrainer expects."""

from __future__ import annotations

from typing import Any

from agent.spec import DatasetSpec
from agent.tasks.base import RowTask
from agent.tasks.chat import publish, talk
from agent.tasks.chat.rows import Conversations


class Chat:
    name = "chat"
    clarifies = True  # a vague request gets a question or two before the contract

    def row_task(
        self,
        spec: DatasetSpec,
        n: int,
        seed: int,
        *,
        judge: bool,
        chunks: list[dict[str, str]] | None = None,
    ) -> RowTask[Any]:
        return Conversations(spec, n, seed, judge=judge, chunks=chunks)

    def uses_chunks(self, spec: DatasetSpec) -> bool:
        return spec.chat is not None and spec.chat.grounded

    unit = "conversations"
    propose = staticmethod(talk.propose)
    critique = staticmethod(talk.critique)
    change_examples = staticmethod(talk.change_examples)
    render = staticmethod(talk.render)
    run_figures = staticmethod(talk.run_figures)
    paused_tips = staticmethod(talk.paused_tips)
    run_report = staticmethod(talk.run_report)
    starting = staticmethod(talk.starting)

    build_dataset = staticmethod(publish.build_dataset)
    render_card = staticmethod(publish.render_card)
    argilla_settings = staticmethod(publish.argilla_settings)
    argilla_record = staticmethod(publish.argilla_record)


KIND = Chat()
