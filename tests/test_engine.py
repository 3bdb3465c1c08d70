"""The generation engine, read as its specification: exact quotas despite failures, duplicates
replaced, nothing lost or doubled across crashes, concurrency that backs off when the server
struggles, and live progress. Scripted models for the logic; the fixed-delay Ollama-API server
(real `ChatOllama` over HTTP) where concurrency and processes matter."""

from __future__ import annotations

import asyncio
import errno
import itertools
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from agent.config import get_settings
from agent.llm import get_chat_models
from agent.spec import make_spec
from agent.tasks.base import Permutation, quotas
from agent.tasks.textcat.rows import TextClassification
from agent.tools.dedup import Deduper
from agent.tools.generate import RowWriter, RunStopped, init_run, read_rows, run_generation
from agent.tools.scheduler import AIMD, Scheduler, ServerGone
from bench.common import near_dup_rate, ollama_model
from tests.conftest import VOCAB
from tests.fakes import ScriptedModel
from tests.fixed_delay_server import fixed_delay_server, running_server

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
        "size": 40,
        "style": {"topics": ["shoes", "phones"], "length": "short"},
    }
)


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """One schema-constrained try plus the tolerant fallback per call keeps failure tests quick."""
    monkeypatch.setenv("LLM_RETRIES", "1")
    get_settings.cache_clear()


def seed_of(messages: list[BaseMessage]) -> tuple[int, int]:
    """(row id, attempt) from the prompt's variation seed."""
    m = re.search(r"Variation seed: \d+-(\d+)-(\d+)", str(messages[-1].content))
    assert m
    return int(m.group(1)), int(m.group(2))


def words(key: str, k: int = 30) -> str:
    rng = random.Random(key)
    return " ".join(rng.choice(VOCAB) for _ in range(k))


def generator(fail: Any = None, text: Any = None) -> ScriptedModel:
    """A scripted generator: `fail(row, attempt)` → unusable reply; `text(row, attempt)` → the text."""

    def respond(kind: str, messages: list[BaseMessage]) -> Any:
        if kind == "text":  # the tolerant fallback also fails for a scripted failure
            return "sorry, no"
        row, attempt = seed_of(messages)
        if fail and fail(row, attempt):
            return "not json at all"
        return {"text": (text and text(row, attempt)) or words(f"{row}-{attempt}")}

    return ScriptedModel(responder=respond)


def assert_complete(run_dir: Path, n: int) -> list[dict[str, Any]]:
    raw = (run_dir / "rows.jsonl").read_text(encoding="utf-8")
    assert raw.endswith("\n")
    rows = [json.loads(line) for line in raw.splitlines()]  # every line is whole JSON
    ids = [r["row_id"] for r in rows]
    assert sorted(ids) == list(range(n)), "every row once: none lost, none duplicated"
    assert Counter(r["label"] for r in rows) == Counter(quotas(SPEC.mix, n))
    return rows


# --- planning ------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 7, 40, 1000, 4099])
def test_plan_from_the_row_id_alone_meets_the_quotas_exactly(n: int) -> None:
    perm = Permutation(n, seed=3)
    assert sorted(perm(i) for i in range(n)) == list(range(n))
    task = TextClassification(SPEC, n, seed=3, judge=False)
    labels = Counter(task.plan(i).labels[0] for i in range(n))
    assert labels == Counter(quotas(SPEC.mix, n))
    again = TextClassification(SPEC, n, seed=3, judge=False)
    assert [again.plan(i) for i in range(min(n, 50))] == [task.plan(i) for i in range(min(n, 50))]


