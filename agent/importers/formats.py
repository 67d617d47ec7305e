"""What each foreign format holds, read without running any of its code (their evaluator is
parsed with `ast`, never imported here): a `Plan` of the task to write."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

from agent.regions import RegionError, blocks

OE_THRESHOLDS = [0.5, 0.75, 0.9]  # OpenEvolve's default cascade_thresholds
OE_TIMEOUT_S = 300.0  # OpenEvolve's default evaluator.timeout
SE_TIMEOUT_S = 300.0  # ShinkaEvolve's examples give their jobs five minutes
LB_TIMEOUT_S = 1800.0
SKIP = {"__pycache__", ".git", ".venv", "openevolve_output", "results", ".ipynb_checkpoints"}
SEARCH_KEYS = ("llm", "database", "max_iterations", "checkpoint_interval", "log_level",
               "diff_based_evolution", "max_code_length", "random_seed", "evo_config", "db_config",
               "job_config", "max_evaluation_jobs", "max_proposal_jobs", "max_db_workers")


class ImportFailure(ValueError):
    """A folder that cannot be imported; the message says what is missing."""


@dataclass
class Plan:
    format: str
    name: str
    source: Path
    program: str  # the file their evaluator is handed, relative to repo/
    repo: dict[str, Path | str]  # repo/ file -> a source file, or generated text
    editable: list[str]
    stages: dict[str, dict]  # stage -> which of their functions it calls
    thresholds: dict[str, float] = field(default_factory=dict)
    timeout_s: float = OE_TIMEOUT_S
    score: str = "combined_score"
    brief: list[str] = field(default_factory=list)
    leave_out: set[str] = field(default_factory=set)  # files of theirs not copied to evaluator/theirs
    evaluator_files: list[str] = field(default_factory=list)  # their files that are code to check
    mapped: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    score_rule: str = ""
    no_heldout: str = ""

    @property
    def regions(self) -> list[str]:
        return [f for f, src in self.repo.items() if f in self.editable and _has_blocks(src)]


def _has_blocks(src: Path | str) -> bool:
    text = src.read_text(errors="replace") if isinstance(src, Path) else src
    try:
        return bool(blocks(text))
    except RegionError:
        return False


def detect(src: Path) -> str | None:
    """openevolve, shinka, leaderboard, or None."""
    if not src.is_dir() or (src / "task.toml").is_file():
        return None
    if (src / "evaluator.py").is_file() and any(src.glob("initial_program.*")):
        return "openevolve"
    if (src / "evaluate.py").is_file() and any(src.glob("initial.*")):
        return "shinka"
    if (src / "evaluator.py").is_file() and (src / "resources").is_dir():
        return "leaderboard"
    return None


def task_name(src: Path) -> str:
    return re.sub(r"[^a-z0-9]+", "-", src.resolve().name.lower()).strip("-") or "imported"


def functions(path: Path) -> set[str]:
    """Top-level function names of a Python file (parsed, not run)."""
    try:
        tree = ast.parse(path.read_text(errors="replace"))
    except SyntaxError as e:
        raise ImportFailure(f"{path}: not valid Python ({e.msg}, line {e.lineno})") from None
    return {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def _program(src: Path, stem: str, plan_notes: list[str]) -> Path:
    found = sorted(src.glob(f"{stem}.*"), key=lambda p: (p.suffix != ".py", p.name))
    program = found[0]
    if program.suffix != ".py":
        plan_notes.append(f"{program.name}: not Python; their evaluator runs it as before, but the "
                          "built-in tuner model tunes only Python files")
    return program


def _yaml(path: Path) -> dict:
    try:
        import yaml
    except ImportError as e:  # pragma: no cover - PyYAML comes with adrs-agent's dependencies
        raise ImportFailure("reading config.yaml needs PyYAML: pip install pyyaml") from e
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ImportFailure(f"{path}: not valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise ImportFailure(f"{path}: not a YAML mapping")
    return data


def _leaves(d: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_leaves(v, key + "."))
        else:
            out[key] = v
    return out


def _not_mapped(leaves: dict[str, object], used: set[str], where: str) -> list[str]:
    search = sorted(k for k in leaves if k not in used and k.split(".")[0] in SEARCH_KEYS)
    other = sorted(k for k in leaves if k not in used and k.split(".")[0] not in SEARCH_KEYS)
    notes = []
    if search:
        tops: dict[str, int] = {}
        for k in search:
            tops[k.split(".")[0]] = tops.get(k.split(".")[0], 0) + 1
        said = [t if n == 1 and t in leaves else f"{t}.* ({n} keys)" for t, n in tops.items()]
        notes.append(f"{where}: search and LLM settings, which adrs-agent sets its own way "
                     f"(--model, --budget, --workers, [search]): {', '.join(said)}")
    if other:
        notes.append(f"{where}: keys adrs-agent does not know: {', '.join(other)}")
    return notes


def _readme(src: Path, plan: Plan) -> None:
    if (src / "README.md").is_file():
        plan.brief.append((src / "README.md").read_text(errors="replace").strip())
        plan.mapped.append("README.md -> BRIEF.md (after the system message)")


def read_openevolve(src: Path) -> Plan:
    notes: list[str] = []
    program = _program(src, "initial_program", notes)
    have = functions(src / "evaluator.py")
    configs = [src / "config.yaml"] if (src / "config.yaml").is_file() else sorted(src.glob("config*.yaml"))
    config = _yaml(configs[0]) if configs else {}
    leaves = _leaves(config)
    ev = config.get("evaluator") if isinstance(config.get("evaluator"), dict) else {}
    cascade = ev.get("cascade_evaluation", True) and "evaluate_stage1" in have
    thresholds = list(ev.get("cascade_thresholds") or OE_THRESHOLDS)
    if "evaluate" not in have and not cascade:
        raise ImportFailure(f"{src / 'evaluator.py'}: defines no evaluate(program_path) (nor "
                            "evaluate_stage1 with cascade_evaluation on)")
    plan = Plan("openevolve", task_name(src), src, program.name, {program.name: program},
                [program.name], {}, timeout_s=float(ev.get("timeout") or OE_TIMEOUT_S))
    plan.leave_out = {p.name for p in src.glob("initial_program.*")} | {c.name for c in configs}
    plan.evaluator_files = ["evaluator.py"]
    if cascade:
        names = ["stage1"] + [s for s in ("stage2", "stage3") if f"evaluate_{s}" in have]
        if "stage2" not in names:
            names = ["stage1"]
        elif "stage3" in names and len(thresholds) < 2:
            names.remove("stage3")
        plan.stages = {s: {"file": "evaluator.py", "function": f"evaluate_{s}"} for s in names}
        plan.thresholds = {s: float(t) for s, t in zip(names[:-1], thresholds)}
        plan.mapped.append(f"evaluate_stage1..{len(names)} -> stages {names}, "
                           f"cascade_thresholds -> thresholds {plan.thresholds}")
        plan.unmapped.append("each stage scores its own function's metrics; OpenEvolve merges "
                             "the earlier stages' metrics into the later ones (the same score "
                             "whenever the later stage reports combined_score)")
    else:
        plan.stages = {"full": {"file": "evaluator.py", "function": "evaluate"}}
        plan.mapped.append("evaluate(program_path) -> stage full")
    text = (src / "evaluator.py").read_text(errors="replace")
    plan.score_rule = ("combined_score, which their evaluator reports" if "combined_score" in text
                       else "the mean of the numeric metrics (their evaluator reports no "
                            "combined_score), as OpenEvolve ranks programs")
    prompt = config.get("prompt") if isinstance(config.get("prompt"), dict) else {}
    system = prompt.get("system_message") or ""
    if system:
        plan.brief.append(str(system).strip())
        plan.mapped.append(f"{configs[0].name}: prompt.system_message -> BRIEF.md")
    elif configs:
        plan.unmapped.append(f"{configs[0].name}: no prompt.system_message; BRIEF.md has the README only")
    else:
        plan.unmapped.append("no config.yaml: OpenEvolve's defaults (cascade on, timeout 300 s)")
    used = {"prompt.system_message", "evaluator.timeout", "evaluator.cascade_evaluation",
            "evaluator.cascade_thresholds"}
    if configs:
        plan.mapped.append(f"{configs[0].name}: evaluator.timeout -> timeout_s {plan.timeout_s:g}")
        if len(configs) > 1:
            plan.unmapped.append(f"other configs not read: {', '.join(c.name for c in configs[1:])}")
    plan.unmapped += notes + _not_mapped(leaves, used, configs[0].name if configs else "config")
    _readme(src, plan)
    plan.no_heldout = ("their evaluator takes only the program's path (evaluate(program_path)), "
                       "so there is no data folder to split")
    return plan


def read_shinka(src: Path) -> Plan:
    notes: list[str] = []
    program = _program(src, "initial", notes)
    if "main" not in functions(src / "evaluate.py"):
        raise ImportFailure(f"{src / 'evaluate.py'}: defines no main(program_path, results_dir)")
    plan = Plan("shinka", task_name(src), src, program.name, {program.name: program},
                [program.name], {"full": {"file": "evaluate.py", "function": "main"}},
                timeout_s=SE_TIMEOUT_S)
    plan.leave_out = {p.name for p in src.glob("initial.*")}
    plan.evaluator_files = ["evaluate.py"]
    plan.mapped.append("main(program_path, results_dir) -> stage full; correct.json -> valid; "
                       "metrics.json combined_score -> score, public -> metrics, text_feedback -> feedback")
    plan.unmapped.append("metrics.json private: kept from the agent (not in metrics or feedback)")
    plan.score_rule = "combined_score from metrics.json; correct.json's correct decides validity"
    system = ""
    for cfg in sorted(src.glob("*.yaml")):
        data = _yaml(cfg)
        evo = data.get("evo_config") if isinstance(data.get("evo_config"), dict) else {}
        if evo.get("task_sys_msg") and not system:
            system = str(evo["task_sys_msg"])
            plan.mapped.append(f"{cfg.name}: evo_config.task_sys_msg -> BRIEF.md")
        plan.unmapped += _not_mapped(_leaves(data), {"evo_config.task_sys_msg"}, cfg.name)
    if not system and (src / "run_evo.py").is_file():
        system = _string_constant(src / "run_evo.py", "sys_msg")
        if system:
            plan.mapped.append("run_evo.py: its *sys_msg string -> BRIEF.md")
    if system:
        plan.brief.append(system.strip())
    else:
        plan.unmapped.append("no task_sys_msg found; BRIEF.md has the README only")
    if (src / "run_evo.py").is_file():
        plan.unmapped.append(f"run_evo.py: the job time limit is not read; timeout_s is {SE_TIMEOUT_S:g} s")
    plan.unmapped += notes
    _readme(src, plan)
    plan.no_heldout = ("their evaluator takes the program's path and a results folder "
                       "(main(program_path, results_dir)), so there is no data folder to split")
    return plan


def _string_constant(path: Path, suffix: str) -> str:
    try:
        tree = ast.parse(path.read_text(errors="replace"))
    except SyntaxError:
        return ""
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) \
                and isinstance(node.value.value, str) \
                and any(isinstance(t, ast.Name) and t.id.endswith(suffix) for t in node.targets):
            return node.value.value
    return ""


LB_SOLUTION = '''"""The candidate, as the ADRS leaderboard expects it: a Solution class whose solve() hands
the evaluator the program in initial_program.py (written by `adrs-agent tasks import`)."""
from pathlib import Path


class Solution:
    def solve(self, spec_path=None):
        return {"program_path": str(Path(__file__).resolve().with_name("initial_program.py"))}
'''


def read_leaderboard(src: Path) -> Plan:
    if "evaluate" not in functions(src / "evaluator.py"):
        raise ImportFailure(f"{src / 'evaluator.py'}: defines no evaluate(solution_path, spec_path)")
    initial = src / "resources" / "initial_program.py"
    baseline = src.parent.parent / "solutions" / src.name / "baseline" / "resources" / "solution.py"
    call = {"file": "evaluator.py", "function": "evaluate"}
    spec = src / "resources" / "submission_spec.json"
    if spec.is_file():
        call["spec"] = "resources/submission_spec.json"
    if initial.is_file():
        repo: dict[str, Path | str] = {"solution.py": LB_SOLUTION, "initial_program.py": initial}
        editable = ["initial_program.py"]
        mapped = ["resources/initial_program.py -> repo/initial_program.py (editable); "
                  "repo/solution.py: a Solution whose solve() returns {'program_path': it}"]
        if baseline.is_file():
            mapped.append(f"{baseline}: not used (it reaches initial_program.py by paths outside "
                          "the problem folder; repo/solution.py does the same from the candidate)")
    elif baseline.is_file():
        repo, editable = {"solution.py": baseline}, ["solution.py"]
        mapped = [f"{baseline} -> repo/solution.py (editable)"]
    else:
        raise ImportFailure(f"{src}: no resources/initial_program.py and no "
                            f"solutions/{src.name}/baseline/resources/solution.py to start from")
    plan = Plan("leaderboard", task_name(src), src, "solution.py", repo, editable,
                {"full": call}, timeout_s=LB_TIMEOUT_S)
    plan.mapped += mapped + ["evaluate(solution_path, spec_path) -> stage full; "
                             "combined_score (else score) -> score"]
    plan.evaluator_files = ["evaluator.py"]
    plan.score_rule = "combined_score when their evaluate returns it, else score (as run_evaluator.sh reads it)"
    for script in ("set_up_env.sh", "download_datasets.sh"):
        if (src / script).is_file():
            plan.unmapped.append(f"{script}: not run; run it in the imported evaluator/theirs "
                                 "folder yourself if their evaluator needs what it sets up")
    if (src / "config.yaml").is_file():
        plan.unmapped.append("config.yaml (dependencies, datasets): not read; install them as "
                             "set_up_env.sh says")
    _readme(src, plan)
    plan.no_heldout = ("their evaluate takes the solution and its spec (evaluate(solution_path, "
                       "spec_path)), no data folder to split")
    return plan


READERS = {"openevolve": read_openevolve, "shinka": read_shinka, "leaderboard": read_leaderboard}
