"""The `adrs-agent` command: solve, resume, watch, review, pr, sessions, tasks check, tasks eval."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import typer
from rich.console import Console

from agent import config
from agent.config import SESSIONS_DIR, ConfigError, RunConfig
from agent.models import ModelSpecError, check_files, default_model, parse_specs, untrusted
from agent.models.base import ModelAuthError
from agent.session import Session, SessionError
from agent.task import Task, TaskError
from sandbox.jail import JailConfig, JailError, check_backend, isolation
from sandbox.pool import BackendError, check_backend_reachable

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Evolve a task's code with tool-using agents; git is the program database.")
tasks_app = typer.Typer(no_args_is_help=True, help="Check and evaluate task folders.")
app.add_typer(tasks_app, name="tasks")
console = Console(highlight=False, soft_wrap=True)
err_console = Console(highlight=False, soft_wrap=True, stderr=True)
DEFAULTS = RunConfig(task_dir=".")


def fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(2)


# solve's options -> the run settings they set; only the options given on the command line
# count, so that they win over --config and lose to --set
SETTING_OF = {"task_dir": "task_dir", "model": "models", "bandit": "bandit",
              "max_cost": "max_cost_usd", "budget": "budget", "workers": "workers",
              "max_episodes": "max_episodes", "wall_s": "wall_s", "seed": "seed",
              "evaluators": "evaluators", "backend": "backend", "ray_address": "ray_address",
              "data": "data_dir", "no_test": "test_at_end", "sandbox": "sandbox",
              "unsafe_no_sandbox": "unsafe_no_sandbox"}
CONFIG_HELP = ("A TOML file of run settings: any of agent/config.py's RunConfig, nested ones as "
               "TOML tables (search, provider, ...). Options given and --set win over it.")
SET_HELP = ("KEY=VALUE: one run setting, dotted for nested ones (search.islands=5, "
            "provider.max_tokens=8000); the value is read as TOML where it parses, else as "
            "text. Repeatable; wins over --config and the other options.")
NO_TUI_HELP = ("Run in the foreground with progress lines instead of starting the run in the "
               "background and watching it in the terminal UI (the default on a terminal).")
SANDBOX_HELP = ("Jail for candidate code and the agents' commands: auto (the task's choice, else "
                "bwrap where it works), bwrap, docker (DOCKER_HOST or the local engine) or "
                "process (no jail).")
UNSAFE_HELP = ("Run code an LLM or a script wrote without a jail when none is available. It "
               "can then read your API keys and files and use the network.")


def given_settings(ctx: typer.Context, values: dict) -> tuple[dict, dict[str, str]]:
    """The run settings the command line gave (by SETTING_OF), and their options' names."""
    names = {p.name: (p.opts or [p.name])[0] for p in ctx.command.params}
    # typer vendors click, so its ParameterSource is not click's: compare by name
    given = [p for p in SETTING_OF
             if getattr(ctx.get_parameter_source(p), "name", "") == "COMMANDLINE"]
    return ({SETTING_OF[p]: values[p] for p in given},
            {SETTING_OF[p]: names[p] for p in given if p != "task_dir"})


def reachable(cfg: RunConfig, label: str) -> None:
    """One line and exit 2 when the run's evaluation backend cannot be reached."""
    try:
        check_backend_reachable(cfg.backend, cfg.ray_address, label)
    except BackendError as e:
        fail(str(e))


def jail_for(task: Task, backend: str, code_untrusted: bool, unsafe: bool,
             what: str, out: Console = console) -> JailConfig:
    """The jail candidates will run in, said once, loudly; refuse to run untrusted code
    without one unless the user passed --unsafe-no-sandbox."""
    try:
        config = task.evaluator.jail(None if backend == "auto" else backend)
        check_backend(config)
    except JailError as e:
        fail(str(e))
    iso = isolation(config)
    if iso.jailed:
        out.print(iso.describe())
        return config
    if code_untrusted and not unsafe:
        fail(f"refusing to run {what} without a jail. {iso.describe()}. Install bubblewrap "
             "(apt-get install bubblewrap) or use --sandbox docker; only on a machine and "
             "account with nothing to lose, pass --unsafe-no-sandbox")
    out.print(f"[bold red]WARNING[/bold red] {iso.describe()}")
    return config