def test_topics_tones_clarity_and_length_get_exact_equal_shares_and_lengths_vary_in_the_band() -> (
    None
):
    n = 40
    task = TextClassification(SPEC, n, seed=5, judge=False)
    plans = [task.plan(i) for i in range(n)]
    for attribute, targets in task.attribute_targets().items():
        got = Counter(task.attributes(p)[attribute] for p in plans)
        assert got == Counter(targets) and sum(targets.values()) == n, attribute
    assert Counter(p.topic for p in plans) == {"shoes": 20, "phones": 20}
    words = Counter(p.words for p in plans)
    assert sorted(words) == [(10, 20), (20, 30), (30, 40)]  # the short band, cut in three
    assert sorted(words.values()) == [13, 13, 14]
    assert [TextClassification(SPEC, n, seed=5, judge=False).plan(i) for i in range(n)] == plans


async def test_every_row_is_asked_for_its_own_length_and_progress_counts_each_attribute(
    tmp_path: Path,
) -> None:
    model = generator()
    result = await run_generation(SPEC, 30, tmp_path / "run", generator=model, judge=None)
    asked = Counter(
        re.search(r"text of (\d+-\d+) words", str(msgs[-1].content)).group(1)  # type: ignore[union-attr]
        for _, msgs in model.calls
    )
    assert asked == {"10-20": 10, "20-30": 10, "30-40": 10}
    rows = assert_complete(tmp_path / "run", 30)
    assert Counter(r["length"] for r in rows) == {
        "short 10-20 words": 10,
        "short 20-30 words": 10,
        "short 30-40 words": 10,
    }
    attributes = result.progress["attributes"]
    assert set(attributes) == {"topic", "tone", "clarity", "length"}
    assert all(done == target for a in attributes.values() for done, target in a.values())
    assert attributes["topic"] == {"shoes": [15, 15], "phones": [15, 15]}


def test_chat_personas_topics_and_answer_lengths_get_exact_equal_shares() -> None:
    from agent.tasks.chat.rows import Conversations

    chat = make_spec(
        {
            "task": "chat",
            "description": "A bank's support assistant.",
            "size": 24,
            "style": {"topics": ["cards", "loans", "fees"]},
            "chat": {
                "system_prompt": "You are a bank's support assistant.",
                "personas": ["student", "retiree"],
                "intents": ["complain", "ask", "cancel", "open"],
                "answer_length": "medium",
            },
        }
    )
    task = Conversations(chat, 24, seed=1, judge=False)
    plans = [task.plan(i) for i in range(24)]
    assert Counter(p.intent for p in plans) == dict.fromkeys(
        ["complain", "ask", "cancel", "open"], 6
    )
    assert Counter(p.persona for p in plans) == {"student": 12, "retiree": 12}
    assert Counter(p.topic for p in plans) == {"cards": 8, "loans": 8, "fees": 8}
    assert Counter(p.words for p in plans) == {(40, 67): 8, (67, 93): 8, (93, 120): 8}
    system = task._assistant_system(plans[0])
    assert "about 40-120 words" in system and f"{plans[0].words[0]}-{plans[0].words[1]}" in system


# --- quotas under failures -----------------------------------------------------------------------


async def test_failed_replies_cost_one_retry_of_one_row_and_quotas_still_hold(
    tmp_path: Path,
) -> None:
    failing = {3, 4, 10, 17, 25, 31}
    model = generator(
        fail=lambda row, attempt: row in failing and attempt == 0,
        text=lambda row, attempt: "too short" if row == 8 and attempt == 0 else None,
    )
    result = await run_generation(
        SPEC, 40, tmp_path / "run", generator=model, judge=None, concurrency=4
    )
    assert result.complete and result.rows == 40 and result.failed == 0
    assert result.progress["retries"] == len(failing) + 1  # six bad replies, one too-short text
    assert result.progress["quotas"] == {
        "positive": [20, 20],
        "negative": [12, 12],
        "neutral": [8, 8],
    }
    assert_complete(tmp_path / "run", 40)


