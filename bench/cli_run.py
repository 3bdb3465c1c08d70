"""Benchmark 10 — a whole headless run: `python -m agent generate … --yes` as a user types it,
against a loopback Ollama-API server that answers *every* request (the conversation's own calls
too) after the same fixed delay. Prints the actual time, the ideal time and their ratio (medians
of `--repeats`), and where the seconds went.

The ideal is the model time alone for the calls the run made, at the run's concurrency `c`:

    ideal = Σ sequential conversation calls × delay
          + Σ engine phases (the sample, the full run) max(calls × delay ÷ c, depth × delay)

where a phase's calls are the rows' generation and judge calls the server saw between two
conversation calls, and `depth` is the calls one row makes one after the other (2 with the
judge: a row is written, then relabelled). Process start, imports, the graph, the engine's ramp
and tail, and the export are not model time: they are what the ratio measures.

    python -m bench.cli_run                          # 1,000 and 300 rows, 3 runs each
    python -m bench.cli_run --rows 1000 --repeats 1
    python -m bench.cli_run --serve                  # only the server (prints READY <url>)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.common import ROOT, median, subprocess_server
from tests.fixed_delay_server import FixedDelayServer, Knobs

DESCRIPTION = "Customer reviews for an e-commerce website, labelled by sentiment."

PROPOSAL = {
    "name": "ecommerce-reviews",
    "labels": [
        {"name": "positive", "definition": "The customer is satisfied."},
        {"name": "negative", "definition": "The customer is unhappy."},
        {"name": "neutral", "definition": "Mixed or factual, no clear feeling."},
    ],
    "multi_label": False,
    "language": "English",
    "size": 100,
    "topics": ["electronics", "clothing", "home"],
    "length": "short",
    "tones": ["casual", "formal"],
}


def _fill(schema: dict[str, Any], root: dict[str, Any]) -> Any:
    """A valid value for a JSON schema: defaults first, then the first choice of each kind."""
    if "$ref" in schema:
        return _fill(root.get("$defs", {})[schema["$ref"].rsplit("/", 1)[1]], root)
    if "default" in schema:
        return schema["default"]
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return _fill(options[0], root)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {k: _fill(v, root) for k, v in schema.get("properties", {}).items()}
    return {"array": [], "string": "", "integer": 1, "number": 1.0, "boolean": True}.get(str(kind))


def kind_of(body: dict[str, Any]) -> str:
    """row | judge | the conversation call's schema (its property names)."""
    fmt = body.get("format")
    props = fmt.get("properties", {}) if isinstance(fmt, dict) else {}
    if not isinstance(fmt, dict):
        return "prose"
    if {"labels", "topics"} <= set(props):
        return "proposal"
    if "text" in props:
        return "row"
    if {"label", "labels"} & set(props) and "reasoning" in props:
        return "judge"
    return "+".join(sorted(props))[:40] or "other"


class EveryCallServer(FixedDelayServer):
    """The fixed-delay server answering every schema the app asks for, each after `delay`: rows
    and relabels as `FixedDelayServer` does, a proposal with three labels, any other schema
    filled in from its JSON schema (as tests/test_browser.py's ScriptedOllama, but not at once).
    `GET /log` lists every chat request as [kind, start, end] (wall-clock seconds)."""

    def __init__(self, knobs: Knobs, port: int = 0) -> None:
        super().__init__(knobs, port)
        self.log: list[tuple[str, float, float]] = []

    async def handle(
        self, method: str, path: str, body: bytes, headers: dict[str, str] | None = None
    ) -> tuple[int, str, bytes]:
        if path == "/log":
            return 200, "application/json", json.dumps(self.log).encode()
        if path == "/log/clear":
            self.log = []
            return 200, "application/json", b"[]"
        return await super().handle(method, path, body, headers)

    async def _chat(self, body: dict[str, Any]) -> tuple[int, str, bytes]:
        t0 = time.time()
        kind = kind_of(body)
        try:
            if kind in ("row", "judge"):
                return await super()._chat(body)
            await asyncio.sleep(self.knobs.delay)
            fmt = body.get("format")
            reply: Any = "It is fine." if not isinstance(fmt, dict) else _fill(fmt, fmt)
            if kind == "proposal":
                reply |= PROPOSAL
            elif isinstance(reply, dict) and "op" in reply:
                reply |= {"op": "unclear"}
            content = reply if isinstance(reply, str) else json.dumps(reply)
            done = {
                "model": body.get("model", "llama3.1"),
                "created_at": "2024-01-01T00:00:00Z",
                "message": {"role": "assistant", "content": content},
                "done": True,
                "done_reason": "stop",
            }
            if not body.get("stream", True):
                return 200, "application/json", json.dumps(done).encode()
            part = done | {"done": False}
            end = done | {"message": {"role": "assistant", "content": ""}}
            lines = f"{json.dumps(part)}\n{json.dumps(end)}\n"
            return 200, "application/x-ndjson", lines.encode()
        finally:
            self.log.append((kind, t0, time.time()))


