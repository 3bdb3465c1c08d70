"""Benchmark 6: do first contracts make sense on the built-in model?

Runs the real `propose` / `propose_chat` nodes on each described dataset below (English and
Romanian, text classification and chat) and checks the contract against what the request plainly
means: reviews get a positive-ish and a negative-ish label, news gets news topics, a Romanian request
gets Romanian data, a bank assistant's system prompt is about a bank, and so on. Prints a table per
case and the share of sensible contracts (target ≥ 90 %).

Usage: `python -m bench.contract_sense [--model smollm2|gemma3] [--reader-only] [--only ID …]`.
`--reader-only` needs no model: a stand-in answers every call with the nonsense a tiny model writes
at its worst (labels taken from the description and defined as themselves, the description as the
system prompt, "other" for every choice), so the figure is what the product's own logic carries.

The task (text classification or chat) is given per case, as the clarify step decides it before
`propose` runs; the data language, labels and shape are what is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnableLambda

from agent.languages import fold

# --- the cases (data) -----------------------------------------------------------------------------

# Label families: a contract "has" a family when one of its label names is in the set.
POSITIVE = {"positive", "pos", "satisfied", "happy", "good", "favorable", "very-positive"}
NEGATIVE = {"negative", "neg", "dissatisfied", "unhappy", "bad", "unfavorable", "very-negative"}
NEWS = {
    "world", "politics", "business", "technology", "science", "health", "sports", "entertainment",
    "economy", "tech", "sport", "culture", "international", "finance", "sci-tech",
}  # fmt: skip
SPAM = {"spam", "junk", "phishing"}
HAM = {"not-spam", "ham", "legitimate", "normal"}
TOXIC = {"toxic", "offensive", "abusive", "insult", "hate"}
CIVIL = {"not-toxic", "non-toxic", "civil", "clean", "acceptable"}
EMOTIONS = {"joy", "sadness", "anger", "fear", "surprise", "love", "disgust", "happiness"}
TICKETS = {"billing", "technical", "shipping", "account", "returns", "delivery", "payment"}
FAKE = {"fake", "false", "misinformation", "fabricated", "misleading"}
REAL = {"reliable", "real", "true", "credible", "factual"}
LANGS = {"english", "romanian", "french", "german", "spanish", "italian"}
BANK_INTENTS = {
    "check-balance", "transfer-money", "card-lost-or-stolen", "card-payment-problem",
    "loan-inquiry", "fees-and-charges", "open-or-close-account",
}  # fmt: skip
PRODUCTS = {"electronics", "clothing", "home-and-kitchen", "beauty", "books", "toys", "grocery"}
QUESTIONS = {"description", "entity", "person", "location", "numeric", "abbreviation"}


@dataclass
class Case:
    id: str
    description: str
    task: str
    language: str
    families: list[set[str]] = field(default_factory=list)
    """Text classification: each set must hold one of the contract's label names."""
    at_least: tuple[set[str], int] | None = None
    """Text classification: at least n label names from this set."""
    system: list[tuple[str, ...]] = field(default_factory=list)
    """Chat: each tuple's words — one of them must be in the system prompt (accent-free)."""


