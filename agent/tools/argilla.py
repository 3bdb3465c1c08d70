"""Push a dataset to Argilla 2.x for human review (SDK ``argilla``, ``import argilla as rg``).

Text classification settings:
- field ``text`` (`TextField`);
- question ``label`` (`LabelQuestion`) or ``labels`` (`MultiLabelQuestion` when the contract is
  multi-label), with the contract's labels in order; label definitions go into the guidelines;
- the generated label(s) as a suggestion from agent ``dataset-agent``. Its score is the judge's
  agreement: 1.0 when the blind judge agreed, 0.0 when it disagreed, none when the row was not
  judged. Multi-label suggestions carry one score per suggested label: 1.0 when the judge also gave
  that label, 0.0 when it did not (from ``judge_labels``; from ``agreement`` when those are absent);
- metadata: ``text_length`` (characters, integer), ``judge_label`` (terms; a list for multi-label),
  ``agreement`` (terms ``yes``/``no``), ``topic``, ``tone``, ``clarity``, ``length`` (the requested
  band) (terms) and ``row_id`` (integer). Missing values are left out.

Record ids are ``f"{dataset_name}-{row_id}"`` (the row's position when it has no ``row_id``), and
`records.log` upserts by id, so a retried push updates records instead of duplicating them.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from typing import Any

import argilla as rg
import httpx
from argilla._exceptions import ArgillaAPIError, ArgillaCredentialsError, ArgillaError

from agent.spec import DatasetSpec
from agent.tools.hub import PublishError

AGENT = "dataset-agent"
TERMS = ("topic", "tone", "clarity", "length")


class ArgillaPushError(PublishError):
    """An Argilla push failure; the message is one sentence for the user."""


CHAT_TERMS = ("persona", "intent", "topic", "source")
_DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")


def validate_dataset_name(name: str) -> str:
    """A dataset name Argilla accepts and a person can read: letters, digits, “-”, “_”, “.”; no
    path parts such as “..”."""
    name = (name or "").strip()
    if not _DATASET_NAME.match(name) or ".." in name:
        raise ArgillaPushError(
            f"“{name[:60]}” is not a valid Argilla dataset name: use letters, digits, “-”, “_” or “.”."
        )
    return name


def build_chat_settings(spec: DatasetSpec) -> rg.Settings:
    """Argilla settings for conversations: the chat, a 1–5 rating (the judge's as a suggestion),
    a free-text correction, and metadata."""
    assert spec.chat is not None
    return rg.Settings(
        guidelines=f"{spec.description}\n\nThe assistant's system prompt:\n\n{spec.chat.system_prompt}",
        fields=[rg.ChatField(name="messages", title="Conversation")],
        questions=[
            rg.RatingQuestion(
                name="rating",
                values=[1, 2, 3, 4, 5],
                title="Rating",
                description="1 bad – 5 excellent.",
            ),
            rg.TextQuestion(
                name="correction",
                title="Correction",
                description="A better last answer, if needed.",
                required=False,
            ),
        ],
        metadata=[
            rg.IntegerMetadataProperty(name="turns", title="User turns"),
            rg.IntegerMetadataProperty(name="judge_rating", title="Judge rating"),
            *(rg.TermsMetadataProperty(name=k, title=k.capitalize()) for k in CHAT_TERMS),
            rg.IntegerMetadataProperty(name="row_id", title="Row id"),
        ],
    )


def to_chat_record(row: dict, dataset_name: str, position: int) -> rg.Record:
    messages = [{"role": m["role"], "content": m["content"]} for m in row["messages"]]
    metadata: dict[str, Any] = {"turns": sum(m["role"] == "user" for m in messages)}
    metadata |= {k: str(row[k]) for k in CHAT_TERMS if row.get(k) is not None}
    rating = row.get("rating")
    suggestions = []
    if rating is not None:
        metadata["judge_rating"] = int(rating)
        suggestions.append(rg.Suggestion(question_name="rating", value=int(rating), agent=AGENT))
    row_id = row.get("row_id")
    if row_id is not None:
        metadata["row_id"] = int(row_id)
    return rg.Record(
        id=f"{dataset_name}-{row_id if row_id is not None else position}",
        fields={"messages": messages},
        metadata=metadata,
        suggestions=suggestions,
    )


def build_settings(spec: DatasetSpec) -> rg.Settings:
    """Argilla dataset settings for a contract (text classification, or chat)."""
    if spec.task == "chat":
        return build_chat_settings(spec)
    question_cls = rg.MultiLabelQuestion if spec.multi_label else rg.LabelQuestion
    guidelines = (
        spec.description
        + "\n\n"
        + "\n".join(f"- **{lb.name}**: {lb.definition}" for lb in spec.labels)
    )
    return rg.Settings(
        guidelines=guidelines,
        fields=[rg.TextField(name="text", title="Text", use_markdown=False)],
        questions=[
            question_cls(
                name=_question(spec),
                labels=spec.label_names,
                title="Labels" if spec.multi_label else "Label",
                description="Pick every label that fits."
                if spec.multi_label
                else "Pick one label.",
            )
        ],
        metadata=[
            rg.IntegerMetadataProperty(name="text_length", title="Text length (characters)"),
            rg.TermsMetadataProperty(name="judge_label", title="Judge label"),
            rg.TermsMetadataProperty(name="agreement", options=["yes", "no"], title="Judge agreed"),
            *(rg.TermsMetadataProperty(name=k, title=k.capitalize()) for k in TERMS),
            rg.IntegerMetadataProperty(name="row_id", title="Row id"),
        ],
    )


def _question(spec: DatasetSpec) -> str:
    return "labels" if spec.multi_label else "label"


def _name(spec: DatasetSpec, value: Any) -> str:
    """Label name from a name or a ClassLabel index (rows read back from Parquet carry ints)."""
    return spec.label_names[value] if isinstance(value, int) else str(value)


def to_record(spec: DatasetSpec, row: dict, dataset_name: str, position: int) -> rg.Record:
    """One row as an Argilla record with its suggestion and metadata (see the module docstring)."""
    if spec.task == "chat":
        return to_chat_record(row, dataset_name, position)
    agreement = row.get("agreement")
    metadata: dict[str, Any] = {"text_length": len(row["text"])}
    value: str | list[str]
    score: float | list[float] | None
    if spec.multi_label:
        value = [_name(spec, v) for v in row.get("labels") or []]
        judged = row.get("judge_labels")
        judge = [_name(spec, v) for v in judged] if judged is not None else None
        if judge is not None:
            metadata["judge_label"] = judge
            score = [1.0 if v in judge else 0.0 for v in value]
        elif agreement is not None:
            score = [1.0 if agreement else 0.0] * len(value)
        else:
            score = None
    else:
        value = _name(spec, row["label"])
        if row.get("judge_label") is not None:
            metadata["judge_label"] = _name(spec, row["judge_label"])
        score = None if agreement is None else (1.0 if agreement else 0.0)
    if agreement is not None:
        metadata["agreement"] = "yes" if agreement else "no"
    metadata |= {k: str(row[k]) for k in TERMS if row.get(k) is not None}
    row_id = row.get("row_id")
    if row_id is not None:
        metadata["row_id"] = int(row_id)
    suggestions = (
        [rg.Suggestion(question_name=_question(spec), value=value, score=score, agent=AGENT)]
        if value
        else []
    )
    return rg.Record(
        id=f"{dataset_name}-{row_id if row_id is not None else position}",
        fields={"text": row["text"]},
        metadata=metadata,
        suggestions=suggestions,
    )


def _signature(settings: rg.Settings) -> tuple:
    """What must match for records to be added to an existing dataset."""
    fields = sorted((f.name, type(f).__name__) for f in settings.fields)
    questions = sorted(
        (q.name, type(q).__name__, tuple(getattr(q, "labels", ()) or ()))
        for q in settings.questions
    )
    metadata = sorted((m.name, type(m).__name__) for m in settings.metadata)
    return fields, questions, metadata


def dataset_ui_url(api_url: str, dataset: rg.Dataset) -> str:
    return f"{api_url.rstrip('/')}/dataset/{dataset.id}/annotation-mode"


def push_to_argilla(
    spec: DatasetSpec,
    rows: Iterable[dict],
    *,
    api_url: str,
    api_key: str,
    workspace: str | None,
    dataset_name: str,
) -> str:
    """Create (or reuse, when compatible) the dataset, upsert the records, return the UI URL."""
    api_url = (api_url or "").strip().rstrip("/")
    if not api_url.startswith(("http://", "https://")):
        raise ArgillaPushError("The Argilla URL must start with http:// or https://.")
    if not api_key:
        raise ArgillaPushError("An Argilla API key is needed: set ARGILLA_API_KEY or paste one.")
    dataset_name = validate_dataset_name(dataset_name)
    try:
        client = rg.Argilla(api_url=api_url, api_key=api_key, timeout=30, retries=1)
        ws = _workspace(client, workspace)
        wanted = build_settings(spec)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "not found" is a warning in the SDK
            dataset = client.datasets(name=dataset_name, workspace=ws)
        if dataset is None:
            dataset = rg.Dataset(name=dataset_name, workspace=ws, settings=wanted, client=client)
            dataset.create()
        elif _signature(dataset.settings) != _signature(wanted):
            raise ArgillaPushError(
                f"The Argilla dataset “{dataset_name}” in workspace “{ws.name}” exists with other "
                "fields, labels or metadata; choose another dataset name."
            )
        records = [to_record(spec, row, dataset_name, i) for i, row in enumerate(rows)]
        if records:
            dataset.records.log(records)
        return dataset_ui_url(api_url, dataset)
    except ArgillaPushError:
        raise
    except Exception as exc:
        raise _to_error(exc, api_url, api_key) from None


def _workspace(client: rg.Argilla, name: str | None) -> rg.Workspace:
    """The named workspace (created when missing and the user may), else the user's first."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not name:
            mine = client.workspaces.list()
            if mine:
                return mine[0]
            name = "argilla"
        found = client.workspaces(name=name)
    if found is not None:
        return found
    role = getattr(client.me.role, "value", str(client.me.role))
    if role not in ("owner", "admin"):
        raise ArgillaPushError(
            f"The Argilla workspace “{name}” does not exist and your role ({role}) may not create it."
        )
    workspace = rg.Workspace(name=name, client=client).create()
    if role == "admin":  # owners see every workspace; an admin must join the one they create
        workspace.add_user(client.me.username)
    return workspace


def _to_error(exc: BaseException, api_url: str, api_key: str) -> ArgillaPushError:
    """One sentence per failure class; the API key never appears."""
    status = getattr(exc, "status_code", None)
    if isinstance(exc, ArgillaCredentialsError) or status == 401:
        msg = "Argilla rejected the API key (401): copy it again from your Argilla user settings."
    elif isinstance(exc, httpx.TransportError | ConnectionError | TimeoutError):
        msg = f"Could not reach Argilla at {api_url}: check the URL and that the server is running."
    elif status == 403:
        msg = "Your Argilla user may not do this (403): it needs the owner or admin role in that workspace."
    elif status == 404 and isinstance(exc, ArgillaAPIError):
        msg = f"{api_url} answered, but not as an Argilla 2.x server (404): check the URL."
    elif isinstance(exc, ArgillaAPIError):
        msg = f"Argilla refused the push ({status}); the local dataset is untouched."
    elif isinstance(exc, ArgillaError):
        msg = "The Argilla push failed; the local dataset is untouched."
    else:
        msg = f"The Argilla push failed ({type(exc).__name__}); the local dataset is untouched."
    if api_key:
        msg = msg.replace(api_key, "***")
    return ArgillaPushError(msg, status=status)
