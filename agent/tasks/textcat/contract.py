"""The first text-classification contract from a model's proposal, repaired where models err."""

from __future__ import annotations

from agent.i18n import _
from agent.languages import normalise_language
from agent.spec import MAX_LABELS, DatasetSpec, Label, SpecError, Style, make_spec


def proposal_to_spec(
    *,
    description: str,
    name: str,
    labels: list[Label],
    multi_label: bool,
    language: str,
    size: int,
    style: Style,
    max_rows: int,
) -> tuple[DatasetSpec, list[str]]:
    """Build a first contract from a model's proposal, repairing what a model gets wrong.

    Returns the spec and notes about what was repaired (duplicate or empty labels, size out of range),
    so the chat can say so rather than hide it.
    """
    notes: list[str] = []
    seen: set[str] = set()
    kept: list[Label] = []
    for label in labels:
        if not label.name:
            notes.append(_("dropped a label with an empty name"))
            continue
        if label.name in seen:
            notes.append(_("merged the repeated label “{name}”", name=label.name))
            continue
        seen.add(label.name)
        kept.append(label)
    if len(kept) < 2:
        raise SpecError(_("The proposal had fewer than two usable labels."))
    clamped = min(max(size, 1), max_rows)
    if clamped != size:
        notes.append(
            _("size {wanted:,} is out of range, using {size:,}", wanted=size, size=clamped)
        )
    spec = make_spec(
        {
            "description": description[:2000],
            "name": name,
            "labels": [lb.model_dump() for lb in kept[:MAX_LABELS]],
            "multi_label": multi_label,
            "language": normalise_language(language),
            "size": clamped,
            "style": style.model_dump(),
        }
    )
    return spec, notes
