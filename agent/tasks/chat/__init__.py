"""Chat / SFT conversations: `messages` as TRL's SFTTrainer expects."""

from __future__ import annotations

from agent.tasks.base import TaskKind
from agent.tasks.chat import publish, talk
from agent.tasks.chat.rows import Conversations

KIND = TaskKind(
    name="chat",
    clarifies=True,
    unit="conversations",
    rows=Conversations,
    chunked=lambda spec: spec.chat is not None and spec.chat.grounded,
    talk=talk,
    publish=publish,
)
