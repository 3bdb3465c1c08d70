"""Documents the user attaches (.txt, .md, .pdf), split into chunks that ground conversations.

Chunks are stored as JSON lines next to the conversation's runs, so grounded generation (and a
resume after a crash) reads the same chunks. Errors are `DocumentError` with a sentence for the user.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterable
from pathlib import Path

from agent.i18n import _

SUFFIXES = (".txt", ".md", ".pdf")
MAX_BYTES = 20_000_000
MAX_PAGES = 100  # a long PDF is read up to here (the user is told), so time and memory stay bounded
MAX_CHUNKS_PER_FILE = 400
CHUNK_WORDS = 220
MIN_CHUNK_WORDS = 20
HEADING = re.compile(r"^\s*#{1,6}\s+(.+?)\s*#*\s*$")
DOCUMENT_TAG = re.compile(r"<\s*/?\s*document\b[^>]*>", re.I)


class DocumentError(ValueError):
    """A document that cannot be used; the message says why, for the user."""


def read_text(name: str, data: bytes, notes: list[str] | None = None) -> str:
    """The text of one attached file; `notes` collects what was left out (pages past MAX_PAGES)."""
    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIXES:
        raise DocumentError(_("“{name}” is not a .txt, .md or .pdf file.", name=name))
    if len(data) > MAX_BYTES:
        raise DocumentError(
            _(
                "“{name}” is {mb:.0f} MB; the limit is {most:.0f} MB.",
                name=name,
                mb=len(data) / 1e6,
                most=MAX_BYTES / 1e6,
            )
        )
    if suffix == ".pdf":
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError

        try:
            reader = PdfReader(io.BytesIO(data))
            pages = reader.pages
            if len(pages) > MAX_PAGES and notes is not None:
                notes.append(
                    _(
                        "“{name}” has {pages} pages; I used the first {most}.",
                        name=name,
                        pages=len(pages),
                        most=MAX_PAGES,
                    )
                )
            text = "\n\n".join(
                pages[i].extract_text() or "" for i in range(min(len(pages), MAX_PAGES))
            )
        except (PdfReadError, ValueError, KeyError) as exc:
            raise DocumentError(
                _("“{name}” could not be read as a PDF ({error}).", name=name, error=exc)
            ) from None
    else:
        if b"\x00" in data[:8192]:
            raise DocumentError(
                _(
                    "“{name}” looks like a binary file, not text; attach .txt, .md or .pdf.",
                    name=name,
                )
            )
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DocumentError(
                _(
                    "“{name}” is not UTF-8 text (byte {at}); save it as UTF-8 and attach it again.",
                    name=name,
                    at=exc.start,
                )
            ) from None
    if not text.strip():
        raise DocumentError(
            _("“{name}” has no text I can read (a scanned PDF needs OCR first).", name=name)
        )
    # Prompts quote a chunk between <document> tags; a document must not close them early and
    # have the rest of its text read as instructions.
    return DOCUMENT_TAG.sub(" ", text)


def chunk_text(text: str, *, words: int = CHUNK_WORDS) -> list[str]:
    """Paragraph-aware chunks of about `words` words; tiny leftovers join the previous chunk."""
    paragraphs: list[tuple[bool, str]] = []  # (starts a Markdown section, its text)
    for raw in re.split(r"\n\s*\n", text):
        first, _nl, rest = raw.strip().partition("\n")
        heading = HEADING.match(first)
        if heading:  # its title without the marks, then the section's first lines
            raw = heading.group(1) + " " + rest
        paragraphs.append((bool(heading), re.sub(r"\s+", " ", raw).strip()))
    chunks: list[str] = []
    current: list[str] = []
    count = 0
    for section, para in paragraphs:
        if not para:
            continue
        if section and current and count >= MIN_CHUNK_WORDS:  # a new section, a new chunk
            chunks.append(" ".join(current))
            current, count = [], 0
        para_words = para.split()
        while len(para_words) > words:  # a huge paragraph is cut on word boundaries
            if current:
                chunks.append(" ".join(current))
                current, count = [], 0
            chunks.append(" ".join(para_words[:words]))
            para_words = para_words[words:]
        if count + len(para_words) > words and current:
            chunks.append(" ".join(current))
            current, count = [], 0
        current.append(" ".join(para_words))
        count += len(para_words)
    if current:
        if chunks and count < MIN_CHUNK_WORDS:
            chunks[-1] += " " + " ".join(current)
        else:
            chunks.append(" ".join(current))
    return chunks


def add_documents(store: Path, files: Iterable[tuple[str, bytes]]) -> tuple[int, list[str]]:
    """Chunk files into `store` (chunks.jsonl). Returns (chunks added, notes: problems and cuts)."""
    store.mkdir(parents=True, exist_ok=True)
    path = store / "chunks.jsonl"
    known = {c["id"] for c in load_chunks(store)}
    added = 0
    problems: list[str] = []
    with path.open("a", encoding="utf-8") as fh:
        for name, data in files:
            try:
                pieces = chunk_text(read_text(name, data, problems))
            except DocumentError as exc:
                problems.append(str(exc))
                continue
            if len(pieces) > MAX_CHUNKS_PER_FILE:
                problems.append(
                    _(
                        "“{name}” gave {chunks} chunks; I used the first {most}.",
                        name=name,
                        chunks=len(pieces),
                        most=MAX_CHUNKS_PER_FILE,
                    )
                )
                pieces = pieces[:MAX_CHUNKS_PER_FILE]
            for i, piece in enumerate(pieces):
                cid = hashlib.sha1(f"{name}\0{i}\0{piece}".encode()).hexdigest()[:16]
                if cid in known:
                    continue
                known.add(cid)
                fh.write(
                    json.dumps(
                        {"id": cid, "source": Path(name).name, "text": piece}, ensure_ascii=False
                    )
                    + "\n"
                )
                added += 1
    return added, problems


def load_chunks(store: Path) -> list[dict[str, str]]:
    path = store / "chunks.jsonl"
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
