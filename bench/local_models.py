"""Benchmark the built-in models: free-text tokens/s, seconds per structured call, schema-valid rate.

Usage: `python -m bench.local_models [-n 50] [--models smollm2 gemma3]`. The structured call is the
app's generation step in miniature: a short product review for a label, as JSON {"text": ...},
grammar-constrained through `LocalChatModel.with_structured_output`.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from pydantic import BaseModel, Field

from agent.backends.local import LocalChatModel, LocalName, load_llama
from agent.llm import as_messages

LABELS = ["positive", "negative", "neutral"]


class Review(BaseModel):
    text: str = Field(description="The review text, 2 to 4 sentences.")


def prompt(label: str, seed: int) -> list[Any]:
    return as_messages(
        "You write realistic synthetic product reviews for a text-classification dataset. "
        'Reply as JSON: {"text": "..."}.',
        f"Write one short product review (30-60 words) for the label <label>{label}</label>. "
        f"Topic: kitchen gadgets. Variation seed: {seed}.",
    )


def bench(name: LocalName, n: int) -> dict[str, float]:
    started = time.perf_counter()
    load_llama(name)
    load_s = time.perf_counter() - started
    model = LocalChatModel(model_name=name, temperature=0.8)
    free_rates = []
    for i in range(3):
        t = time.perf_counter()
        reply = model.invoke(prompt(LABELS[i % 3], i))
        free_rates.append(reply.usage_metadata["output_tokens"] / (time.perf_counter() - t))  # type: ignore[index]
    structured = model.with_structured_output(Review, include_raw=True)
    seconds, rates, valid = [], [], 0
    for i in range(n):
        t = time.perf_counter()
        out = structured.invoke(prompt(LABELS[i % 3], i))
        dt = time.perf_counter() - t
        seconds.append(dt)
        rates.append(out["raw"].usage_metadata["output_tokens"] / dt)
        valid += out["parsing_error"] is None and bool(out["parsed"].text.strip())
    return {
        "load s": load_s,
        "free tok/s": statistics.median(free_rates),
        "json tok/s": statistics.median(rates),
        "s/call": statistics.median(seconds),
        "max s/call": max(seconds),
        "valid": valid / n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=50, help="structured calls per model")
    parser.add_argument("--models", nargs="+", default=["smollm2", "gemma3"])
    args = parser.parse_args()
    rows = {name: bench(name, args.n) for name in args.models}
    cols = list(next(iter(rows.values())))
    print(f"medians over {args.n} structured calls (3 free-text calls for free tok/s)")
    print(f"{'model':<9}" + "".join(f"{c:>12}" for c in cols))
    for name, row in rows.items():
        cells = [f"{row[c]:>11.0%} " if c == "valid" else f"{row[c]:>12.1f}" for c in cols]
        print(f"{name:<9}" + "".join(cells))


if __name__ == "__main__":
    main()
