"""Inside the candidate's jail: run an imported evaluator on a copy of the candidate and send
back what it returned, as JSON. Their files are read-only at $ADRS_JOB; `compat/` stands in
for openevolve / shinka when those are not installed."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import tempfile
import traceback

from adrs_eval.side import channel

chan = channel()  # first: their prints go to stderr, not into the reply


def plain(v, depth=0):
    """Their values as JSON (numpy scalars and arrays, bytes, objects as text)."""
    if depth > 20:
        return str(v)
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, dict):
        return {str(k): plain(x, depth + 1) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x, depth + 1) for x in v]
    if hasattr(v, "item") and getattr(v, "shape", None) == ():
        return plain(v.item(), depth + 1)
    if hasattr(v, "tolist"):
        return plain(v.tolist(), depth + 1)
    return str(v)


def load(path: str, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def read_json(path: str):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def main() -> dict:
    job = json.loads(sys.argv[1])
    theirs, call = os.environ["ADRS_JOB"], job["call"]
    work = tempfile.mkdtemp(prefix="work-")
    program_dir = os.path.join(work, "program")  # a writable copy, as their frameworks pass one
    shutil.copytree(os.environ["ADRS_CANDIDATE"], program_dir, symlinks=True)
    program = os.path.join(program_dir, job["program"])
    os.chdir(work)
    sys.path.insert(0, theirs)
    sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "compat"))
    module = load(os.path.join(theirs, call["file"]), "imported_evaluator")
    fn = getattr(module, call["function"])
    if job["format"] == "openevolve":
        out = fn(program)
        if hasattr(out, "metrics"):
            return {"metrics": plain(out.metrics), "artifacts": plain(getattr(out, "artifacts", {}))}
        return {"metrics": plain(out)}
    if job["format"] == "shinka":
        results = os.path.join(work, "results")
        os.makedirs(results, exist_ok=True)
        fn(program, results)
        return {"metrics": plain(read_json(os.path.join(results, "metrics.json"))),
                "correct": plain(read_json(os.path.join(results, "correct.json")))}
    spec = os.path.join(theirs, call["spec"]) if call.get("spec") else None
    out = fn(program, spec) if spec else fn(program)
    return {"metrics": plain(out)}


try:
    reply = main()
except BaseException as exc:  # noqa: BLE001 - whatever their code raises is reported, not fatal
    reply = {"raised": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-4000:]}
chan.send(reply)
