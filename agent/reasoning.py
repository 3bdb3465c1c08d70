"""Reasoning text out of model replies: `<think>…</think>` never reaches the data or the chat.

Reasoning models (qwen3, deepseek-r1 … on Ollama, or behind OpenAI-compatible servers) may write
their reasoning before the answer, inside `<think>`, `<thinking>` or `<reasoning>` tags. Where a
server returns reasoning in a separate field (`thinking`, `reasoning_content`, `reasoning`) we
never read that field; this module cleans what arrives as content:

- `strip_reasoning(text)` for a whole reply;
- `ReasoningFilter` for a reply streamed token by token (tags may be split across tokens).

A leaf module: no imports from the rest of the app.
"""

from __future__ import annotations

import re

_NAMES = r"(?:think|thinking|reasoning)"
_OPEN = re.compile(rf"<\s*{_NAMES}\b[^<>]*>", re.IGNORECASE)
_CLOSE = re.compile(rf"<\s*/\s*{_NAMES}\s*>", re.IGNORECASE)
_ANY = re.compile(rf"<\s*/?\s*{_NAMES}\b", re.IGNORECASE)  # the fast check: any tag at all
_BLOCK = re.compile(rf"<\s*({_NAMES})\b[^<>]*>.*?<\s*/\s*\1\s*>", re.IGNORECASE | re.DOTALL)
# the end of a chunk that may be the start of a tag: "<", "</th", "<think type=…" (no ">" yet)
_PARTIAL = re.compile(r"<\s*/?\s*([a-z]*)(.*)$", re.IGNORECASE | re.DOTALL)
_TAG_WORDS = ("think", "thinking", "reasoning")
_HOLD_MAX = 200  # a "<…" longer than this without ">" is not a tag: show it


def strip_reasoning(text: str) -> str:
    """`text` without reasoning blocks and without surrounding whitespace.

    - `<think>…</think>` (also `<thinking>`, `<reasoning>`; any case, any number of lines) anywhere;
    - an opening tag that is never closed (the reasoning was cut off): everything from it on — a
      reply that is nothing but unfinished reasoning becomes "";
    - a closing tag with no opening tag (some servers drop the opening one, as in
      "…reasoning…</think>answer"): everything up to it.
    """
    if not text:
        return ""
    if _ANY.search(text) is None:  # the common case: no tag at all
        return text.strip()
    out = _BLOCK.sub("", text)
    # a closing tag still here has no opening tag before it: the reasoning is what precedes it
    if closes := list(_CLOSE.finditer(out)):
        out = out[closes[-1].end() :]
    # an opening tag still here is never closed: the reasoning was cut off
    if (open_ := _OPEN.search(out)) is not None:
        out = out[: open_.start()]
    return out.strip()


class ReasoningFilter:
    """Hide reasoning blocks from a reply streamed in pieces: `feed` each piece, show what it returns.

    Tags split across pieces are held back until they can be told apart from text. Leading
    whitespace (before the answer, or left by a block) is dropped. A closing tag without an
    opening one can only be dropped itself — the text before it was already shown — so the
    complete reply must still go through `strip_reasoning`.
    """

    def __init__(self) -> None:
        self._buf = ""
        self._inside = False
        self._started = False  # something visible was returned already

    def feed(self, piece: str) -> str:
        self._buf += piece
        shown: list[str] = []
        while self._buf:
            if self._inside:
                close = _CLOSE.search(self._buf)
                if close is None:  # keep only what may be the start of the closing tag
                    self._buf = self._held(self._buf)
                    break
                self._buf, self._inside = self._buf[close.end() :], False
                continue
            open_, close = _OPEN.search(self._buf), _CLOSE.search(self._buf)
            tag = min((m for m in (open_, close) if m), key=lambda m: m.start(), default=None)
            if tag is None:
                held = self._held(self._buf)
                shown.append(self._buf[: len(self._buf) - len(held)])
                self._buf = held
                break
            shown.append(self._buf[: tag.start()])
            self._buf, self._inside = self._buf[tag.end() :], tag is open_
        return self._visible("".join(shown))

    def flush(self) -> str:
        """What is still held back at the end of the reply (text that only looked like a tag)."""
        rest, self._buf = ("" if self._inside else self._buf), ""
        return self._visible(rest)

    def _visible(self, text: str) -> str:
        if not self._started:
            text = text.lstrip()
            self._started = bool(text)
        return text

    @staticmethod
    def _held(buf: str) -> str:
        """The tail of `buf` that may be an unfinished tag ("" when there is none)."""
        start = buf.rfind("<")
        tail = buf[start:] if start >= 0 else ""
        if not tail or ">" in tail or len(tail) > _HOLD_MAX:
            return ""
        m = _PARTIAL.match(tail)
        if m is None:
            return ""
        name, rest = m.group(1).lower(), m.group(2)
        if not rest:  # "<", "</th", "<thinki": the name may still be growing
            return tail if any(w.startswith(name) for w in _TAG_WORDS) else ""
        # "<think type=…" or "</think ": a whole name, then more before the ">"
        return tail if name in _TAG_WORDS and rest[0].isspace() else ""
