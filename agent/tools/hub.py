"""Push an exported, Hub-ready folder to the Hugging Face Hub as a dataset repo, in one commit.

Modes:
- ``new``: create the repo (fails with a clear sentence if it already exists) and upload the folder;
- ``replace``: the repo ends up holding exactly the folder (other files are deleted in the same commit);
- ``add_config``: the folder's data goes under ``<config_name>/`` and the root card's ``configs``
  YAML gains an entry for it, so ``load_dataset(repo, "default")`` and
  ``load_dataset(repo, config_name)`` both work; the new config's own card and contract are kept
  beside its data as ``<config_name>/README.md`` and ``<config_name>/spec.json``.

In every mode the repo's visibility is set to ``private``. Errors become a `PublishError` with one
sentence for the user, never the token.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import httpx2
import yaml
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
from huggingface_hub.errors import HfHubHTTPError, HFValidationError, OfflineModeIsEnabled
from huggingface_hub.utils import validate_repo_id as _hf_validate

Mode = Literal["new", "replace", "add_config"]
HUB_URL = "https://huggingface.co"
_CONFIG_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class PublishError(Exception):
    """A publishing failure; the message is one sentence written for the user."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def resolve_token(session_token: str | None, pasted: str | None, settings: Any) -> str | None:
    """The token to use: the signed-in user's, else one pasted in the chat, else ``HF_TOKEN``."""
    env = getattr(settings, "hf_token", None)
    env_value = env.get_secret_value() if env is not None else None
    for candidate in (session_token, pasted, env_value):
        if candidate and candidate.strip():
            return candidate.strip()
    return None


def validate_repo_id(repo_id: str) -> str:
    """Return a clean ``namespace/name`` (or ``name``) repo id, or raise PublishError."""
    repo_id = (repo_id or "").strip()
    bad = f"“{repo_id}” is not a valid repo id: use “name” or “namespace/name” with letters, digits, “-”, “_” or “.”."
    if not repo_id or repo_id.count("/") > 1 or any(c.isspace() for c in repo_id):
        raise PublishError(bad)
    if any(part in ("", ".", "..") for part in repo_id.split("/")):
        raise PublishError(bad)
    try:
        _hf_validate(repo_id)
    except HFValidationError:
        raise PublishError(bad) from None
    return repo_id


def dataset_url(repo_id: str) -> str:
    return f"{HUB_URL}/datasets/{repo_id}"


def repo_exists(repo_id: str, token: str | None) -> bool:
    """Whether the dataset repo exists (and is visible with this token)."""
    repo_id = validate_repo_id(repo_id)
    try:
        return HfApi().repo_exists(repo_id, repo_type="dataset", token=token or False)
    except Exception as exc:
        raise _to_publish_error(exc, repo_id, token) from None


def push_folder(
    folder: Path,
    repo_id: str,
    *,
    private: bool,
    token: str | None,
    mode: Mode = "new",
    config_name: str | None = None,
) -> str:
    """Create or update the dataset repo from `folder` in one commit; return the dataset's URL."""
    folder = Path(folder)
    repo_id = validate_repo_id(repo_id)
    if not (folder / "README.md").is_file() or not any((folder / "data").glob("*.parquet")):
        raise PublishError(f"The folder {folder} is not an exported dataset (no card or no data).")
    if not token:
        raise PublishError(
            "No Hugging Face token: sign in, paste a token in the chat settings, or set HF_TOKEN."
        )
    if mode == "add_config" and not (config_name and _CONFIG_NAME.match(config_name)):
        raise PublishError(
            "A new config needs a short name of letters, digits, “-” or “_”, for example “v2”."
        )
    if mode == "add_config" and config_name in ("default", "data"):
        raise PublishError(f"“{config_name}” is taken by the first config; choose another name.")
    api = HfApi()
    try:
        url = api.create_repo(
            repo_id, repo_type="dataset", private=private, exist_ok=mode != "new", token=token
        )
        repo_id = getattr(url, "repo_id", None) or repo_id  # "name" alone → "user/name"
        if mode != "new":
            api.update_repo_settings(repo_id, private=private, repo_type="dataset", token=token)
        ops = _operations(api, folder, repo_id, token, mode, config_name)
        what = f"config {config_name}" if mode == "add_config" else "dataset"
        api.create_commit(
            repo_id,
            ops,
            commit_message=f"Upload {what} from dataset-agent",
            repo_type="dataset",
            token=token,
        )
    except PublishError:
        raise
    except Exception as exc:
        raise _to_publish_error(exc, repo_id, token) from None
    return dataset_url(repo_id)