async def test_when_the_failure_budget_is_spent_the_run_stops_and_says_which_quota_is_short(
    tmp_path: Path,
) -> None:
    task = TextClassification(SPEC, 12, seed=0, judge=False)
    negative = {i for i in range(12) if task.plan(i).labels[0] == "negative"}
    model = generator(fail=lambda row, attempt: row in negative)
    result = await run_generation(
        SPEC, 12, tmp_path / "run", generator=model, judge=None, concurrency=3
    )
    assert not result.complete
    assert result.rows == 12 - len(negative) and result.failed == len(negative)
    assert result.reason and "failure budget of 20" in result.reason
    assert f"negative 0/{len(negative)}" in result.reason


# --- dedup ---------------------------------------------------------------------------------------


def test_deduper_catches_exact_and_near_copies_but_not_different_texts() -> None:
    d = Deduper(threshold=0.9)
    base = words("base", 60)
    assert d.check_and_add(base) is None
    assert d.check_and_add(base.upper() + "!!") == "exact"  # case and punctuation do not matter
    assert d.check_and_add(base + " warranty") == "near"
    assert d.check_and_add(words("other", 60)) is None
    for i in range(5000):  # past the merge into the sorted arrays
        d.add(words(f"fill-{i}", 20))
    assert d.check_and_add(base + " refund") == "near"
    assert d.nbytes() < 5100 * 1000  # compact: well under 1 KB a row, in a temporary file
    d.close()


