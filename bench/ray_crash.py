"""Benchmark 9 — the Ray engine's crash safety: a run through the real CLI (`--engine ray`, the
driver joining this benchmark's local Ray through RAY_ADDRESS, two fixed-delay endpoints), with
`kill -9` of the driver at several random points (each time resumed with `--resume RUN_DIR`) and
`ray.kill` of single workers in between, then finished. Reports rows lost (on disk before a kill,
gone or changed after), ids duplicated or missing, and the quota error (|made − target| summed over
the labels).

    python -m bench.ray_crash                  # 600 rows, 4 driver kills, 3 worker kills
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from agent.tasks.base import quotas
from agent.tasks.textcat.rows import TextClassification
from agent.tools.generate import init_run, read_rows
from bench.common import ROOT, SPEC, fixed_delay


def _workers() -> list[Any]:
    import ray

    found = []
    for a in ray.util.list_named_actors(all_namespaces=True):
        if ":worker:" in a["name"]:
            with contextlib.suppress(Exception):
                found.append(ray.get_actor(a["name"], namespace=a["namespace"]))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark 9: Ray engine crash safety")
    parser.add_argument("--rows", type=int, default=600)
    parser.add_argument("--kills", type=int, default=4, help="kill -9 of the driver")
    parser.add_argument("--worker-kills", type=int, default=3, help="ray.kill of one worker")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    address = ray.get_runtime_context().gcs_address
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-crash-"))
    run_dir, n = tmp / "run", args.rows
    task = TextClassification(SPEC, n, 0, judge=True)
    init_run(run_dir, {"task": "textcat", "n": n, **task.meta()})
    # driver kills at random row counts; worker kills in the sessions between them
    points = sorted(rng.sample(range(n // 10, n - n // 10), args.kills))
    worker_kills = set(rng.sample(range(args.kills + 1), min(args.worker_kills, args.kills + 1)))
    lost = changed = killed_workers = 0
    ever: dict[int, dict[str, Any]] = {}

    def audit() -> list[dict[str, Any]]:
        nonlocal lost, changed
        rows = list(read_rows(run_dir))
        now = {r["row_id"]: r for r in rows}
        lost += sum(1 for i in ever if i not in now)
        changed += sum(1 for i, r in ever.items() if i in now and now[i] != r)
        ever.update(now)
        return rows

    def count() -> int:
        return sum(1 for _ in read_rows(run_dir))

    t0 = time.perf_counter()
    with fixed_delay(0.05) as a, fixed_delay(0.05) as b:
        env = os.environ | {
            "LLM_PROVIDER": "ollama",
            "OLLAMA_BASE_URL": a,
            "LLM_ENDPOINTS": f"{a},{b}",
            "DATA_DIR": str(tmp / "data"),
            "RAY_ADDRESS": address,
        }
        cmd = [sys.executable, "-m", "agent", "generate", "--resume", str(run_dir)]
        cmd += ["--out", str(tmp / "out"), "--concurrency", "8", "--engine", "ray"]
        for k, point in enumerate([*points, None]):
            child = subprocess.Popen(cmd, env=env, cwd=ROOT, stderr=subprocess.DEVNULL)
            if k in worker_kills:  # one worker dies mid-session; its shard goes to another
                start = count()
                while count() < start + 20 and child.poll() is None:
                    time.sleep(0.05)
                victims = _workers()
                if victims and child.poll() is None:
                    ray.kill(rng.choice(victims))
                    killed_workers += 1
                    print(f"ray.kill of a worker at {count()} rows on disk", flush=True)
            if point is None:
                child.wait(timeout=600)
                print(f"finished: exit {child.returncode}", flush=True)
                break
            while count() < point and child.poll() is None:
                time.sleep(0.01)
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
            print(f"kill -9 of the driver at {len(audit())} rows on disk (aimed at {point})")
        exit_code = child.returncode
    rows = audit()
    ids = [r["row_id"] for r in rows]
    made = Counter(r["label"] for r in rows)
    target = quotas(SPEC.mix, n)
    report = {
        "rows": n,
        "driver_kills": len(points),
        "worker_kills": killed_workers,
        "exit": exit_code,
        "rows_in_files": len(ids),
        "missing_ids": n - len(set(ids)),
        "duplicated_ids": len(ids) - len(set(ids)),
        "rows_lost_after_a_kill": lost,
        "rows_changed_after_a_kill": changed,
        "quota_error": sum(abs(made.get(k, 0) - v) for k, v in target.items()),
        "seconds": round(time.perf_counter() - t0),
    }
    print(json.dumps(report, indent=1))
    ray.shutdown()


if __name__ == "__main__":
    main()
