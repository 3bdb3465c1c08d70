"""Near-duplicate detection shared by the engine, the Ray driver and the quality figures: MinHash
signatures (numpy, value for value datasketch's) in an LSH index. A leaf module."""

from __future__ import annotations

import contextlib
import hashlib
import re
import sqlite3
from typing import Protocol

import numpy as np


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", "", text.lower())).strip()


# MurmurHash3's 32-bit finalizer: (shift, multiplier, shift, multiplier, shift)
_FMIX32 = (
    np.uint32(16),
    np.uint32(0x85EBCA6B),
    np.uint32(13),
    np.uint32(0xC2B2AE35),
    np.uint32(16),
)


def minhash_permutations(num_perm: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The (a, b) of `num_perm` affine permutations h → a·h + b mod 2³², a odd — drawn exactly as
    datasketch 2's MinHash(num_perm, seed) draws them for its default "affine32" scheme."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def minhash(shingles: set[str], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The MinHash signature (uint32) of a set of shingles: datasketch 2's `MinHash.update_batch`
    with its default sha1_hash32 and "affine32" scheme, value for value (a test holds it to that).

    In numpy here because importing datasketch imports all of it, scipy included: a third of a
    second of every CLI start, for the ~15 lines below."""
    hv = np.fromiter(
        (int.from_bytes(hashlib.sha1(s.encode()).digest()[:4], "little") for s in shingles),
        dtype=np.uint32,
        count=len(shingles),
    ).reshape(-1, 1)
    s1, m1, s2, m2, s3 = _FMIX32
    hv = hv ^ (hv >> s1)
    hv = hv * m1
    hv = hv ^ (hv >> s2)
    hv = hv * m2
    hv = hv ^ (hv >> s3)
    out: np.ndarray = (hv * a + b).min(axis=0)  # uint32 arithmetic: wrapping is the mod 2³²
    return out


class Deduper:
    """Exact and near-duplicate detection: MinHash over word 3-shingles (datasketch's affine32
    scheme), LSH banding.

    The one structure that grows with the run, so it lives in SQLite rather than in Python objects:
    a private temporary database (deleted when closed) whose page cache is bounded, so memory stays
    flat however many rows a run makes (about 450 B a row go to a temporary file instead). A
    signature is 64 uint32 values; 10 bands of 6 values are hashed to one 64-bit key each. Band
    matches are candidates only; a duplicate is a candidate whose estimated Jaccard similarity
    reaches the threshold (exact copies, after case and punctuation are dropped, estimate 1.0).
    """

    BANDS, ROWS, CACHE_KB, COMMIT_EVERY = 10, 6, 8192, 4096

    def __init__(self, threshold: float = 0.9, num_perm: int = 64) -> None:
        self.threshold = threshold
        self._a, self._b = minhash_permutations(num_perm, seed=1)
        self.num_perm = num_perm
        self.size = self._nbytes = 0
        self._salt = np.arange(1, self.BANDS + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        # "" = a private on-disk temporary database: pages beyond the cache spill to a file
        self._db = sqlite3.connect("", check_same_thread=False)
        self._db.executescript(
            f"""
            PRAGMA cache_size = -{self.CACHE_KB};
            PRAGMA journal_mode = OFF;
            PRAGMA synchronous = OFF;
            CREATE TABLE sig (id INTEGER PRIMARY KEY, h BLOB NOT NULL);
            CREATE TABLE band (k INTEGER NOT NULL, id INTEGER NOT NULL, PRIMARY KEY (k, id))
                WITHOUT ROWID;
            """
        )
        ask = ",".join("?" * self.BANDS)
        self._select = f"SELECT h FROM sig WHERE id IN (SELECT id FROM band WHERE k IN ({ask}))"

    def signature(self, text: str) -> np.ndarray:
        words = _norm(text).split()
        shingles = {" ".join(words[i : i + 3]) for i in range(max(1, len(words) - 2))}
        return minhash(shingles, self._a, self._b)

    def _bands(self, sig: np.ndarray) -> list[int]:
        bands = sig[: self.BANDS * self.ROWS].reshape(self.BANDS, self.ROWS).astype(np.uint64)
        h = self._salt.copy()
        for j in range(self.ROWS):
            h = (h ^ bands[:, j]) * np.uint64(0x100000001B3)
            h ^= h >> np.uint64(31)
        return h.view(np.int64).tolist()  # SQLite integers are signed 64-bit

    def _best(self, sig: np.ndarray, keys: list[int]) -> float:
        blobs = self._db.execute(self._select, keys).fetchall()
        if not blobs:
            return 0.0
        kept = np.frombuffer(b"".join(b for (b,) in blobs), dtype=np.uint32).reshape(
            -1, self.num_perm
        )
        return float((kept == sig).mean(axis=1).max())

    def similarity(self, text: str) -> float:
        """The highest estimated Jaccard similarity to a kept text among the LSH candidates."""
        sig = self.signature(text)
        return self._best(sig, self._bands(sig))

    def add(self, text: str) -> None:
        sig = self.signature(text)
        self._add(sig, self._bands(sig))

    def _add(self, sig: np.ndarray, keys: list[int]) -> None:
        db, i = self._db, self.size
        db.execute("INSERT INTO sig VALUES (?, ?)", (i, sig.tobytes()))
        db.executemany("INSERT OR IGNORE INTO band VALUES (?, ?)", [(k, i) for k in keys])
        self.size += 1
        if self.size % self.COMMIT_EVERY == 0:
            db.commit()  # no sync (journal and sync off): only ends the open transaction

    # --- entries that carry their row id (the Ray engine's global index) ---
    #
    # A row re-made after a crash (its first text was checked in, then the worker died before
    # writing it) must not be a duplicate of itself: its own entry is left out of the comparison,
    # then replaced by the new text. The local engine numbers entries itself and never mixes the two.

    def _best_other(self, sig: np.ndarray, keys: list[int], row_id: int) -> float:
        blobs = self._db.execute(self._select + " AND id != ?", [*keys, row_id]).fetchall()
        if not blobs:
            return 0.0
        kept = np.frombuffer(b"".join(b for (b,) in blobs), dtype=np.uint32).reshape(
            -1, self.num_perm
        )
        return float((kept == sig).mean(axis=1).max())

    def put_sig(self, row_id: int, sig: np.ndarray) -> None:
        """Remember row `row_id`'s signature, replacing the row's earlier one."""
        db = self._db
        old = db.execute("SELECT h FROM sig WHERE id = ?", (row_id,)).fetchone()
        if old is not None:
            stale = self._bands(np.frombuffer(old[0], dtype=np.uint32))
            db.executemany("DELETE FROM band WHERE k = ? AND id = ?", [(k, row_id) for k in stale])
        else:
            self.size += 1
        db.execute("INSERT OR REPLACE INTO sig VALUES (?, ?)", (row_id, sig.tobytes()))
        keys = self._bands(sig)
        db.executemany("INSERT OR IGNORE INTO band VALUES (?, ?)", [(k, row_id) for k in keys])
        if self.size % self.COMMIT_EVERY == 0:
            db.commit()

    def check_sig(self, row_id: int, sig: np.ndarray) -> str | None:
        """As `check_and_add`, for row `row_id`'s signature: other rows' entries only."""
        best = self._best_other(sig, self._bands(sig), row_id)
        if best >= 1.0:
            return "exact"
        if best >= self.threshold:
            return "near"
        self.put_sig(row_id, sig)
        return None

    def check_and_add(self, text: str, key: str = "") -> str | None:
        """None when new (and remembered); else "exact" or "near". (`key` is kept for callers.)"""
        sig = self.signature(text)
        keys = self._bands(sig)
        best = self._best(sig, keys)
        if best >= 1.0:
            return "exact"
        if best >= self.threshold:
            return "near"
        self._add(sig, keys)
        return None

    def nbytes(self) -> int:
        """Bytes of the index (in its temporary file and page cache; memory is the cache at most)."""
        with contextlib.suppress(sqlite3.ProgrammingError):  # closed: the last size known
            pages = self._db.execute("PRAGMA page_count").fetchone()[0]
            self._nbytes = int(pages * self._db.execute("PRAGMA page_size").fetchone()[0])
        return self._nbytes

    def close(self) -> None:
        self.nbytes()
        self._db.close()


class RowDedup(Protocol):
    """The run's duplicate check, by row id: in this process, or an index shared by many
    (`agent.tools.ray_engine`). `seen` remembers a row already kept (on resume)."""

    async def seen(self, row_id: int, text: str) -> None: ...

    async def check(self, row_id: int, text: str) -> str | None: ...

    def nbytes(self) -> int: ...

    def close(self) -> None: ...


class LocalDedup:
    """The one-process engine's check: a private `Deduper`."""

    def __init__(self, threshold: float) -> None:
        self._d = Deduper(threshold)

    async def seen(self, row_id: int, text: str) -> None:
        self._d.add(text)

    async def check(self, row_id: int, text: str) -> str | None:
        return self._d.check_and_add(text)

    def nbytes(self) -> int:
        return self._d.nbytes()

    def close(self) -> None:
        self._d.close()
