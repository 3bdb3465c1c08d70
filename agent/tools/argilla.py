"""Push a dataset to Argilla 2.x for human review (SDK ``argilla``, ``import argilla as rg``).

The settings (fields, questions, metadata) and the records are the kind's
(`agent.tasks.kind(spec).argilla_settings` / `argilla_record`, e.g. `agent.tasks.textcat.publish`);
this module connects, finds or creates the workspace and dataset, refuses an existing dataset of
another shape, upserts the records and turns failures into one sentence for the user.

Record ids are ``f"{dataset_name}-{row_id}"`` (the row's position when it has no ``row_id``), and
`records.log` upserts by id, so a retried push updates records instead of duplicating them.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable

import argilla as rg
import httpx
from argilla._exceptions import ArgillaAPIError, ArgillaCredentialsError, ArgillaError

from agent import tasks
from agent.spec import DatasetSpec
from agent.tools.hub import PublishError


class ArgillaPushError(PublishError):
    """An Argilla push failure; the message is one sentence for the user."""


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


def build_settings(spec: DatasetSpec) -> rg.Settings:
    """Argilla dataset settings for a contract (its kind's)."""
    settings: rg.Settings = tasks.kind(spec).argilla_settings(spec)
    return settings


def to_record(spec: DatasetSpec, row: dict, dataset_name: str, position: int) -> rg.Record | None:
    """One row as an Argilla record (its kind's), or None when the kind skips the row."""
    record: rg.Record | None = tasks.kind(spec).argilla_record(spec, row, dataset_name, position)
    return record


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
        records = [
            record
            for i, row in enumerate(rows)
            if (record := to_record(spec, row, dataset_name, i)) is not None
        ]
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
