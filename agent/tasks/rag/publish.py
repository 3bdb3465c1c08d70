"""RAG rows on the way out: features, dataset card, judge figures and Argilla settings/records.

Columns, in this order (`columns(spec)`): ``context``, ``question``, ``response``; then
``positive_retrieval`` (when the contract asks for retrieval), ``negative_retrieval`` (hard
negatives), ``positive_reranking`` and ``negative_reranking`` (reranking); then the provenance
``chunk_id``, ``source``, ``topic``, ``difficulty``, ``answer_length``; then the judge's
``answerable``, ``supported``, ``negative_unanswered`` (bool), ``rating`` (int32) and
``judge_reasons`` (all empty when the run was not judged); then ``row_id``. Rows with an empty
context, question or response are dropped (the card says how many).

Argilla: fields ``context`` (Markdown), ``chat`` (the question as the user's message, the response
as the assistant's) and the retrieval/reranking texts the contract has; questions ``relevant``
(is the question relevant to, and answered by, the context?) and ``is_response_correct`` (yes/no),
the judge's ``answerable`` and ``supported`` as their suggestions; metadata ``topic``,
``difficulty``, ``answer_length``, ``source``, ``chunk_id`` (terms), ``context_length``,
``question_length``, ``response_length`` (characters), ``judge_rating`` and ``row_id`` (integers),
and ``negative_unanswered`` (terms yes/no) with hard negatives.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import datasets
from huggingface_hub import DatasetCardData

from agent.spec import DatasetSpec, RagShape
from agent.tools.cards import (
    AGENT,
    STR,
    card_markdown,
    cell,
    history_section,
    is_secret,
    method_and_quality,
    record_id,
    sort_by_row_id,
    table,
)
from agent.tools.cards import card_data as _card_data

if TYPE_CHECKING:
    import argilla as rg

_BOOL = datasets.Value("bool")
REQUIRED = ("context", "question", "response")
RETRIEVAL = ("positive_retrieval", "negative_retrieval")
RERANKING = ("positive_reranking", "negative_reranking")
PROVENANCE = ("chunk_id", "source", "topic", "difficulty", "answer_length")
JUDGE = ("answerable", "supported", "negative_unanswered", "rating", "judge_reasons")

# Every column the kind may write: name → (feature, description for the card).
COLUMNS: dict[str, tuple[Any, str]] = {
    "context": (STR, "The passage, verbatim: what a retriever should find for the question."),
    "question": (STR, "A question the passage answers."),
    "response": (STR, "The answer, grounded in the passage only."),
    "positive_retrieval": (STR, "Another query the passage answers (a retrieval positive)."),
    "negative_retrieval": (
        STR,
        "A close query the passage does NOT answer (a hard negative for retrieval).",
    ),
    "positive_reranking": (STR, "A passage relevant to the question (a reranking positive)."),
    "negative_reranking": (
        STR,
        "A similar-looking passage that does not answer the question (a reranking negative).",
    ),
    "chunk_id": (STR, "Id of the document chunk (or generated passage) the row is built on."),
    "source": (STR, "Where the passage comes from: the file, the seed dataset, or `generated`."),
    "topic": (STR, "Topic the question was asked to be about."),
    "difficulty": (STR, "How hard the question was asked to be."),
    "answer_length": (STR, "Length band the response was asked for."),
    "answerable": (_BOOL, "Judge: the passage answers the question (empty when not judged)."),
    "supported": (
        _BOOL,
        "Judge: the response is supported by the passage (empty when not judged).",
    ),
    "negative_unanswered": (
        _BOOL,
        "Judge: the passage indeed does not answer the close negative query (empty when there "
        "is none or the row was not judged).",
    ),
    "rating": (datasets.Value("int32"), "Judge model's overall rating, 1 (bad) to 5 (excellent)."),
    "judge_reasons": (STR, "The judge's reasons, written before its verdict."),
    "row_id": (datasets.Value("int64"), "Position of the row in the generation plan."),
}
TERMS = ("topic", "difficulty", "answer_length", "source", "chunk_id")


def _shape(spec: DatasetSpec) -> RagShape:
    return spec.rag or RagShape()


def optional_columns(spec: DatasetSpec) -> list[str]:
    """The retrieval / reranking columns the contract asks for, in column order."""
    rag = _shape(spec)
    out = ["positive_retrieval"] if rag.retrieval else []  # hard negatives imply retrieval
    out += ["negative_retrieval"] if rag.hard_negatives else []
    out += list(RERANKING) if rag.reranking else []
    return out


def columns(spec: DatasetSpec) -> list[str]:
    """Every column of an exported RAG dataset of this contract, in order."""
    return [*REQUIRED, *optional_columns(spec), *PROVENANCE, *JUDGE, "row_id"]


# --- data --------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _complete(row: Mapping[str, Any]) -> bool:
    return all(_text(row.get(k)) for k in REQUIRED)


def _value(name: str, value: Any, n: int) -> Any:
    """A row's value as its column stores it (None stays None)."""
    if value is None:
        return None
    feature = COLUMNS[name][0]
    try:
        if feature == _BOOL:
            if not isinstance(value, bool | int):
                raise TypeError
            return bool(value)
        if feature.dtype in ("int32", "int64"):
            if isinstance(value, bool):
                raise TypeError
            return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"Row {n}: {name!r} must be a {feature.dtype}, not {value!r}.") from None
    return str(value)


