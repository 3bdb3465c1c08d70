"""Benchmark 3 — memory: peak RSS at 10k, 50k and 100k rows of one run.

The model answers in-process with no delay (the fixed-delay server's replies, without HTTP, so
100,000 rows take minutes rather than an hour of HTTP client CPU); everything else is the real
engine: plan from ids, dedup index, rows streamed to disk. Reports VmRSS, VmHWM (peak) and the
size of the dedup index (a temporary SQLite file with a bounded page cache) at each mark.

    python -m bench.memory                 # 100,000 rows
    python -m bench.memory --rows 20000
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from agent.tools.generate import run_generation
from bench.common import SPEC, InProcessModel, check_rows


def _status() -> dict[str, int]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) // 1024  # MB
    return out


async def measure(rows: int, marks: tuple[int, ...]) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    pending = list(marks)

    def on_progress(p: dict[str, Any]) -> None:
        while pending and p["done"] >= pending[0]:
            mark = pending.pop(0)
            seen.append(
                {"rows": mark, **_status(), "dedup_file_MB": round(p["dedup_bytes"] / 2**20, 1)}
            )
            print(seen[-1], flush=True)

    folder = Path(tempfile.mkdtemp(prefix="bench-mem-"))
    print("before", _status(), flush=True)
    t0 = time.perf_counter()
    result = await run_generation(
        SPEC.model_copy(update={"size": rows}),
        rows,
        folder,
        generator=InProcessModel(delay=0.0),
        judge=None,
        concurrency=16,
        on_progress=on_progress,
        tick=0.05,
    )
    on_progress(result.progress)
    print(f"{rows:,} rows in {time.perf_counter() - t0:.0f} s;", check_rows(folder, SPEC, rows))
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark 3: memory")
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    marks = tuple(m for m in (1_000, 10_000, 50_000, 100_000) if m <= args.rows) or (args.rows,)
    asyncio.run(measure(args.rows, marks))


if __name__ == "__main__":
    main()
