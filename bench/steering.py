"""Steering benchmark: does a reply at a review step do what the person meant?

`python -m bench.steering` reads the cases in bench/steering_cases.toml (contract + reply →
expected edits or intent; a third in Romanian) three ways, side by side:
- the reader alone (the per-language tables, no model),
- the model alone (the built-in model choosing from `choice_schema`, for every case),
- the product: the real `interpret` node (reader first, the model only for what it did not read).
For the product it also counts replies that changed nothing without saying so, and replies that
started a sample or a run although they were misread (both targets: 0).

Options: --provider local|ollama|… (default local: the built-in model a fresh machine gets),
--reader-only (skip every model call), --limit N, --json PATH.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import tomllib
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage

from agent.config import get_settings
from agent.graph import nodes
from agent.graph.replies import Reading, read_reply
from agent.languages import fold
from agent.llm import LLMBadOutput
from agent.spec import DatasetSpec, SpecEdit, SpecError, apply_edits, make_spec

HERE = Path(__file__).resolve().parent

CONTRACTS: dict[str, DatasetSpec] = {
    "reviews": make_spec(
        {
            "description": "Customer reviews for an e-commerce website.",
            "name": "reviews",
            "labels": [
                {"name": "positive", "definition": "The customer is satisfied."},
                {"name": "negative", "definition": "The customer is unhappy."},
                {"name": "neutral", "definition": "Mixed or factual, no clear feeling."},
            ],
            "size": 100,
            "style": {"topics": ["clothing", "home", "garden"], "length": "medium"},
        }
    ),
    "news": make_spec(
        {
            "description": "News articles about various topics.",
            "name": "news",
            "labels": [
                {"name": n, "definition": f"News about {n}."}
                for n in ("world", "politics", "business", "sports", "technology")
            ],
            "size": 100,
        }
    ),
    "chat": make_spec(
        {
            "task": "chat",
            "description": "A bank's customer-support assistant.",
            "name": "bank-support",
            "size": 100,
            "chat": {
                "system_prompt": "You are the support assistant of a retail bank.",
                "turns": 1,
                "personas": ["student", "retiree"],
                "intents": ["block a card", "open an account"],
            },
        }
    ),
}


CASE_FILES = {
    "written": "steering_cases.toml",  # written with the tables
    "heldout": "steering_heldout.toml",  # written apart, by someone who never saw the tables
}


def load_cases() -> list[dict[str, Any]]:
    cases = []
    for name, file in CASE_FILES.items():
        for case in tomllib.loads((HERE / file).read_text("utf-8"))["case"]:
            cases.append(case | {"set": name})
    return cases


def _edit(token: str) -> SpecEdit:
    op, _, arg = token.partition(":")
    key, _, val = arg.partition("=")
    if op in ("more_of_label", "less_of_label", "remove_label", "add_label"):
        return SpecEdit(op=op, label=key)  # type: ignore[arg-type]
    if op == "set_label_share":
        return SpecEdit(op=op, label=key, share=float(val))
    if op == "rename_label":
        return SpecEdit(op=op, label=key, new_name=val)
    if op in ("set_size", "set_turns"):
        return SpecEdit(op=op, number=int(key))
    if op == "add_rule":
        return SpecEdit(op=op, value="(a rule)")
    return SpecEdit(op=op, value=key)  # type: ignore[arg-type]


def signature(old: DatasetSpec, spec: DatasetSpec) -> dict[str, Any]:
    """What a refinement can change, comparable whatever wording a definition or topic got."""
    sig: dict[str, Any] = {
        "labels": spec.label_names,
        "mix": {k: round(v, 2) for k, v in spec.mix.items()},
        "size": spec.size,
        "language": spec.language,
        "length": spec.style.length,
        "multi": spec.multi_label,
        "topics": [fold(t) for t in spec.style.topics],
        "tones": spec.style.tones,
    }
    if spec.chat is not None and old.chat is not None:
        sig |= {
            "turns": spec.chat.turns,
            "answer_length": spec.chat.answer_length,
            "answer_style": spec.chat.answer_style,
            "system_prompt_changed": spec.chat.system_prompt != old.chat.system_prompt,
        }
    return sig


def expected(case: dict[str, Any], spec: DatasetSpec) -> dict[str, Any]:
    want = case["want"]
    head = want[0].split(":")[0]
    if head in ("approve", "cancel", "question"):
        return {"kind": head}
    if head == "generate":
        return {"kind": "generate", "rows": int(want[0].split(":")[1])}
    new = apply_edits(spec, [_edit(t) for t in want], max_rows=get_settings().max_rows)
    return {"kind": "edit", "sig": signature(spec, new)}


def reading_outcome(r: Reading | None, spec: DatasetSpec) -> dict[str, Any]:
    if r is None:
        return {"kind": "none"}
    if r.kind in ("approve", "cancel", "question"):
        return {"kind": r.kind}
    if r.kind == "generate":
        return {"kind": "generate", "rows": r.rows}
    try:
        new = apply_edits(spec, r.edits, max_rows=get_settings().max_rows)
    except SpecError as exc:
        return {"kind": "error", "why": str(exc)}
    return {"kind": "edit", "sig": signature(spec, new)}


def command_outcome(cmd: Any, spec: DatasetSpec, stage: str) -> dict[str, Any]:
    """What the interpret node did: moved on, changed the contract, answered, or refused."""
    update = cmd.update or {}
    said = [m for m in update.get("messages", []) if isinstance(m, AIMessage)]
    kinds = [m.additional_kwargs.get("kind") for m in said]
    goto = cmd.goto
    out: dict[str, Any] = {"goto": goto, "said": bool(said)}
    new = DatasetSpec.model_validate(update["spec"]) if update.get("spec") else None
    if goto == "scale":
        out |= {"kind": "generate", "rows": (new or spec).size}
        if new is None:
            out |= {"kind": "approve"} if stage in ("sample", "paused") else {}
    elif goto == nodes.NEXT_ON_APPROVE.get(stage) and new is None:
        out["kind"] = "approve"
    elif goto == "__end__":
        out["kind"] = "cancel"
    elif new is not None:
        out |= {"kind": "edit", "sig": signature(spec, new)}
    elif "answer" in kinds:
        out["kind"] = "question"
    else:
        out["kind"] = "unchanged"
    return out


def same(got: dict[str, Any], want: dict[str, Any], case: dict[str, Any]) -> bool:
    if got.get("kind") != want["kind"]:
        # "generate all" at the sample step is an approval of the full size
        return (
            want["kind"] == "approve" and got.get("kind") == "generate" and got.get("rows") is None
        )
    if want["kind"] == "generate":
        return got.get("rows") == want["rows"]
    if want["kind"] == "edit":
        return got.get("sig") == want["sig"]
    return True


async def product(case: dict[str, Any], spec: DatasetSpec) -> Any:
    state = {
        "messages": [],
        "spec": spec.model_dump(),
        "history": [{"version": 1, "diff": ["first proposal"]}],
        "stage": case["stage"],
        "reply": case["reply"],
        "critique": {},
    }
    return await nodes.interpret(state)  # type: ignore[arg-type]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    cases = load_cases()[: args.limit or None]
    rows = []
    model_s: list[float] = []
    for i, case in enumerate(cases):
        spec = CONTRACTS[case["contract"]]
        want = expected(case, spec)
        reader = reading_outcome(read_reply(case["reply"], spec, case["stage"]), spec)
        row: dict[str, Any] = {
            "i": i,
            "lang": case.get("lang", "en"),
            "set": case["set"],
            "reply": case["reply"],
            "want": case["want"],
            "reader": same(reader, want, case),
        }
        if not args.reader_only:
            t0 = time.perf_counter()
            try:
                choice: Reading | None = await nodes._model_reading(
                    spec, case["stage"], case["reply"]
                )
            except LLMBadOutput:
                choice = None
            model_s.append(time.perf_counter() - t0)
            model = reading_outcome(choice, spec)
            if choice is not None and choice.kind == "edit" and not choice.edits:
                model = {"kind": "unchanged"}
            row["model"] = same(model, want, case)
            row["model_got"] = model.get("kind")
            cmd = await product(case, spec)
            got = command_outcome(cmd, spec, case["stage"])
            ok = same(got, want, case)
            row |= {
                "product": ok,
                "product_got": got["kind"],
                "silent": got["kind"] == "unchanged" and not got["said"],
                "bad_start": (not ok) and got["goto"] in ("sample", "scale", "export"),
            }
        rows.append(row)
        mark = "" if row["reader"] else "  reader✗"
        if "product" in row and not row["product"]:
            mark += f"  product✗ ({row['product_got']})"
        print(f"{i:3d} [{row['lang']}] {case['reply'][:60]:60}{mark}", flush=True)

    def share(key: str, subset: list[dict[str, Any]] | None = None) -> str:
        sub = [r for r in (subset if subset is not None else rows) if key in r]
        return f"{sum(r[key] for r in sub)}/{len(sub)} = {100 * sum(r[key] for r in sub) / max(len(sub), 1):.1f} %"

    ro = [r for r in rows if r["lang"] == "ro"]
    held = [r for r in rows if r["set"] == "heldout"]
    summary: dict[str, Any] = {
        "cases": len(rows),
        "romanian": len(ro),
        "heldout": len(held),
        "reader": share("reader"),
        "reader_ro": share("reader", ro),
        "reader_heldout": share("reader", held),
    }
    if not args.reader_only:
        summary |= {
            "provider": os.environ.get("LLM_PROVIDER"),
            "model_alone": share("model"),
            "product": share("product"),
            "product_ro": share("product", ro),
            "product_heldout": share("product", held),
            "silent_no_change": sum(r["silent"] for r in rows),
            "misread_starts": sum(r["bad_start"] for r in rows),
            "model_call_median_s": round(statistics.median(model_s), 2) if model_s else None,
        }
    print("\n" + "\n".join(f"{k:>22}: {v}" for k, v in summary.items()))
    return {"summary": summary, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description="Steering benchmark: replies → edits")
    parser.add_argument("--provider", default="local")
    parser.add_argument("--reader-only", action="store_true")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    os.environ["LLM_PROVIDER"] = args.provider
    os.environ.setdefault(
        "DATA_DIR", str(Path(os.environ.get("TMPDIR", "/tmp")) / "bench-steering")
    )
    get_settings.cache_clear()
    result = asyncio.run(run(args))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
