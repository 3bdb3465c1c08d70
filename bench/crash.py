"""Benchmark 4 — crash safety: a 500-row run through the real CLI, killed with SIGKILL at ten
random points (each time resumed with `--resume RUN_DIR`, then killed again), then finished.
Reports rows lost (on disk before a kill, gone or changed after) and rows duplicated.

    python -m bench.crash                  # 500 rows, 10 kills
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agent.tasks.textcat.rows import TextClassification
from agent.tools.generate import init_run, read_rows
from bench.common import ROOT, SPEC, fixed_delay, line_count


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark 4: crash safety")
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="bench-crash-"))
    run_dir, n = tmp / "run", args.rows
    init_run(
        run_dir, {"task": "textcat", "n": n, **TextClassification(SPEC, n, 0, judge=True).meta()}
    )
    points = sorted(rng.sample(range(5, n - 5), args.kills))
    lost = changed = torn = 0
    ever: dict[int, dict] = {}  # every row seen on disk after any kill

    def audit() -> list[dict]:
        nonlocal lost, changed
        rows = list(read_rows(run_dir))
        now = {r["row_id"]: r for r in rows}
        lost += sum(1 for i in ever if i not in now)
        changed += sum(1 for i, r in ever.items() if i in now and now[i] != r)
        ever.update(now)
        return rows

    with fixed_delay(0.05) as url:
        env = os.environ | {
            "LLM_PROVIDER": "ollama",
            "OLLAMA_BASE_URL": url,
            "DATA_DIR": str(tmp / "data"),
        }
        cmd = [sys.executable, "-m", "agent", "generate", "--resume", str(run_dir)]
        cmd += ["--out", str(tmp / "out"), "--concurrency", "8"]
        for point in points:  # each child resumes the run the previous one left
            child = subprocess.Popen(cmd, env=env, cwd=ROOT, stderr=subprocess.DEVNULL)
            while line_count(run_dir / "rows.jsonl") < point and child.poll() is None:
                time.sleep(0.002)
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
            torn += not (run_dir / "rows.jsonl").read_bytes().endswith(b"\n")
            print(f"kill -9 at {len(audit())} rows on disk (aimed at {point})", flush=True)
        done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    rows = audit()
    ids = [r["row_id"] for r in rows]
    report = {
        "rows": n,
        "kills": len(points),
        "exit": done.returncode,
        "rows_in_file": len(ids),
        "missing_ids": n - len(set(ids)),
        "duplicated_ids": len(ids) - len(set(ids)),
        "rows_lost_after_a_kill": lost,
        "rows_changed_after_a_kill": changed,
        "kills_that_left_a_torn_line": torn,
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
