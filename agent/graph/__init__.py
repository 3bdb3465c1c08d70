"""The conversation graph: `agent.graph.graph.build_graph`. This package file imports nothing, so
its leaf modules (state, replies) can be imported without building the graph."""
