"""Chat/SFT conversations as a row task for the generation engine.

Each conversation is planned from its id (intent, persona, topic and answer length — each with
exact equal shares — and a document chunk when grounded). User turns are written by the model from those attributes (follow-ups from the
conversation so far); assistant turns are ordinary chat completions under the contract's system
prompt — no pre-query templates, so it works through Ollama's chat API. A judge rates each
conversation (reasons first) for following the system prompt, helpfulness, grounding and realism.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from agent import prompts
from agent.llm import LLMBadOutput, as_messages
from agent.reasoning import strip_reasoning
from agent.spec import LENGTH_BANDS, DatasetSpec
from agent.tasks.base import Caller, Permutation, Spread, even, length_bands, run_meta
from agent.tasks.chat.schemas import ChatJudgement, UserTurn

DEFAULT = "general"


@dataclass(frozen=True)
class ChatPlan:
    row_id: int
    persona: str
    intent: str
    topic: str
    chunk: int | None
    answer_length: str
    words: tuple[int, int]


def render_conversation(messages: list[dict[str, str]], *, limit: int = 1500) -> str:
    return "\n".join(
        f"{m['role']}: {m['content'][:limit]}" for m in messages if m["role"] != "system"
    )


def validate_messages(messages: list[dict[str, Any]]) -> str | None:
    """None when `messages` is what SFT trainers expect; else what is wrong."""
    if not messages:
        return "no messages"
    body = messages[1:] if messages[0].get("role") == "system" else messages
    if not body:
        return "only a system message"
    for i, m in enumerate(messages):
        if (
            set(m) != {"role", "content"}
            or not isinstance(m["content"], str)
            or not m["content"].strip()
        ):
            return f"message {i} is empty or malformed"
    for i, m in enumerate(body):
        want = "user" if i % 2 == 0 else "assistant"
        if m["role"] != want:
            return f"message {i} should be from the {want}"
    if body[-1]["role"] != "assistant":
        return "the conversation must end with the assistant"
    return None


class Conversations:
    """The chat task: `n` conversations of `spec.chat.turns` user turns each."""

    kind = "chat"

    def __init__(
        self,
        spec: DatasetSpec,
        n: int,
        seed: int,
        *,
        judge: bool,
        chunks: list[dict[str, str]] | None = None,
    ) -> None:
        assert spec.chat is not None
        self.spec, self.chat, self.n, self.seed, self.judge = spec, spec.chat, n, seed, judge
        self.chunks = chunks or []
        if self.chat.grounded and not self.chunks:
            raise ValueError("This contract is grounded in documents, but none are attached.")
        self.intents = self.chat.intents or [DEFAULT]
        self._intents = Spread(even(self.intents), n, seed)
        self._perm = Permutation(n, seed)  # the intents' permutation: chunks cycle within each
        self._words = length_bands(self.chat.answer_length)
        self._spreads = {
            "persona": Spread(even(self.chat.personas or ["customer"]), n, f"{seed}/persona"),
            "topic": Spread(even(self.spec.style.topics or [DEFAULT]), n, f"{seed}/topic"),
            "answer_length": Spread(even(list(self._words)), n, f"{seed}/answer_length"),
        }

    def meta(self) -> dict[str, Any]:
        docs = hashlib.sha256("".join(c["id"] for c in self.chunks).encode()).hexdigest()[:12]
        return {**run_meta(self.spec, self.seed), "docs": docs}

    def plan(self, row_id: int) -> ChatPlan:
        a = {k: spread(row_id) for k, spread in self._spreads.items()}
        chunk = None
        if self.chat.grounded and self.chunks:  # each chunk as often as the others, in every intent
            chunk = self._perm(row_id) % len(self.chunks)
        return ChatPlan(
            row_id=row_id,
            persona=a["persona"],
            intent=self._intents(row_id),
            topic=a["topic"],
            chunk=chunk,
            answer_length=a["answer_length"],
            words=self._words[a["answer_length"]],
        )

    def quota_key(self, plan: ChatPlan) -> str:
        return plan.intent

    def quota_targets(self) -> dict[str, int]:
        return dict(self._intents.targets)

    def attributes(self, plan: ChatPlan) -> dict[str, str]:
        return {"persona": plan.persona, "topic": plan.topic, "answer_length": plan.answer_length}

    def attribute_targets(self) -> dict[str, dict[str, int]]:
        return {k: dict(spread.targets) for k, spread in self._spreads.items()}

    def _document(self, plan: ChatPlan) -> str | None:
        return self.chunks[plan.chunk]["text"] if plan.chunk is not None else None

    def _assistant_system(self, plan: ChatPlan) -> str:
        band = self.chat.answer_length
        text = prompts.CHAT_ASSISTANT_RULES.format(
            system_prompt=self.chat.system_prompt,
            answer_style=self.chat.answer_style,
            length=band,
            band_min=LENGTH_BANDS[band][0],
            band_max=LENGTH_BANDS[band][1],
            min_words=plan.words[0],
            max_words=plan.words[1],
            language=self.spec.language,
        )
        doc = self._document(plan)
        return text + (prompts.CHAT_GROUNDING.format(document=doc) if doc else "")

    async def draft(self, plan: ChatPlan, attempt: int, llm: Caller) -> dict[str, Any] | None:
        doc = self._document(plan)
        user_system = prompts.CHAT_USER_SYSTEM.format(
            assistant_role=self.chat.system_prompt[:600], language=self.spec.language
        )
        seed = f"{self.seed}-{plan.row_id}-{attempt}"
        history: list[dict[str, str]] = []
        assistant_system = self._assistant_system(plan)
        try:
            for turn in range(self.chat.turns):
                if turn == 0:
                    block = (
                        f"Ask something this document can answer:\n<document>\n{doc[:1500]}\n</document>\n"
                        if doc
                        else ""
                    )
                    ask = prompts.CHAT_FIRST_USER.format(
                        persona=plan.persona,
                        intent=plan.intent,
                        topic=plan.topic,
                        document_block=block,
                        seed=seed,
                    )
                else:
                    ask = prompts.CHAT_FOLLOW_UP.format(
                        conversation=render_conversation(history),
                        persona=plan.persona,
                        document_hint="Stay within what the document covers. " if doc else "",
                        seed=f"{seed}-{turn}",
                    )
                user = strip_reasoning(
                    (await llm.structured("generate", UserTurn, as_messages(user_system, ask))).text
                )
                if not user:
                    return None
                history.append({"role": "user", "content": user})
                chat: list[BaseMessage] = [SystemMessage(content=assistant_system)]
                for m in history:
                    chat.append(
                        HumanMessage(content=m["content"])
                        if m["role"] == "user"
                        else AIMessage(content=m["content"])
                    )
                # a reasoning model's <think>…</think> is never part of the conversation
                answer = strip_reasoning(await llm.text("generate", chat))
                if not answer:
                    return None
                history.append({"role": "assistant", "content": answer})
        except LLMBadOutput:
            return None
        messages = (
            [{"role": "system", "content": self.chat.system_prompt}]
            if self.chat.include_system
            else []
        ) + history
        if validate_messages(messages) is not None:
            return None
        row: dict[str, Any] = {
            "messages": messages,
            "persona": plan.persona,
            "intent": plan.intent,
            "topic": plan.topic,
            "answer_length": plan.answer_length,
        }
        if plan.chunk is not None:
            row["source"] = self.chunks[plan.chunk]["source"]
            row["chunk_id"] = self.chunks[plan.chunk]["id"]
        return row

    def dedup_text(self, row: dict[str, Any]) -> str:
        return " ".join(m["content"] for m in row["messages"] if m["role"] == "user")

    async def review(self, row: dict[str, Any], plan: ChatPlan, llm: Caller) -> dict[str, Any]:
        if not self.judge:
            return row
        doc = self._document(plan)
        system = prompts.CHAT_JUDGE_SYSTEM.format(
            system_prompt=self.chat.system_prompt,
            document_block=f"<document>\n{doc}\n</document>\n" if doc else "",
            grounded_question="is every answer supported by the document; " if doc else "",
        )
        msgs = as_messages(
            system,
            prompts.CHAT_JUDGE_USER.format(conversation=render_conversation(row["messages"])),
        )
        try:
            verdict = await llm.structured("judge", ChatJudgement, msgs)
        except LLMBadOutput:
            return row
        row.update(
            rating=int(verdict.rating),
            judge_reasons=strip_reasoning(verdict.reasons),
            follows_system_prompt=verdict.follows_system_prompt,
            grounded=verdict.grounded if doc else None,
        )
        return row
