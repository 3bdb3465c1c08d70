"""Retrieval / RAG rows: `context` (a passage, verbatim), `question`, `response`; optional
retrieval pairs (`positive_retrieval`, `negative_retrieval`) and reranking pairs
(`positive_reranking`, `negative_reranking`), with provenance (`chunk_id`, `source`)."""

from __future__ import annotations

from agent.tasks.base import TaskKind
from agent.tasks.rag import publish, talk
from agent.tasks.rag.rows import RagRows

KIND = TaskKind(
    name="rag",
    clarifies=False,  # documents or the description are enough: the contract shows the rest
    unit="rows",
    rows=RagRows,
    chunked=lambda spec: spec.rag is not None and spec.rag.source != "description",
    talk=talk,
    publish=publish,
)
