"""What the first contracts of every kind share: which archetype a request is."""

from __future__ import annotations

from agent import prompts
from agent.conversation import transcript
from agent.graph.state import State
from agent.llm import LLMBadOutput, as_messages, get_chat_model, structured_call
from agent.schemas import archetype_choice_schema
from agent.tasks import archetypes


async def pick_archetype(
    state: State, said: list[str], task: archetypes.Task
) -> archetypes.Archetype | None:
    """The archetype the request is: by keywords, else the model's choice from the ids (an enum,
    with examples) — None when it says "other" or its answer cannot be read."""
    found = archetypes.match("\n".join(said), task)
    if found is not None:
        return found
    kinds = archetypes.load(task)
    examples = [
        prompts.PROPOSE_ARCHETYPE_EXAMPLE.format(request=ex, id=a.id)
        for a in kinds
        for ex in a.examples[:1]
    ]
    other = (
        "Legal contract clauses labelled by clause type."
        if task == "textcat"
        else "Conversations with a museum guide robot."
    )
    examples.append(prompts.PROPOSE_ARCHETYPE_EXAMPLE.format(request=other, id="other"))
    msgs = as_messages(
        prompts.PROPOSE_ARCHETYPE_SYSTEM.format(
            what="text-classification" if task == "textcat" else "chat (conversation)",
            kinds="\n".join(f"- {a.id}: {a.summary}" for a in kinds),
            examples="\n".join(examples),
        ),
        prompts.PROPOSE_USER.format(conversation=transcript(state["messages"])),
    )
    schema = archetype_choice_schema(archetypes.ids(task), chat=task == "chat")
    try:
        choice = await structured_call(get_chat_model("steer"), schema, msgs)
    except LLMBadOutput:
        return None
    return None if choice.archetype == "other" else archetypes.get(choice.archetype)
