"""Argilla push against a real argilla-server 2.8.0, read back through the real SDK.

The server runs in its own virtualenv with SQLite and Redis, started by `scripts/start_argilla.sh`
(idempotent; the fixture calls it unless ARGILLA_API_URL already answers). Elasticsearch and
OpenSearch cannot be installed here, so the server uses the small in-memory search engine of
`tests/argilla_server/memory_engine.py`: records, settings, suggestions and metadata are stored and
listed by the real server and database, but search is only a substring match over the text,
filters/sorting/similarity are ignored and metadata metrics are empty. Nothing here tests those.
"""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from pathlib import Path

import argilla as rg
import datasets
import httpx
import pytest

from agent.spec import DatasetSpec, make_spec
from agent.tools.argilla import ArgillaPushError, push_to_argilla
from agent.tools.export import DATA_FILE, export_dataset
from tests.test_rag_export import rag_rows, rag_spec

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent
LABELS = ["positive", "negative", "mixed"]


def _answers(url: str, key: str) -> bool:
    try:
        r = httpx.get(f"{url}/api/v1/me", headers={"X-Argilla-Api-Key": key}, timeout=3)
        return r.status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="session")
def server() -> tuple[str, str]:
    url, key = os.environ.get("ARGILLA_API_URL"), os.environ.get("ARGILLA_API_KEY")
    if url and key and _answers(url, key):
        return url.rstrip("/"), key
    done = subprocess.run(
        [str(ROOT / "scripts" / "start_argilla.sh")],
        capture_output=True,
        text=True,
        timeout=900,
        env={k: v for k, v in os.environ.items() if k not in ("ARGILLA_API_URL",)},
    )
    if done.returncode != 0:
        pytest.fail(f"scripts/start_argilla.sh failed:\n{done.stderr[-3000:]}")
    env = dict(
        line.removeprefix("export ").split("=", 1)
        for line in done.stdout.splitlines()
        if line.startswith("export ")
    )
    return env["ARGILLA_API_URL"], env["ARGILLA_API_KEY"]


def _spec(multi: bool) -> DatasetSpec:
    return make_spec(
        {
            "name": "reviews",
            "description": "Product reviews by sentiment.",
            "labels": [{"name": n, "definition": f"The review is {n}."} for n in LABELS],
            "multi_label": multi,
            "size": 5,
        }
    )


def _exported_rows(tmp_path: Path, spec: DatasetSpec) -> list[dict]:
    """Rows as the app has them, exported and read back from the Parquet file (labels as ints)."""
    rows = []
    for i in range(5):
        row: dict = {
            "row_id": i,
            "text": f"Review number {i}: " + "great " * i,
            "topic": ["shoes", "lamps"][i % 2],
            "tone": "calm",
            "clarity": "clear",
            "length": "short",
            "agreement": None if i == 0 else i % 2 == 1,
        }
        if spec.multi_label:
            row["labels"] = [LABELS[i % 3], LABELS[(i + 1) % 3]]
            row["judge_labels"] = None if i == 0 else [LABELS[i % 3]]
        else:
            row["label"] = LABELS[i % 3]
            row["judge_label"] = None if i == 0 else LABELS[(i + (i % 2 == 0)) % 3]
        rows.append(row)
    folder = export_dataset(spec, rows, tmp_path / "out", model_info={}, history=[], metrics={})
    return datasets.Dataset.from_parquet(str(folder / DATA_FILE)).to_list()


def _client(server: tuple[str, str]) -> rg.Argilla:
    return rg.Argilla(api_url=server[0], api_key=server[1])


def _records(server: tuple[str, str], name: str, workspace: str | None = None) -> list[rg.Record]:
    client = _client(server)
    ws = workspace or client.workspaces.list()[0].name
    dataset = client.datasets(name=name, workspace=ws)
    assert dataset is not None
    return sorted(dataset.records(with_suggestions=True), key=lambda r: r.metadata["row_id"])


