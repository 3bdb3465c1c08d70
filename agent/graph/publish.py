"""Publishing: nothing leaves the machine without an explicit confirmation of that exact target.

review_publish (interrupt) → interpret → prepare_publish → confirm_publish (interrupt) → publish.
The only edge into `publish` is a confirmation given at `confirm_publish` for the target shown there;
what a description, a refinement or a document says cannot reach it. Tokens come from the runtime
context (memory only), never from the checkpointed state.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.runtime import Runtime
from langgraph.types import Command, interrupt

from agent.config import get_settings
from agent.context import Context
from agent.graph.reply_check import check_reply
from agent.graph.state import State
from agent.i18n import _
from agent.spec import DatasetSpec
from agent.tools import hub
from agent.tools.argilla import ArgillaPushError, push_to_argilla, validate_dataset_name
from agent.tools.runs import read_rows

HUB_RE = re.compile(
    r"\b(?:hub|hugging ?face)\b.*?(?<!\S)([^\s,;]+/[^\s,;]+)|(?<!\S)([^\s,;]+/[^\s,;]+).*?\b(?:hub|hugging ?face)\b",
    re.I,
)
ARGILLA_RE = re.compile(r"\bargilla\b", re.I)
YES = re.compile(
    r"^\s*(yes|y|ok|okay|confirm(ed)?|go|do it|push it|send it|approve[d]?|da|oui|sí|si|ja)\W*$",
    re.I,
)


def parse_target(text: str) -> dict[str, Any] | None:
    """A publish target from plain words, e.g. "push it to the hub as my-org/reviews, private"."""
    m = HUB_RE.search(text)
    if m:
        repo = (m.group(1) or m.group(2)).rstrip(".,;")
        private = not re.search(r"\bpublic(ly)?\b", text, re.I)
        return {"target": "hub", "repo_id": repo, "private": private}
    if ARGILLA_RE.search(text):
        name = re.search(r"\b(?:as|named|called)\s+([^\s,;]+)", text, re.I)
        # the whole word as typed (checked later), less a sentence's closing punctuation
        raw = re.sub(r"(?<=[A-Za-z0-9])[.,;!]$", "", name.group(1)) if name else None
        return {"target": "argilla", "dataset_name": raw}
    return None


def _argilla_key(ctx: Context) -> str | None:
    secret = get_settings().argilla_api_key
    return ctx.argilla_api_key or (secret.get_secret_value() if secret else None)


def _say(text: str, **kw: Any) -> AIMessage:
    return AIMessage(content=text, additional_kwargs=kw)


def _columns(folder: Path) -> tuple[int, list[str]]:
    import pyarrow.parquet as pq

    files = sorted((folder / "data").glob("*.parquet"))
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    cols = pq.ParquetFile(files[0]).schema_arrow.names if files else []
    return rows, cols


async def review_publish(state: State) -> Command[Literal["interpret"]]:
    value = interrupt({"kind": "review", "stage": "publish", "export_dir": state.get("export_dir")})
    return Command(goto="interpret", update={"reply": check_reply(value), "stage": "publish"})


async def prepare_publish(
    state: State, runtime: Runtime[Context]
) -> Command[Literal["confirm_publish", "review_publish"]]:
    """Check the target and spell out exactly what would go where."""
    target = dict(state.get("publish_target") or {})
    folder = Path(state.get("export_dir") or "")
    rows, cols = _columns(folder)
    spec_name = (state.get("spec") or {}).get("name", folder.name)
    ctx = runtime.context or Context()
    if target.get("target") == "hub":
        try:
            repo_id = hub.validate_repo_id(str(target.get("repo_id") or ""))
        except hub.PublishError as exc:
            return Command(goto="review_publish", update={"messages": [_say(_nothing_sent(exc))]})
        token = hub.resolve_token(ctx.hf_token, None, get_settings())
        if token is None:
            msg = _(
                "To push to the Hub I need a Hugging Face token with write access: paste it in "
                "the chat settings (⚙) or set HF_TOKEN, then ask again. Nothing was sent."
            )
            return Command(goto="review_publish", update={"messages": [_say(msg)]})
        target |= {"repo_id": repo_id}
        what = (
            _("the Hugging Face Hub as **{repo}** (private)", repo=repo_id)
            if target.get("private", True)
            else _("the Hugging Face Hub as **{repo}** (public)", repo=repo_id)
        )
        extra = ""
    else:
        url = ctx.argilla_api_url or get_settings().argilla_api_url
        key = _argilla_key(ctx)
        if not url or not key:
            msg = _(
                "To send to Argilla I need its URL and API key: set them in the chat settings (⚙) "
                "or ARGILLA_API_URL / ARGILLA_API_KEY. Nothing was sent."
            )
            return Command(goto="review_publish", update={"messages": [_say(msg)]})
        try:
            target["dataset_name"] = validate_dataset_name(
                str(target.get("dataset_name") or spec_name)
            )
        except ArgillaPushError as exc:
            return Command(goto="review_publish", update={"messages": [_say(_nothing_sent(exc))]})
        target["workspace"] = ctx.argilla_workspace or get_settings().argilla_workspace
        what = _(
            "Argilla at {url} as dataset **{name}** (workspace {workspace})",
            url=url,
            name=target["dataset_name"],
            workspace=target["workspace"] or _("your default"),
        )
        extra = ""
    text = (
        _(
            "Please confirm: I will upload `{folder}` — {rows:,} rows, columns {columns} — to {what}.",
            folder=folder.name,
            rows=rows,
            columns=", ".join(cols),
            what=what,
        )
        + extra
    )
    return Command(
        goto="confirm_publish",
        update={"publish_target": target, "messages": [_say(text, kind="confirm_publish")]},
    )


async def confirm_publish(
    state: State,
) -> Command[Literal["publish", "review_publish", "confirm_publish"]]:
    target = state.get("publish_target") or {}
    value = interrupt({"kind": "confirm", "stage": "confirm_publish", "target": target})
    said: list[Any] = []
    if isinstance(value, dict) and "action" in value:
        action = value["action"]
        # A button confirms exactly the target it was shown with; one without that fingerprint (a
        # stale button of another step, a crafted payload) confirms nothing.
        if value.get("target") != fingerprint(target) or value.get("stage") not in (
            None,
            "confirm_publish",
        ):
            action = "stale"
    elif isinstance(value, str):
        said.append(HumanMessage(content=value))
        low = value.lower()
        action = (
            "replace"
            if re.search(r"\breplace\b", low)
            else "add_config"
            if re.search(r"\b(add|new config|beside)\b", low)
            else "approve"
            if YES.match(value)
            else "no"
        )
    else:  # not text, not a button: nothing to confirm (raising would fail again on every Retry)
        action = "no"
    if action == "approve" and target.get("exists"):
        msg = _say(
            _("That repo exists — say **replace** or **add** (as a new config). Nothing was sent.")
        )
        return Command(goto="review_publish", update={"messages": [*said, msg]})
    if action in ("approve", "replace", "add_config"):
        mode = {"approve": "new", "replace": "replace", "add_config": "add_config"}[action]
        return Command(
            goto="publish", update={"publish_target": target | {"mode": mode}, "messages": said}
        )
    why = (
        _("That confirmation was for an earlier target (or for another step).")
        if action == "stale"
        else _("Not confirmed.")
    )
    return Command(goto="review_publish", update={"messages": [*said, _say(_nothing_sent(why))]})


def _nothing_sent(why: object) -> str:
    return f"{why} " + _("Nothing was sent.")


def fingerprint(target: dict[str, Any]) -> str:
    keys = ("target", "repo_id", "private", "dataset_name", "workspace")
    return json.dumps({k: target.get(k) for k in keys}, sort_keys=True)


async def publish(
    state: State, runtime: Runtime[Context]
) -> Command[Literal["review_publish", "confirm_publish"]]:
    target = state.get("publish_target") or {}
    folder = Path(state.get("export_dir") or "")
    ctx = runtime.context or Context()
    settings = get_settings()
    try:
        if target.get("target") == "hub":
            token = hub.resolve_token(ctx.hf_token, None, settings)
            if target.get("mode") == "new" and hub.repo_exists(target["repo_id"], token):
                msg = _say(
                    f"**{target['repo_id']}** already exists on the Hub: **replace** its data, or **add** this "
                    "dataset beside it as a new config? Nothing was sent yet.",
                    kind="confirm_publish",
                )
                return Command(
                    goto="confirm_publish",
                    update={"messages": [msg], "publish_target": target | {"exists": True}},
                )
            config = (
                (state.get("spec") or {}).get("name")
                if target.get("mode") == "add_config"
                else None
            )
            url = hub.push_folder(
                folder,
                target["repo_id"],
                private=bool(target.get("private", True)),
                token=token,
                mode=target.get("mode", "new"),
                config_name=config,
            )
        else:
            key = _argilla_key(ctx)
            url = push_to_argilla(
                DatasetSpec.model_validate(state["spec"]),
                read_rows(Path(state.get("run_dir") or "")),
                api_url=str(ctx.argilla_api_url or settings.argilla_api_url),
                api_key=str(key),
                workspace=target.get("workspace"),
                dataset_name=target["dataset_name"],
            )
    except hub.PublishError as exc:
        failed = _say(
            f"{exc} "
            + _("The local folder `{folder}` is untouched; ask again to retry.", folder=folder)
        )
        return Command(goto="review_publish", update={"messages": [failed], "publish_target": None})
    published = [*(state.get("published") or []), {"target": target.get("target"), "url": url}]
    msg = _say(
        _("Published: {url}", url=url)
        + "\n\n"
        + _("Anything else? Push somewhere else, or say “done”."),
        kind="published",
        url=url,
    )
    return Command(
        goto="review_publish",
        update={"messages": [msg], "published": published, "publish_target": None},
    )
