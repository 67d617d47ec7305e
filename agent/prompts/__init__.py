"""Prompt templates (Jinja, StrictUndefined: a missing variable is an error, not a blank)."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import jinja2

from sandbox.git import files_at, git, read_loose

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
    """The diff between two commits as a prompt shows it (`git diff -U1`'s format), cut at
    `limit` characters; kept, since commits never change and neither do their diffs. Made
    here from the loose objects (difflib's hunks, which may differ from git's); `git diff`
    when an object is packed."""

    def __init__(self, repo: Path, limit: int = 1500):
        self.repo, self.limit = repo, limit
        self._seen: dict[tuple[str, str], str] = {}

    def __call__(self, a: str, b: str) -> str:
        if (a, b) not in self._seen:
            out = self._diff(a, b)
            if out is None:
                out = git(["diff", "--no-color", "-U1", a, b, "--"], cwd=self.repo, check=False)
            cut = (f"\n[... {len(out) - self.limit} more characters of diff]"
                   if len(out) > self.limit else "")
            self._seen[(a, b)] = (f"```diff\n{out[:self.limit]}{cut}\n```" if out.strip()
                                  else "(same code as your starting point)")
        return self._seen[(a, b)]

    def _diff(self, a: str, b: str) -> str | None:
        """The diff without a process (the listings are the worktree pool's, kept), or None
        when some blob is not loose."""
        objects = self.repo / ".git" / "objects"
        before, after = files_at(self.repo, a), files_at(self.repo, b)
        out: list[str] = []
        for path in sorted(p for p in before.keys() | after.keys()
                           if before.get(p) != after.get(p)):
            old, new = before.get(path), after.get(path)
            texts = []
            for sha in (old, new):
                obj = read_loose(objects, sha) if sha else (b"blob", b"")
                if obj is None or obj[0] != b"blob":
                    return None
                texts.append(obj[1])
            out.append(f"diff --git a/{path} b/{path}")
            if old is None:
                out.append("new file mode 100644")
            elif new is None:
                out.append("deleted file mode 100644")
            out.append(f"index {(old or '0' * 40)[:7]}..{(new or '0' * 40)[:7]}")
            if b"\0" in texts[0] or b"\0" in texts[1]:
                out.append(f"Binary files a/{path} and b/{path} differ")
                continue
            lines = [_lines(t) for t in texts]
            hunks = list(difflib.unified_diff(*lines, n=1, lineterm=""))[2:]
            out += [f"--- {'a/' + path if old else '/dev/null'}",
                    f"+++ {'b/' + path if new else '/dev/null'}", *hunks]
        return "".join(line if line.endswith("\n") else line + "\n" for line in out)


def _lines(data: bytes) -> list[str]:
    lines = data.decode("utf-8", "replace").splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n\\ No newline at end of file\n"
    return lines


def episode_messages(*, task_name: str, brief: str, editable: list[str], stages: list[str],
                     direction: str, parent: Any, baseline: Any, best: Any,
                     inspirations: list[Any], failures: list[Any], budget_left: int,
                     diffs: Diffs, notes: list[str] = (), regions: list[str] = ()) -> list[dict]:
    """An episode's opening messages: the system prompt and the task, parent and examples.
    `regions`: the task's files where only the text between EVOLVE-BLOCK markers may change."""
    system = render("system.j2", editable=editable, stages=stages, direction=direction,
                    regions=list(regions))
    user = render("episode.j2", task_name=task_name, brief=brief, parent=parent,
                  baseline=baseline, best=best, inspirations=inspirations,
                  diffs={c.commit: diffs(parent.commit, c.commit) for c in inspirations},
                  failures=failures, budget_left=budget_left, notes=notes, regions=list(regions))
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
