"""Benchmark 8 — the Ray engine's scaling: 1, 2 and 4 fixed-delay endpoints (one subprocess each),
one worker per endpoint, rows/min relative to one worker and to the one-process engine driving
the same endpoints, side by side in one run (medians of `--repeats`).

Each endpoint allows `--per-endpoint` requests in flight (the run's concurrency is that × the
endpoints); one model call per row (no judge), as in benchmark 1. Rows/min is given for the whole
`run_generation` call (worker start-up included; the workers start concurrently) and for the
steady state (from the first row made to the end), on one local Ray started once beforehand. The
default size, 1,000 rows an endpoint (4,000 at 4), is a run whose start-up is amortised as a real
multi-machine run's is (a run on several servers is long: start-up is seconds, the run minutes);
at 400 rows an endpoint the 2–4 s of start-up on this 2-core box were a quarter of the call.

    python -m bench.ray_scaling                      # 1,000 rows an endpoint, 2 repeats
    python -m bench.ray_scaling --rows 300 --repeats 1
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from agent.tools.generate import run_generation
from bench.common import SPEC, check_rows, fixed_delay, median, ollama_model


async def one_run(
    urls: list[str], n: int, per: int, engine: str
) -> tuple[float, float, float, dict[str, Any]]:
    """(seconds for the whole call, rows/min from the first row made to the end, seconds to the
    first row, check)."""
    folder = Path(tempfile.mkdtemp(prefix=f"bench-ray-{engine}-"))
    first: list[tuple[float, int]] = []

    def seen(p: dict[str, Any]) -> None:
        if p["done"] and not first:
            first.append((time.perf_counter(), p["done"]))

    t0 = time.perf_counter()
    await run_generation(
        SPEC,
        n,
        folder / "run",
        generator=[ollama_model(u) for u in urls],
        judge=None,
        concurrency=per * len(urls),
        start=per * len(urls),
        engine=engine,
        on_progress=seen,
        tick=0.1,
    )
    end = time.perf_counter()
    steady = (n - first[0][1]) / (end - first[0][0]) * 60 if first else 0.0
    startup = first[0][0] - t0 if first else end - t0
    return end - t0, steady, startup, check_rows(folder / "run", SPEC, n)


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark 8: Ray engine scaling")
    parser.add_argument("--rows", type=int, default=1000, help="rows per endpoint")
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--per-endpoint", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--endpoints", default="1,2,4")
    args = parser.parse_args()
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    t0 = time.perf_counter()
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    print(f"ray.init {time.perf_counter() - t0:.1f} s", flush=True)
    counts = [int(x) for x in args.endpoints.split(",")]
    per, delay = args.per_endpoint, args.delay
    results: dict[tuple[int, str], list[float]] = {}
    steady: dict[tuple[int, str], list[float]] = {}
    checks: dict[tuple[int, str], dict[str, Any]] = {}
    startups: dict[tuple[int, str], list[float]] = {}
    with contextlib.ExitStack() as stack:
        urls = [stack.enter_context(fixed_delay(delay)) for _ in range(max(counts))]
        for rep in range(args.repeats):
            for e in counts:
                n = args.rows * e
                for engine in ("ray", "local"):  # interleaved: both see the same noise
                    seconds, flow, startup, check = asyncio.run(one_run(urls[:e], n, per, engine))
                    startups.setdefault((e, engine), []).append(startup)
                    rate = n / seconds * 60
                    results.setdefault((e, engine), []).append(rate)
                    steady.setdefault((e, engine), []).append(flow)
                    checks[(e, engine)] = check
                    print(
                        f"run {rep + 1} endpoints={e} {engine:>5}: {n} rows in {seconds:.1f} s = "
                        f"{rate:,.0f} rows/min (after the first row {flow:,.0f}; first row "
                        f"after {startup:.1f} s) · "
                        f"valid {check['valid']}/{n} · "
                        f"missing {check['missing']} · duplicated ids {check['duplicated_ids']}",
                        flush=True,
                    )
    ideal = per / delay * 60  # rows/min one endpoint can give at `per` in flight
    print(
        f"\nper endpoint: {per} in flight, {delay * 1000:.0f} ms a reply → ideal "
        f"{ideal:,.0f} rows/min; medians of {args.repeats}"
    )
    for label, table in (("whole call", results), ("after the first row", steady)):
        one = median(table[(counts[0], "ray")])
        for e in counts:
            ray_rate, local_rate = median(table[(e, "ray")]), median(table[(e, "local")])
            print(
                f"{label:>19} endpoints={e}: ray {ray_rate:,.0f} rows/min · "
                f"{ray_rate / one:.2f}× one worker = {ray_rate / one / e:.2f} of linear · "
                f"{ray_rate / (ideal * e):.2f} of ideal · one-process {local_rate:,.0f} rows/min "
                f"→ ray/one-process {ray_rate / local_rate:.2f}"
            )
    for e in counts:
        print(
            f"start-up (call to first row) endpoints={e}: ray "
            f"{median(startups[(e, 'ray')]):.1f} s · one-process "
            f"{median(startups[(e, 'local')]):.1f} s"
        )
    print(f"total {time.perf_counter() - t0:.0f} s")
    ray.shutdown()


if __name__ == "__main__":
    main()
