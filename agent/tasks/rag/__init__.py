"""Retrieval / RAG rows: `context` (a passage, verbatim), `question`, `response`; optional
retrieval pairs (`positive_retrieval`, `negative_retrieval`) and reranking pairs
(`positive_reranking`, `negative_reranking`), with provenance (`chunk_id`, `source`)."""

from __future__ import annotations

from typing import Any

from agent.spec import DatasetSpec
from agent.tasks.base import RowTask
from agent.tasks.rag import publish, talk
from agent.tasks.rag.rows import RagRows


class Rag:
    name = "rag"
    clarifies = False  # documents or the description are enough: the contract shows the rest

    def row_task(
        self,
        spec: DatasetSpec,
        n: int,
        seed: int,
        *,
        judge: bool,
        chunks: list[dict[str, str]] | None = None,
    ) -> RowTask[Any]:
        return RagRows(spec, n, seed, judge=judge, chunks=chunks)

    def uses_chunks(self, spec: DatasetSpec) -> bool:
        return spec.rag is not None and spec.rag.source != "description"

    unit = "rows"
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


KIND = Rag()
