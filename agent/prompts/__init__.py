"""Prompt templates (Jinja, StrictUndefined: a missing variable is an error, not a blank)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent),
    undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True,
    lstrip_blocks=True, autoescape=False,
)


def fmt(score: float | None) -> str:
    return "none (invalid or not reached)" if score is None else f"{score:.6g}"


def render(name: str, **context: Any) -> str:
    return _ENV.get_template(name).render(fmt=fmt, **context)
