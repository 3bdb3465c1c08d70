"""Hub push, patched at the `huggingface_hub` boundary: no network, HF_HUB_OFFLINE=1 throughout.

`FakeHub` replaces the `HfApi` methods the tool calls and records every call; commits are applied
to an in-memory repo, which is written out and read back with `datasets.load_dataset` to prove
that both configs of an ``add_config`` push load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import datasets
import httpx2
import pytest
from huggingface_hub import HfApi, constants
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError
from huggingface_hub.hf_api import RepoUrl

from agent.config import Settings
from agent.spec import make_spec
from agent.tools import hub
from agent.tools.export import DATA_FILE, export_dataset
from agent.tools.hub import PublishError, push_folder, repo_exists, resolve_token, validate_repo_id

TOKEN = "hf_SENTINELtoken0123456789abcdef"
REPO = "my-org/ecommerce-reviews"


def _folder(tmp_path: Path, name: str = "reviews", multi: bool = False) -> Path:
    spec = make_spec(
        {
            "name": name,
            "description": "E-commerce reviews.",
            "labels": [
                {"name": "positive", "definition": "Happy."},
                {"name": "negative", "definition": "Unhappy."},
            ],
            "multi_label": multi,
            "size": 4,
        }
    )
    key = "labels" if multi else "label"
    rows = [
        {"text": f"review {i}", key: ["positive"] if multi else "negative", "row_id": i}
        for i in range(4)
    ]
    return export_dataset(
        spec, rows, tmp_path / name, model_info={"model": "m"}, history=[], metrics={}
    )


class FakeHub:
    """Records every HfApi call; keeps the repo's files in memory."""

    def __init__(self, tmp_path: Path) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.files: dict[str, bytes] = {}
        self.exists = False
        self.fail: BaseException | None = None
        self.tmp = tmp_path

    def _record(self, name: str, **kw: Any) -> None:
        self.calls.append((name, kw))
        if self.fail is not None:
            raise self.fail

    def create_repo(self, _api: HfApi, repo_id: str, **kw: Any) -> RepoUrl:
        self._record("create_repo", repo_id=repo_id, **kw)
        if self.exists and not kw.get("exist_ok"):
            raise _http_error(409)
        self.exists = True
        full = repo_id if "/" in repo_id else f"someone/{repo_id}"  # the Hub adds the token's user
        return RepoUrl(f"https://huggingface.co/datasets/{full}")

    def update_repo_settings(self, _api: HfApi, repo_id: str, **kw: Any) -> None:
        self._record("update_repo_settings", repo_id=repo_id, **kw)

    def list_repo_files(self, _api: HfApi, repo_id: str, **kw: Any) -> list[str]:
        self._record("list_repo_files", repo_id=repo_id, **kw)
        return sorted(self.files)

    def hf_hub_download(self, _api: HfApi, repo_id: str, filename: str, **kw: Any) -> str:
        self._record("hf_hub_download", repo_id=repo_id, filename=filename, **kw)
        path = self.tmp / "download" / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.files[filename])
        return str(path)

    def repo_exists(self, _api: HfApi, repo_id: str, **kw: Any) -> bool:
        self._record("repo_exists", repo_id=repo_id, **kw)
        return self.exists

    def create_commit(self, _api: HfApi, repo_id: str, operations: list, **kw: Any) -> None:
        self._record("create_commit", repo_id=repo_id, operations=list(operations), **kw)
        for op in operations:
            if hasattr(op, "as_file"):
                with op.as_file() as f:
                    self.files[op.path_in_repo] = f.read()
            else:
                self.files.pop(op.path_in_repo, None)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def uploaded(self, n: int = -1) -> list[str]:
        commits = [kw for name, kw in self.calls if name == "create_commit"]
        return sorted(op.path_in_repo for op in commits[n]["operations"] if hasattr(op, "as_file"))

    def materialise(self, where: Path) -> Path:
        for name, content in self.files.items():
            (where / name).parent.mkdir(parents=True, exist_ok=True)
            (where / name).write_bytes(content)
        return where


