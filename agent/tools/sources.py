"""Passages for grounded generation taken from an existing dataset's text column.

A seed dataset is a local Parquet / CSV / JSON Lines file, a folder of them (a dataset folder this
app exported, a Hub-layout folder with data/*.parquet), or a Hugging Face Hub dataset id
(`owner/name`, optionally `owner/name:config`; its train split, streamed). Its cells become chunks
in the shape `agent.tools.documents` writes (`{"id", "source", "text"}`), so `store_chunks` puts
them in a conversation's documents store and `load_chunks` reads them with the documents' own.
Errors are `SourceError` (a `DocumentError`) with one sentence for the user.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from agent.i18n import _
from agent.tools.documents import DOCUMENT_TAG, DocumentError, chunk_text, load_chunks

SUFFIXES = (".parquet", ".csv", ".jsonl", ".json")
"""Readable files, in the order a folder's files are preferred (one format per folder, so the
contract `spec.json` next to an exported `data/*.parquet` is not read as rows)."""
LIMIT = 2000
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(?:/[\w.-]+)?(?::[\w.-]+)?$")
_COLUMNS_SHOWN = 20


class SourceError(DocumentError):
    """A seed dataset that cannot be used; the message says why, for the user."""


def seed_chunks(path_or_id: str, column: str, *, limit: int = LIMIT) -> list[dict[str, str]]:
    """The first `limit` passages of `column` (at most `limit` rows read), as document chunks.

    Long cells are split with `chunk_text`; empty cells and repeated passages are skipped. The
    source is the file's name (or the Hub id); ids are short sha1 hex of the source, column, row
    and piece, so the same dataset gives the same ids on every call."""
    where = path_or_id.strip()
    if not where:
        raise SourceError(_("Give the path or the Hugging Face id of the dataset."))
    path = Path(where).expanduser()
    if path.exists():
        rows: Iterator[tuple[str, int, Any]] = _local_rows(path, column)
    elif _looks_like_path(where):
        raise SourceError(_("I could not find “{path}”.", path=where))
    else:
        rows = _hub_rows(where, column, limit)
    chunks: list[dict[str, str]] = []
    seen: set[str] = set()
    sources: set[str] = set()
    for source, row, value in itertools.islice(rows, limit):
        sources.add(source)
        text = _cell_text(value)
        if not text:
            continue
        for i, piece in enumerate(chunk_text(DOCUMENT_TAG.sub(" ", text))):
            if piece in seen:
                continue
            seen.add(piece)
            cid = hashlib.sha1(f"{source}\0{column}\0{row}\0{i}\0{piece}".encode()).hexdigest()
            chunks.append({"id": cid[:16], "source": source, "text": piece})
            if len(chunks) >= limit:
                return chunks
    if not chunks:
        raise SourceError(
            _(
                "The column “{column}” of {source} has no text I can use.",
                column=column,
                source=", ".join(sorted(sources)) or where,
            )
        )
    return chunks


def store_chunks(store: Path, chunks: Iterable[dict[str, str]]) -> int:
    """Append chunks to `store / "chunks.jsonl"` (as `add_documents` does), skipping known ids.
    Returns how many were added."""
    store.mkdir(parents=True, exist_ok=True)
    known = {c["id"] for c in load_chunks(store)}
    added = 0
    with (store / "chunks.jsonl").open("a", encoding="utf-8") as fh:
        for chunk in chunks:
            if chunk["id"] in known:
                continue
            known.add(chunk["id"])
            record = {"id": chunk["id"], "source": chunk["source"], "text": chunk["text"]}
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            added += 1
    return added


# --- reading -------------------------------------------------------------------------------


def _looks_like_path(where: str) -> bool:
    """A missing local file rather than a Hub id: a file suffix, a folder mark or an absolute path."""
    if where.startswith((".", "~", "/", "\\")) or "\\" in where or where.count("/") > 1:
        return True
    if Path(where).suffix.lower() in (*SUFFIXES, ".txt", ".tsv", ".xlsx", ".arrow"):
        return True
    return not HUB_ID.match(where)


def _cell_text(value: Any) -> str:
    """A cell's text: a string, or a list of strings (paragraphs); anything else is not text."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
        return "\n\n".join(v.strip() for v in value if v.strip())
    return ""


def _unknown_column(column: str, columns: Iterable[str]) -> SourceError:
    names = list(dict.fromkeys(str(c) for c in columns))
    shown = ", ".join(names[:_COLUMNS_SHOWN]) + (" …" if len(names) > _COLUMNS_SHOWN else "")
    return SourceError(
        _(
            "The dataset has no column “{column}”; its columns are: {columns}.",
            column=column,
            columns=shown or _("none"),
        )
    )


def _files(path: Path) -> list[Path]:
    if path.is_file():
        if path.suffix.lower() not in SUFFIXES:
            raise SourceError(
                _("“{name}” is not a Parquet, CSV or JSON Lines file.", name=path.name)
            )
        return [path]
    found = [
        p
        for p in sorted(path.rglob("*"))
        if p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(path).parts)
        and p.suffix.lower() in SUFFIXES
    ]
    for suffix in SUFFIXES:  # one format: the first one the folder has
        chosen = [p for p in found if p.suffix.lower() == suffix]
        if chosen:
            return chosen
    raise SourceError(
        _("The folder “{name}” has no Parquet, CSV or JSON Lines files.", name=path.name)
    )


