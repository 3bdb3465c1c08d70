"""The Ray engine, read as its specification: shards meet every quota exactly and no row id twice;
a duplicate across shards (and across a resume) is caught; a worker killed mid-shard, or a driver
killed with SIGKILL, loses and doubles nothing; an endpoint that goes away and comes back pauses
the run, which then finishes; a re-made row is not a duplicate of itself.

One local Ray for the whole session (`num_cpus=4`, no dashboard); the endpoints are the
fixed-delay Ollama-API server (real `ChatOllama` over HTTP, from the actors' processes) or a
scripted model that the actors unpickle.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage

from agent.config import get_settings
from agent.spec import make_spec
from agent.tasks.base import quotas
from agent.tasks.textcat.rows import TextClassification
from agent.tools.generate import init_run, read_rows, run_generation
from agent.tools.ray_engine import SHARDS_DIR, DedupIndex, committed, shard_dir
from bench.common import near_dup_rate, ollama_model
from tests.conftest import VOCAB
from tests.fakes import ScriptedModel
from tests.fixed_delay_server import fixed_delay_server, running_server

ray = pytest.importorskip("ray", reason="the ray extra is not installed")
pytestmark = pytest.mark.ray

ROOT = Path(__file__).resolve().parent.parent
SPEC = make_spec(
    {
        "description": "Customer reviews.",
        "labels": [
            {"name": "positive", "definition": "Satisfied."},
            {"name": "negative", "definition": "Unhappy."},
            {"name": "neutral", "definition": "Neither."},
        ],
        "mix": {"positive": 0.5, "negative": 0.3, "neutral": 0.2},
        "size": 200,
        "style": {"topics": ["shoes", "phones", "lamps"], "length": "short"},
    }
)


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """One local Ray for every test here; yields its address (a driver subprocess joins it)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch, ray_cluster: str) -> None:
    monkeypatch.setenv("LLM_RETRIES", "1")
    get_settings.cache_clear()


def words(key: str, k: int = 30) -> str:
    rng = random.Random(key)
    return " ".join(rng.choice(VOCAB) for _ in range(k))


def seed_of(messages: list[BaseMessage]) -> tuple[int, int]:
    m = re.search(r"Variation seed: \d+-(\d+)-(\d+)", str(messages[-1].content))
    assert m
    return int(m.group(1)), int(m.group(2))


PLANTED = {30: 5, 190: 3}  # row → the row whose first text it copies (other shards, other times)


def planted_texts(kind: str, messages: list[BaseMessage]) -> Any:
    """Module-level, so the actors unpickle it: the planted rows' first attempts copy a text."""
    if kind == "text":
        return "sorry, no"
    row, attempt = seed_of(messages)
    if row in PLANTED and attempt == 0:
        return {"text": words(f"{PLANTED[row]}-0").upper() + " again!"}
    return {"text": words(f"{row}-{attempt}")}


class DiesOnce:
    """A judge that kills its own worker process the first time it reviews `row`: the row has
    passed the global dedup check but is not written yet (`flag` marks that it happened)."""

    def __init__(self, row: int, flag: str) -> None:
        self.row, self.flag = row, flag

    def __call__(self, kind: str, messages: list[BaseMessage]) -> Any:
        text = str(messages[-1].content)
        if kind != "text" and "<text>" in text:  # the relabel call
            first = re.search(r"<text>\s*(\S+)", text)
            if first and first.group(1) == f"row{self.row}" and not os.path.exists(self.flag):
                Path(self.flag).write_text("died")
                os._exit(1)  # the worker dies with the row checked in but unwritten
            return {"reasoning": "fits", "label": "positive"}
        if kind == "text":
            return "sorry, no"
        row, attempt = seed_of(messages)
        return {"text": f"row{row} " + words(f"{row}-{attempt}")}


def assert_complete(run_dir: Path, n: int) -> list[dict[str, Any]]:
    rows = list(read_rows(run_dir))
    ids = [r["row_id"] for r in rows]
    assert sorted(ids) == list(range(n)), "every row once: none lost, none duplicated"
    assert Counter(r["label"] for r in rows) == Counter(quotas(SPEC.mix, n))
    return rows