def _http_error(status: int, cls: type[HfHubHTTPError] = HfHubHTTPError) -> HfHubHTTPError:
    request = httpx2.Request("POST", "https://huggingface.co/api/repos/create")
    response = httpx2.Response(status, request=request)
    return cls(f"{status} error for token {TOKEN}", response=response)


HUB_CALLS = (
    "create_repo",
    "update_repo_settings",
    "list_repo_files",
    "hf_hub_download",
    "repo_exists",
    "create_commit",
)


def install(fake: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    """Route every HfApi call `push_to_hub` makes to `fake`; anything else stays offline."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    for name in HUB_CALLS:
        method = getattr(fake, name)
        monkeypatch.setattr(
            HfApi, name, lambda api, *a, _m=method, **kw: _m(api, *a, **kw), raising=True
        )


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    fake = FakeHub(tmp_path)
    install(fake, monkeypatch)
    return fake


def test_new_push_uploads_the_folder_in_one_commit(tmp_path: Path, fake: FakeHub) -> None:
    folder = _folder(tmp_path)
    url = push_folder(folder, REPO, private=True, token=TOKEN)
    assert url == f"https://huggingface.co/datasets/{REPO}"
    assert fake.names() == ["create_repo", "create_commit"]
    create = fake.calls[0][1]
    assert create["repo_id"] == REPO
    assert create["repo_type"] == "dataset" and create["private"] is True
    assert create["exist_ok"] is False
    commit = fake.calls[1][1]
    assert commit["repo_id"] == REPO and commit["repo_type"] == "dataset"
    assert fake.uploaded() == sorted(["README.md", "spec.json", DATA_FILE])
    assert fake.files[DATA_FILE] == (folder / DATA_FILE).read_bytes()
    loaded = datasets.load_dataset(str(fake.materialise(tmp_path / "repo")))
    assert loaded["train"].features["label"].names == ["positive", "negative"]
    assert loaded["train"].num_rows == 4


def test_public_push_and_name_only_repo(tmp_path: Path, fake: FakeHub) -> None:
    url = push_folder(_folder(tmp_path), "reviews", private=False, token=TOKEN)
    assert fake.calls[0][1]["private"] is False
    assert fake.calls[0][1]["repo_id"] == "reviews"
    assert fake.calls[1][1]["repo_id"] == "someone/reviews"
    assert url == "https://huggingface.co/datasets/someone/reviews"


def test_replace_deletes_stale_files_in_the_same_commit(tmp_path: Path, fake: FakeHub) -> None:
    fake.exists = True
    fake.files = {".gitattributes": b"*", "README.md": b"old", "old/train-0.parquet": b"x"}
    push_folder(_folder(tmp_path), REPO, private=True, token=TOKEN, mode="replace")
    assert fake.names() == [
        "create_repo",
        "update_repo_settings",
        "list_repo_files",
        "create_commit",
    ]
    assert fake.calls[0][1]["exist_ok"] is True
    assert fake.calls[1][1]["private"] is True
    assert sorted(fake.files) == sorted([".gitattributes", "README.md", "spec.json", DATA_FILE])


def test_add_config_makes_both_configs_load(tmp_path: Path, fake: FakeHub) -> None:
    push_folder(_folder(tmp_path), REPO, private=True, token=TOKEN)
    second = _folder(tmp_path, name="reviews-v2", multi=True)
    push_folder(second, REPO, private=True, token=TOKEN, mode="add_config", config_name="v2")
    assert fake.uploaded() == sorted(
        ["README.md", "v2/README.md", "v2/spec.json", "v2/train-00000-of-00001.parquet"]
    )
    assert fake.names().count("create_commit") == 2
    repo = str(fake.materialise(tmp_path / "repo"))
    first = datasets.load_dataset(repo, "default")
    v2 = datasets.load_dataset(repo, "v2")
    assert "label" in first["train"].features and first["train"].num_rows == 4
    assert v2["train"].features["labels"].feature.names == ["positive", "negative"]
    # Retrying the same config changes nothing in the card's configs.
    push_folder(second, REPO, private=True, token=TOKEN, mode="add_config", config_name="v2")
    card = fake.files["README.md"].decode()
    assert card.count("config_name: v2") == 1 and card.count("## Config `v2`") == 1


@pytest.mark.parametrize("name", [None, "", "default", "bad name", "../x"])
def test_add_config_needs_a_good_name(tmp_path: Path, fake: FakeHub, name: str | None) -> None:
    with pytest.raises(PublishError):
        push_folder(
            _folder(tmp_path), REPO, private=True, token=TOKEN, mode="add_config", config_name=name
        )
    assert fake.calls == []


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (_http_error(401), "rejected the token (401)"),
        (_http_error(403), "may not write to “my-org” (403)"),
        (_http_error(404, RepositoryNotFoundError), "namespace “my-org” was not found"),
        (_http_error(409), "already exists"),
        (_http_error(500), "error (500)"),
        (httpx2.ConnectError(f"no route ({TOKEN})"), "Could not reach the Hugging Face Hub"),
        (TimeoutError(TOKEN), "Could not reach the Hugging Face Hub"),
    ],
)
def test_errors_are_one_sentence_without_the_token(
    tmp_path: Path, fake: FakeHub, error: BaseException, words: str
) -> None:
    fake.fail = error
    with pytest.raises(PublishError) as info:
        push_folder(_folder(tmp_path), REPO, private=True, token=TOKEN)
    text = str(info.value)
    assert words in text
    assert TOKEN not in text and TOKEN not in repr(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert text.count(". ") == 0 and text.endswith(".")


def test_existing_repo_with_mode_new_is_a_conflict(tmp_path: Path, fake: FakeHub) -> None:
    fake.exists = True
    with pytest.raises(PublishError, match="already exists"):
        push_folder(_folder(tmp_path), REPO, private=True, token=TOKEN)
    assert "create_commit" not in fake.names()


def test_offline_mode_blocks_the_real_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(PublishError, match="HF_HUB_OFFLINE") as info:
        push_folder(_folder(tmp_path), REPO, private=True, token=TOKEN)
    assert TOKEN not in str(info.value)
    with pytest.raises(PublishError, match="HF_HUB_OFFLINE"):
        repo_exists(REPO, TOKEN)


def test_repo_exists(fake: FakeHub) -> None:
    assert repo_exists(REPO, TOKEN) is False
    fake.exists = True
    assert repo_exists(REPO, None) is True
    assert fake.calls[-1][1] == {"repo_id": REPO, "repo_type": "dataset", "token": False}


def test_no_token_and_bad_folder_fail_before_any_call(tmp_path: Path, fake: FakeHub) -> None:
    with pytest.raises(PublishError, match="HF_TOKEN"):
        push_folder(_folder(tmp_path), REPO, private=True, token=None)
    with pytest.raises(PublishError, match="not an exported dataset"):
        push_folder(tmp_path / "missing", REPO, private=True, token=TOKEN)
    assert fake.calls == []


@pytest.mark.parametrize(
    "bad",
    ["", "   ", "../etc", "org/../x", "a b", "org/name/extra", "x--y", "org/", "/name", "a..b"],
)
def test_invalid_repo_ids_are_rejected(tmp_path: Path, fake: FakeHub, bad: str) -> None:
    with pytest.raises(PublishError, match="not a valid repo id"):
        validate_repo_id(bad)
    with pytest.raises(PublishError, match="not a valid repo id"):
        push_folder(_folder(tmp_path), bad, private=True, token=TOKEN)
    assert fake.calls == []


def test_valid_repo_ids() -> None:
    assert validate_repo_id(" my-org/ecommerce_reviews.v2 ") == "my-org/ecommerce_reviews.v2"
    assert validate_repo_id("reviews") == "reviews"


def test_resolve_token_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_env")
    settings = Settings()
    assert resolve_token("hf_session", "hf_pasted", settings) == "hf_session"
    assert resolve_token(None, " hf_pasted ", settings) == "hf_pasted"
    assert resolve_token("", None, settings) == "hf_env"
    monkeypatch.delenv("HF_TOKEN")
    assert resolve_token(None, "  ", Settings()) is None
    assert "hf_env" not in repr(settings)


def test_card_configs_are_added_to_a_card_without_them() -> None:
    card = hub.add_config_to_card("# Just a title\n", "v2")
    assert "config_name: default" in card and "path: v2/train-*" in card
    assert card.startswith("---\n") and "# Just a title" in card
