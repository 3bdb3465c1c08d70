"""Benchmark 5 — dedup: the fixed-delay server answers from a small pool of texts (repeated,
re-cased, re-punctuated, or with a word added), so the model "repeats itself". The final dataset's
near-duplicate rate is measured independently (exact Jaccard on word 3-shingles, all pairs); the
run either reaches its size under 1 % or stops and says why.

    python -m bench.dedup
"""

from __future__ import annotations

import argparse
import asyncio
import json

from agent.tools.generate import read_rows
from bench.common import fixed_delay, near_dup_rate, ollama_model, run_engine


async def one(url: str, rows: int) -> dict:
    seconds, result = await run_engine(ollama_model(url), rows, 8)
    texts = [r["text"] for r in read_rows(result.run_dir)]
    return {
        "asked": rows,
        "made": result.rows,
        "complete": result.complete,
        "duplicates_replaced": result.progress["duplicates"],
        "near_dup_rate_in_dataset": round(near_dup_rate(texts), 4),
        "exact_dup_rate": round(1 - len(set(texts)) / max(1, len(texts)), 4),
        "seconds": round(seconds, 1),
        "message": result.reason,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark 5: dedup")
    parser.add_argument("--pool", type=int, default=150)
    args = parser.parse_args()
    with fixed_delay(0.01, pool=args.pool) as url:
        for rows in (100, 400):  # reachable from the pool, and not
            print(json.dumps(asyncio.run(one(url, rows)), indent=1), flush=True)


if __name__ == "__main__":
    main()
