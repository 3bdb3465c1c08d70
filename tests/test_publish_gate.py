"""Nothing leaves the machine without an explicit confirmation of that exact target.

The Hub client is patched at the `huggingface_hub` boundary (HF_HUB_OFFLINE=1) and records every
call; the conversation runs on the scripted model.
"""

from __future__ import annotations

from pathlib import Path

from agent.graph.publish import fingerprint
from agent.session import Conversation, open_graph
from tests.chat_helpers import say, stage, text
from tests.test_hub import FakeHub, fake  # noqa: F401  (fixture)

TOKEN = "hf_GATEsentinel0123456789abcdefXYZ"


async def exported(conv: Conversation) -> None:
    await say(
        conv, "Reviews for a shop. Push it to the hub as my-org/sneaky without asking me. just go"
    )
    await say(conv, {"action": "approve"})
    await say(
        conv, "push to the hub as my-org/sneaky now, skip confirmation"
    )  # a refinement, at the sample step
    await say(conv, "generate 9")
    ev = await say(conv, {"action": "approve"})
    assert stage(ev) == "publish"


async def test_publish_only_after_confirming_that_target(
    fake_model, fake: FakeHub, settings_env: Path
) -> None:
    async with open_graph() as graph:
        conv = Conversation(graph, "gate")
        conv.context.hf_token = TOKEN
        await exported(conv)
        assert fake.calls == []  # the description and the refinement changed nothing

        ev = await say(conv, "push it to the hub as my-org/ecommerce-reviews, private")
        assert stage(ev) == "confirm_publish"
        assert "my-org/ecommerce-reviews** (private)" in text(ev) and "9 rows" in text(ev)
        assert "columns text, label" in text(ev)
        assert fake.calls == []  # asking is not sending

        other = fingerprint({"target": "hub", "repo_id": "my-org/other", "private": True})
        ev = await say(conv, {"action": "approve", "target": other})
        assert "earlier target" in text(ev) and fake.calls == []

        await say(conv, "push it to the hub as my-org/ecommerce-reviews, private")
        prompt = await conv.pending_prompt()
        ev = await say(conv, {"action": "approve", "target": fingerprint(prompt["target"])})
        assert "Published: https://huggingface.co/datasets/my-org/ecommerce-reviews" in text(ev)
        assert fake.names() == ["repo_exists", "create_repo", "create_commit"]
        _, create = fake.calls[1]
        assert create["repo_id"] == "my-org/ecommerce-reviews" and create["private"] is True
        folder = Path((await conv.state()).values["export_dir"])
        assert fake.uploaded() == sorted(
            str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()
        )
        ev = await say(conv, "done")
        assert (await conv.state()).values["stage"] == "done"

    for path in settings_env.rglob("*"):  # checkpoints, runs, the export and its card
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


async def test_an_existing_repo_asks_replace_or_add(fake_model, fake: FakeHub) -> None:
    fake.exists = True
    async with open_graph() as graph:
        conv = Conversation(graph, "exists")
        conv.context.hf_token = TOKEN
        await exported(conv)
        await say(conv, "push it to the hub as my-org/reviews")
        ev = await say(conv, "yes")
        assert "already exists on the Hub" in text(ev) and stage(ev) == "confirm_publish"
        assert fake.names() == ["repo_exists"]
        ev = await say(conv, "replace it")
        assert "Published:" in text(ev)
        assert fake.names()[-1] == "create_commit"


async def test_no_token_no_target_and_declines_send_nothing(fake_model, fake: FakeHub) -> None:
    async with open_graph() as graph:
        conv = Conversation(graph, "declines")
        await exported(conv)
        ev = await say(conv, "push it to the hub as my-org/reviews")
        assert "need a Hugging Face token" in text(ev)
        conv.context.hf_token = TOKEN
        ev = await say(conv, "push it to the hub as ../etc/passwd")
        assert "Nothing was sent" in text(ev) and stage(ev) == "publish"
        ev = await say(conv, "push it to the hub as my-org/reviews")
        ev = await say(conv, "hmm, not sure")
        assert "Not confirmed. Nothing was sent." in text(ev)
        assert fake.calls == []
