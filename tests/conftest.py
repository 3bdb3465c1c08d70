from __future__ import annotations

import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from langchain_core.messages import BaseMessage

from agent.config import get_settings
from agent.llm import set_provider, use_model
from tests.fakes import ScriptedModel

VOCAB = (
    "order delivery price quality battery screen fabric size colour refund seller package box warranty "
    "cable charger shoe jacket lamp blender kettle camera lens strap zipper sole stitching manual app "
    "update courier tracking invoice coupon discount return exchange support email chat weekend morning "
    "evening gift birthday office kitchen garden travel gym winter summer rain child dog"
).split()


@pytest.fixture(autouse=True)
def settings_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own data directory and no real model server."""
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LLM_PROVIDER", "ollama")
    monkeypatch.setenv("OLLAMA_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("CONCURRENCY", "3")
    get_settings.cache_clear()
    set_provider(None)
    yield tmp_path / "data"
    get_settings.cache_clear()
    set_provider(None)


def as_choice(intent: dict[str, Any]) -> dict[str, Any]:
    """A scripted reading written as {"kind": …, "edits": […]} → the model's ReplyChoice answer
    (one operation, its label, number and a few words)."""
    if "op" in intent:
        return intent
    kind = intent.get("kind")
    if kind in ("approve", "cancel", "question"):
        return {"op": kind}
    if kind == "generate":
        return {"op": "generate_all", "number": intent.get("rows") or 0}
    e = (intent.get("edits") or [{}])[0]
    op = e.get("op", "unclear")
    out: dict[str, Any] = {"op": op}
    if e.get("label") is not None:
        out["label"] = e["label"]
    if e.get("number") is not None:
        out["number"] = e["number"]
    if e.get("share") is not None:
        out["number"] = round(e["share"] * 100)
    if op in ("add_label",):
        out = {"op": op, "text": e.get("label") or ""}
    if op == "rename_label":
        out["text"] = e.get("new_name") or ""
    if op == "set_length":
        out = {"op": "shorter" if e.get("value") == "short" else "longer"}
    if op == "set_multi_label":
        out = {"op": "multi_label_on" if e.get("value") == "yes" else "multi_label_off"}
    if (
        e.get("value") is not None
        and "text" not in out
        and op not in ("set_length", "set_multi_label")
    ):
        out["text"] = e["value"]
    return out


def _last(messages: list[BaseMessage]) -> str:
    return str(messages[-1].content)


def _system(messages: list[BaseMessage]) -> str:
    return str(messages[0].content)


class ReviewWorld:
    """Scripted answers for the e-commerce reviews conversation."""

    labels: ClassVar[list[str]] = ["positive", "negative", "neutral"]

    def __init__(self) -> None:
        self.asked = False
        self.intents: dict[str, Any] = {
            "make it more negative reviews": {"op": "more_of_label", "label": "negative"},
        }
        self.wrong_judge: set[str] = set()

    def __call__(self, kind: str, messages: list[BaseMessage]) -> Any:
        if kind == "Clarification":
            if not self.asked:
                self.asked = True
                return {
                    "user_language": "English",
                    "ready": False,
                    "question": "Which labels do you need?",
                }
            return {"user_language": "English", "ready": True, "question": ""}
        if kind == "Proposal":
            return {
                "name": "ecommerce-reviews",
                "labels": [
                    {"name": "positive", "definition": "The customer is satisfied."},
                    {"name": "negative", "definition": "The customer is unhappy."},
                    {"name": "neutral", "definition": "Mixed or factual, no clear feeling."},
                ],
                "language": "English",
                "size": 100,
                "topics": ["electronics", "clothing", "home"],
                "length": "short",
                "tones": ["casual", "formal"],
            }
        if kind == "ReplyChoice":
            reply = re.search(r"<reply>\s*(.*?)\s*</reply>", _last(messages), re.S)
            text = reply.group(1) if reply else ""
            return as_choice(self.intents.get(text, {"op": "question"}))
        if kind == "GeneratedText":
            prompt = _last(messages)
            label = re.search(r"<label>(.*?)</label>", prompt).group(1)  # type: ignore[union-attr]
            seed = re.search(r"Variation seed: (\S+)", prompt).group(1)  # type: ignore[union-attr]
            rng = random.Random(seed)
            return {"text": f"{label} " + " ".join(rng.choice(VOCAB) for _ in range(14))}
        if kind in ("Relabel", "MultiRelabel"):
            text = re.search(r"<text>\s*(.*?)\s*</text>", _last(messages), re.S).group(1)  # type: ignore[union-attr]
            first = text.split()[0].rstrip(",")
            names = [x.strip() for x in first.split(",")]
            if text in self.wrong_judge:
                names = ["neutral" if names[0] != "neutral" else "positive"]
            if kind == "MultiRelabel":
                return {"reasoning": "fits", "labels": names}
            return {"reasoning": "fits", "label": names[0]}
        if kind == "CritiqueNotes":
            return {"problems": ["texts are short"], "suggestions": ["more about electronics"]}
        return "I am a scripted model."


@pytest.fixture
def world() -> ReviewWorld:
    return ReviewWorld()


@pytest.fixture
def fake_model(world: ReviewWorld) -> Iterator[ScriptedModel]:
    model = ScriptedModel(responder=world)
    with use_model(model):
        yield model