def _files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def _operations(
    api: HfApi, folder: Path, repo_id: str, token: str, mode: Mode, config_name: str | None
) -> list[Any]:
    files = _files(folder)
    if mode != "add_config":
        adds = [CommitOperationAdd(p.relative_to(folder).as_posix(), str(p)) for p in files]
        ops: list[Any] = list(adds)
        if mode == "replace":
            keep = {op.path_in_repo for op in adds} | {".gitattributes"}
            existing = api.list_repo_files(repo_id, repo_type="dataset", token=token)
            ops += [CommitOperationDelete(f) for f in existing if f not in keep]
        return ops
    assert config_name
    ops = []
    for p in files:
        rel = p.relative_to(folder)
        if rel.parts[0] == "data":
            ops.append(CommitOperationAdd(f"{config_name}/{'/'.join(rel.parts[1:])}", str(p)))
        elif rel.as_posix() in ("README.md", "spec.json"):
            ops.append(CommitOperationAdd(f"{config_name}/{rel.as_posix()}", str(p)))
    card_path = api.hf_hub_download(repo_id, "README.md", repo_type="dataset", token=token)
    card = add_config_to_card(Path(card_path).read_text(encoding="utf-8"), config_name)
    ops.append(CommitOperationAdd("README.md", card.encode("utf-8")))
    return ops


def add_config_to_card(card: str, config_name: str) -> str:
    """Return `card` with a ``configs`` entry for `config_name` (data in ``<config_name>/train-*``)."""
    meta: dict[str, Any] = {}
    body = card
    match = re.match(r"^---\n(.*?)\n---\n?", card, flags=re.DOTALL)
    if match:
        meta = yaml.safe_load(match.group(1)) or {}
        body = card[match.end() :]
    configs = meta.get("configs") or [
        {"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}
    ]
    configs = [c for c in configs if c.get("config_name") != config_name]
    configs.append(
        {
            "config_name": config_name,
            "data_files": [{"split": "train", "path": f"{config_name}/train-*"}],
        }
    )
    meta["configs"] = configs
    note = (
        f"\n## Config `{config_name}`\n\nAdded later by dataset-agent: its card is "
        f"`{config_name}/README.md` and its contract `{config_name}/spec.json`. Load it with "
        f'`load_dataset("<repo>", "{config_name}")`.\n'
    )
    if f"## Config `{config_name}`" not in body:
        body = body.rstrip("\n") + "\n" + note
    header = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    return f"---\n{header}---\n{body}"


def _to_publish_error(exc: BaseException, repo_id: str, token: str | None) -> PublishError:
    """One sentence per failure class; the token never appears."""
    namespace = repo_id.split("/")[0] if "/" in repo_id else "your account"
    status: int | None = None
    if isinstance(exc, OfflineModeIsEnabled):
        msg = "HF_HUB_OFFLINE is set, so nothing can be sent to the Hugging Face Hub; unset it and retry."
    elif isinstance(exc, HfHubHTTPError) and exc.response is not None:
        status = exc.response.status_code
        msg = {
            401: "The Hugging Face Hub rejected the token (401): sign in again or use a valid token with write access.",
            403: f"The token may not write to “{namespace}” (403): it needs write access to that user or organization.",
            404: f"The namespace “{namespace}” was not found on the Hugging Face Hub (404), or the token cannot see it.",
            409: f"The repo {repo_id} already exists or another push is changing it (409): replace it, add a new config, or pick another name.",
        }.get(
            status,
            f"The Hugging Face Hub answered with an error ({status}); the local folder is untouched, retry later.",
        )
    elif isinstance(exc, httpx2.TransportError | ConnectionError | TimeoutError):
        msg = "Could not reach the Hugging Face Hub: check the network connection and retry."
    elif isinstance(exc, HFValidationError):
        msg = f"“{repo_id}” is not a valid repo id."
    else:
        msg = f"Publishing to the Hugging Face Hub failed ({type(exc).__name__}); the local folder is untouched."
    if token:
        msg = msg.replace(token, "***")
    return PublishError(msg, status=status)
