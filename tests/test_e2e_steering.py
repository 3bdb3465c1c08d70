"""The signature interaction on the model a fresh machine gets (the built-in one, no fakes):
a reviews description → a contract with a negative label → "make it more negative reviews" →
contract v2 with a higher negative share, shown as a diff → the next sample has more negative rows.
In English and in Romanian.

Labels are assigned by quota before a row is written, so "more negative rows" is exact whatever
the tiny model's prose is like; what these tests prove is that the conversation understood.
"""

from __future__ import annotations

from collections import Counter

import pytest

from agent import i18n
from agent.session import Conversation, open_graph
from tests.test_e2e_real import local_model, say, stage  # noqa: F401 (local_model: a fixture)

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("description", "refinement", "language"),
    [
        (
            "A dataset covering customer reviews for an e-commerce website.",
            "make it more negative reviews",
            "English",
        ),
        (
            "Vreau un set de date cu recenzii ale clienților pentru un magazin online, în limba română.",
            "mai multe recenzii negative",
            "Romanian",
        ),
    ],
    ids=["en", "ro"],
)
async def test_more_negative_reviews_on_the_builtin_model(
    local_model: None, description: str, refinement: str, language: str
) -> None:
    async with open_graph() as graph:
        conv = Conversation(graph, f"steer-{language}")
        ev = await say(conv, description)
        assert stage(ev) == "contract"  # a known kind of data: no question needed
        spec = (await conv.state()).values["spec"]
        assert spec["task"] == "textcat" and spec["language"] == language
        negative = next(n for n in (lb["name"] for lb in spec["labels"]) if n.startswith("neg"))
        assert any(lb["name"].startswith("pos") for lb in spec["labels"])

        ev = await say(conv, {"action": "approve", "stage": "contract", "version": 1})
        assert stage(ev) == "sample"
        first = Counter(r["label"] for r in (await conv.state()).values["sample"])

        ev = await say(conv, refinement)
        diffs = [e.text for e in ev if e.data.get("kind") == "diff"]
        with i18n.using(conv.language):  # the diff is said in the conversation's language
            mix = i18n._("mix")
        assert conv.language == ("ro" if language == "Romanian" else "en")
        assert diffs and f"~ {mix} {negative}:" in diffs[0] and "v1 → v2" in diffs[0]
        state = (await conv.state()).values
        assert state["spec"]["version"] == 2
        assert state["spec"]["mix"][negative] > spec["mix"][negative]
        assert stage(ev) == "sample"  # the new sample, made from v2
        second = Counter(r["label"] for r in state["sample"])
        assert second[negative] > first[negative], (first, second)