def load_task(task_dir: Path) -> Task:
    try:
        return Task.load(task_dir)
    except TaskError as e:
        fail(str(e))
        raise


def check_requires(task: Task) -> None:
    """Stop before anything runs when the evaluator's interpreter lacks what the task requires."""
    missing = task.missing()
    if missing:
        fail(f"task {task.name} needs {', '.join(missing)}, which the evaluator's Python "
             f"({sys.executable}) does not have; install: {task.install_hint(missing)}")


@app.command()
def solve(
    ctx: typer.Context,
    task_dir: Path = typer.Argument(..., help="Task folder (holds task.toml)."),
    model: list[str] | None = typer.Option(None, "--model", "-m", help=RunConfig.model_fields["models"].description),
    bandit: bool = typer.Option(False, "--bandit", help=RunConfig.model_fields["bandit"].description),
    max_cost: float = typer.Option(DEFAULTS.max_cost_usd, "--max-cost",
                                   help=RunConfig.model_fields["max_cost_usd"].description),
    budget: int = typer.Option(DEFAULTS.budget, help=RunConfig.model_fields["budget"].description),
    workers: int = typer.Option(DEFAULTS.workers, help=RunConfig.model_fields["workers"].description),
    evaluators: int = typer.Option(DEFAULTS.evaluators, help=RunConfig.model_fields["evaluators"].description),
    backend: str = typer.Option(DEFAULTS.backend, help=RunConfig.model_fields["backend"].description),
    ray_address: str | None = typer.Option(None, "--ray-address",
                                           help=RunConfig.model_fields["ray_address"].description),
    max_episodes: int = typer.Option(DEFAULTS.max_episodes, help=RunConfig.model_fields["max_episodes"].description),
    wall_s: float = typer.Option(DEFAULTS.wall_s, help=RunConfig.model_fields["wall_s"].description),
    seed: int = typer.Option(DEFAULTS.seed, help=RunConfig.model_fields["seed"].description),
    data: Path | None = typer.Option(None, help=RunConfig.model_fields["data_dir"].description),
    sessions_dir: Path = typer.Option(Path(SESSIONS_DIR), help="Where session folders go."),
    no_tui: bool = typer.Option(False, "--no-tui", help=NO_TUI_HELP),
    no_test: bool = typer.Option(False, "--no-test", help="Skip the held-out test stage at the end."),
    sandbox: str = typer.Option(DEFAULTS.sandbox, "--sandbox", help=SANDBOX_HELP),
    unsafe_no_sandbox: bool = typer.Option(False, "--unsafe-no-sandbox", help=UNSAFE_HELP),
    config_file: Path | None = typer.Option(None, "--config", help=CONFIG_HELP),
    sets: list[str] | None = typer.Option(None, "--set", help=SET_HELP),
) -> None:
    """Run agent episodes on TASK_DIR until the budget is spent; print the best candidate."""
    flags, names = given_settings(ctx, {**ctx.params, "task_dir": str(task_dir),
                                        "data": str(data) if data else None,
                                        "no_test": not no_test})
    try:  # defaults < --config < the options given < --set
        cfg = config.load(flags, config_file, sets or (), names)
    except ConfigError as e:
        fail(str(e))
    imported = _import_on_the_fly(Path(cfg.task_dir))
    task = load_task(imported or Path(cfg.task_dir))
    check_requires(task)
    update: dict = {"task_dir": str(task.dir)}
    if cfg.data_dir is not None:
        if not Path(cfg.data_dir).is_dir():
            fail(f"{names.get('data_dir', 'data_dir')} {cfg.data_dir}: no such folder")
        update["data_dir"] = str(Path(cfg.data_dir).resolve())
    why = "given with --model" if "models" in flags else "set with --config or --set"
    if not cfg.models:
        chosen, why = default_model(dict(os.environ))
        update["models"] = [chosen]
    cfg = cfg.model_copy(update=update)
    try:
        parse_specs(cfg.models)
        check_files(cfg.models)
    except ModelSpecError as e:
        fail(str(e))
    if not sessions_dir.exists() and not sessions_dir.parent.is_dir():
        fail(f"--sessions-dir {sessions_dir}: its parent folder does not exist")
    reachable(cfg, names.get("ray_address", "ray_address"))
    jail = jail_for(task, cfg.sandbox, untrusted(cfg.models), cfg.unsafe_no_sandbox,
                    f"code written by {', '.join(cfg.models)}")
    session = Session.create(sessions_dir, task.name, cfg, task.evaluator.cwd)
    if imported:  # the session keeps its task, so that resume finds it
        shutil.move(str(imported), session.dir / "task")
        shutil.rmtree(imported.parent, ignore_errors=True)
        task = load_task(session.dir / "task")
        cfg = cfg.model_copy(update={"task_dir": str(task.dir)})
        session.write_config(cfg, task.name)
        console.print(f"the imported task is kept in {task.dir}")
    console.print(f"session [bold]{session.id}[/bold] in {session.dir}")
    console.print(f"model: {', '.join(cfg.models)} ({why})")
    if _wants_tui(no_tui):
        _attach(session, session.launch([*RUNNER, str(session.dir)]))
    else:
        _drive(session, task, cfg, resume=False, jail=jail)


