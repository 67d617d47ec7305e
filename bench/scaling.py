"""Candidates per minute with 1 and 2 evaluator slots here, and on a 2-node Ray cluster.

    python bench/scaling.py [--budget 16] [--cost-s 0.5] [--no-ray]

The same seeded tuner run (2 episodes at a time) on a copy of the toy task whose evaluator burns
a fixed amount of CPU (--cost-s of process time) before it scores: with 1 slot the evaluations
queue, with 2 they overlap. Each speedup is over 1 slot measured in the same run; the harness's
share is the part of the slots' wall time not spent inside evaluators (from the `evaluated`
events' wall_s). The Ray run starts its own 2-node cluster (`ray start --head`, then a second
`ray start --address`, 1 CPU each) and stops it; it is skipped, saying why, without ray.

Human-readable lines first; the LAST line is one JSON object.
Targets (not asserted): >= 1.8x at 2 slots, Ray 2 nodes >= 1.6x, harness < 5% of evaluator time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.events import CandidateScored, Evaluated  # noqa: E402
from agent.session import Session  # noqa: E402

TOY = ROOT / "tests" / "fixtures" / "toy"
EVALUATOR = '''
import argparse, json, re, time
from pathlib import Path
ap = argparse.ArgumentParser()
ap.add_argument("--stage"); ap.add_argument("--candidate")
args = ap.parse_args()
end = time.process_time() + COST_S
while time.process_time() < end:
    pass
text = (Path(args.candidate) / "pkg" / "policy.py").read_text()
a = float(re.search(r"^A = (-?[0-9.]+)", text, re.M).group(1))
b = float(re.search(r"^B = (-?[0-9.]+)", text, re.M).group(1))
print(json.dumps({"score": -(a - 7) ** 2 - (b - 2) ** 2, "valid": True, "metrics": {"a": a, "b": b}}))
'''


def make_task(root: Path, cost_s: float) -> Path:
    task = root / "task"
    shutil.copytree(TOY, task, ignore=shutil.ignore_patterns("__pycache__", "calls.log", "sleep_s"))
    (task / "evaluator" / "evaluate.py").write_text(EVALUATOR.replace("COST_S", repr(cost_s)))
    # one stage per candidate: the cascade's quick stage would double the cost for nothing here
    toml = (task / "task.toml").read_text().replace('stages = ["quick", "full"]', 'stages = ["full"]')
    (task / "task.toml").write_text(toml.replace("thresholds = { quick = -1000.0 }\n", ""))
    return task


def run(task: Path, sessions: Path, budget: int, *extra: str) -> dict:
    shutil.rmtree(sessions, ignore_errors=True)
    sessions.mkdir(parents=True)
    subprocess.run([sys.executable, "-m", "agent.cli", "solve", str(task), "--model", "tuner", "--budget",
                    str(budget), "--workers", "2", "--no-test", "--seed", "1", "--sessions-dir", str(sessions),
                    "--no-tui", *extra], cwd=ROOT, check=True, capture_output=True)
    events = list(Session(next(sessions.iterdir())).events())
    scored = [e.t for e in events if isinstance(e, CandidateScored)]
    # from the baseline's score (the run's first evaluation done) to the last candidate's; an
    # evaluation counts for the part of it inside that window (agents' run_evaluator calls go on
    # after the last candidate's score, and one may have started before the first)
    start, end = scored[0], scored[-1]
    spans = [(e.t - e.result.get("wall_s", 0.0), e.t) for e in events if isinstance(e, Evaluated)]
    inside = [(max(a, start), min(b, end)) for a, b in spans if b > start and a < end]
    evaluated = [span for span in inside if span[1] > span[0]]
    busy = sum(b - a for a, b in evaluated)
    wall = end - start
    return {"cpm": 60 * (len(scored) - 1) / wall, "wall_s": wall, "busy_s": busy, "evaluations": len(evaluated)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_cluster(tmp: Path) -> tuple[str, list[subprocess.Popen]] | str:
    """The address of a fresh 2-node cluster and its processes (`ray start --block`, each in a
    process group of its own, so stopping it stops nothing else), or why there is none."""
    ray = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")
    if ray is None:
        return "ray is not installed (pip install -e '.[ray]')"
    port = free_port()
    common = ["--block", "--num-cpus", "1", "--memory", str(1500 * 2**20), "--object-store-memory",
              str(200 * 2**20)]
    nodes = [subprocess.Popen([ray, "start", "--head", f"--port={port}", "--temp-dir", str(tmp / "ray"),
                               "--include-dashboard=false", *common], start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    address = f"127.0.0.1:{port}"
    wait = ("import ray, sys, time\nray.init(address=sys.argv[1])\nend = time.time() + 120\n"
            "while sum(n['Alive'] for n in ray.nodes()) < int(sys.argv[2]) and time.time() < end:\n"
            "    time.sleep(0.5)\nsys.exit(sum(n['Alive'] for n in ray.nodes()) < int(sys.argv[2]))\n")
    for count in (1, 2):
        if count == 2:
            nodes.append(subprocess.Popen([ray, "start", f"--address={address}", *common], start_new_session=True,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        if subprocess.run([sys.executable, "-c", wait, address, str(count)], capture_output=True).returncode:
            stop(nodes)
            return f"the Ray cluster did not come up with {count} node(s)"
    return address, nodes


def stop(nodes: list[subprocess.Popen]) -> None:
    for proc in reversed(nodes):
        if proc.poll() is not None:
            continue
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=int, default=16)
    ap.add_argument("--cost-s", type=float, default=0.5)
    ap.add_argument("--no-ray", action="store_true")
    args = ap.parse_args()
    out: dict = {"budget": args.budget, "cost_s": args.cost_s, "cores": len(os.sched_getaffinity(0))}
    with tempfile.TemporaryDirectory(prefix="adrs-bench-scaling-") as tmp:
        root = Path(tmp)
        task = make_task(root, args.cost_s)
        one = run(task, root / "s", args.budget, "--evaluators", "1")
        two = run(task, root / "s", args.budget, "--evaluators", "2")
        for name, r, slots in (("1 slot", one, 1), ("2 slots", two, 2)):
            share = 1 - r["busy_s"] / (slots * r["wall_s"])  # ~0 within noise: slightly negative is noise
            r["harness_share"] = round(share, 3)
            print(f"{name}: {r['cpm']:.1f} candidates/min, {r['evaluations']} evaluations, "
                  f"harness {share:.1%} of the slots' time")
        out.update(cpm_1=round(one["cpm"], 1), cpm_2=round(two["cpm"], 1),
                   speedup_2=round(two["cpm"] / one["cpm"], 3), harness_share_1=one["harness_share"],
                   harness_share_2=two["harness_share"])
        print(f"2 slots / 1 slot: {out['speedup_2']:.2f}x")
        if args.no_ray:
            out["ray"] = "skipped (--no-ray)"
        else:
            cluster = ray_cluster(root)
            if isinstance(cluster, str):
                out["ray"] = f"skipped: {cluster}"
                print(out["ray"])
            else:
                address, nodes = cluster
                try:
                    r = run(task, root / "s", args.budget, "--backend", "ray", "--ray-address", address)
                finally:
                    stop(nodes)
                out.update(cpm_ray=round(r["cpm"], 1), speedup_ray=round(r["cpm"] / one["cpm"], 3))
                print(f"ray, 2 nodes: {r['cpm']:.1f} candidates/min, {out['speedup_ray']:.2f}x over 1 slot")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