def build_dataset(spec: DatasetSpec, rows: Iterable[dict]) -> datasets.Dataset:
    """The rows with explicit features in `columns(spec)` order, in plan order; rows with an
    empty context, question or response are dropped (the count is in ``ds.info.description``,
    which the card quotes)."""
    names = columns(spec)
    cols: dict[str, list[Any]] = {k: [] for k in names}
    dropped = 0
    for n, row in enumerate(rows):
        if not _complete(row):
            dropped += 1
            continue
        for k in names:
            cols[k].append(_value(k, row.get(k), n))
    cols = sort_by_row_id(cols)
    note = (
        f"{dropped} row(s) with an empty context, question or response were dropped."
        if dropped
        else ""
    )
    features = datasets.Features({k: COLUMNS[k][0] for k in names})
    info = datasets.DatasetInfo(description=note, features=features)
    return datasets.Dataset.from_dict(cols, features=features, info=info)


# --- figures -----------------------------------------------------------------------------------


def _words(value: Any) -> int:
    return len(value.split()) if isinstance(value, str) else 0


def rag_figures(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The judge's and the shape's figures of RAG rows (raw, exported or read back), in one pass.

    Keys: ``rows``; ``unique_questions`` (after trimming and case-folding); ``chunks_used``
    (distinct ``chunk_id``, the context when a row has none); ``answerable_share``,
    ``supported_share``, ``negative_unanswered_share`` (share of True among the rows the judge
    answered, None when none) with ``answerable_judged``, ``supported_judged``,
    ``negative_unanswered_judged`` (how many it answered); ``mean_rating`` (None when unrated)
    with ``rated``; ``mean_question_words``, ``mean_response_words``, ``mean_context_words``
    (None for no rows)."""
    n = 0
    questions: set[str] = set()
    chunks: set[str] = set()
    yes: Counter[str] = Counter()
    judged: Counter[str] = Counter()
    ratings: list[int] = []
    words: Counter[str] = Counter()
    for row in rows:
        n += 1
        questions.add(" ".join(_text(row.get("question")).casefold().split()))
        chunk = row.get("chunk_id")
        chunks.add(f"id:{chunk}" if chunk not in (None, "") else f"text:{row.get('context')}")
        for k in ("answerable", "supported", "negative_unanswered"):
            v = row.get(k)
            if v is not None:
                judged[k] += 1
                yes[k] += bool(v)
        if row.get("rating") is not None:
            ratings.append(int(row["rating"]))
        for k in ("question", "response", "context"):
            words[k] += _words(row.get(k))
    out: dict[str, Any] = {
        "rows": n,
        "unique_questions": len(questions),
        "chunks_used": len(chunks),
    }
    for k in ("answerable", "supported", "negative_unanswered"):
        out[f"{k}_share"] = round(yes[k] / judged[k], 4) if judged[k] else None
        out[f"{k}_judged"] = judged[k]
    out["mean_rating"] = round(sum(ratings) / len(ratings), 3) if ratings else None
    out["rated"] = len(ratings)
    for k in ("question", "response", "context"):
        out[f"mean_{k}_words"] = round(words[k] / n, 1) if n else None
    return out


def _rows_of(ds: datasets.Dataset, names: Iterable[str], batch_size: int = 1_000) -> Iterator[dict]:
    """The dataset's rows (only `names`) as dicts, a batch at a time."""
    keep = [k for k in names if k in ds.column_names]
    for batch in ds.select_columns(keep).iter(batch_size=batch_size):
        size = len(next(iter(batch.values()))) if batch else 0
        for i in range(size):
            yield {k: batch[k][i] for k in keep}


def _pct(share: Any, count: Any, what: str) -> str:
    if share is None:
        return "—"
    return f"{float(share) * 100:.0f} % of {count} {what}"


# --- card --------------------------------------------------------------------------------------


def card_data(spec: DatasetSpec, ds: datasets.Dataset, license: str) -> DatasetCardData:
    """The card's metadata: question answering and retrieval (and sentence similarity when the
    dataset has retrieval or reranking pairs)."""
    pairs = any(k in ds.column_names for k in (*RETRIEVAL, *RERANKING))
    categories = [
        "question-answering",
        "text-retrieval",
        *(["sentence-similarity"] if pairs else []),
    ]
    rag = _shape(spec)
    tags = [
        "rag",
        *(["retrieval"] if rag.retrieval else []),
        *(["reranking"] if rag.reranking else []),
    ]
    return _card_data(spec, ds, license, task_categories=categories, tags=tags)


def _source_text(rag: RagShape) -> str:
    if rag.source == "description":
        return "written by the model from the description (no documents were attached)"
    if rag.source == "dataset":
        dataset = rag.seed_dataset or "?"
        if is_secret("", dataset):
            dataset = "a seed dataset"
        return f"the `{rag.seed_column}` column of `{dataset}`"
    return "the attached documents, cut into chunks"


def _snippets(spec: DatasetSpec, ds: datasets.Dataset) -> tuple[str, str]:
    """The sentence-transformers training snippet and the plain loading one."""
    name = spec.name
    triplets = "negative_retrieval" in ds.column_names
    triplet_code = (
        """
# or (context, positive_retrieval, negative_retrieval) triplets: a hard negative each
triplets = train.filter(lambda r: r["positive_retrieval"] and r["negative_retrieval"])
triplets = triplets.select_columns(["context", "positive_retrieval", "negative_retrieval"])
triplets = triplets.rename_columns(
    {"context": "anchor", "positive_retrieval": "positive", "negative_retrieval": "negative"}
)
"""
        if triplets
        else ""
    )
    train_code = f"""```python
# pip install "sentence-transformers[train]"
from datasets import load_dataset
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
from sentence_transformers.losses import MultipleNegativesRankingLoss

train = load_dataset("<user>/{name}")["train"]  # or the local folder path
# (anchor, positive) pairs: each question and the passage that answers it
pairs = train.select_columns(["question", "context"]).rename_columns(
    {{"question": "anchor", "context": "positive"}}
)
{triplet_code}
model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
trainer = SentenceTransformerTrainer(
    model=model, train_dataset=pairs, loss=MultipleNegativesRankingLoss(model)
)
trainer.train()
```"""
    load_code = f"""```python
from datasets import load_dataset

ds = load_dataset("<user>/{name}")  # or the local folder path
row = ds["train"][0]
print(row["question"], "→", row["response"])
```"""
    return train_code, load_code


def render_card(
    spec: DatasetSpec,
    ds: datasets.Dataset,
    *,
    model_info: dict[str, str],
    history: list[dict],
    metrics: dict[str, Any],
    license: str = "other",
) -> str:
    """The card for RAG rows: contract, method, provenance, the judge's figures, limits, columns,
    training and loading snippets."""
    rag = _shape(spec)
    n = ds.num_rows
    made, quality = method_and_quality(model_info, metrics)
    fig = rag_figures(_rows_of(ds, ("question", "response", "context", "chunk_id", *JUDGE)))
    # the rows' figures first; the run's metrics (same keys) fill the gaps
    for figure, count in (
        *(
            (f"{k}_share", f"{k}_judged")
            for k in ("answerable", "supported", "negative_unanswered")
        ),
        ("mean_rating", "rated"),
    ):
        if fig[figure] is None and isinstance(metrics.get(figure), int | float):
            fig[figure], fig[count] = metrics[figure], metrics.get(count, "?")
    judge_rows = [
        ("rows", fig["rows"]),
        ("unique questions", fig["unique_questions"]),
        ("passages (chunks) used", fig["chunks_used"]),
        (
            "answerable (the passage answers the question)",
            _pct(fig["answerable_share"], fig["answerable_judged"], "judged"),
        ),
        (
            "supported (the response keeps to the passage)",
            _pct(fig["supported_share"], fig["supported_judged"], "judged"),
        ),
    ]
    if rag.hard_negatives:
        judge_rows.append(
            (
                "hard negatives truly not answered by the passage",
                _pct(fig["negative_unanswered_share"], fig["negative_unanswered_judged"], "judged"),
            )
        )
    rating = fig["mean_rating"]
    judge_rows += [
        (
            "mean rating (1–5)",
            f"{cell(float(rating))} ({fig['rated']} rated)" if rating is not None else "—",
        ),
        (
            "mean words: question / response / context",
            " / ".join(
                "—" if fig[f"mean_{k}_words"] is None else cell(float(fig[f"mean_{k}_words"]))
                for k in ("question", "response", "context")
            ),
        ),
    ]
    judge_table = table(("figure", "value"), judge_rows)
    columns_table = table(
        ("column", "type", "description"),
        [(k, str(ds.features[k]), COLUMNS[k][1]) for k in ds.column_names if k in COLUMNS],
    )
    sources = (
        Counter(v for v in ds.data.column("source").to_pylist() if v)
        if "source" in ds.column_names
        else Counter()
    )
    shown = [(s, c) for s, c in sources.most_common(10) if not is_secret("", s)]
    source_table = table(("source", "rows"), shown) if shown else "No source was recorded."
    if len(sources) > len(shown):
        source_table += f"\n\n({len(sources) - len(shown)} more source(s) not listed.)"
    pairs = [
        *(["`positive_retrieval` (another query the passage answers)"] if rag.retrieval else []),
        *(
            ["`negative_retrieval` (a close query it does not answer)"]
            if rag.hard_negatives
            else []
        ),
        *(
            [
                "`positive_reranking` / `negative_reranking` (a relevant and a similar but irrelevant passage)"
            ]
            if rag.reranking
            else []
        ),
    ]
    limits = [
        "- Questions, responses and any extra queries or passages were written by an LLM: they may "
        "be closer to the passage's wording than real users' queries, and may be wrong or inherit "
        "the model's biases. Check them before training anything that matters.",
        "- The judge's verdicts are another model's opinion, not human review; rows where "
        "`answerable` or `supported` is false are worth a look (or leaving out).",
    ]
    if rag.source == "description":
        limits.append(
            "- The passages themselves were written by the model, not taken from real documents."
        )
    if rag.hard_negatives:
        limits.append(
            "- A hard negative may still be answerable from the passage; `negative_unanswered` "
            "says what the judge found."
        )
    if ds.info.description:
        limits.append(f"- {ds.info.description}")
    train_code, load_code = _snippets(spec, ds)
    extras = ", and the extra queries or passages above" if pairs else ""
    if fig["answerable_judged"] or fig["supported_judged"] or fig["rated"]:
        negatives = (
            ", whether each hard negative is indeed unanswered" if rag.hard_negatives else ""
        )
        judging = (
            "A judge model then checked whether the passage answers the question and the response "
            f"keeps to it{negatives}, and rated the row from 1 to 5 (reasons first)."
        )
    else:
        judging = "No judge model checked these rows."
    topics = ", ".join(spec.style.topics) or "—"
    text = f"""
# {spec.name}

A synthetic retrieval-augmented generation (RAG) dataset in {spec.language} with {n:,} rows: each a
passage (`context`), a question it answers and a grounded `response`, made by dataset-agent from an
approved contract (v{spec.version}).

## What it is for

{spec.description}

## The contract

- passages: {_source_text(rag)}
- questions: {rag.difficulty} difficulty; topics: {topics}
- responses: {rag.answer_length} (grounded in the passage only)
- extra columns: {"; ".join(pairs) or "none"}

## How it was made

For each row a passage was taken (or written), then an LLM wrote a question the passage answers and
the response from the passage alone{extras}; rows whose question or response did not hold up were
written again. {judging}

{made}

The contract went through {len(history) or 1} version(s); it is in `spec.json`.

{history_section(history)}

## Provenance

Every row names the passage it was built on: `chunk_id` (the chunk of the document, or
`gen-<row>` for a passage the model wrote) and `source` (the file or dataset it came from).

{source_table}

## The judge's figures

{judge_table}

## Quality

{quality}

## Known limits

{chr(10).join(limits)}

## Columns

{columns_table}

## Training an embedding model (sentence-transformers)

The column order is what sentence-transformers reads: anchor, positive(, negative).

{train_code}

## Loading

{load_code}
"""
    return card_markdown(card_data(spec, ds, license), text)


# --- Argilla -------------------------------------------------------------------------------------


def _yes_no(value: Any) -> str | None:
    return None if value is None else ("yes" if value else "no")


def argilla_settings(spec: DatasetSpec) -> rg.Settings:
    """Argilla settings for RAG rows (see the module docstring)."""
    import argilla as rg  # the SDK is only needed when pushing

    rag = _shape(spec)
    extra = optional_columns(spec)
    guidelines = (
        f"{spec.description}\n\n"
        "Each record is a passage (**context**) and a question with its answer (**chat**).\n\n"
        "- **relevant**: is the question relevant to the passage, and does the passage answer it?\n"
        "- **is_response_correct**: is the response correct and supported by the passage alone?\n"
        + (
            "\nBelow the chat: another query the passage answers"
            + (
                " and, as a hard negative, a close query it does not answer"
                if rag.hard_negatives
                else ""
            )
            + ".\n"
            if rag.retrieval
            else ""
        )
        + (
            "\nThe reranking passages are one relevant to the question and one similar but "
            "irrelevant.\n"
            if rag.reranking
            else ""
        )
        + "\nThe suggestions are a judge model's verdicts."
    )
    titles = {
        "positive_retrieval": "Positive retrieval query",
        "negative_retrieval": "Negative (hard) retrieval query",
        "positive_reranking": "Positive reranking passage",
        "negative_reranking": "Negative reranking passage",
    }
    metadata: list[Any] = [
        *(rg.TermsMetadataProperty(name=k, title=k.replace("_", " ").capitalize()) for k in TERMS),
        rg.IntegerMetadataProperty(name="context_length", title="Context length (characters)"),
        rg.IntegerMetadataProperty(name="question_length", title="Question length (characters)"),
        rg.IntegerMetadataProperty(name="response_length", title="Response length (characters)"),
        rg.IntegerMetadataProperty(name="judge_rating", title="Judge rating"),
    ]
    if rag.hard_negatives:
        metadata.append(
            rg.TermsMetadataProperty(
                name="negative_unanswered",
                options=["yes", "no"],
                title="Judge: negative unanswered",
            )
        )
    metadata.append(rg.IntegerMetadataProperty(name="row_id", title="Row id"))
    return rg.Settings(
        guidelines=guidelines,
        fields=[
            rg.TextField(name="context", title="Context", use_markdown=True),
            rg.ChatField(name="chat", title="Question and response"),
            *(
                rg.TextField(name=k, title=titles[k], use_markdown=True, required=False)
                for k in extra
            ),
        ],
        questions=[
            rg.LabelQuestion(
                name="relevant",
                labels=["yes", "no"],
                title="Is the question relevant to the context?",
                description="Yes when the passage answers the question.",
            ),
            rg.LabelQuestion(
                name="is_response_correct",
                labels=["yes", "no"],
                title="Is the response correct?",
                description="Yes when the response is right and supported by the passage alone.",
            ),
        ],
        metadata=metadata,
    )


def argilla_record(
    spec: DatasetSpec, row: dict, dataset_name: str, position: int
) -> rg.Record | None:
    """One row as an Argilla record, the judge's verdicts as suggestions; None for a row with an
    empty context, question or response."""
    import argilla as rg

    if not _complete(row):
        return None
    context, question, response = (str(row[k]) for k in REQUIRED)
    fields: dict[str, Any] = {
        "context": context,
        "chat": [
            {"role": "user", "content": question},
            {"role": "assistant", "content": response},
        ],
    }
    fields |= {k: str(row[k]) for k in optional_columns(spec) if _text(row.get(k))}
    metadata: dict[str, Any] = {k: str(row[k]) for k in TERMS if row.get(k) not in (None, "")}
    metadata |= {
        "context_length": len(context),
        "question_length": len(question),
        "response_length": len(response),
    }
    if row.get("rating") is not None:
        metadata["judge_rating"] = int(row["rating"])
    if _shape(spec).hard_negatives and row.get("negative_unanswered") is not None:
        metadata["negative_unanswered"] = _yes_no(row["negative_unanswered"])
    if row.get("row_id") is not None:
        metadata["row_id"] = int(row["row_id"])
    suggestions = [
        rg.Suggestion(question_name=question_name, value=_yes_no(row[key]), agent=AGENT)
        for key, question_name in (("answerable", "relevant"), ("supported", "is_response_correct"))
        if row.get(key) is not None
    ]
    return rg.Record(
        id=record_id(dataset_name, row, position),
        fields=fields,
        metadata=metadata,
        suggestions=suggestions,
    )