@pytest.mark.parametrize("multi", [False, True], ids=["single", "multi"])
def test_push_reads_back_and_retry_adds_no_duplicates(
    server: tuple[str, str], tmp_path: Path, multi: bool
) -> None:
    spec = _spec(multi)
    rows = _exported_rows(tmp_path, spec)
    name = f"reviews-{'multi' if multi else 'single'}-{uuid.uuid4().hex[:8]}"
    url = push_to_argilla(
        spec, rows, api_url=server[0], api_key=server[1], workspace=None, dataset_name=name
    )
    assert url.startswith(f"{server[0]}/dataset/") and url.endswith("/annotation-mode")
    assert httpx.get(url, timeout=10).status_code == 200  # the UI serves the page

    client = _client(server)
    dataset = client.datasets(name=name, workspace=client.workspaces.list()[0].name)
    question = dataset.settings.questions[0]
    assert question.name == ("labels" if multi else "label")
    assert type(question) is (rg.MultiLabelQuestion if multi else rg.LabelQuestion)
    assert question.labels == LABELS  # contract order
    assert [f.name for f in dataset.settings.fields] == ["text"]
    assert {m.name for m in dataset.settings.metadata} == {
        "text_length",
        "judge_label",
        "agreement",
        "topic",
        "tone",
        "clarity",
        "length",
        "row_id",
    }

    records = _records(server, name)
    assert len(records) == len(rows)
    for record, row in zip(records, rows, strict=True):
        assert record.id == f"{name}-{row['row_id']}"
        assert record.fields["text"] == row["text"]
        suggestion = record.suggestions["labels" if multi else "label"]
        assert suggestion.agent == "dataset-agent"
        expected_meta = {
            "text_length": len(row["text"]),
            "topic": row["topic"],
            "tone": row["tone"],
            "clarity": "clear",
            "length": "short",
            "row_id": row["row_id"],
        }
        if row["agreement"] is not None:
            expected_meta["agreement"] = "yes" if row["agreement"] else "no"
        if multi:
            value = [LABELS[i] for i in row["labels"]]
            judge = row["judge_labels"]
            assert suggestion.value == value
            if judge is None:
                assert suggestion.score is None
            else:
                expected_meta["judge_label"] = judge
                assert suggestion.score == [1.0 if v in judge else 0.0 for v in value]
        else:
            assert suggestion.value == LABELS[row["label"]]
            assert suggestion.score == (
                None if row["agreement"] is None else (1.0 if row["agreement"] else 0.0)
            )
            if row["judge_label"] is not None:
                expected_meta["judge_label"] = row["judge_label"]
        assert dict(record.metadata) == expected_meta

    # A retried push (one text edited) updates in place: same count, no duplicates.
    rows[2]["text"] = "An edited review."
    again = push_to_argilla(
        spec, rows, api_url=server[0], api_key=server[1], workspace=None, dataset_name=name
    )
    assert again == url
    records = _records(server, name)
    assert len(records) == len(rows)
    assert len({r.id for r in records}) == len(rows)
    assert records[2].fields["text"] == "An edited review."
    # The in-memory search engine answers a plain text query.
    hits = list(dataset.records(query="edited"))
    assert [r.id for r in hits] == [f"{name}-2"]


def test_named_workspace_is_created_and_incompatible_dataset_is_refused(
    server: tuple[str, str], tmp_path: Path
) -> None:
    workspace = f"ws-{uuid.uuid4().hex[:8]}"
    name = "reviews"
    rows = _exported_rows(tmp_path, _spec(False))
    push_to_argilla(
        _spec(False),
        rows,
        api_url=server[0],
        api_key=server[1],
        workspace=workspace,
        dataset_name=name,
    )
    assert len(_records(server, name, workspace)) == 5
    multi_rows = _exported_rows(tmp_path, _spec(True))
    with pytest.raises(ArgillaPushError, match="exists with other fields, labels or metadata"):
        push_to_argilla(
            _spec(True),
            multi_rows,
            api_url=server[0],
            api_key=server[1],
            workspace=workspace,
            dataset_name=name,
        )
    assert len(_records(server, name, workspace)) == 5


def test_bad_key_is_one_clear_sentence(server: tuple[str, str], tmp_path: Path) -> None:
    key = "argilla.WRONG-sentinel-key-123"
    with pytest.raises(ArgillaPushError) as info:
        push_to_argilla(
            _spec(False), [], api_url=server[0], api_key=key, workspace=None, dataset_name="x"
        )
    assert "rejected the API key (401)" in str(info.value)
    assert key not in str(info.value) and info.value.__cause__ is None


def test_dead_server_is_one_clear_sentence() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    key = "argilla.sentinel-key-456"
    with pytest.raises(ArgillaPushError) as info:
        push_to_argilla(
            _spec(False),
            [],
            api_url=f"http://127.0.0.1:{port}",
            api_key=key,
            workspace=None,
            dataset_name="x",
        )
    assert "Could not reach Argilla at http://127.0.0.1:" in str(info.value)
    assert key not in str(info.value)


def test_bad_url_scheme() -> None:
    with pytest.raises(ArgillaPushError, match="must start with http"):
        push_to_argilla(
            _spec(False),
            [],
            api_url="localhost:6900",
            api_key="k",
            workspace=None,
            dataset_name="x",
        )


