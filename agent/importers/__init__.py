"""`adrs-agent tasks import`: an OpenEvolve, ShinkaEvolve or ADRS-leaderboard folder as a task.

The task written keeps their evaluator unchanged under `evaluator/theirs/`, beside a small
adapter (`evaluator/adapter.py`, copied from `adapter/` here) that runs it inside the candidate's
jail and prints adrs-agent's result. Their program becomes `repo/`; its EVOLVE-BLOCK regions
become `[repo] regions`. Nothing of theirs runs during the import itself, except the baseline
evaluation, which runs under the same jail as any evaluation.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import shutil
import sys
from pathlib import Path

from agent.importers.formats import READERS, SKIP, ImportFailure, Plan, detect, task_name

ADAPTER = Path(__file__).resolve().parent / "adapter"
STANDINS = {"openevolve", "shinka"}  # what adapter/jail/compat stands in for

__all__ = ["ImportFailure", "Plan", "detect", "import_folder", "task_name"]


def import_folder(src: Path, out: Path, fmt: str | None = None, test_split: bool = False) -> Plan:
    """Write `out` as a task from the foreign folder `src`; raise ImportFailure (nothing
    written) when src is not one of the formats or lacks what the format needs."""
    src = src.resolve()
    if not src.is_dir():
        raise ImportFailure(f"{src}: no such folder")
    found = detect(src)
    fmt = fmt or found
    if fmt is None:
        raise ImportFailure(
            f"{src}: not a folder adrs-agent can import: expected initial_program.* + evaluator.py "
            "(OpenEvolve), initial.* + evaluate.py (ShinkaEvolve), or evaluator.py + resources/ "
            "(ADRS leaderboard problem); or name one with --format")
    if fmt not in READERS:
        raise ImportFailure(f"--format {fmt}: use one of {', '.join(READERS)}")
    need = {"openevolve": "evaluator.py", "shinka": "evaluate.py", "leaderboard": "evaluator.py"}[fmt]
    if not (src / need).is_file():
        raise ImportFailure(f"{src}: no {need}, which a {fmt} folder has")
    if fmt in ("openevolve", "shinka") and not any(
            src.glob("initial_program.*" if fmt == "openevolve" else "initial.*")):
        raise ImportFailure(f"{src}: no {'initial_program' if fmt == 'openevolve' else 'initial'}.* program")
    plan = READERS[fmt](src)
    if test_split:
        raise ImportFailure(f"--test-split: cannot split {src.name}'s data: {plan.no_heldout}. "
                            "Import it without --test-split (it then has no held-out stage)")
    if out.exists() and any(out.iterdir()):
        raise ImportFailure(f"{out}: exists and is not empty; choose another --out or remove it")
    plan.unmapped += _missing_modules(src, plan)
    _write(plan, out)
    return plan


def _missing_modules(src: Path, plan: Plan) -> list[str]:
    """Modules their evaluator and program import that this Python lacks (found by parsing)."""
    names: set[str] = set()
    files = [src / f for f in plan.evaluator_files] + [p for p in plan.repo.values() if isinstance(p, Path)]
    local = {p.stem for p in src.glob("*.py")} | {p.name for p in src.iterdir() if p.is_dir()}
    for path in files:
        if path.suffix != ".py":
            continue
        try:
            tree = ast.parse(path.read_text(errors="replace"))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
    notes = []
    lacking = sorted(n for n in names - local - set(sys.stdlib_module_names)
                     if importlib.util.find_spec(n) is None)
    stood_in = [n for n in lacking if n in STANDINS]
    other = [n for n in lacking if n not in STANDINS]
    if stood_in:
        notes.append(f"{', '.join(stood_in)} is not installed: adrs-agent's stand-in for what their "
                     "evaluator imports from it is used (install the real one to use it instead)")
    if other:
        notes.append(f"their code imports {', '.join(other)}, which this Python lacks; install "
                     "it, or the evaluation fails")
    return notes


def _write(plan: Plan, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    try:
        repo = out / "repo"
        repo.mkdir()
        for rel, src in plan.repo.items():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            if isinstance(src, Path):
                shutil.copy2(src, repo / rel)
            else:
                (repo / rel).write_text(src)
        ev = out / "evaluator"
        shutil.copytree(ADAPTER, ev, ignore=shutil.ignore_patterns("__pycache__"))
        leave = plan.leave_out | {"task.toml"}
        shutil.copytree(plan.source, ev / "theirs", symlinks=True,
                        ignore=lambda d, names: [n for n in names if n in _skip(d, names, plan.source, leave)])
        (ev / "import.json").write_text(json.dumps(
            {"format": plan.format, "program": plan.program, "stages": plan.stages,
             "timeout_s": plan.timeout_s, "score": plan.score}, indent=1) + "\n")
        (out / "BRIEF.md").write_text(_brief(plan))
        (out / "README.md").write_text(_readme(plan))
        (out / "task.toml").write_text(_toml(plan))
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise


def _skip(folder: str, names: list[str], source: Path, leave: set[str]) -> set[str]:
    top = Path(folder).resolve() == source
    return {n for n in names if n in SKIP or (top and n in leave)}


def _toml(plan: Plan) -> str:
    q = json.dumps
    stages = list(plan.stages)
    lines = [f"name = {q(plan.name)}", 'brief = "BRIEF.md"',
             f"description = {q(f'imported from {plan.format}: {plan.source}')}",
             "[repo]", 'source = "repo"', f"editable = {q(plan.editable)}"]
    if plan.regions:
        lines.append(f"regions = {q(plan.regions)}")
    lines += ["[evaluator]",
              'command = ["python", "adapter.py", "--stage", "{stage}", "--candidate", "{worktree}"]',
              'cwd = "evaluator"', f"stages = {q(stages)}"]
    if plan.thresholds:
        lines.append("thresholds = { " + ", ".join(f"{k} = {v!r}" for k, v in plan.thresholds.items()) + " }")
    # the jail's start and the copy of the candidate come on top of their own time limit
    lines += [f"timeout_s = {plan.timeout_s + 30:g}", 'direction = "maximize"', "[sandbox]",
              "memory_mb = 4096", "network = false"]
    return "\n".join(lines) + "\n"


def _brief(plan: Plan) -> str:
    parts = [p for p in plan.brief if p] or [f"Improve the program in `{plan.program}`."]
    where = (f"Only the text between the EVOLVE-BLOCK-START and EVOLVE-BLOCK-END lines of "
             f"{', '.join(plan.regions)} may change." if plan.regions else
             f"You may change {', '.join(plan.editable)}.")
    return ("\n\n".join(parts) + f"\n\n## How candidates are scored\n\n{where} The score is "
            f"{plan.score_rule}; higher is better. Stages: {', '.join(plan.stages)}.\n")


def _readme(plan: Plan) -> str:
    lines = [f"# {plan.name} (imported from {plan.format})", "",
             f"Written by `adrs-agent tasks import {plan.source}`. Their evaluator is in "
             "`evaluator/theirs/`, unchanged; `evaluator/adapter.py` runs it inside the candidate's "
             "jail and prints adrs-agent's result. The candidate shares their evaluator's process "
             "there, so it could forge the metrics: the jail protects the machine, not the score.",
             "", f"Score: {plan.score_rule}.", "", "## Mapped", ""]
    lines += [f"- {m}" for m in plan.mapped]
    lines += ["", "## Not mapped", ""] + [f"- {m}" for m in plan.unmapped]
    lines += ["", "## Held-out stage", "", f"None: {plan.no_heldout}. `review` says the task has "
              "no held-out stage; add a `test_stage` with held-out data to the adapter to get one.", ""]
    return "\n".join(lines)
