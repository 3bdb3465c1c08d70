"""Headless runs: the same graph as the chat, with approvals answered automatically (`--yes`).

    python -m agent generate --description "customer reviews for a shop" --rows 200 --yes
    python -m agent generate --spec data/datasets/x/spec.json --yes
    python -m agent generate --resume data/runs/<thread>/full-v1-n500 --yes
    python -m agent generate -d "shop reviews" --say "make it more negative reviews" --yes
    python -m agent generate -d "questions on our FAQ" --task rag --documents faq.md --yes
    python -m agent generate -d "support Q&A" --task rag --seed-dataset owner/name \
        --seed-column text --yes

`--task` and `--rows` are final: they go into the state as `locked`, which a model's reading of
the conversation never overrides. `--documents` and `--seed-dataset`/`--seed-column` fill the
conversation's documents store (the passages grounded tasks use) before the graph runs, and are
locked too (`documents`, `seed_dataset`, `seed_column`), so the contract records where the
passages come from. Each `--say` is said once, in order, at the sample review (as a
person would type it) before the full run; a one-line summary per `--say` goes to stderr.

Progress goes to stderr (with the run folder, which `--resume` finishes after a stop or a crash);
the output folder is the last line of stdout; failures exit non-zero
with a one-line reason.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from agent import tasks
from agent.config import get_settings
from agent.context import Context
from agent.llm import LLMError, get_chat_models, resolve_provider
from agent.paths import thread_root
from agent.serve import ServeError, serve
from agent.session import Conversation, open_graph
from agent.spec import SpecError, make_spec
from agent.tools.documents import DocumentError, add_documents, load_chunks
from agent.tools.export import export_dataset
from agent.tools.generate import load_run, read_rows, run_generation
from agent.tools.sources import seed_chunks, store_chunks

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Build synthetic datasets.")
err = Console(stderr=True, soft_wrap=True)


class CliFailure(Exception):
    pass


def _bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )


def _is_cli_process() -> bool:
    """This process is the CLI itself (`python -m agent`, `dataset-agent`), not a test's runner."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return getattr(spec, "name", None) == "agent.__main__" or Path(sys.argv[0]).stem == (
        "dataset-agent"
    )


def _exit_now() -> None:
    """End a finished CLI process at once. The rows and the export are written and closed; what
    is left is the interpreter tearing down ~2,700 modules (0.7–1 s measured here), which the user
    would wait for. Exit handlers still run (logging, Ray's shutdown); output is flushed."""
    if not _is_cli_process():
        return
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _describe(p: dict[str, Any]) -> str:
    if p.get("waiting"):
        return f"paused · {p['waiting']}"
    return (
        f"generating · {p['rows_per_min']:.0f} rows/min · dup {p['duplicates']} · "
        f"retries {p['retries']} · in flight {p.get('in_flight', 0)}/{p.get('concurrency', 0):.0f}"
    )


def _announce(run_dir: str) -> None:
    err.print(
        f"run folder: {run_dir} (finish it with --resume {run_dir})", markup=False, soft_wrap=True
    )


def _answer(
    prompt: dict[str, Any],
    rows: int | None,
    yes: bool,
    state: dict[str, Any],
    says: list[str] | None = None,
) -> Any:
    """The reply to a prompt: the next `--say` at the sample review (taken off `says`, so each is
    said once), else an approval (asked for in a terminal without --yes)."""
    stage = prompt.get("stage")
    if stage == "clarify":
        return "just go"
    if stage == "publish":  # `python -m agent push` publishes, after its own confirmation
        return {"action": "done"}
    if stage == "sample" and says:
        return says.pop(0)
    if not yes:
        if not sys.stdin.isatty():
            raise CliFailure("approvals need --yes when not run in a terminal")
        question = {
            "contract": "Approve this contract?",
            "sample": "Generate the full dataset?",
            "dataset": "Export it?",
        }
        if not typer.confirm(question.get(str(stage), "Continue?"), default=True, err=True):
            return {"action": "cancel"}
    if stage == "sample" and rows is not None and rows != state["spec"]["size"]:
        return {"action": "generate", "rows": rows}
    return {"action": "approve"}