CASES: list[Case] = [
    Case("reviews-en", "A dataset covering customer reviews for an e-commerce website.", "textcat",
         "English", [POSITIVE, NEGATIVE]),
    Case("news-en", "A dataset covering news articles about various topics.", "textcat", "English",
         at_least=(NEWS, 3)),
    Case("reviews-ro", "Vreau un set de date cu recenzii ale clienților pentru un magazin online, în "
         "limba română.", "textcat", "Romanian", [POSITIVE, NEGATIVE]),
    Case("news-ro", "Un set de date cu știri din presa românească, clasificate pe categorii.",
         "textcat", "Romanian", at_least=(NEWS, 3)),
    Case("hotel-reviews-en", "Hotel reviews from a booking site, with their sentiment.", "textcat",
         "English", [POSITIVE, NEGATIVE]),
    Case("restaurant-ro", "Păreri ale clienților despre restaurante, pozitive sau negative.",
         "textcat", "Romanian", [POSITIVE, NEGATIVE]),
    Case("spam-en", "SMS messages to train a spam filter.", "textcat", "English", [SPAM, HAM]),
    Case("spam-ro", "Mesaje SMS în română: spam sau mesaje normale.", "textcat", "Romanian",
         [SPAM, HAM]),
    Case("toxic-en", "Toxic and non-toxic comments from online forums.", "textcat", "English",
         [TOXIC, CIVIL]),
    Case("emotion-en", "Short social media posts labelled by the emotion they express.", "textcat",
         "English", at_least=(EMOTIONS, 3)),
    Case("emotion-ro", "Postări scurte de pe rețele sociale, etichetate după emoții.", "textcat",
         "Romanian", at_least=(EMOTIONS, 3)),
    Case("tickets-en", "Customer support tickets for a software company, routed to the right team.",
         "textcat", "English", at_least=(TICKETS, 3)),
    Case("tickets-ro", "Tichete de suport ale clienților unei firme de curierat, pe departamente.",
         "textcat", "Romanian", at_least=(TICKETS, 3)),
    Case("bank-intents-en", "Messages from a bank's customers, classified by intent.", "textcat",
         "English", at_least=(BANK_INTENTS, 3)),
    Case("fake-news-en", "Fake news detection: made-up versus real news headlines.", "textcat",
         "English", [FAKE, REAL]),
    Case("langid-en", "A language identification dataset of short everyday sentences.", "textcat",
         "Multilingual", at_least=(LANGS, 3)),
    Case("products-en", "Product titles from an online marketplace, sorted into product categories.",
         "textcat", "English", at_least=(PRODUCTS, 3)),
    Case("questions-en", "Trivia questions classified by question type.", "textcat", "English",
         at_least=(QUESTIONS, 3)),
    Case("bank-chat-en", "I need conversations for a customer-support assistant of a bank, 3 turns "
         "each.", "chat", "English", system=[("bank", "banc")]),
    Case("bank-chat-ro", "Vreau conversații cu asistentul virtual al unei bănci, în limba română.",
         "chat", "Romanian", system=[("bank", "banc")]),
    Case("support-chat-en", "A customer-support chatbot for an online clothing shop.", "chat",
         "English", system=[("support", "customer", "order", "shop")]),
    Case("tutor-en", "Tutoring dialogues where a teacher helps high-school students with maths.",
         "chat", "English", system=[("tutor", "teacher", "student")]),
    Case("tutor-ro", "Dialoguri în care un profesor ajută elevii la matematică.", "chat", "Romanian",
         system=[("profesor", "elev", "tutor", "teacher", "student")]),
    Case("coding-en", "Chats between developers and a Python coding assistant.", "chat", "English",
         system=[("code", "coding", "program", "developer")]),
    Case("health-en", "A health-information assistant that answers questions about symptoms.",
         "chat", "English", system=[("health", "medical", "symptom"), ("doctor", "112", "emergenc")]),
    Case("health-ro", "Un asistent medical care răspunde la întrebări despre simptome, în română.",
         "chat", "Romanian", system=[("sanatate", "medic", "simptom", "health"), ("112", "medic")]),
    Case("travel-en", "Conversations with a travel assistant that books hotels and flights.", "chat",
         "English", system=[("travel", "trip", "hotel", "flight")]),
    Case("general-en", "Multi-turn chats with a general-purpose assistant for everyday questions.",
         "chat", "English", system=[("assistant",)]),
]  # fmt: skip


# --- checks -----------------------------------------------------------------------------------------


def judge(case: Case, spec: dict[str, Any]) -> list[str]:
    """What is wrong with the contract for this case (empty when it makes sense)."""
    from agent.spec import Label
    from agent.tasks.archetypes import label_problems

    wrong: list[str] = []
    if spec["task"] != case.task:
        wrong.append(f"task {spec['task']}")
    if spec["language"] != case.language:
        wrong.append(f"language {spec['language']}")
    if case.task == "textcat":
        names = {lb["name"] for lb in spec["labels"]}
        for family in case.families:
            if not names & family:
                wrong.append(f"no label of {sorted(family)[:3]}…")
        if case.at_least:
            family, n = case.at_least
            if len(names & family) < n:
                wrong.append(f"{len(names & family)} of the expected labels (< {n})")
        problems = label_problems([Label(**lb) for lb in spec["labels"]])
        wrong += problems
    else:
        prompt = fold(spec["chat"]["system_prompt"])
        for words in case.system:
            if not any(w in prompt for w in words):
                wrong.append(f"system prompt lacks {'/'.join(words)}")
        if len(spec["chat"]["personas"]) < 2 or len(spec["chat"]["intents"]) < 2:
            wrong.append("fewer than 2 personas or intents")
    return wrong


# --- the no-model stand-in ----------------------------------------------------------------------


