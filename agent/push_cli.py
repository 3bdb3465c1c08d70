"""`python -m agent push DIR …`: publish an exported folder, after a confirmation (or `--yes`).

python -m agent push data/datasets/reviews --hub my-org/reviews --private
python -m agent push data/datasets/reviews --argilla-url http://localhost:6900 --argilla-api-key KEY
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Literal, cast

import typer
from rich.console import Console

from agent.config import get_settings
from agent.spec import SpecError, make_spec
from agent.tools import hub
from agent.tools.argilla import push_to_argilla
from agent.tools.quality import rows_from_folder

Mode = Literal["new", "replace", "add_config"]
err = Console(stderr=True, soft_wrap=True)


def _fail(message: str) -> typer.Exit:
    err.print(f"error: {message}", markup=False)
    return typer.Exit(1)


def _rows_and_columns(folder: Path) -> tuple[int, list[str]]:
    import pyarrow.parquet as pq

    files = sorted((folder / "data").glob("*.parquet"))
    if not files:
        raise _fail(f"{folder} has no data/*.parquet — export a dataset first")
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files), pq.ParquetFile(
        files[0]
    ).schema_arrow.names


def push(
    folder: Path = typer.Argument(..., help="An exported dataset folder."),
    hub_repo: str = typer.Option(None, "--hub", help="Hub repo id, e.g. my-org/reviews."),
    private: bool = typer.Option(True, "--private/--public", help="Visibility of a new Hub repo."),
    mode: str = typer.Option(
        "new", "--mode", help="new | replace | add_config (for an existing repo)."
    ),
    argilla_url: str = typer.Option(None, "--argilla-url", help="Argilla server URL."),
    argilla_api_key: str = typer.Option(
        None, "--argilla-api-key", help="Argilla API key (or ARGILLA_API_KEY)."
    ),
    workspace: str = typer.Option(None, "--workspace", help="Argilla workspace."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Publish an exported folder to the Hugging Face Hub or Argilla."""
    settings = get_settings()
    if not (folder / "spec.json").exists():
        raise _fail(f"{folder} is not an exported dataset (no spec.json)")
    try:
        spec = make_spec(json.loads((folder / "spec.json").read_text(encoding="utf-8")))
    except (SpecError, json.JSONDecodeError) as exc:
        raise _fail(f"{folder}/spec.json is not a valid contract: {exc}") from None
    rows, cols = _rows_and_columns(folder)
    # Flags choose the target; ARGILLA_API_URL in the environment only fills in a missing --argilla-url.
    if hub_repo and argilla_url:
        raise _fail("give exactly one target: --hub REPO_ID or --argilla-url URL")
    if not hub_repo and not (argilla_url or settings.argilla_api_url):
        raise _fail("give a target: --hub REPO_ID or --argilla-url URL")
    try:
        if hub_repo:
            repo = hub.validate_repo_id(hub_repo)
            if mode not in ("new", "replace", "add_config"):
                raise _fail("--mode is new, replace or add_config")
            where = f"the Hugging Face Hub as {repo} ({'private' if private else 'public'}, mode {mode})"
        else:
            url = argilla_url or str(settings.argilla_api_url)
            where = f"Argilla at {url} as dataset {spec.name} (workspace {workspace or 'default'})"
        err.print(
            f"Will upload {folder.name}: {rows:,} rows, columns {', '.join(cols)} — to {where}.",
            markup=False,
        )
        if not yes:
            if not sys.stdin.isatty():
                raise _fail("confirmation needs --yes when not run in a terminal")
            if not typer.confirm("Upload?", default=False, err=True):
                raise _fail("not confirmed; nothing was sent")
        if hub_repo:
            token = hub.resolve_token(None, None, settings)
            link = hub.push_folder(
                folder,
                repo,
                private=private,
                token=token,
                mode=cast(Mode, mode),
                config_name=spec.name,
            )  # type: ignore[arg-type]
        else:
            key = argilla_api_key or (
                settings.argilla_api_key.get_secret_value() if settings.argilla_api_key else ""
            )
            if not key:
                raise _fail("Argilla needs an API key: --argilla-api-key or ARGILLA_API_KEY")
            link = push_to_argilla(
                spec,
                rows_from_folder(folder),
                api_url=url,
                api_key=key,
                workspace=workspace or settings.argilla_workspace,
                dataset_name=spec.name,
            )
    except hub.PublishError as exc:
        raise _fail(f"{exc} The local folder is untouched.") from None
    typer.echo(link)