def _first_message(
    description: str | None,
    spec_path: Path | None,
    out: Path | None,
    task: str | None = None,
    rows: int | None = None,
    *,
    choices: dict[str, Any] | None = None,
) -> tuple[str, dict[str, Any]]:
    """The opening message and the initial state: a description, or a saved contract.

    `--task` and `--rows` are the user's explicit choices: they go into `locked`, which the graph
    never lets a model's reading override (a clarify answer saying "chat" does not turn a
    `--task textcat` run into chat data; the first contract already has the size). `choices`
    are the others (`documents`, `seed_dataset`, `seed_column`), locked the same way."""
    extra: dict[str, Any] = {}
    if out is not None:
        extra["out_dir"] = str(out.resolve())
    locked: dict[str, Any] = {}
    if task is not None:
        locked["task"] = extra["task"] = task
    if rows is not None:
        locked["size"] = rows
    locked |= choices or {}
    if locked:
        extra["locked"] = locked
    if spec_path is not None:
        try:
            spec = make_spec(json.loads(spec_path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as exc:
            raise CliFailure(f"cannot read {spec_path}: {exc}") from exc
        except SpecError as exc:
            raise CliFailure(f"{spec_path} is not a valid contract: {exc}") from exc
        if task is not None and task != spec.task:
            raise CliFailure(
                f"--task {task} contradicts {spec_path.name}, whose task is {spec.task}"
            )
        extra |= {
            "spec": spec.model_dump(),
            "history": [{"version": spec.version, "diff": ["loaded from file"]}],
        }
        return f"Re-run the contract in {spec_path.name}.", extra
    if description:
        return description, extra
    raise CliFailure("give --description TEXT or --spec FILE")


def _summary(said: str, before: dict[str, Any], after: dict[str, Any], replies: list[str]) -> str:
    """One line saying what a `--say` did: the version change, or why nothing changed."""
    v1, v2 = (before.get("spec") or {}).get("version"), (after.get("spec") or {}).get("version")
    first = next((ln.strip() for r in replies for ln in r.splitlines() if ln.strip()), "no reply")
    if v1 != v2:
        return f'say "{said}": v{v1} → v{v2}'
    if before.get("stage") != after.get("stage"):
        return f'say "{said}": moved on to {after.get("stage")} ({first})'
    return f'say "{said}": no change ({first})'


async def _generate(
    text: str,
    extra: dict[str, Any],
    rows: int | None,
    yes: bool,
    says: list[str] | None = None,
    context: Context | None = None,
    thread_id: str | None = None,
) -> Path:
    pending = list(says or [])  # popped as said: each --say is said at most once
    async with open_graph() as graph:
        conv = Conversation(graph, thread_id or _new_thread())
        if context is not None:
            conv.context = context
        value: Any = text
        first = True
        state: dict[str, Any] = {}
        saying: str | None = None  # the --say being sent, for its summary line
        with _bar() as bar:
            task = None
            while True:
                prompt = None
                before = state
                replies: list[str] = []
                events = conv.send(value, extra=extra) if first else conv.send(value)
                first = False
                async for ev in events:
                    if ev.kind == "error":
                        raise CliFailure(ev.text)
                    if ev.kind == "progress":
                        if task is None:
                            task = bar.add_task("generating", total=ev.data["total"])
                            if ev.data.get("run_dir"):
                                _announce(ev.data["run_dir"])
                        bar.update(task, completed=ev.data["done"], description=_describe(ev.data))
                    elif ev.kind == "message":
                        err.print(ev.full, markup=False, highlight=False)
                        replies.append(ev.text)
                    elif ev.kind == "prompt":
                        prompt = ev.data
                state = (await conv.state()).values
                if saying is not None:
                    err.print(
                        _summary(saying, before, state, replies), markup=False, highlight=False
                    )
                if prompt is None:
                    break
                left = len(pending)
                value = _answer(prompt, rows, yes, state, pending)
                saying = value if len(pending) < left else None
        for unsaid in pending:  # the conversation never came back to a sample review
            err.print(
                f'say "{unsaid}": not said (the conversation ended at {state.get("stage")})',
                markup=False,
                highlight=False,
            )
        if state.get("stage") == "cancelled":
            raise CliFailure("cancelled")
        if not state.get("export_dir"):
            raise CliFailure("the run ended without an export")
        return Path(state["export_dir"])


def _new_thread() -> str:
    return f"cli-{uuid.uuid4().hex[:12]}"


def _read_documents(paths: list[Path]) -> list[tuple[str, bytes]]:
    files = []
    for path in paths:
        try:
            files.append((path.name, path.read_bytes()))
        except OSError as exc:
            raise CliFailure(f"cannot read {path}: {exc.strerror or exc}") from exc
    return files


def _fill_store(
    store: Path,
    documents: list[Path],
    seed_dataset: str | None,
    seed_column: str | None,
) -> None:
    """Put the attached documents and the seed dataset's passages in the conversation's
    documents store (where the graph reads the chunks), saying one line for each and each
    problem; nothing usable from what was given is a failure."""
    if documents:
        added, notes = add_documents(store, _read_documents(documents))
        for note in notes:
            err.print(f"note: {note}", markup=False, highlight=False)
        if not added:
            raise CliFailure("no usable text in the documents given with --documents")
        names = ", ".join(dict.fromkeys(c["source"] for c in load_chunks(store)))
        err.print(
            f"added {added} chunk{'s' if added != 1 else ''} from {names}",
            markup=False,
            highlight=False,
        )
    if seed_dataset and seed_column:
        try:
            chunks = seed_chunks(seed_dataset, seed_column)
        except DocumentError as exc:
            raise CliFailure(str(exc)) from None
        added = store_chunks(store, chunks)
        err.print(
            f"added {added} chunk{'s' if added != 1 else ''} from column “{seed_column}” "
            f"of {seed_dataset}",
            markup=False,
            highlight=False,
        )


async def _resume(run_dir: Path, out: Path | None, context: Context) -> Path:
    """Finish an interrupted run from its folder (same engine), then export it."""
    settings = context.settings or get_settings()
    meta = load_run(run_dir)
    if not meta.get("spec") or meta.get("task") not in tasks.TASKS:
        raise CliFailure(f"{run_dir} is not a run folder (no readable run.json)")
    try:
        spec = make_spec(meta["spec"])
    except SpecError as exc:
        raise CliFailure(f"{run_dir}/run.json holds an invalid contract: {exc}") from exc
    _announce(str(run_dir))
    with _bar() as bar:
        task = bar.add_task("generating", total=int(meta["n"]))

        def show(p: dict[str, Any]) -> None:
            bar.update(task, completed=p["done"], description=_describe(p))

        result = await run_generation(
            spec,
            int(meta["n"]),
            run_dir,
            generator=get_chat_models("generate", context=context),
            judge=get_chat_models("judge", context=context) if settings.judge_full_run else None,
            concurrency=settings.max_concurrency,
            start=settings.concurrency,
            engine=settings.engine,
            seed=int(meta.get("seed", 0)),
            on_progress=show,
            chunks=(
                load_chunks(run_dir.parent / "documents")
                if tasks.kind(spec).uses_chunks(spec)
                else None
            ),
        )
    if result.reason:
        err.print(f"warning: {result.reason}", markup=False)
    model = get_chat_models("generate", context=context)[0]
    name = getattr(model, "model", None) or getattr(model, "model_name", None)
    return export_dataset(
        spec,
        read_rows(run_dir),
        out or settings.datasets_dir / spec.name,
        model_info={"model": str(name or type(model).__name__), "backend": type(model).__name__},
        history=[{"version": spec.version, "diff": [f"resumed from {run_dir.name}"]}],
        metrics={k: result.progress[k] for k in ("duplicates", "retries", "failed", "agreement")},
    )


def _either(names: list[str]) -> str:
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else "".join(names)


def _spec_seed(extra: dict[str, Any]) -> tuple[str | None, str | None]:
    """A saved rag contract whose passages come from a dataset names it: re-running it reads the
    same passages (the first state's `spec`, from `--spec`)."""
    rag = (extra.get("spec") or {}).get("rag") or {}
    if rag.get("source") == "dataset" and rag.get("seed_dataset") and rag.get("seed_column"):
        return str(rag["seed_dataset"]), str(rag["seed_column"])
    return None, None


@app.command()
def generate(
    description: str = typer.Option(None, "--description", "-d", help="What the dataset is for."),
    spec: Path = typer.Option(None, "--spec", help="Re-run an approved contract (spec.json)."),
    task: str = typer.Option(
        None,
        "--task",
        help="textcat (labelled texts), chat (SFT conversations) or rag (passage, question, "
        "answer); final when given (default: the conversation decides).",
    ),
    rows: int = typer.Option(None, "--rows", "-n", help="Number of rows of the full dataset."),
    out: Path = typer.Option(
        None, "--out", "-o", help="Output folder (default: <data dir>/datasets/<name>)."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Approve every step automatically."),
    provider: str = typer.Option(None, "--provider", help="auto | ollama | openai | local"),
    concurrency: int = typer.Option(
        None,
        "--concurrency",
        help="The most requests in flight (the adaptive level stays at or below it).",
    ),
    endpoints: str = typer.Option(
        None, "--endpoints", help="Several servers of the provider: URL[,URL…], shared by load."
    ),
    resume: Path = typer.Option(
        None, "--resume", help="Finish an interrupted run from its folder, then export it."
    ),
    engine: str = typer.Option(
        None,
        "--engine",
        help="local (this process; default ENGINE) or ray: the full run in shards on a Ray "
        "cluster (RAY_ADDRESS, else a local Ray), one worker per endpoint.",
    ),
    say: list[str] = typer.Option(
        None,
        "--say",
        help="Said at the sample review before the full run, as a person would type it "
        "(repeatable, in order; each said once).",
    ),
    documents: list[Path] = typer.Option(
        None,
        "--documents",
        help="A .txt, .md or .pdf file whose text grounds the data (chat or rag; repeatable).",
    ),
    seed_dataset: str = typer.Option(
        None,
        "--seed-dataset",
        help="Passages from a dataset: a Parquet/CSV/JSONL file or folder, or a Hugging Face "
        "Hub id (owner/name[:config]); needs --seed-column.",
    ),
    seed_column: str = typer.Option(
        None, "--seed-column", help="The seed dataset's text column (with --seed-dataset)."
    ),
) -> None:
    """Generate a dataset from a description or a saved contract."""
    try:
        if task is not None and task not in tasks.TASKS:
            raise CliFailure(f"unknown task “{task}”: use {_either(list(tasks.TASKS))}")
        docs = list(documents or [])
        if (seed_dataset is None) != (seed_column is None):
            raise CliFailure("--seed-dataset and --seed-column go together: give both")
        if seed_dataset is not None and not (seed_dataset.strip() and seed_column.strip()):
            raise CliFailure("--seed-dataset and --seed-column need a value")
        if resume is not None and (docs or seed_dataset is not None):
            raise CliFailure(
                "--documents and --seed-dataset are for a new conversation; "
                "--resume finishes a run with the passages it started with"
            )
        says = list(say or [])
        if any(not s.strip() for s in says):
            raise CliFailure("--say needs some text")
        if says and resume is not None:
            raise CliFailure("--say is for a new conversation; --resume finishes a run as it is")
        # The overrides go in this run's own copy of the settings, handed to the graph as the
        # session's context: the cached `get_settings()` object stays as the environment says.
        overrides: dict[str, Any] = {}
        if provider:
            if provider not in ("auto", "ollama", "openai", "local"):
                raise CliFailure(
                    f"unknown provider “{provider}”: use auto, ollama, openai or local"
                )
            overrides["llm_provider"] = provider
        if concurrency is not None:
            if concurrency < 1:
                raise CliFailure("--concurrency must be at least 1")
            # the user's level is where the run starts, not only its ceiling: the adaptive limit
            # backs off from there on errors or climbing latency
            overrides["max_concurrency"] = overrides["concurrency"] = concurrency
        if engine is not None:
            if engine not in ("local", "ray"):
                raise CliFailure(f"unknown engine “{engine}”: use local or ray")
            overrides["engine"] = engine
        if endpoints:
            overrides["endpoints"] = get_settings()._split_endpoints(endpoints)
        settings = get_settings().model_copy(update=overrides)
        if rows is not None and not 1 <= rows <= settings.max_rows:
            raise CliFailure(f"--rows must be between 1 and {settings.max_rows:,}")
        chosen, notice = resolve_provider(settings)
        context = Context(provider=chosen, settings=settings)
        if notice:
            err.print(notice, markup=False)
        if resume is not None:
            folder = asyncio.run(_resume(resume, out.resolve() if out else None, context))
        else:
            choices: dict[str, Any] = {}
            if docs:
                choices["documents"] = True
            if seed_dataset is not None:
                choices |= {"seed_dataset": seed_dataset.strip(), "seed_column": seed_column}
            text, extra = _first_message(description, spec, out, task, rows, choices=choices)
            seed = (seed_dataset, seed_column) if seed_dataset is not None else _spec_seed(extra)
            thread_id = _new_thread()
            if docs or seed[0]:
                _fill_store(thread_root(thread_id) / "documents", docs, *seed)
            folder = asyncio.run(_generate(text, extra, rows, yes, says, context, thread_id))
    except (CliFailure, LLMError) as exc:  # LLMError: a run stopped (disk full, server gone)
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err.print(
            "error: interrupted; rows written so far are kept in the run folder", markup=False
        )
        raise typer.Exit(130) from None
    typer.echo(str(folder))
    _exit_now()


@app.command("serve")
def serve_command(
    host: str = typer.Option(
        "127.0.0.1",
        "--host",
        envvar="CHAINLIT_HOST",
        help="Address to listen on (0.0.0.0 opens it to the network: sign-in is required then).",
    ),
    port: int = typer.Option(8000, "--port", "-p", envvar="CHAINLIT_PORT", help="Port."),
    open_browser: bool = typer.Option(False, "--open", help="Open the app in the browser."),
) -> None:
    """Start the chat app in the browser (what run.sh / run.bat do once installed)."""
    try:
        serve(host, port, open_browser=open_browser)
    except ServeError as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo("dataset-agent 0.1.0")


from agent.push_cli import push  # noqa: E402  (the sub-commands live in their own modules)
from agent.report import report  # noqa: E402

app.command("report")(report)
app.command("push")(push)

from agent.user_cli import user_app  # noqa: E402

app.add_typer(user_app, name="user")