def _local_rows(path: Path, column: str) -> Iterator[tuple[str, int, Any]]:
    """(source, row number, cell) of `column` over the file or the folder's files, lazily."""
    row = 0
    for f in _files(path):
        for value in _file_cells(f, column):
            yield f.name, row, value
            row += 1


def _file_cells(path: Path, column: str) -> Iterator[Any]:
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            yield from _parquet_cells(path, column)
        elif suffix == ".csv":
            yield from _csv_cells(path, column)
        else:
            yield from _json_cells(path, column)
    except SourceError:
        raise
    except (OSError, ValueError, UnicodeDecodeError) as exc:  # pyarrow/pandas errors are these
        kind = {".parquet": "Parquet", ".csv": "CSV"}.get(suffix, "JSON")
        raise SourceError(
            _("“{name}” could not be read as a {kind} file.", name=path.name, kind=kind)
        ) from exc


def _parquet_cells(path: Path, column: str) -> Iterator[Any]:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    names = pf.schema_arrow.names
    if column not in names:
        raise _unknown_column(column, names)
    for batch in pf.iter_batches(batch_size=512, columns=[column]):
        yield from batch.column(0).to_pylist()


def _csv_cells(path: Path, column: str) -> Iterator[Any]:
    import pandas as pd

    names = list(pd.read_csv(path, nrows=0, encoding="utf-8-sig").columns)
    if column not in names:
        raise _unknown_column(column, names)
    for frame in pd.read_csv(
        path,
        usecols=[column],
        dtype=str,
        keep_default_na=False,
        chunksize=1000,
        encoding="utf-8-sig",
    ):
        yield from frame[column].tolist()


def _json_cells(path: Path, column: str) -> Iterator[Any]:
    with path.open(encoding="utf-8-sig") as fh:
        start = fh.read(1)
        while start and start.isspace():
            start = fh.read(1)
        fh.seek(0)
        records: Iterable[Any]
        if start == "[":  # a JSON array of records
            records = json.load(fh)
        else:  # JSON Lines
            records = (json.loads(line) for line in fh if line.strip())
        seen: dict[str, None] = {}
        found = False
        for n, record in enumerate(records):
            if not isinstance(record, dict):
                raise ValueError("not a record")
            if column in record:
                found = True
                yield record[column]
            elif not found:
                seen.update(dict.fromkeys(record))
                if n >= 99:  # a hundred records without the column: it is not there
                    break
        if not found and seen:
            raise _unknown_column(column, seen)


# --- the Hugging Face Hub --------------------------------------------------------------------


def _env_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")


def _hub_error(exc: BaseException, name: str) -> SourceError:
    if isinstance(exc, SourceError):
        return exc
    if isinstance(exc, FileNotFoundError):
        return SourceError(
            _(
                "I could not find the dataset “{name}” on the Hugging Face Hub (a private one "
                "needs HF_TOKEN).",
                name=name,
            )
        )
    text = str(exc)
    if _env_offline() or isinstance(exc, ConnectionError | TimeoutError) or "reach" in text:
        return SourceError(
            _(
                "I could not reach the Hugging Face Hub to read “{name}”; check the connection "
                "(HF_HUB_OFFLINE must not be set) and try again.",
                name=name,
            )
        )
    first = (text.strip().splitlines() or [type(exc).__name__])[0][:300]
    return SourceError(
        _(
            "I could not open the dataset “{name}” from the Hugging Face Hub ({error}).",
            name=name,
            error=first.rstrip("."),
        )
    )


def _hub_rows(where: str, column: str, limit: int) -> Iterator[tuple[str, int, Any]]:
    """The train split of a Hub dataset, streamed; opened (and the column checked) at once."""
    name, _sep, config = where.partition(":")
    try:
        import datasets
        from huggingface_hub import constants
    except ImportError as exc:  # pragma: no cover - both are dependencies
        raise SourceError(_("Reading Hub datasets needs the “datasets” package.")) from exc
    if _env_offline() and not constants.HF_HUB_OFFLINE:
        # set after the libraries were imported: they would still try the network (and retry)
        raise _hub_error(ConnectionError("offline"), name)
    try:
        ds = datasets.load_dataset(name, config or None, split="train", streaming=True)
        rows = iter(ds)
        first = next(rows, None)
    except Exception as exc:
        raise _hub_error(exc, name) from exc
    if first is None:
        raise SourceError(
            _(
                "The column “{column}” of {source} has no text I can use.",
                column=column,
                source=name,
            )
        )
    columns = list(getattr(ds, "column_names", None) or first)
    if column not in columns:
        raise _unknown_column(column, columns)
    return _hub_cells(name, column, first, rows, limit)


def _hub_cells(
    name: str, column: str, first: dict[str, Any], rows: Iterator[dict[str, Any]], limit: int
) -> Iterator[tuple[str, int, Any]]:
    yield name, 0, first.get(column)
    try:
        for n, row in enumerate(itertools.islice(rows, max(0, limit - 1)), start=1):
            yield name, n, row.get(column)
    except Exception as exc:
        raise _hub_error(exc, name) from exc