@app.command()
def resume(
    session_id: str = typer.Argument(..., help="Session id, id prefix, or folder."),
    sessions_dir: Path = typer.Option(Path(SESSIONS_DIR), help="Where session folders are."),
    no_tui: bool = typer.Option(False, "--no-tui", help=NO_TUI_HELP),
) -> None:
    """Continue an interrupted run: every scored candidate is kept, none is scored twice."""
    try:
        session = Session.find(sessions_dir, session_id)
    except SessionError as e:
        fail(str(e))
    if session.runner():
        fail(f"session {session.id} is still being run by process {session.runner()}; "
             "stop that process first")
    cfg, _ = session.read_config()
    task = load_task(Path(cfg.task_dir))
    reachable(cfg, "the run's ray_address")
    jail = jail_for(task, cfg.sandbox, untrusted(cfg.models), cfg.unsafe_no_sandbox,
                    f"code written by {', '.join(cfg.models)}")
    console.print(f"resuming session [bold]{session.id}[/bold]")
    if _wants_tui(no_tui):
        _attach(session, session.launch([*RUNNER, str(session.dir), "--resume"]))
    else:
        _drive(session, task, cfg, resume=True, jail=jail)


RUNNER = [sys.executable, "-m", "agent.cli", "run-session"]
"""How solve and resume start a run in the background (see `run_session`)."""


@app.command("run-session", hidden=True)
def run_session(session_dir: Path, resume_it: bool = typer.Option(False, "--resume")) -> None:
    """Run a session created by `solve` (or resume one) in the foreground, printing progress
    lines: what solve and resume start in the background when they open the watcher."""
    session = Session(session_dir.resolve())
    cfg, _ = session.read_config()
    task = load_task(Path(cfg.task_dir))
    jail = jail_for(task, cfg.sandbox, untrusted(cfg.models), cfg.unsafe_no_sandbox,
                    f"code written by {', '.join(cfg.models)}")
    _drive(session, task, cfg, resume=resume_it, jail=jail)


@app.command()
def watch(
    session_id: str | None = typer.Argument(None, help="Session id, id prefix or folder (default: the newest)."),
    sessions_dir: Path = typer.Option(Path(SESSIONS_DIR), help="Where session folders are."),
    web: bool = typer.Option(False, "--web", help="Serve the app to a browser (textual-serve) instead."),
    host: str = typer.Option("127.0.0.1", help="With --web: the address to listen on."),
    port: int = typer.Option(8000, help="With --web: the port to listen on."),
) -> None:
    """Watch and steer a running session in the terminal UI, or browse a finished one."""
    try:
        session = Session.find(sessions_dir, session_id)
    except SessionError as e:
        fail(str(e))
    if web:
        from agent.tui.web import serve

        if host not in ("127.0.0.1", "localhost", "::1"):
            console.print(f"[bold red]WARNING[/bold red] --host {host}: anyone who can reach it "
                          "can watch and steer this run (there is no login)")
        console.print(f"serving session {session.id} on http://{host}:{port} (Ctrl+C stops)")
        serve(session.dir, host, port)
        return
    if not sys.stdout.isatty() and "TEXTUAL_DRIVER" not in os.environ:  # textual-serve sets it
        fail("watch needs a terminal; use --web to watch in a browser, or `adrs-agent sessions`")
    _attach(session, session.runner())


