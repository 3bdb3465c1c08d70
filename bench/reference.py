"""Benchmark 2 — our engine against the reference tool's method on the same real local model.

The reference method (re-implemented here from its description and prompts): generate a batch of
5 texts (5 requests at once, plain JSON asked for in the prompt, no schema), then label the batch
in a second pass (5 more), batch after batch. Ours: one schema-constrained request a row (the
label is fixed by quota before writing), adaptive concurrency from 2 up to 4; and ours with the
blind-relabel judge on (two requests a row). Same server — SmolLM2-135M behind the Ollama-API
test server (`tests/ollama_api_server.py`), one slot — same model, same number of rows. Only rows
that are schema-valid with a label from the set count. Tokens per row come from the server's
usage figures (prompt + completion), through a callback on the model.

    python -m bench.reference              # 30 rows each
    python -m bench.reference --rows 60
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage
from pydantic import BaseModel

from agent.llm import parse_tolerant
from bench.common import SPEC, check_rows, ollama_model, run_engine, subprocess_server

GEN_PROMPT = """You have been assigned a text classification task: {description}

Your mission is to write one text classification example for this task in JSON format. The JSON \
object must contain the following attributes:
 - "input_text": a string, the input text specified by the classification task.

Please adhere to the following guidelines:
 - The "input_text" should be diverse in expression.
 - Do not include the label of the text in the input text.

Your output must always be a JSON object with only the field "input_text", do not explain \
yourself or output anything else. Be creative!"""

LABEL_PROMPT = """Please classify the customer query by assigning the most appropriate labels.
Do not explain your reasoning or provide any additional commentary.
If the text is ambiguous or lacks sufficient information for classification, respond with \
"Unclassified".
Provide the label that best describes the text.

## Labeling the user input
Use the available labels to classify the user query. Analyze the context of each label specifically:
{labels}

## User Query
```
{text}
```

## Output Format
Now, please give me the labels in JSON format, do not include any other text in your response:
```
{{
    "labels": ["label_0", "label_1", "label_2"]
}}
```"""


class Usage(BaseCallbackHandler):
    """Sums the server's token counts of every call of a model."""

    def __init__(self) -> None:
        self.tokens = 0
        self.calls = 0

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        for gens in response.generations:
            for g in gens:
                meta = getattr(getattr(g, "message", None), "usage_metadata", None) or {}
                self.tokens += int(meta.get("total_tokens", 0))
                self.calls += 1


class _Input(BaseModel):
    input_text: str


class _Labels(BaseModel):
    labels: list[str]


async def reference(model: BaseChatModel, n: int) -> int:
    """Sequential batches of 5: generate, then label; returns schema-valid rows with a valid label."""
    names = SPEC.label_names
    labels_text = "\n".join(f"- {lb.name}: {lb.definition}" for lb in SPEC.labels)
    valid = 0
    for start in range(0, n, 5):
        size = min(5, n - start)
        gen = HumanMessage(content=GEN_PROMPT.format(description=SPEC.description))
        replies = await asyncio.gather(*(model.ainvoke([gen]) for _ in range(size)))
        texts = []
        for r in replies:
            try:
                texts.append(parse_tolerant(str(r.content), _Input).input_text)
            except ValueError:
                continue
        asks = [
            HumanMessage(content=LABEL_PROMPT.format(labels=labels_text, text=t)) for t in texts
        ]
        for r in await asyncio.gather(*(model.ainvoke([a]) for a in asks)):
            try:
                got = parse_tolerant(str(r.content), _Labels).labels
            except ValueError:
                continue
            valid += bool(got) and got[0].strip().lower() in names
    return valid


async def measure(url: str, n: int) -> list[dict[str, Any]]:
    out = []
    for name in (
        "reference (batches of 5 + labelling pass)",
        "ours (label by quota)",
        "ours + judge",
    ):
        gen, judge = ollama_model(url), ollama_model(url, "judge")
        gen_use, judge_use = Usage(), Usage()
        gen.callbacks, judge.callbacks = [gen_use], [judge_use]
        t0 = time.perf_counter()
        if name.startswith("reference"):
            valid = await reference(gen, n)
        else:
            folder = Path(tempfile.mkdtemp(prefix="bench-ref-"))
            await run_engine(
                gen, n, 4, start=2, run_dir=folder, judge=judge if "judge" in name else None
            )
            valid = check_rows(folder, SPEC, n)["valid"]
        seconds = time.perf_counter() - t0
        tokens = gen_use.tokens + judge_use.tokens
        out.append(
            {
                "method": name,
                "rows_asked": n,
                "valid_rows": valid,
                "seconds": round(seconds, 1),
                "valid_rows_per_min": round(valid / seconds * 60, 1),
                "model_calls": gen_use.calls + judge_use.calls,
                "tokens_per_valid_row": round(tokens / valid, 1) if valid else None,
            }
        )
        print(json.dumps(out[-1]), flush=True)
    ref = out[0]["valid_rows_per_min"]
    for r in out[1:]:
        print(
            f"{r['method']}: {r['valid_rows_per_min'] / ref:.1f}× the reference"
            if ref
            else f"{r['method']}: reference made no valid row"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark 2: against the reference approach")
    parser.add_argument("--rows", type=int, default=30)
    args = parser.parse_args()
    with subprocess_server("bench.serve_smollm2") as url:
        asyncio.run(measure(url, args.rows))


if __name__ == "__main__":
    main()
