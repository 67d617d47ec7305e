"""The ray backend on a real two-node Ray cluster on this machine (two raylets, one CPU each).

The cluster is started with `ray start --block` in process groups of its own and every process
it left is killed by pid at the end (never `ray stop`, which stops every Ray of the machine).
Each node has its own TMPDIR, so what each unpacked shows which nodes ran evaluations. The node
kill test comes last: it takes the second node down for good.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fixtures.helpers import CLI, REPO_ROOT, cli_env, events, of_type, only_session, scored

pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")

from agent.task import Task  # noqa: E402
from sandbox.evaluate import EvaluatorSpec, run_stage  # noqa: E402
from sandbox.pool import Priority  # noqa: E402
from sandbox.ray_pool import Bundle, RayPool, cache_root, forget_bundles, unpacked  # noqa: E402

pytestmark = pytest.mark.slow

BIN_PACKING = REPO_ROOT / "tasks" / "bin-packing"
RAY = Path(sys.executable).parent / "ray"
# `memory` is what Ray books per node, not what it takes: bin-packing asks 2048 MiB an evaluation
NODE = ["--num-cpus", "1", "--memory", str(2560 << 20), "--object-store-memory", str(200 << 20),
        "--node-ip-address", "127.0.0.1", "--disable-usage-stats"]
# the nodes and every driver: no tokens (a local `ray.init` may have left one in ~/.ray), no telemetry
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
RUN = ["--model", "tuner", "--budget", "6", "--workers", "1", "--seed", "1", "--no-test", "--no-tui"]


def processes() -> dict[int, tuple[int, list[str]]]:
    """pid -> (parent pid, command line), from /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
                found[int(entry.name)] = (ppid, (entry / "cmdline").read_bytes().decode(errors="replace").split("\0"))
    return found


def descendants(pid: int) -> dict[int, list[str]]:
    """The processes below `pid`, with their command lines."""
    table, below, todo = processes(), {}, [pid]
    while todo:
        parent = todo.pop()
        for child, (ppid, argv) in table.items():
            if ppid == parent and child not in below:
                below[child] = argv
                todo.append(child)
    return below


def kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def agent_ports() -> list[str]:
    """Ports each node's agents take (fixed defaults would clash between the two nodes, and
    with any other Ray on the machine)."""
    return ["--dashboard-agent-listen-port", str(free_port()), "--dashboard-agent-grpc-port",
            str(free_port()), "--runtime-env-agent-port", str(free_port()),
            "--metrics-export-port", str(free_port())]


