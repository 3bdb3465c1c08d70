"""Export finished rows as a Hub-ready dataset folder: Parquet data, a dataset card and the contract.

Layout of `out_dir`::

    data/train-00000-of-00001.parquet   the rows, with the kind's features (text + label for
                                        textcat, messages for chat, context/question/response for rag)
    README.md                           dataset card (huggingface_hub's `DatasetCard`): metadata the Hub
                                        and `load_dataset` read, then the text
    spec.json                           the approved contract

The features and the card are the kind's (`agent.tasks.kind(spec).build_dataset` / `render_card`);
this module only writes, swaps and zips.

The folder is written to a temporary sibling and swapped in, so a failed export never damages an
earlier one. Secrets are never written: model-info keys that look like credentials are dropped
(`agent.tools.cards.method_and_quality`).

The download (`zip_folder`) is that folder plus the same rows for a spreadsheet, beside the folder
rather than in it (so `load_dataset` of the unzipped folder reads what it always did)::

    <name>/…                the folder above
    <name>.csv              UTF-8 (with a BOM, so Excel reads the diacritics)
    <name>.xlsx             the same table for Excel / LibreOffice (openpyxl)

Label ids become their names; a conversation (`messages`) becomes one column of "role: text"
paragraphs.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import datasets
import pyarrow.parquet as pq

from agent import tasks
from agent.spec import DatasetSpec

log = logging.getLogger(__name__)
DATA_FILE = "data/train-00000-of-00001.parquet"


def export_dataset(
    spec: DatasetSpec,
    rows: Iterable[dict],
    out_dir: Path,
    *,
    model_info: dict[str, str],
    history: list[dict],
    metrics: dict[str, Any],
    license: str = "other",
) -> Path:
    """Write `out_dir` (replacing it atomically if present) and return it.

    Raises ValueError for a row the contract does not allow (a label not in the contract, a
    malformed conversation…); nothing is written then.
    """
    out_dir = Path(out_dir)
    kind = tasks.kind(spec)
    ds = kind.build_dataset(spec, rows)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        (tmp / "data").mkdir()
        ds.to_parquet(str(tmp / DATA_FILE))
        (tmp / "spec.json").write_text(spec.model_dump_json(indent=2), encoding="utf-8")
        card = kind.render_card(
            spec, ds, model_info=model_info, history=history, metrics=metrics, license=license
        )
        (tmp / "README.md").write_text(card, encoding="utf-8")
        _swap(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def zip_folder(folder: Path) -> Path:
    """Zip `folder` into `<folder>.zip` next to it: the folder itself, and beside it the rows as
    `<folder>.csv` and `<folder>.xlsx` for people who open data in a spreadsheet."""
    folder = Path(folder)
    archive = folder.with_name(f"{folder.name}.zip")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{archive.name}.", dir=folder.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(folder.rglob("*")):
                zf.write(path, Path(folder.name) / path.relative_to(folder))
            data = folder / DATA_FILE
            if data.is_file():
                with zf.open(f"{folder.name}.csv", "w") as raw:
                    write_csv(data, raw)
                if pq.ParquetFile(data).metadata.num_rows <= XLSX_MAX_ROWS:
                    with zf.open(f"{folder.name}.xlsx", "w") as raw:
                        write_xlsx(data, raw)
                else:
                    log.info("%s: too many rows for a spreadsheet; the zip holds the CSV", folder)
        tmp.replace(archive)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return archive


# --- the same rows for a spreadsheet ------------------------------------------------------------

XLSX_MAX_ROWS = 1_048_575  # Excel's sheet limit, less the header
XLSX_MAX_CELL = 32_767  # Excel's cell limit (characters)


def _readable(feature: Any) -> Any:
    """A function turning one stored value of `feature` into a spreadsheet cell."""
    if isinstance(feature, datasets.ClassLabel):
        return lambda v: None if v is None else feature.int2str(v)
    inner = getattr(feature, "feature", None)
    if isinstance(feature, datasets.List | datasets.Sequence) and isinstance(inner, dict):
        if {"role", "content"} <= set(inner):  # a conversation
            return lambda v: (
                None if v is None else "\n\n".join(f"{m['role']}: {m['content']}" for m in v)
            )
    if isinstance(feature, datasets.List | datasets.Sequence):
        item = _readable(inner)
        return lambda v: None if v is None else "; ".join(str(item(x)) for x in v)
    return lambda v: v


def spreadsheet_rows(parquet: Path, batch_size: int = 1_000) -> Iterator[list[Any]]:
    """The header, then each row as plain cells: label names, "role: text" conversations,
    lists joined with "; ". Streams the Parquet file in batches."""
    source = pq.ParquetFile(parquet)
    features = datasets.Features.from_arrow_schema(source.schema_arrow)
    columns = list(features)
    header = ["conversation" if c == "messages" else c for c in columns]
    cells = [_readable(features[c]) for c in columns]
    yield header
    for batch in source.iter_batches(batch_size=batch_size):
        values = [batch.column(c).to_pylist() for c in columns]
        for row in zip(*values, strict=True):
            yield [cell(v) for cell, v in zip(cells, row, strict=True)]


def write_csv(parquet: Path, out: Any) -> None:
    """The rows as CSV (UTF-8 with a BOM: Excel otherwise garbles ă, ș, ț) to a binary stream."""
    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="")
    writer = csv.writer(text)
    for row in spreadsheet_rows(parquet):
        writer.writerow(["" if v is None else v for v in row])
    text.flush()
    text.detach()


def write_xlsx(parquet: Path, out: Any) -> None:
    """The rows as one Excel sheet (openpyxl's streaming writer) to a binary stream."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    book = Workbook(write_only=True)
    sheet = book.create_sheet("data")
    sheet.freeze_panes = "A2"
    rows = spreadsheet_rows(parquet)
    header = next(rows)
    wide = {"text", "conversation", "judge_reasons", "context", "question", "response"}
    for i, name in enumerate(header, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = 80 if name in wide else 16
    bold = Font(bold=True)
    titles = []
    for name in header:
        cell = WriteOnlyCell(sheet, value=name)
        cell.font = bold
        titles.append(cell)
    sheet.append(titles)
    wrap = Alignment(wrap_text=True, vertical="top")

    def clean(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        value = ILLEGAL_CHARACTERS_RE.sub("", value)  # control characters Excel refuses
        return value if len(value) <= XLSX_MAX_CELL else value[: XLSX_MAX_CELL - 1] + "…"

    conversation = header.index("conversation") if "conversation" in header else -1
    for row in rows:
        cells: list[Any] = [clean(v) for v in row]
        if conversation >= 0:
            cell = WriteOnlyCell(sheet, value=cells[conversation])
            cell.alignment = wrap
            cells[conversation] = cell
        sheet.append(cells)
    book.save(out)


def _swap(tmp: Path, out_dir: Path) -> None:
    """Put `tmp` in place of `out_dir`; the old folder is removed only once the new one is in place."""
    if not out_dir.exists():
        tmp.rename(out_dir)
        return
    old = out_dir.with_name(f".{out_dir.name}.old-{tmp.name.rsplit('-', 1)[-1]}")
    out_dir.rename(old)
    try:
        tmp.rename(out_dir)
    except BaseException:
        old.rename(out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)