def test_chat_dataset_reads_back_with_ratings_and_no_duplicates(
    server: tuple[str, str], tmp_path: Path
) -> None:
    spec = make_spec(
        {
            "task": "chat",
            "name": "bank",
            "description": "Bank support conversations.",
            "size": 3,
            "chat": {"system_prompt": "You are a bank's assistant.", "turns": 2},
        }
    )
    rows = []
    for i in range(3):
        messages = [{"role": "system", "content": "You are a bank's assistant."}]
        for t in range(2):
            messages += [
                {"role": "user", "content": f"question {i}.{t}"},
                {"role": "assistant", "content": f"answer {i}.{t}"},
            ]
        rows.append(
            {
                "row_id": i,
                "messages": messages,
                "persona": "student",
                "intent": "card",
                "rating": 3 + i % 3,
            }
        )
    folder = export_dataset(spec, rows, tmp_path / "chat", model_info={}, history=[], metrics={})
    exported = datasets.Dataset.from_parquet(str(folder / DATA_FILE)).to_list()
    name = f"bank-{uuid.uuid4().hex[:8]}"
    for _ in range(2):  # a retried push adds nothing
        push_to_argilla(
            spec, exported, api_url=server[0], api_key=server[1], workspace=None, dataset_name=name
        )
    records = _records(server, name)
    assert len(records) == 3
    for i, record in enumerate(records):
        assert record.id == f"{name}-{i}"
        got = [{"role": m.role, "content": m.content} for m in record.fields["messages"]]
        assert got == rows[i]["messages"]
        (suggestion,) = list(record.suggestions)
        assert suggestion.question_name == "rating" and suggestion.value == rows[i]["rating"]
        assert record.metadata == {
            "turns": 2,
            "judge_rating": rows[i]["rating"],
            "persona": "student",
            "intent": "card",
            "row_id": i,
        }


def test_rag_dataset_reads_back_with_context_chat_and_judge_suggestions(
    server: tuple[str, str], tmp_path: Path
) -> None:
    spec = rag_spec(hard_negatives=True, reranking=True)
    folder = export_dataset(
        spec, rag_rows(spec), tmp_path / "rag", model_info={}, history=[], metrics={}
    )
    exported = datasets.Dataset.from_parquet(str(folder / DATA_FILE)).to_list()
    rows = [*exported, dict(exported[0], row_id=99, question="")]  # an empty field: skipped
    name = f"rag-{uuid.uuid4().hex[:8]}"
    for _ in range(2):  # a retried push adds nothing
        push_to_argilla(
            spec, rows, api_url=server[0], api_key=server[1], workspace=None, dataset_name=name
        )

    client = _client(server)
    dataset = client.datasets(name=name, workspace=client.workspaces.list()[0].name)
    fields = {f.name: type(f).__name__ for f in dataset.settings.fields}
    assert fields == {
        "context": "TextField",
        "chat": "ChatField",
        "positive_retrieval": "TextField",
        "negative_retrieval": "TextField",
        "positive_reranking": "TextField",
        "negative_reranking": "TextField",
    }
    questions = {q.name: (type(q), q.labels) for q in dataset.settings.questions}
    assert questions == {
        "relevant": (rg.LabelQuestion, ["yes", "no"]),
        "is_response_correct": (rg.LabelQuestion, ["yes", "no"]),
    }
    assert "relevant" in dataset.settings.guidelines

    records = _records(server, name)
    assert len(records) == 4 and [r.id for r in records] == [f"{name}-{i}" for i in range(4)]
    for record, row in zip(records, exported, strict=True):
        assert record.fields["context"] == row["context"]
        chat = [{"role": m.role, "content": m.content} for m in record.fields["chat"]]
        assert chat == [
            {"role": "user", "content": row["question"]},
            {"role": "assistant", "content": row["response"]},
        ]
        for k in ("positive_retrieval", "negative_retrieval", "positive_reranking"):
            assert record.fields[k] == row[k]
        suggestions = {s.question_name: (s.value, s.agent) for s in record.suggestions}
        yes_no = {True: "yes", False: "no"}
        assert suggestions == {
            "relevant": (yes_no[row["answerable"]], "dataset-agent"),
            "is_response_correct": (yes_no[row["supported"]], "dataset-agent"),
        }
        assert dict(record.metadata) == {
            "topic": row["topic"],
            "difficulty": "medium",
            "answer_length": row["answer_length"],
            "source": "manual.pdf",
            "chunk_id": row["chunk_id"],
            "context_length": len(row["context"]),
            "question_length": len(row["question"]),
            "response_length": len(row["response"]),
            "judge_rating": row["rating"],
            "negative_unanswered": yes_no[row["negative_unanswered"]],
            "row_id": row["row_id"],
        }
