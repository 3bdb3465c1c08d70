"""Text classification (single- and multi-label): `text` and `label`/`labels`."""

from __future__ import annotations

from typing import Any

from agent.spec import DatasetSpec
from agent.tasks.base import RowTask
from agent.tasks.textcat import publish
from agent.tasks.textcat.rows import TextClassification


class Textcat:
    name = "textcat"
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
        return TextClassification(spec, n, seed, judge=judge)

    def uses_chunks(self, spec: DatasetSpec) -> bool:
        return False

    build_dataset = staticmethod(publish.build_dataset)
    render_card = staticmethod(publish.render_card)
    argilla_settings = staticmethod(publish.argilla_settings)
    argilla_record = staticmethod(publish.argilla_record)


KIND = Textcat()