async def test_shards_meet_every_quota_exactly_and_every_row_id_is_made_once(
    tmp_path: Path,
) -> None:
    run_dir, seen = tmp_path / "run", []
    with fixed_delay_server(delay=0.02) as (a, _), fixed_delay_server(delay=0.02) as (b, _):
        result = await run_generation(
            SPEC,
            200,
            run_dir,
            generator=[ollama_model(a), ollama_model(b)],
            judge=[ollama_model(a, "judge"), ollama_model(b, "judge")],
            concurrency=8,
            engine="ray",
            shard_rows=25,
            on_progress=seen.append,
            tick=0.1,
        )
    assert result.complete and result.rows == 200
    rows = assert_complete(run_dir, 200)
    task = TextClassification(SPEC, 200, seed=0, judge=True)
    for attr, targets in task.attribute_targets().items():
        assert Counter(r[attr] for r in rows) == Counter(targets), attr
    assert all(r["agreement"] for r in rows)  # the judge ran on the workers too
    # eight committed shards (Parquet + marker), no journal left behind
    assert [committed(run_dir, i) is not None for i in range(9)] == [True] * 8 + [False]
    assert not any(p.is_dir() for p in (run_dir / SHARDS_DIR).iterdir())
    # the same progress events as the one-process engine, summed over the workers
    assert set(seen[0]) >= {"done", "total", "rows_per_min", "quotas", "in_flight", "waiting"}
    assert [p["done"] for p in seen] == sorted(p["done"] for p in seen)
    assert any(0 < p["done"] < 200 and p["in_flight"] > 0 for p in seen)
    assert seen[-1]["quotas"] == {k: [v, v] for k, v in quotas(SPEC.mix, 200).items()}