def _ended(session: Session) -> bool:
    """Whether the session's last start or resume has finished."""
    from agent.events import SessionFinished, SessionResumed, SessionStarted

    ended = False
    for e in session.events():
        if isinstance(e, (SessionStarted, SessionResumed, SessionFinished)):
            ended = isinstance(e, SessionFinished)
    return ended


def _wants_tui(no_tui: bool) -> bool:
    return not no_tui and sys.stdin.isatty() and sys.stdout.isatty()


def _attach(session: Session, pid: int | None) -> None:
    """Open the watcher on the session; say where the run stands once it is closed."""
    from agent.tui import watch as watch_app

    result = watch_app(session.dir)
    log = session.dir / "run.log"
    if result == "stop":
        console.print(f"stopping session {session.id}: running episodes end after their turn "
                      f"(output: {log})")
    elif session.runner() and not _ended(session):
        console.print(f"detached: the run goes on in process {session.runner()} (output: {log}); "
                      f"`adrs-agent watch {session.id}` reattaches")
    elif log.is_file():  # it ended: its last words are the summary, printed as it exits
        deadline = time.monotonic() + 10
        while session.runner() and time.monotonic() < deadline:
            time.sleep(0.1)
        tail = log.read_text(errors="replace").splitlines()
        start = max((i for i, line in enumerate(tail) if line.startswith("finished (")), default=-1)
        console.print("\n".join(tail[start:] if start >= 0 else tail[-5:]))


def _drive(session: Session, task: Task, cfg: RunConfig, resume: bool,
           jail: JailConfig) -> None:
    from agent.progress import drive
    from agent.solve import BaselineInvalid

    try:
        drive(session, task, cfg, resume=resume, jail=jail, console=console)
    except ModelAuthError as e:
        fail(f"{e} (session {session.id} is kept; `adrs-agent resume {session.id}` "
             "continues it once the key is set)")
    except BaselineInvalid as e:
        fail(f"the task's baseline is invalid, so no episode was started: {e}")


@app.command()
def sessions(sessions_dir: Path = typer.Option(Path(SESSIONS_DIR))) -> None:
    """List sessions with their task, candidates and best score."""
    from agent.progress import list_sessions

    list_sessions(sessions_dir, console)


@app.command()
def review(
    session_id: str | None = typer.Argument(None, help="Session id, id prefix or folder (default: the newest)."),
    sessions_dir: Path = typer.Option(Path(SESSIONS_DIR), help="Where session folders are."),
    top: int = typer.Option(10, min=1, help="How many candidates to rank and test on the held-out stage."),
    workers: int = typer.Option(2, min=1, help="Held-out evaluations run at once."),
    backend: str | None = typer.Option(None, help="Where the held-out evaluations run: local or ray "
                                       "(default: the run's backend, at its ray address)."),
    ray_address: str | None = typer.Option(None, "--ray-address", help="The Ray cluster (with --backend ray)."),
    as_json: bool = typer.Option(False, "--json", help="Print the review as one JSON object."),
    md: Path | None = typer.Option(None, "--md", help="Also write a markdown report (and its plot beside it)."),
) -> None:
    """Rank a session's candidates on the held-out stage, with an error bar, flags and why the
    run went as it did. Held-out scores are cached in the git notes: a second review runs nothing."""
    from agent import report
    from agent.review import ReviewError, evaluator_of, facts
    from agent.review import review as make_review

    if md is not None and not md.parent.is_dir():
        fail(f"--md {md}: its folder does not exist")
    if backend not in (None, "local", "ray"):
        fail(f"--backend {backend}: use local or ray")
    try:
        session = Session.find(sessions_dir, session_id)
        task, _ = evaluator_of(session, facts(session).task_dir)
        cfg, _ = session.read_config()
        out = err_console if as_json else console
        jail = jail_for(task, cfg.sandbox, untrusted(cfg.models), cfg.unsafe_no_sandbox,
                        f"code written by {', '.join(cfg.models)}", out=out)
        result = make_review(session, top=top, workers=workers, jail=jail, backend=backend,
                             ray_address=ray_address)
    except (SessionError, ReviewError) as e:
        fail(str(e))
    if as_json:
        print(json.dumps(report.to_json(result)))
    else:
        report.show(result, console)
    if md is not None:
        plot = report.write_markdown(result, md)
        (err_console if as_json else console).print(f"wrote {md} and {plot}")