@dataclass
class Cluster:
    root: Path
    address: str = ""
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def tmp(self, node: str) -> Path:
        return self.root / node

    def start(self, node: str, args: list[str]) -> None:
        self.tmp(node).mkdir()
        log = open(self.root / f"{node}.log", "w")
        env = {**os.environ, **RAY_ENV, "TMPDIR": str(self.tmp(node))}
        self.procs[node] = subprocess.Popen(
            [str(RAY), "start", "--block", "--temp-dir", str(self.root / "ray"), *NODE, *agent_ports(), *args],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + 90
        while "will now block forever" not in self.log(node):
            if self.procs[node].poll() is not None or time.monotonic() > deadline:
                pytest.skip(f"Ray cannot start here ({node}):\n{self.log(node)[-2000:]}")
            time.sleep(0.5)

    def log(self, node: str) -> str:
        return (self.root / f"{node}.log").read_text(errors="replace")

    def raylet(self, node: str) -> tuple[int, list[str]]:
        """The node's raylet: its pid and command line."""
        found = [(pid, argv) for pid, argv in descendants(self.procs[node].pid).items()
                 if argv[0].endswith("/raylet")]
        assert found, f"no raylet under {node}'s ray start"
        return found[0]

    def stop(self) -> None:
        """Kill what the nodes started, then whatever else still names this cluster's folders
        (evaluators a killed node left behind)."""
        mine = set()
        for proc in self.procs.values():
            mine |= set(descendants(proc.pid))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid, (_, argv) in processes().items():
            if pid in mine or any(str(self.root) in a for a in argv):
                kill(pid)


@pytest.fixture(scope="module")
def cluster():
    saved = {k: os.environ.get(k) for k in RAY_ENV}
    os.environ.update(RAY_ENV)  # for the drivers in this process
    root = Path(tempfile.mkdtemp(prefix="adrs-rt-", dir="/tmp"))  # short: Ray's socket paths
    c = Cluster(root)
    try:
        port = free_port()
        c.start("head", ["--head", "--port", str(port), "--include-dashboard=false",
                         "--dashboard-port", str(free_port())])
        c.address = f"127.0.0.1:{port}"
        c.start("second", ["--address", c.address])
        yield c
    finally:
        c.stop()
        shutil.rmtree(root, ignore_errors=True)
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


def unpacked_evaluators(cluster: Cluster, node: str) -> list[Path]:
    return list(cluster.tmp(node).glob(f"adrs-ray-{os.getuid()}/*/evaluate.py"))


def test_evaluations_run_on_both_nodes_with_the_local_result(cluster, tmp_path):
    task = Task.load(BIN_PACKING)
    spec, jail, repo = task.evaluator, task.evaluator.jail(), BIN_PACKING / "repo"
    local = run_stage(spec, repo, "quick", python=sys.executable, jail=jail)
    pool = RayPool(address=cluster.address, slots=2)
    try:
        assert pool.size == 2
        checked = pool.check_nodes(jail)
        with ThreadPoolExecutor(2) as ex:
            results = list(ex.map(lambda i: pool.run(spec, repo, "quick", data=None, jail=jail,
                                                     log_path=tmp_path / f"c{i}" / "quick.log",
                                                     priority=Priority.COMMIT), range(4)))
        stats = pool.stats()
        # each node unpacked the evaluator once ...
        assert len(unpacked_evaluators(cluster, "head")) == 1
        assert len(unpacked_evaluators(cluster, "second")) == 1
    finally:
        pool.close()
    # ... and removed it when the pool closed
    assert unpacked_evaluators(cluster, "head") == unpacked_evaluators(cluster, "second") == []
    assert len(pool.forgotten) == 2 and all(len(d) == 1 for d in pool.forgotten.values()), pool.forgotten
    assert len(checked) == 2 and set(checked.values()) == {"ok"}, checked
    assert [(r.score, r.valid) for r in results] == [(local.score, True)] * 4
    assert results[0].log == str(tmp_path / "c0" / "quick.log")
    assert '"score": ' in (tmp_path / "c0" / "quick.log").read_text()  # the head wrote the log
    # both nodes worked, and each unpacked the evaluator once
    assert len(stats) == 2 and sorted(s.evaluations for s in stats.values()) == [2, 2], stats
    assert all(s.busy_s > 0 and s.jail == "ok" for s in stats.values())


def test_closing_skips_a_bundle_another_evaluation_holds(tmp_path, monkeypatch):
    """Two runs of one task share a node's unpacked evaluator (same digest): the run that
    ends first leaves it while the other's evaluation holds it."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    root = cache_root()
    (root / "d1").mkdir()
    (root / "d1" / "evaluate.py").write_text("")
    (root / "d1.part-x").mkdir()  # a killed unpack's leftover
    with unpacked(Bundle("d1", [None])) as folder:
        assert forget_bundles(["d1", "never-here"]) == []
        assert (folder / "evaluate.py").exists()
    assert forget_bundles(["d1"]) == ["d1"]
    assert sorted(p.name for p in root.iterdir()) == ["d1.lock"]


def test_a_task_that_needs_a_gpu_is_told_no_node_has_one(cluster, tmp_path):
    task = Task.load(BIN_PACKING)
    spec = dataclasses.replace(task.evaluator, gpus=1.0)  # as `gpus = 1` in task.toml's [sandbox]
    pool = RayPool(address=cluster.address, slots=1)
    try:
        result = pool.run(spec, BIN_PACKING / "repo", "quick", data=None, jail=spec.jail(),
                          log_path=tmp_path / "g" / "quick.log", priority=Priority.COMMIT)
    finally:
        pool.close()
    assert not result.valid and result.stage == "quick"
    assert "1 GPU" in result.error and "0 GPU" in result.error  # what was asked, what each node has


def test_the_data_folder_travels_and_the_candidates_git_does_not(cluster, tmp_path):
    evaluator, data, wt = tmp_path / "evaluator", tmp_path / "data", tmp_path / "wt"
    for d in (evaluator, data, wt / "pkg"):
        d.mkdir(parents=True)
    (evaluator / "eval.py").write_text(
        "import json, os, sys\n"
        "wt, data = sys.argv[1], sys.argv[2]\n"
        "print(json.dumps({'score': float(open(os.path.join(wt, 'pkg/x.txt')).read()) + "
        "float(open(os.path.join(data, 'd.txt')).read()), 'valid': True, 'metrics': {"
        "'git': os.path.exists(os.path.join(wt, '.git')), 'link': os.path.lexists("
        "os.path.join(wt, 'escape')), 'env_data': os.environ['ADRS_DATA'] == data}}))\n")
    (data / "d.txt").write_text("40")
    (wt / "pkg" / "x.txt").write_text("2")
    (wt / ".git").write_text("gitdir: /somewhere/else\n")
    (wt / "escape").symlink_to("/etc/hostname")
    spec = EvaluatorSpec(command=["python", "eval.py", "{worktree}", "{data}"], cwd=evaluator,
                         stages=["s"], memory_mb=256)
    pool = RayPool(address=cluster.address, slots=1)
    try:
        results = [pool.run(spec, wt, "s", data=data, log_path=None, jail=spec.jail()) for _ in range(3)]
    finally:
        pool.close()
    assert [r.score for r in results] == [42.0] * 3, results[0]
    assert results[0].metrics == {"git": False, "link": False, "env_data": True}
    assert sum(s.evaluations for s in pool.stats().values()) == 3


def test_a_run_on_the_cluster_scores_what_a_local_run_scores(cluster, tmp_path):
    """Same seed, same candidates and scores, held-out stage included (it runs on the
    cluster too); the nodes' unpacked evaluators are gone at the end."""
    runs = {"local": [], "ray": ["--backend", "ray", "--ray-address", cluster.address]}
    with_test = [a for a in RUN if a != "--no-test"]
    procs = {name: subprocess.Popen([*CLI, "solve", str(BIN_PACKING), *with_test, *extra,
                                     "--sessions-dir", str(tmp_path / name)],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    env=cli_env(**RAY_ENV), cwd=REPO_ROOT)
             for name, extra in runs.items()}  # side by side: two cores, and the nodes are idle otherwise
    out = {name: p.communicate(timeout=600)[0] for name, p in procs.items()}
    for name, p in procs.items():
        assert p.returncode == 0, f"{name} run failed:\n{out[name]}"
    found = {name: [(c["candidate"]["message"], c["score"], c["valid"]) for c in
                    scored(events(only_session(tmp_path / name)))] for name in runs}
    assert len(found["local"]) >= 2  # the baseline and at least one improvement
    assert found["ray"] == found["local"]
    tested = {name: [(e["valid"], e["score"]) for e in of_type(events(only_session(tmp_path / name)),
                                                                  "candidate_tested")] for name in runs}
    assert tested["local"] and tested["ray"] == tested["local"]
    evs = events(only_session(tmp_path / "ray"))
    used = of_type(evs, "evaluators")[-1]  # per node, at the end: the held-out runs counted too
    assert evs.index(used) > [e["type"] for e in evs].index("candidate_tested")
    assert len(used["nodes"]) == 2 and all(st["evaluations"] >= 1 for st in used["nodes"].values())
    here = of_type(events(only_session(tmp_path / "local")), "evaluators")[-1]
    assert list(here["nodes"]) == ["local"]
    assert sum(st["evaluations"] for st in used["nodes"].values()) == here["nodes"]["local"]["evaluations"]
    assert unpacked_evaluators(cluster, "head") == unpacked_evaluators(cluster, "second") == []
    heldout_logs = list((only_session(tmp_path / "ray") / "heldout").glob("*/*.log"))
    assert heldout_logs and all('"score"' in p.read_text() for p in heldout_logs)  # the head wrote them


def slow_copy(tmp_path: Path) -> Path:
    """bin-packing whose evaluator takes a second longer, so that a kill lands mid-evaluation."""
    task = tmp_path / "slow-bin-packing"
    shutil.copytree(BIN_PACKING, task, ignore=shutil.ignore_patterns("__pycache__"))
    (task / "evaluator" / "slow.py").write_text(
        "import runpy, sys, time\ntime.sleep(1)\nsys.argv[0] = 'evaluate.py'\n"
        "runpy.run_path('evaluate.py', run_name='__main__')\n")
    toml = task / "task.toml"
    toml.write_text(toml.read_text().replace('"evaluate.py"', '"slow.py"'))
    return task


def test_killing_a_node_mid_evaluation_loses_no_candidate(cluster, tmp_path):
    task = slow_copy(tmp_path)
    sessions = tmp_path / "sessions"
    proc = subprocess.Popen([*CLI, "solve", str(task), *RUN,
                             "--max-episodes", "3", "--backend", "ray", "--ray-address", cluster.address,
                             "--sessions-dir", str(sessions)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=cli_env(**RAY_ENV), cwd=REPO_ROOT)
    raylet, argv = cluster.raylet("second")
    node = next(a.partition("=")[2] for a in argv if a.startswith("--node_id="))
    deadline = time.monotonic() + 240
    while True:  # the baseline is scored, and an evaluator runs on the second node: kill it
        assert proc.poll() is None and time.monotonic() < deadline, "no evaluation ran on the second node"
        session = next(iter(sessions.glob("*/events.jsonl")), None)
        busy = [pid for pid, argv in descendants(raylet).items() if any("slow.py" in a for a in argv)]
        if session and scored(events(session.parent)) and busy:
            kill(raylet)
            break
        time.sleep(0.1)
    out = proc.communicate(timeout=400)[0]
    assert proc.returncode == 0, out
    evs = events(only_session(sessions))
    assert evs[-1]["type"] == "session_finished"
    committed = {e["commit"] for e in of_type(evs, "candidate_committed")}
    assert committed <= {c["commit"] for c in scored(evs)}  # every candidate scored
    retried = of_type(evs, "retried")
    assert retried, f"the evaluation in flight on the killed node was not retried:\n{out}"
    assert (retried[0]["node"], retried[0]["attempt"]) == (node, 1) and retried[0]["error"], retried
    label = retried[0]["label"]  # ... and its result came back from the other node
    done = [c["commit"] for c in scored(evs)] + [e["key"] for e in of_type(evs, "evaluated")]
    assert any(x.startswith(label) or x.startswith(label.partition("-")[2]) for x in done), (label, done)
