"""The per-session context: one user's secrets and runtime choices, held in memory only.

A `Conversation` owns one and hands it to the graph as LangGraph's runtime context
(`graph.astream(..., context=…)`), so it is never checkpointed and never shared between
sessions. What one session chooses here (a provider, a model per role, the CLI's overrides)
changes nothing for another session in the same process.

A leaf module: sign-in, the session and the model factory read it without importing the graph.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from langgraph.runtime import Runtime, get_runtime

from agent.config import Settings, get_settings


@dataclass
class Context:
    """Per-session secrets, identity and runtime choices (not checkpointed)."""

    hf_token: str | None = None
    argilla_api_url: str | None = None
    argilla_api_key: str | None = None
    argilla_workspace: str | None = None
    provider: str | None = None
    """This session's model provider, resolved (ollama, openai or local); None: the app's default
    (resolved once at start-up)."""
    models: dict[str, str] = field(default_factory=dict)
    """Per-role model names for this session (steer, generate, judge) over the settings' ones."""
    settings: Settings | None = None
    """This session's settings when they differ from the process's (the CLI's `--concurrency`,
    `--engine`, `--endpoints`): a copy, never the cached `get_settings()` object. None: those."""


def current_context() -> Context | None:
    """The runtime context of the graph run this code is part of (a node, or a task it started);
    None outside a graph run."""
    try:
        runtime = get_runtime(Context)
    except (RuntimeError, KeyError):  # not inside a runnable, or one outside a graph
        return None
    context = runtime.context if isinstance(runtime, Runtime) else None
    return context if isinstance(context, Context) else None


def session_settings(context: Context | None = None) -> Settings:
    """The settings for this session: its own copy when it has one, else the process's."""
    context = context or current_context()
    return (context.settings if context else None) or get_settings()
