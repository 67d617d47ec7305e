"""Prompt templates (Jinja, StrictUndefined: a missing variable is an error, not a blank)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from sandbox.git import git

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent),
    undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True,
    lstrip_blocks=True, autoescape=False,
)


def fmt(score: float | None) -> str:
    return "none (invalid or not reached)" if score is None else f"{score:.6g}"


def render(name: str, **context: Any) -> str:
    return _ENV.get_template(name).render(fmt=fmt, **context)


class Diffs:
    """`git diff` between two commits as a prompt shows it, cut at `limit` characters; kept,
    since commits never change and neither do their diffs."""

    def __init__(self, repo: Path, limit: int = 1500):
        self.repo, self.limit = repo, limit
        self._seen: dict[tuple[str, str], str] = {}

    def __call__(self, a: str, b: str) -> str:
        if (a, b) not in self._seen:
            out = git(["diff", "--no-color", "-U1", a, b, "--"], cwd=self.repo, check=False)
            cut = (f"\n[... {len(out) - self.limit} more characters of diff]"
                   if len(out) > self.limit else "")
            self._seen[(a, b)] = (f"```diff\n{out[:self.limit]}{cut}\n```" if out.strip()
                                  else "(same code as your starting point)")
        return self._seen[(a, b)]


def episode_messages(*, task_name: str, brief: str, editable: list[str], stages: list[str],
                     direction: str, parent: Any, baseline: Any, best: Any,
                     inspirations: list[Any], failures: list[Any], budget_left: int,
                     diffs: Diffs, notes: list[str] = ()) -> list[dict]:
    """An episode's opening messages: the system prompt and the task, parent and examples."""
    system = render("system.j2", editable=editable, stages=stages, direction=direction)
    user = render("episode.j2", task_name=task_name, brief=brief, parent=parent,
                  baseline=baseline, best=best, inspirations=inspirations,
                  diffs={c.commit: diffs(parent.commit, c.commit) for c in inspirations},
                  failures=failures, budget_left=budget_left, notes=notes)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
