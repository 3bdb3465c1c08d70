"""A minimal in-memory search engine for a test `argilla-server` (no Elasticsearch/OpenSearch here).

Registered as ``memory`` through `SearchEngine.register`; select it with
``ARGILLA_SEARCH_ENGINE=memory``. It keeps, per dataset, the ids of indexed records in insertion
order (process memory only, lost on restart). What is real and what is not:

- records, fields, suggestions, metadata and listing go through the server's real database;
- `search` returns the indexed records in insertion order, narrowed only by a plain
  case-insensitive substring match of the text query — filters, sorting, scores and similarity
  search are ignored; metadata metrics are empty; progress counts records by status.

Runs inside the argilla-server virtualenv, never in the app's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from argilla_server.enums import MetadataPropertyType
from argilla_server.search_engine.base import (
    FloatMetadataMetrics,
    IntegerMetadataMetrics,
    SearchEngine,
    SearchResponseItem,
    SearchResponses,
    TermsMetrics,
    TextQuery,
)

# dataset id -> record id -> (status, lower-cased text of all fields)
_INDEX: dict[UUID, dict[UUID, tuple[str, str]]] = {}


def _entry(record: Any) -> tuple[str, str]:
    status = getattr(record.status, "value", str(record.status))
    text = " ".join(str(v) for v in (record.fields or {}).values()).lower()
    return status, text


@SearchEngine.register(engine_name="memory")
class MemorySearchEngine(SearchEngine):
    @classmethod
    async def new_instance(cls) -> MemorySearchEngine:
        return cls()

    async def close(self) -> None:
        pass

    async def ping(self) -> bool:
        return True

    async def info(self) -> dict:
        return {"name": "memory", "version": "0", "note": "in-memory test engine"}

    async def create_index(self, dataset: Any) -> None:
        _INDEX.setdefault(dataset.id, {})

    async def delete_index(self, dataset: Any) -> None:
        _INDEX.pop(dataset.id, None)

    async def configure_metadata_property(self, dataset: Any, metadata_property: Any) -> None:
        pass

    async def configure_index_vectors(self, vector_settings: Any) -> None:
        pass

    async def index_records(self, dataset: Any, records: Iterable[Any]) -> None:
        index = _INDEX.setdefault(dataset.id, {})
        for record in records:
            index[record.id] = _entry(record)

    async def partial_record_update(self, record: Any, **update: Any) -> None:
        index = _INDEX.setdefault(record.dataset_id, {})
        status, text = index.get(record.id, ("pending", ""))
        status = getattr(update.get("status"), "value", update.get("status")) or status
        index[record.id] = (str(status), text)

    async def delete_records(self, dataset: Any, records: Iterable[Any]) -> None:
        index = _INDEX.get(dataset.id, {})
        for record in records:
            index.pop(record.id, None)

    async def update_record_response(self, response: Any) -> None:
        pass

    async def delete_record_response(self, response: Any) -> None:
        pass

    async def update_record_suggestion(self, suggestion: Any) -> None:
        pass

    async def delete_record_suggestion(self, suggestion: Any) -> None:
        pass

    async def get_dataset_progress(self, dataset: Any) -> dict:
        statuses = [status for status, _ in _INDEX.get(dataset.id, {}).values()]
        counts = {s: statuses.count(s) for s in set(statuses)}
        return {"total": len(statuses), **counts}

    async def get_dataset_user_progress(self, dataset: Any, user: Any) -> dict:
        return {"total": 0}

    async def search(
        self,
        dataset: Any,
        query: TextQuery | str | None = None,
        filter: Any = None,
        sort: Any = None,
        offset: int = 0,
        limit: int = 100,
        user_id: Any = None,
    ) -> SearchResponses:
        q = (query.q if isinstance(query, TextQuery) else query or "").strip().lower()
        if q == "*":
            q = ""
        ids = [rid for rid, (_, text) in _INDEX.get(dataset.id, {}).items() if q in text]
        items = [
            SearchResponseItem(record_id=rid, score=1.0) for rid in ids[offset : offset + limit]
        ]
        return SearchResponses(items=items, total=len(ids))

    async def compute_metrics_for(self, metadata_property: Any) -> Any:
        if metadata_property.type == MetadataPropertyType.terms:
            return TermsMetrics(total=0)
        if metadata_property.type == MetadataPropertyType.integer:
            return IntegerMetadataMetrics()
        return FloatMetadataMetrics()

    async def similarity_search(self, *args: Any, **kwargs: Any) -> SearchResponses:
        return SearchResponses(items=[], total=0)
