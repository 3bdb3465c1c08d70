"""The conversation graph."""

from agent.graph.graph import build_graph

__all__ = ["build_graph"]