def test_signatures_are_datasketchs_minhash_value_for_value() -> None:
    """The engine signs in numpy (importing datasketch cost every CLI start a third of a second,
    scipy included); its signatures are datasketch 2's MinHash(num_perm=64, seed=1) exactly, so
    estimates, thresholds and the LSH bands are what they were."""
    from datasketch import MinHash

    from agent.tools.dedup import _norm

    d = Deduper()
    rng = random.Random(7)
    vocab = "the order price refund shop big small red blue ok ça été ünïcode 1 2".split()
    texts = ["", "one", "two words", words("base", 60), words("base", 60).upper() + "!"]
    texts += [" ".join(rng.choice(vocab) for _ in range(rng.randint(0, 80))) for _ in range(200)]
    for text in texts:
        w = _norm(text).split()
        shingles = {" ".join(w[i : i + 3]) for i in range(max(1, len(w) - 2))}
        m = MinHash(num_perm=64, seed=1)
        m.update_batch([s.encode() for s in shingles])
        assert d.signature(text).tolist() == [int(v) for v in m.hashvalues], text
    d.close()
    gone = subprocess.run(
        [sys.executable, "-c", "import sys, agent.tools.generate; print('scipy' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert gone.stdout.strip() == "False"  # the engine alone does not pull scipy in


async def test_planted_near_duplicates_are_replaced_and_counted(tmp_path: Path) -> None:
    planted = {r for r in range(1, 40, 4)}

    def text(row: int, attempt: int) -> str:
        if row in planted and attempt == 0:  # a near copy of another row's first text
            return words(f"{row - 1}-0").upper() + " again"
        return words(f"{row}-{attempt}")

    result = await run_generation(
        SPEC, 40, tmp_path / "run", generator=generator(text=text), judge=None, concurrency=4
    )
    rows = assert_complete(tmp_path / "run", 40)
    assert result.progress["duplicates"] == len(planted)
    assert near_dup_rate([r["text"] for r in rows]) == 0.0


# --- crash and resume ----------------------------------------------------------------------------


async def _full_then_crash(run_dir: Path, keep: int) -> list[str]:
    await run_generation(SPEC, 30, run_dir, generator=generator(), judge=None, concurrency=4)
    lines = (run_dir / "rows.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (run_dir / "rows.jsonl").write_text("".join(lines[:keep]), encoding="utf-8")
    return lines[:keep]


@pytest.mark.parametrize("stage", ["row written", "row half-written", "state file stale"])
async def test_resume_after_a_crash_at_every_stage_loses_and_doubles_nothing(
    tmp_path: Path, stage: str
) -> None:
    run_dir = tmp_path / "run"
    kept = await _full_then_crash(run_dir, keep=12)
    if stage == "row half-written":
        with (run_dir / "rows.jsonl").open("a", encoding="utf-8") as fh:
            fh.write('{"row_id": 29, "text": "half a ro')
    if stage == "state file stale":  # counters from long ago, or from another run entirely
        (run_dir / "state.json").write_text(json.dumps({"done": 30, "duplicates": 3}))
    calls = generator()
    result = await run_generation(SPEC, 30, run_dir, generator=calls, judge=None, concurrency=4)
    assert result.complete
    rows = assert_complete(run_dir, 30)
    assert [json.dumps(r, ensure_ascii=False) + "\n" for r in rows[:12]] == kept  # untouched
    assert len(calls.calls) == 18  # only the missing rows were made again


async def test_a_run_cancelled_mid_way_resumes_to_exactly_n_rows(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    with fixed_delay_server(delay=0.02) as (url, _):
        model = ollama_model(url)
        task = asyncio.create_task(
            run_generation(SPEC, 120, run_dir, generator=model, judge=None, concurrency=4)
        )
        for _ in range(3000):  # wait until some rows are on disk
            await asyncio.sleep(0.01)
            if len(list(read_rows(run_dir))) >= 20:
                break
        task.cancel()  # the chat's stop button, or Ctrl-C
        with pytest.raises(asyncio.CancelledError):
            await task
        partial = len(list(read_rows(run_dir)))
        assert 20 <= partial < 120
        result = await run_generation(
            SPEC, 120, run_dir, generator=model, judge=None, concurrency=4
        )
    assert result.complete and result.progress["done"] == 120
    assert_complete(run_dir, 120)


async def test_a_folder_holding_another_run_is_refused(tmp_path: Path) -> None:
    await run_generation(SPEC, 5, tmp_path / "run", generator=generator(), judge=None)
    other = SPEC.model_copy(update={"language": "Romanian"})
    with pytest.raises(ValueError, match="holds a different run"):
        await run_generation(other, 5, tmp_path / "run", generator=generator(), judge=None)


def test_kill_9_of_a_real_run_then_resume_loses_and_doubles_nothing(tmp_path: Path) -> None:
    n, run_dir = 300, tmp_path / "runs" / "killed"
    task = TextClassification(SPEC, n, seed=7, judge=False)
    init_run(run_dir, {"task": "textcat", "n": n, **task.meta()})
    with fixed_delay_server(delay=0.03) as (url, _):
        env = os.environ | {
            "LLM_PROVIDER": "ollama",
            "OLLAMA_BASE_URL": url,
            "JUDGE_FULL_RUN": "false",
            "DATA_DIR": str(tmp_path / "data"),
        }
        cmd = [sys.executable, "-m", "agent", "generate", "--resume", str(run_dir)]
        cmd += ["--out", str(tmp_path / "out"), "--concurrency", "6"]
        child = subprocess.Popen(cmd, env=env, cwd=ROOT, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while len(list(read_rows(run_dir))) < 40 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        before = {r["row_id"]: r for r in read_rows(run_dir)}
        assert 40 <= len(before) < n, "killed mid-run"
        done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"run folder: {run_dir}" in done.stderr
    rows = list(read_rows(run_dir))
    ids = [r["row_id"] for r in rows]
    assert sorted(ids) == list(range(n)), "0 lost, 0 duplicated"
    assert all({r["row_id"]: r for r in rows}[i] == row for i, row in before.items())
    assert Counter(r["label"] for r in rows) == Counter(quotas(SPEC.mix, n))
    assert Path(done.stdout.strip().splitlines()[-1]) == (tmp_path / "out").resolve()


# --- faults: the model server goes away, the disk fills up -------------------------------------


async def _when(condition: Any) -> None:
    for _ in range(1500):  # 30 s at most: the condition is on disk or in a list, not an event
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out waiting")


async def test_a_model_server_restart_mid_run_pauses_with_a_message_and_the_run_continues(
    tmp_path: Path,
) -> None:
    run_dir, seen = tmp_path / "run", []
    with running_server(delay=0.02) as server:

        async def restart() -> None:
            await _when(lambda: len(list(read_rows(run_dir))) >= 20)
            await asyncio.to_thread(server.stop)  # refused connections from now on
            await _when(lambda: any(p.get("waiting") for p in seen))
            await asyncio.sleep(1.0)  # down for a while: several retry rounds
            await asyncio.to_thread(server.start)  # same port, back

        restarting = asyncio.create_task(restart())
        result = await run_generation(
            SPEC,
            120,
            run_dir,
            generator=ollama_model(server.url),
            judge=None,
            concurrency=4,
            on_progress=seen.append,
            tick=0.05,
        )
        await restarting
    waiting = [p for p in seen if p["waiting"]]
    assert waiting and "not answering" in waiting[0]["waiting"]
    assert 20 <= waiting[0]["done"] < 120  # it waited mid-run …
    assert result.complete and seen[-1]["waiting"] is None  # … and finished once it was back
    assert result.progress["discarded"] == 0 and result.progress["failed"] == 0  # no budget spent
    assert_complete(run_dir, 120)


async def test_a_server_gone_for_longer_than_the_wait_stops_the_run_which_resumes_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERVER_WAIT_S", "0.5")
    get_settings.cache_clear()
    run_dir = tmp_path / "run"
    with running_server(delay=0.02) as server:

        async def stop() -> None:
            await _when(lambda: len(list(read_rows(run_dir))) >= 20)
            await asyncio.to_thread(server.stop)

        stopping = asyncio.create_task(stop())
        with pytest.raises(ServerGone) as gone:
            await run_generation(
                SPEC, 120, run_dir, generator=ollama_model(server.url), judge=None, concurrency=4
            )
        await stopping
        kept = list(read_rows(run_dir))
        assert f"{len(kept)} of 120 rows are saved" in str(gone.value)
        assert str(gone.value).startswith("The model server is not answering (waited 1 s)")
        await asyncio.to_thread(server.start)
        result = await run_generation(
            SPEC, 120, run_dir, generator=ollama_model(server.url), judge=None, concurrency=4
        )
    assert result.complete
    rows = assert_complete(run_dir, 120)
    assert rows[: len(kept)] == kept


async def test_a_full_disk_stops_the_run_with_one_sentence_and_resume_completes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir, real_write, writes = tmp_path / "run", RowWriter._write, [0]

    def fill_up(self: RowWriter, data: bytes) -> None:
        writes[0] += 1
        if writes[0] <= 15:
            return real_write(self, data)
        real_write(self, data[: len(data) // 2])  # half a row reaches the disk, then it is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(RowWriter, "_write", fill_up)
    with pytest.raises(RunStopped) as full:
        await run_generation(SPEC, 40, run_dir, generator=generator(), judge=None, concurrency=4)
    message = str(full.value)
    assert message.startswith("The disk is full") and "15 of 40 rows are saved" in message
    raw = (run_dir / "rows.jsonl").read_text(encoding="utf-8")
    assert raw.endswith("\n") and len(raw.splitlines()) == 15  # no half row left behind
    state = json.loads((run_dir / "state.json").read_text(encoding="utf-8"))
    assert state["done"] == 15  # counted once written, not before

    monkeypatch.setattr(RowWriter, "_write", real_write)  # space freed
    result = await run_generation(SPEC, 40, run_dir, generator=generator(), judge=None)
    assert result.complete
    assert_complete(run_dir, 40)


def test_the_chat_and_the_cli_show_that_the_run_waits_for_the_server() -> None:
    import app
    from agent import cli

    waiting = "The model server is not answering; waiting for it to come back…"
    p = {"done": 3, "total": 10, "rows_per_min": 5.0, "eta_s": 84, "duplicates": 0, "retries": 0}
    assert waiting not in app._progress_text(p) + cli._describe(p)
    p["waiting"] = waiting
    assert waiting in app._progress_text(p) and "3 / 10" in app._progress_text(p)
    assert waiting in cli._describe(p)


async def test_a_full_temporary_disk_under_the_dedup_index_stops_the_run_the_same_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_add, adds = Deduper._add, [0]

    def fill_up(self: Deduper, *args: Any) -> None:
        adds[0] += 1
        if adds[0] > 8:
            raise sqlite3.OperationalError("database or disk is full")
        real_add(self, *args)

    monkeypatch.setattr(Deduper, "_add", fill_up)
    with pytest.raises(RunStopped, match=r"^The disk is full: the run stopped; 8 of 20 rows"):
        await run_generation(SPEC, 20, tmp_path / "run", generator=generator(), judge=None)
    assert len(list(read_rows(tmp_path / "run"))) == 8


# --- adaptive concurrency ------------------------------------------------------------------------


def test_aimd_grows_fast_then_halves_on_an_error_and_eases_off_when_latency_climbs() -> None:
    lim = AIMD(start=2, cap=16)
    for _ in range(6):
        lim.on_success(0.1)
    assert lim.limit == 8  # slow start: one more per success
    lim.on_error()
    assert lim.limit == 4
    lim.on_error()
    assert lim.limit == 4  # a burst of errors in one round trip is one signal
    lim._quiet_until = 0
    for _ in range(4):
        lim.on_success(0.1)
    assert 4 < lim.limit < 6  # additive now: about one per window of successes
    before = lim.limit
    for _ in range(10):
        lim.on_success(0.5)  # five times the unloaded latency: the server is queueing
        lim._quiet_until = 0
    assert lim.limit < before / 2


def test_a_slow_start_on_one_endpoint_does_not_starve_it() -> None:
    """CI caught it: two cold replies (0.5 s, 0.8 s) on one of two equal servers kept it unpicked."""
    sched = Scheduler([{"generate": object()}, {"generate": object()}], cap=4, start=4)  # type: ignore[list-item]
    slow, fast = (e.limiter for e in sched.endpoints)
    for latency in (0.8, 0.5, 0.04, 0.03, 0.04):  # a cold start, then as fast as the other
        slow.on_success(latency, alone=True)
    for _ in range(5):
        fast.on_success(0.03, alone=True)
    now = time.monotonic()
    assert slow.estimate(now) == pytest.approx(0.04)  # the median forgets the cold start
    sched.endpoints[1].in_flight = sched.in_flight = 1
    assert sched._pick() is sched.endpoints[0]  # the other is busy: the recovered one gets the call
    # a stale slow measurement fades towards the unloaded latency when the endpoint is not used
    slow.samples.extend([0.5, 0.5, 0.5])
    assert slow.estimate(slow.updated) == pytest.approx(0.5)
    assert slow.estimate(slow.updated + 1.0) < 0.05


async def test_a_freed_slot_goes_to_the_waiting_call_before_the_caller_goes_on() -> None:
    """The engine keeps a few more rows than slots ready: the server must not idle while the row
    that just came back is deduplicated and written (bench 1 at 64 in flight: 1.14 → 1.11)."""
    sched = Scheduler([{"generate": object()}], cap=1, start=1)  # type: ignore[list-item]
    order: list[str] = []

    async def row(name: str) -> None:
        async def send(_model: object) -> str:
            order.append(f"{name} sent")
            await asyncio.sleep(0.01)
            return name

        await sched._retrying("generate", send)
        order.append(f"{name} bookkeeping")

    await asyncio.gather(row("a"), row("b"))
    assert order == ["a sent", "b sent", "a bookkeeping", "b bookkeeping"]


async def test_the_engine_backs_off_when_the_server_refuses_excess_requests(
    tmp_path: Path,
) -> None:
    with fixed_delay_server(delay=0.05, capacity=3) as (url, stats):
        result = await run_generation(
            SPEC,
            60,
            tmp_path / "run",
            generator=ollama_model(url),
            judge=None,
            concurrency=16,
            start=16,
        )
    assert result.complete
    assert stats.rejected > 0 and result.progress["retries"] >= 1
    assert result.progress["concurrency"] <= 8  # from 16, cut on the 503s
    assert_complete(tmp_path / "run", 60)


async def test_several_endpoints_share_the_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fixed_delay_server(delay=0.02) as (a, sa), fixed_delay_server(delay=0.02) as (b, sb):
        monkeypatch.setenv("LLM_ENDPOINTS", f"{a},{b}")
        get_settings.cache_clear()
        models = get_chat_models("generate")
        assert [m.base_url for m in models] == [a, b]  # type: ignore[attr-defined]
        result = await run_generation(
            SPEC, 60, tmp_path / "run", generator=models, judge=None, concurrency=4
        )
    assert result.complete
    assert sa.requests >= 15 and sb.requests >= 15


# --- bench 1, fast, as a correctness test --------------------------------------------------------


@pytest.mark.parametrize("concurrency", [1, 4, 16])
async def test_fast_bench_1_reaches_the_level_and_makes_valid_rows(
    tmp_path: Path, concurrency: int
) -> None:
    n = 20 if concurrency == 1 else 160
    with fixed_delay_server(delay=0.01) as (url, stats):
        result = await run_generation(
            SPEC,
            n,
            tmp_path / "run",
            generator=ollama_model(url),
            judge=ollama_model(url, "judge"),
            concurrency=concurrency,
            start=concurrency,
        )
    assert result.complete and stats.max_in_flight == concurrency
    assert stats.requests == 2 * n  # one generation and one blind relabel a row, no waste
    assert result.progress["agreement"] == 1.0
    assert result.progress["duplicates"] == 0
    assert_complete(tmp_path / "run", n)


# --- progress ------------------------------------------------------------------------------------


async def test_progress_arrives_every_half_second_even_when_rows_are_slow(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []
    with fixed_delay_server(delay=1.2) as (url, _):
        await run_generation(
            SPEC,
            2,
            tmp_path / "run",
            generator=ollama_model(url),
            judge=None,
            concurrency=1,
            on_progress=seen.append,
        )
    during = [p for p in seen if p["done"] == 0]
    assert len(during) >= 2  # more than one update before the first row is done
    last = seen[-1]
    assert last["done"] == last["total"] == 2 and last["eta_s"] == 0
    for key in ("rows_per_min", "duplicates", "retries", "failed", "agreement", "concurrency"):
        assert key in last


class _Instant(BaseChatModel):
    """Answers structured calls at once, without ever suspending (as an in-process model may)."""

    @property
    def _llm_type(self) -> str:
        return "instant"

    def _generate(self, *a: Any, **kw: Any) -> ChatResult:  # plain text: not used by the engine
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content="ok"))])

    def with_structured_output(self, schema: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        count = itertools.count()

        class Call:
            async def ainvoke(self, messages: Any) -> Any:
                return schema(text=f"review number {next(count)} " + "word " * 12)

        return Call()


async def test_progress_arrives_while_a_model_answers_without_ever_waiting(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []
    n = 600
    result = await run_generation(
        SPEC,
        n,
        tmp_path / "run",
        generator=_Instant(),
        judge=None,
        concurrency=4,
        on_progress=seen.append,
        tick=0.005,
    )
    assert result.complete
    during = [p["done"] for p in seen if 0 < p["done"] < n]
    assert len(during) >= 3, [p["done"] for p in seen]


def test_quotas_add_up_even_when_rounded_shares_do_not() -> None:
    mix = {"a": 0.3333, "b": 0.3333, "c": 0.3333}
    assert sum(quotas(mix, 100_000).values()) == 100_000
