"""Two signed-in users on one app: threads, unfinished-work offers and dataset folders stay apart."""

from __future__ import annotations

from pathlib import Path

from agent.session import NOT_YOURS, Conversation, open_graph, unfinished_threads
from tests.chat_helpers import errors, say, stage

DESCRIPTION = "A dataset covering customer reviews for an e-commerce website."


async def test_one_user_cannot_use_anothers_thread(fake_model, settings_env: Path) -> None:
    async with open_graph() as graph:
        alice = Conversation(graph, "t-alice", owner="alice")
        await say(alice, DESCRIPTION)
        ev = await say(alice, "positive, negative and neutral")
        assert stage(ev) == "contract"
        before = (await alice.state()).values

        # Bob holding Alice's thread id: no prompt shown, every input refused, nothing changed
        bob = Conversation(graph, "t-alice", owner="bob")
        assert not await bob.allowed() and await bob.pending_prompt() is None
        for value in ("approve", {"action": "approve"}, {"action": "retry"}, "make it shorter"):
            assert errors(await say(bob, value)) == [NOT_YOURS]
        assert (await alice.state()).values == before
        assert (await alice.pending_prompt() or {}).get("stage") == "contract"

        # sign-in off (owner None) is another "user" too: it cannot take over a signed-in thread
        assert errors(await say(Conversation(graph, "t-alice"), "approve")) == [NOT_YOURS]

        # unfinished work is offered to its owner only
        bobs = Conversation(graph, "t-bob", owner="bob")
        await say(bobs, DESCRIPTION)
        assert [t for t, _ in await unfinished_threads(graph, owner="alice")] == ["t-alice"]
        assert [t for t, _ in await unfinished_threads(graph, owner="bob")] == ["t-bob"]
        assert await unfinished_threads(graph, owner=None) == []


async def test_datasets_of_two_users_with_one_name_do_not_collide(
    fake_model, settings_env: Path
) -> None:
    folders = {}
    async with open_graph() as graph:
        for user in ("alice", "bob"):
            conv = Conversation(graph, f"t-{user}", owner=user)
            await say(conv, DESCRIPTION)
            await say(conv, "positive, negative and neutral")
            await say(conv, {"action": "approve"})
            await say(conv, "generate 20")
            ev = await say(conv, {"action": "approve"})
            assert stage(ev) == "publish", errors(ev)
            folders[user] = Path((await conv.state()).values["export_dir"])
    assert folders["alice"] != folders["bob"]
    assert folders["alice"].name == folders["bob"].name  # same dataset name, own folders
    assert folders["alice"].parent.name == "alice" and folders["bob"].parent.name == "bob"
    assert all((f / "data").is_dir() for f in folders.values())