def _get(url: str) -> Any:
    with urllib.request.urlopen(url) as resp:
        return json.loads(resp.read())


def ideal_of(log: list[list[Any]], delay: float, c: int) -> dict[str, Any]:
    """The ideal time of the calls in `log` (see the module docstring), and its parts."""
    calls = sorted(log, key=lambda r: r[1])
    conversation: list[str] = []
    phases: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for kind, start, end in calls:
        if kind in ("row", "judge"):
            if current is None:
                current = {"calls": 0, "judge": 0, "start": start, "end": end}
                phases.append(current)
            current["calls"] += 1
            current["judge"] += kind == "judge"
            current["end"] = max(current["end"], end)
        else:
            conversation.append(kind)
            current = None
    parts = [len(conversation) * delay]
    for p in phases:
        depth = 2 if p["judge"] else 1
        p["ideal"] = max(p["calls"] * delay / c, depth * delay)
        p["actual"] = p["end"] - p["start"]
        parts.append(p["ideal"])
    return {"ideal": sum(parts), "conversation": conversation, "phases": phases}


def one_run(
    url: str, rows: int, c: int, delay: float, extra_env: dict[str, str], tree: Path = ROOT
) -> dict[str, Any]:
    """One CLI run (of the code in `tree`) in a fresh data folder; the wall time from spawning to
    exit, and its profile."""
    _get(f"{url}/log/clear")
    home = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    env = {
        **os.environ,
        "LLM_PROVIDER": "ollama",
        "OLLAMA_BASE_URL": url,
        "DATA_DIR": str(home / "data"),
        "USERS_FILE": str(home / "users.json"),
        "PYTHONPATH": str(tree),
        **extra_env,
    }
    cmd = [
        sys.executable,
        "-m",
        "agent",
        "generate",
        "--description",
        DESCRIPTION,
        "--rows",
        str(rows),
        "--concurrency",
        str(c),
        "--yes",
        "--out",
        str(home / "out"),
    ]
    t0 = time.time()
    proc = subprocess.Popen(
        cmd, env=env, cwd=home, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    lines: dict[str, list[tuple[float, str]]] = {"out": [], "err": []}

    def read(name: str, stream: Any) -> None:
        for line in stream:
            lines[name].append((time.time(), line.rstrip()))

    readers = [
        threading.Thread(target=read, args=("out", proc.stdout)),
        threading.Thread(target=read, args=("err", proc.stderr)),
    ]
    for t in readers:
        t.start()
    code = proc.wait()
    t1 = time.time()
    for t in readers:
        t.join()
    if code != 0:
        tail = "\n".join(x for _, x in lines["err"][-20:])
        raise RuntimeError(f"the CLI failed ({code}): {tail}")
    said = lines["out"][-1][0] if lines["out"] else t1
    log = _get(f"{url}/log")
    parts = ideal_of(log, delay, c)
    calls = sorted(log, key=lambda r: r[1])
    first, last = calls[0][1], max(r[2] for r in calls)
    # where the seconds went: before the first call, between calls, after the last one
    gaps = []
    busy_until = first
    for kind, start, end in calls:
        if start > busy_until + 0.005:
            gaps.append((round(start - busy_until, 3), kind))
        busy_until = max(busy_until, end)
    written = sum(1 for _ in (home / "out").glob("**/*.parquet"))
    return {
        "actual": t1 - t0,
        "ideal": parts["ideal"],
        "ratio": (t1 - t0) / parts["ideal"],
        "before_first_call": first - t0,
        "after_last_call": t1 - last,
        "last_call_to_output": said - last,
        "output_to_exit": t1 - said,
        "gaps": gaps,
        "conversation": parts["conversation"],
        "phases": [
            {k: (round(v, 3) if isinstance(v, float) else v) for k, v in p.items()}
            for p in parts["phases"]
        ],
        "requests": len(log),
        "parquet_files": written,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark 10: a whole CLI run vs. its ideal")
    parser.add_argument("--rows", default="1000,300", help="row counts, comma-separated")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the CLI")
    parser.add_argument("--serve", action="store_true", help="only run the server")
    parser.add_argument(
        "--tree",
        action="append",
        default=[],
        help="a source tree to run the CLI from (repeat for an A/B: runs interleave); default "
        "this repository",
    )
    args = parser.parse_args()
    if args.serve:
        server = EveryCallServer(Knobs(delay=args.delay))
        print(f"READY {server.url}", flush=True)
        server.serve()
        return
    extra = dict(kv.split("=", 1) for kv in args.env)
    t_start = time.perf_counter()
    with subprocess_server("bench.cli_run", "--serve", f"--delay={args.delay}") as url:
        trees = [Path(t).resolve() for t in args.tree] or [ROOT]
        for rows in [int(x) for x in args.rows.split(",")]:
            runs: dict[Path, list[dict[str, Any]]] = {t: [] for t in trees}
            for rep in range(args.repeats):
                for tree in trees:  # interleaved: every tree sees the same noise
                    r = one_run(url, rows, args.concurrency, args.delay, extra, tree)
                    runs[tree].append(r)
                    phases = " · ".join(
                        f"phase {p['calls']} calls {p['actual']:.2f} s (ideal {p['ideal']:.2f})"
                        for p in r["phases"]
                    )
                    name = f" [{tree.name}]" if len(trees) > 1 else ""
                    print(
                        f"rows={rows}{name} run {rep + 1}: actual {r['actual']:.2f} s · ideal "
                        f"{r['ideal']:.2f} s · ratio {r['ratio']:.3f} · before the first call "
                        f"{r['before_first_call']:.2f} s · after the last "
                        f"{r['after_last_call']:.2f} s (to the output line "
                        f"{r['last_call_to_output']:.2f}, then exit {r['output_to_exit']:.2f}) · "
                        f"{r['requests']} requests · conversation calls {r['conversation']} · "
                        f"{phases}",
                        flush=True,
                    )
                    big = sorted(r["gaps"], reverse=True)[:6]
                    print(f"    idle gaps between calls (s, next call): {big}", flush=True)
            for tree in trees:
                rs = runs[tree]
                name = f" [{tree.name}]" if len(trees) > 1 else ""
                print(
                    f"rows={rows}{name} c={args.concurrency} delay={args.delay * 1000:.0f} ms: "
                    f"median actual {median([r['actual'] for r in rs]):.2f} s · ideal "
                    f"{median([r['ideal'] for r in rs]):.2f} s · ratio median "
                    f"{median([r['ratio'] for r in rs]):.3f} (runs "
                    f"{[round(r['ratio'], 3) for r in rs]}) · median before the first call "
                    f"{median([r['before_first_call'] for r in rs]):.2f} s, after the last "
                    f"{median([r['after_last_call'] for r in rs]):.2f} s",
                    flush=True,
                )
    print(f"total {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
