"""Text classification (single- and multi-label): `text` and `label`/`labels`."""

from __future__ import annotations

from agent.tasks.base import TaskKind
from agent.tasks.textcat import publish, talk
from agent.tasks.textcat.rows import TextClassification

KIND = TaskKind(
    name="textcat",
    clarifies=True,
    unit="rows",
    rows=lambda spec, n, seed, *, judge, chunks=None: TextClassification(
        spec, n, seed, judge=judge
    ),
    chunked=lambda spec: False,
    talk=talk,
    publish=publish,
)