async def test_a_planted_duplicate_across_shards_is_caught_also_after_a_resume(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "run"
    models = [ScriptedModel(responder=planted_texts), ScriptedModel(responder=planted_texts)]

    def pause(p: dict[str, Any]) -> str | None:
        return "paused for the test" if p["done"] >= 50 else None

    first = await run_generation(
        SPEC,
        200,
        run_dir,
        generator=models,
        judge=None,
        concurrency=4,
        engine="ray",
        shard_rows=25,
        should_stop=pause,
        tick=0.05,
    )
    assert first.paused == "paused for the test" and 50 <= first.rows < 200
    # the second session's index is rebuilt from the shard files: row 190 copies row 3
    second = await run_generation(
        SPEC, 200, run_dir, generator=models, judge=None, concurrency=4, engine="ray"
    )
    assert second.complete
    text = {r["row_id"]: r["text"] for r in assert_complete(run_dir, 200)}
    assert near_dup_rate(list(text.values())) == 0.0
    # row 3 was kept in the first session; row 190's copy of it was refused in the second
    assert text[3] == words("3-0") and text[190] == words("190-1")
    # rows 5 and 30 ran side by side on two workers: whichever came second was refused
    copy = words("5-0").upper() + " again!"
    assert (text[5], text[30]) in [(words("5-0"), words("30-1")), (words("5-1"), copy)]
    assert second.progress["duplicates"] >= len(PLANTED)


async def test_ray_kill_of_a_worker_mid_shard_loses_and_doubles_nothing(tmp_path: Path) -> None:
    run_dir, n = tmp_path / "run", 240
    with fixed_delay_server(delay=0.03) as (a, _), fixed_delay_server(delay=0.03) as (b, _):
        run = asyncio.create_task(
            run_generation(
                SPEC,
                n,
                run_dir,
                generator=[ollama_model(a), ollama_model(b)],
                judge=[ollama_model(a, "judge"), ollama_model(b, "judge")],
                concurrency=8,
                engine="ray",
                shard_rows=40,
                tick=0.05,
            )
        )
        victim, before = None, {}
        for _ in range(3000):
            await asyncio.sleep(0.01)
            for name in ray.util.list_named_actors():
                if ":worker:" not in name:
                    continue
                actor = ray.get_actor(name)
                shards = (await actor.progress.remote())["shards"]
                if any(5 <= snap["done"] < 35 for snap in shards.values()):
                    victim = actor  # it holds a shard part-way through
                    break
            if victim:
                break
        assert victim, "a worker was found mid-shard"
        before = {r["row_id"]: r for r in read_rows(run_dir)}
        ray.kill(victim)
        result = await run
    assert result.complete
    rows = assert_complete(run_dir, n)
    now = {r["row_id"]: r for r in rows}
    assert all(now[i] == r for i, r in before.items()), (
        "rows on disk at the kill are kept as they were"
    )
    assert result.progress["duplicates"] == 0  # the rows re-made after the kill are not doubles


async def test_a_row_re_made_after_its_worker_died_is_not_a_duplicate_of_itself(
    tmp_path: Path,
) -> None:
    run_dir, flag = tmp_path / "run", str(tmp_path / "died")
    model = ScriptedModel(responder=DiesOnce(row=60, flag=flag))
    result = await run_generation(
        SPEC,
        100,
        run_dir,
        generator=model,
        judge=model,
        concurrency=4,
        engine="ray",
        shard_rows=25,
    )
    assert Path(flag).exists(), "the worker died mid-shard, after row 60 was checked in"
    assert result.complete
    assert_complete(run_dir, 100)
    assert result.progress["duplicates"] == 0


def test_the_index_leaves_a_rows_own_entry_out_and_replaces_it() -> None:
    index = DedupIndex(0.9)
    from agent.tools.ray_engine import _signer

    sig = _signer().signature(words("one")).tobytes()
    other = _signer().signature(words("two")).tobytes()
    assert index.batch([("check", 7, sig)]) == [None]
    assert index.batch([("check", 7, sig), ("check", 8, sig)]) == [None, "exact"]
    assert index.batch([("check", 7, other), ("check", 9, sig)]) == [None, None]  # 7 replaced
    assert index.size() == 2


def test_kill_9_of_the_driver_then_resume_skips_committed_shards_and_loses_nothing(
    tmp_path: Path, ray_cluster: str
) -> None:
    n, run_dir = 300, tmp_path / "runs" / "killed"
    task = TextClassification(SPEC, n, seed=7, judge=False)
    init_run(run_dir, {"task": "textcat", "n": n, **task.meta()})
    with fixed_delay_server(delay=0.03) as (url, _):
        env = os.environ | {
            "LLM_PROVIDER": "ollama",
            "OLLAMA_BASE_URL": url,
            "JUDGE_FULL_RUN": "false",
            "DATA_DIR": str(tmp_path / "data"),
            "RAY_ADDRESS": ray_cluster,  # the driver joins the session's Ray
        }
        cmd = [sys.executable, "-m", "agent", "generate", "--resume", str(run_dir)]
        cmd += ["--out", str(tmp_path / "out"), "--concurrency", "6", "--engine", "ray"]
        child = subprocess.Popen(cmd, env=env, cwd=ROOT, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and child.poll() is None:
            done = [committed(run_dir, i) is not None for i in range(8)]
            if sum(done) >= 2 and len(list(read_rows(run_dir))) >= 100:
                break
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        before = {r["row_id"]: r for r in read_rows(run_dir)}
        kept = [i for i in range(8) if committed(run_dir, i) is not None]
        assert len(kept) >= 2 and len(before) < n, "killed mid-run"
        stamps = {i: shard_dir(run_dir, i).with_suffix(".parquet").stat().st_mtime for i in kept}
        done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    rows = list(read_rows(run_dir))
    assert sorted(r["row_id"] for r in rows) == list(range(n)), "0 lost, 0 duplicated"
    now = {r["row_id"]: r for r in rows}
    changed = [(row, now[i]) for i, row in before.items() if now[i] != row]
    assert not changed, f"rows on disk at the kill were changed: {changed[:2]}"
    assert Counter(r["label"] for r in rows) == Counter(quotas(SPEC.mix, n))
    # committed shards were skipped, not made again
    assert all(
        shard_dir(run_dir, i).with_suffix(".parquet").stat().st_mtime == t
        for i, t in stamps.items()
    )
    assert Path(done.stdout.strip().splitlines()[-1]) == (tmp_path / "out").resolve()


async def test_an_endpoint_that_goes_down_and_comes_back_pauses_the_run_which_finishes(
    tmp_path: Path,
) -> None:
    run_dir, seen = tmp_path / "run", []
    with running_server(delay=0.02) as server:

        async def restart() -> None:
            for _ in range(3000):
                await asyncio.sleep(0.01)
                if seen and seen[-1]["done"] >= 40:
                    break
            await asyncio.to_thread(server.stop)  # refused connections from now on
            for _ in range(3000):
                await asyncio.sleep(0.01)
                if any(p["waiting"] for p in seen):
                    break
            await asyncio.sleep(1.0)
            await asyncio.to_thread(server.start)  # same port, back

        restarting = asyncio.create_task(restart())
        result = await run_generation(
            SPEC,
            160,
            run_dir,
            generator=ollama_model(server.url),
            judge=None,
            concurrency=4,
            engine="ray",
            shard_rows=40,
            on_progress=seen.append,
            tick=0.05,
        )
        await restarting
    waiting = [p for p in seen if p["waiting"]]
    assert waiting and "not answering" in waiting[0]["waiting"]
    assert 40 <= waiting[0]["done"] < 160
    assert result.complete and seen[-1]["waiting"] is None
    assert result.progress["discarded"] == 0
    assert_complete(run_dir, 160)