@app.command()
def pr(
    session_id: str = typer.Argument(..., help="Session id, id prefix, or folder."),
    candidate: str = typer.Argument(..., help="A commit sha prefix, `best`, or a rank from `review` (1 = best)."),
    sessions_dir: Path = typer.Option(Path(SESSIONS_DIR), help="Where session folders are."),
    remote: str | None = typer.Option(None, help="Remote to push to (default: origin of the task's repository)."),
    base: str | None = typer.Option(None, help="Branch to merge into (default: the task's ref when it is a "
                                                "branch, else the GitHub repository's default branch)."),
    github: str | None = typer.Option(None, "--github", help="OWNER/REPO on GitHub (default: read from the "
                                                              "remote's URL, https or ssh)."),
    github_url: str | None = typer.Option(None, "--github-url", help="API root of a GitHub Enterprise server, "
                                                                      "e.g. https://ghe.example.com/api/v3."),
    keep_history: bool = typer.Option(False, "--keep-history", help="Keep the lineage's commits (each with its "
                                      "agent's message) instead of one squashed commit; editable paths only."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Write the body, the patches and the branch (in the "
                                 "task's repo) under sessions/<id>/pr/<sha>/; push nothing, call no API. The "
                                 "default when the repository has no remote."),
) -> None:
    """Open (or update) a pull request with CANDIDATE's changes to the editable files, on the task's
    repository (token: GITHUB_TOKEN or GH_TOKEN)."""
    from agent.pr import PrError, PrOptions, open_pr

    try:
        found = Session.find(sessions_dir, session_id)
        open_pr(PrOptions(found.dir, candidate, remote, base, github, github_url, keep_history, dry_run),
                lambda line: console.print(line, markup=False))
    except (SessionError, PrError) as e:
        fail(str(e))


@tasks_app.command("check")
def tasks_check(task_dir: Path) -> None:
    """Validate a task folder: task.toml fields, brief, repo, editable globs, evaluator."""
    task = load_task(task_dir)
    check_requires(task)
    console.print(f"[green]ok[/green]: task {task.name!r}: stages {task.evaluator.stages}"
                  f", held-out {task.evaluator.test_stage!r}, editable {task.editable}")


def _import_on_the_fly(path: Path) -> Path | None:
    """A folder in a foreign format (OpenEvolve, ShinkaEvolve, ADRS leaderboard), imported into
    a temporary task folder for this run (no task folder is written); None for a task folder."""
    from agent.importers import ImportFailure, detect, import_folder

    fmt = detect(path)
    if fmt is None:
        return None
    out = Path(tempfile.mkdtemp(prefix="adrs-import-")) / "task"
    try:
        plan = import_folder(path, out, fmt)
    except ImportFailure as e:
        shutil.rmtree(out.parent, ignore_errors=True)
        fail(str(e))
    console.print(f"{path} is a {fmt} folder: imported on the fly for this run (no task folder is "
                  f"written; `adrs-agent tasks import {path}` writes one); stages "
                  f"{list(plan.stages)}, regions {plan.regions or 'none'}, no held-out stage")
    return out


@tasks_app.command("import")
def tasks_import(
    src: Path = typer.Argument(..., help="An OpenEvolve, ShinkaEvolve or ADRS-leaderboard folder."),
    fmt: str | None = typer.Option(None, "--format", help="openevolve, shinka or leaderboard "
                                   "(default: detected from the files)."),
    out: Path | None = typer.Option(None, "--out", help="The task folder to write (default: tasks/NAME)."),
    test_split: bool = typer.Option(False, "--test-split", help="Split their data into a held-out "
                                    "stage, where their evaluator takes a data path."),
    sandbox: str = typer.Option("auto", "--sandbox", help=SANDBOX_HELP),
) -> None:
    """Write a task folder from an OpenEvolve, ShinkaEvolve or ADRS-leaderboard folder (their
    evaluator unchanged, behind an adapter), check it and score its baseline."""
    from agent.importers import ImportFailure, import_folder, task_name
    from sandbox.evaluate import run_stage

    out = out or Path("tasks") / task_name(src)
    try:
        plan = import_folder(src, out, fmt, test_split)
    except ImportFailure as e:
        fail(str(e))
    console.print(f"imported {src} ({plan.format}) into {out}")
    for line in plan.mapped:
        console.print(f"  mapped: {line}", markup=False)
    for line in plan.unmapped:
        console.print(f"  not mapped: {line}", markup=False)
    console.print(f"  held-out stage: none ({plan.no_heldout})", markup=False)
    task = load_task(out)
    check_requires(task)
    console.print(f"[green]ok[/green]: task {task.name!r}: stages {task.evaluator.stages}, "
                  f"editable {task.editable}, regions {task.regions or 'none'}")
    jail = jail_for(task, sandbox, False, False, "their evaluator")
    for stage in task.evaluator.stages:
        res = run_stage(task.evaluator, Path(task.source), stage, python=sys.executable, jail=jail)
        if not res.valid:
            console.print(f"baseline {stage}: INVALID: {res.feedback or res.error}", markup=False)
            console.print(f"the task folder {out} is kept; fix their evaluator or program there")
            raise typer.Exit(1)
        console.print(f"baseline {stage}: score {res.score:.6g}")


@tasks_app.command("eval")
def tasks_eval(
    task_dir: Path,
    stage: str | None = typer.Option(None, help="Stage to run (default: the first)."),
    candidate: str | None = typer.Option(
        None, help="A folder, or a commit of the task's repo / a session repo (PATH@COMMIT)."),
    data: Path | None = typer.Option(None, help="Data folder for the evaluator."),
    sandbox: str = typer.Option("auto", "--sandbox", help=SANDBOX_HELP),
    unsafe_no_sandbox: bool = typer.Option(False, "--unsafe-no-sandbox", help=UNSAFE_HELP),
) -> None:
    """Evaluate the baseline (or a candidate) on one stage; print the evaluator's JSON."""
    from sandbox import git
    from sandbox.evaluate import run_stage

    task = load_task(task_dir)
    check_requires(task)
    spec = task.evaluator
    stage = stage or spec.stages[0]
    if stage not in spec.all_stages:
        fail(f"--stage {stage}: not a stage of {task.name}; use one of {spec.all_stages}")
    if data is not None and not data.is_dir():
        fail(f"--data {data}: no such folder")
    repo, commit = _candidate_source(task, candidate)
    jail = jail_for(task, sandbox, candidate is not None, unsafe_no_sandbox,
                    f"the candidate {candidate}", out=err_console)
    with tempfile.TemporaryDirectory(prefix="adrs-eval-") as tmp, \
            contextlib.ExitStack() as cleanup:
        if candidate and repo is None:
            where = Path(candidate).resolve()
        else:
            try:
                if repo is None:  # the task's baseline
                    repo = Path(tmp) / "repo"
                    git.init_repo(repo, task.source, task.ref)
                where = cleanup.enter_context(git.worktree(repo, Path(tmp) / "candidate",
                                                           commit)).path
            except git.GitError as e:
                fail(f"--candidate {candidate or '(baseline)'}: {e}")
        result = run_stage(spec, where, stage, python=sys.executable,
                           data=data.resolve() if data else None, jail=jail)
    out = {"score": result.score, "valid": result.valid, "metrics": result.metrics,
           "feedback": result.feedback, "artifacts": result.artifacts}
    if result.error:
        out["error"] = result.error
        out["log_tail"] = result.log_tail
    print(json.dumps(out, indent=1))
    if not result.valid:
        raise typer.Exit(1)


def _candidate_source(task: Task, candidate: str | None) -> tuple[Path | None, str]:
    """(git repo, commit) of --candidate; (None, "") for a folder or the baseline."""
    if candidate is None:
        return None, "HEAD"
    if Path(candidate).is_dir():
        return None, ""
    path, at, commit = candidate.rpartition("@")
    if not at:
        path, commit = str(task.source), candidate
        if not (Path(path) / ".git").exists():
            fail(f"--candidate {candidate}: not a folder, and the task's repo is not a git "
                 "repo to find a commit in; give a folder or REPO@COMMIT")
    repo = Path(path).expanduser().resolve()
    if not (repo / ".git").exists():
        fail(f"--candidate {candidate}: {path} is not a git repository; give a folder, or "
             "REPO@COMMIT with REPO a git repo (a session's repo folder, say)")
    if not commit:
        fail(f"--candidate {candidate}: no commit after '@'")
    return repo, commit


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()


if __name__ == "__main__":
    main()
