"""The conversation as a state machine.

clarify ⇄ ask_user → propose → review_contract → interpret → sample → critique → review_sample
→ interpret (refine loops back to sample) → scale → review_dataset → interpret → export
→ review_publish → interpret → prepare_publish → confirm_publish → publish → review_publish.
Nodes route with `Command(goto=…)`; their return annotations document the edges.
"""

from __future__ import annotations

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from agent.graph import nodes, publish
from agent.graph.publish import Context
from agent.graph.state import State

Graph = CompiledStateGraph[State, Context, State, State]


def build_graph(checkpointer: BaseCheckpointSaver | None = None) -> Graph:
    builder = StateGraph(State, context_schema=Context)
    builder.add_node("clarify", nodes.clarify)
    builder.add_node("ask_user", nodes.ask_user)
    builder.add_node("propose", nodes.propose)
    builder.add_node("review_contract", nodes.review_contract)
    builder.add_node("interpret", nodes.interpret)
    builder.add_node("sample", nodes.sample)
    builder.add_node("critique", nodes.critique)
    builder.add_node("review_sample", nodes.review_sample)
    builder.add_node("scale", nodes.scale)
    builder.add_node("review_dataset", nodes.review_dataset)
    builder.add_node("review_paused", nodes.review_paused)
    builder.add_node("export", nodes.export)
    builder.add_node("review_publish", publish.review_publish)
    builder.add_node("prepare_publish", publish.prepare_publish)
    builder.add_node("confirm_publish", publish.confirm_publish)
    builder.add_node("publish", publish.publish)
    builder.add_edge(START, "clarify")
    return builder.compile(checkpointer=checkpointer, name="dataset-agent")
