"""TEMPORARY re-exports while the publish side moves here (helper at work)."""

from agent.tools.argilla import build_settings as argilla_settings
from agent.tools.argilla import to_record as argilla_record
from agent.tools.export import _build_dataset as build_dataset
from agent.tools.export import render_card as render_card

__all__ = ["argilla_record", "argilla_settings", "build_dataset", "render_card"]