class Nonsense(BaseChatModel):
    """Answers like a tiny model at its worst, from the request's own words."""

    @property
    def _llm_type(self) -> str:
        return "nonsense"

    def _generate(self, messages: list[BaseMessage], *a: Any, **kw: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content="{}"))])

    def with_structured_output(self, schema: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        def call(messages: list[BaseMessage]) -> Any:
            request = re.search(r"user: (.*)", str(messages[-1].content))
            words = re.findall(r"[a-zA-Z]{5,}", request.group(1) if request else "data text")
            if schema.__name__.endswith("ArchetypeChoice"):
                return schema(archetype="other")
            if schema.__name__ == "ChatProposal":
                return schema(
                    name="the-dataset",
                    system_prompt=request.group(1) if request else "Chat.",
                    personas=["user"],
                    intents=["question"],
                    topics=["the world"],
                    language="Roman",
                )
            labels = [{"name": f"the-{w.lower()}", "definition": w} for w in words[:2]]
            return schema(
                name="the-dataset",
                labels=labels or [{"name": "a", "definition": "a"}],
                language="Roman",
                topics=["the world", "the future"],
            )

        async def acall(messages: list[BaseMessage]) -> Any:
            return call(messages)

        return RunnableLambda(call, afunc=acall)


# --- running ------------------------------------------------------------------------------------


async def propose_for(case: Case) -> dict[str, Any]:
    from agent.graph import nodes

    state = {"messages": [HumanMessage(content=case.description)], "task": case.task}
    node = RunnableLambda(nodes.propose)  # a runnable context, as in the graph: get_config works
    command = await node.ainvoke(state, config={"configurable": {"thread_id": f"bench-{case.id}"}})
    return command.update["spec"]


async def run(cases: list[Case], *, reader_only: bool) -> list[dict[str, Any]]:
    from agent.llm import use_model

    out = []
    for case in cases:
        t0 = time.perf_counter()
        try:
            if reader_only:
                with use_model(Nonsense()):
                    spec = await propose_for(case)
            else:
                spec = await propose_for(case)
            wrong = judge(case, spec)
        except Exception as exc:  # a failed proposal is a failed case, shown as such
            spec, wrong = {}, [f"{type(exc).__name__}: {str(exc)[:80]}"]
        out.append(
            {"case": case, "spec": spec, "wrong": wrong, "seconds": time.perf_counter() - t0}
        )
        print(f"  {case.id}: {'ok' if not wrong else '; '.join(wrong)}", file=sys.stderr)
    return out


def shape(spec: dict[str, Any]) -> str:
    if not spec:
        return "—"
    if spec["task"] == "chat":
        return spec["chat"]["system_prompt"].split("\n")[0][:60]
    return ", ".join(lb["name"] for lb in spec["labels"])[:60]


def report(results: list[dict[str, Any]], mode: str) -> str:
    lines = [
        f"contract sense — {mode}",
        "",
        "| case | task | language | labels / system prompt | s | sensible |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        spec, case = r["spec"], r["case"]
        verdict = "yes" if not r["wrong"] else "no: " + "; ".join(r["wrong"])
        lines.append(
            f"| {case.id} | {spec.get('task', '—')} | {spec.get('language', '—')} | "
            f"{shape(spec)} | {r['seconds']:.1f} | {verdict} |"
        )
    ok = sum(not r["wrong"] for r in results)
    lines += ["", f"sensible: {ok}/{len(results)} = {ok / len(results):.0%} (target ≥ 90 %)"]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=["smollm2", "gemma3"], default="smollm2")
    ap.add_argument("--reader-only", action="store_true", help="no model: the nonsense stand-in")
    ap.add_argument("--only", nargs="*", help="case ids to run")
    ap.add_argument("--json", help="also write the contracts to this file")
    args = ap.parse_args()
    os.environ["LLM_PROVIDER"] = "local"
    os.environ["LOCAL_MODEL"] = args.model
    os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="bench-sense-"))
    from agent.config import get_settings

    get_settings.cache_clear()
    cases = [c for c in CASES if not args.only or c.id in args.only]
    mode = "no model (nonsense stand-in)" if args.reader_only else f"built-in {args.model}"
    t0 = time.perf_counter()
    results = asyncio.run(run(cases, reader_only=args.reader_only))
    print(report(results, mode))
    print(f"({time.perf_counter() - t0:.0f} s)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump([{"case": r["case"].id, "spec": r["spec"]} for r in results], fh, indent=1)


if __name__ == "__main__":
    main()
