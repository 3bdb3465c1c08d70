"""Benchmark 1 — orchestration efficiency: actual time ÷ ideal time (rows × delay ÷ concurrency).

Two transports, side by side in one run: "http" is the production path (ChatOllama from the model
factory → HTTP → the fixed-delay Ollama-API server in a subprocess); "in-process" answers from a
model object after the same delay, without HTTP, so the engine's own overhead shows apart from
the HTTP client's. One model call per row (no judge), adaptive level starting at the cap.

    python -m bench.orchestration                 # 1,000 rows at 4, 16, 64; 200 rows at 1; 3 runs
    python -m bench.orchestration --rows 200 --repeats 1
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time
from typing import Any

from bench.common import (
    SPEC,
    InProcessModel,
    check_rows,
    fixed_delay,
    median,
    ollama_model,
    run_engine,
    server_stats,
)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def measure(
    levels: tuple[int, ...] = (1, 4, 16, 64),
    rows: int = 1000,
    delay: float = 0.2,
    repeats: int = 3,
    rows_at_1: int = 200,
    transports: tuple[str, ...] = ("http", "in-process"),
) -> list[dict[str, Any]]:
    """Run every level on every transport `repeats` times; one record per (transport, level)."""
    out: list[dict[str, Any]] = []
    with fixed_delay(delay) as url:
        for transport in transports:
            for c in levels:
                n = rows_at_1 if c == 1 else rows
                ratios, cpu, checks, peak = [], [], [], 0
                for _ in range(repeats):
                    # a fresh client per run: httpx's pooled connections belong to one event
                    # loop, and each run is its own `asyncio.run`
                    model = (
                        ollama_model(url) if transport == "http" else InProcessModel(delay=delay)
                    )
                    before = server_stats(url)["requests"] if transport == "http" else 0
                    c0 = _cpu()
                    seconds, result = asyncio.run(run_engine(model, n, c))
                    cpu.append((_cpu() - c0) / n * 1000)
                    ratios.append(seconds / (n * delay / c))
                    checks.append(check_rows(result.run_dir, SPEC, n))
                    if transport == "http":
                        stats = server_stats(url)
                        peak = max(peak, stats["max_in_flight"])
                        checks[-1]["requests"] = stats["requests"] - before
                out.append(
                    {
                        "transport": transport,
                        "concurrency": c,
                        "rows": n,
                        "ratio_median": round(median(ratios), 3),
                        "ratios": [round(r, 3) for r in ratios],
                        "client_cpu_ms_per_row": round(median(cpu), 2),
                        "server_peak_in_flight": peak or None,
                        "check": checks[-1],
                    }
                )
                print(_line(out[-1]), flush=True)
    return out


def _line(r: dict[str, Any]) -> str:
    return (
        f"{r['transport']:>10} c={r['concurrency']:>2} rows={r['rows']:>4} "
        f"actual/ideal median {r['ratio_median']:.3f} (runs {r['ratios']}) · "
        f"client CPU {r['client_cpu_ms_per_row']:.1f} ms/row · valid {r['check']['valid']}/{r['rows']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark 1: orchestration efficiency")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--rows-at-1", type=int, default=200)
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--levels", default="1,4,16,64")
    args = parser.parse_args()
    t0 = time.perf_counter()
    measure(
        tuple(int(x) for x in args.levels.split(",")),
        args.rows,
        args.delay,
        args.repeats,
        args.rows_at_1,
    )
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
